//! The closed vocabularies of the plan format (platforms, modes, strategies, …).
//!
//! Each enum parses from its canonical spelling and documented aliases, prints
//! its canonical spelling, and lists every accepted spelling in the JSON Schema.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

/// A value outside a closed vocabulary, with the closest valid spelling.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct UnknownValue {
    /// Full message, suggestion included.
    pub message: String,
    /// The closest valid value, if one is close enough.
    pub suggestion: Option<String>,
}

impl UnknownValue {
    /// Builds the error for `value` given the valid `names`.
    pub fn new(value: &str, names: &[&str]) -> Self {
        let suggestion = suggest(value, names.iter().copied());
        let mut message = if value.contains('|') {
            format!(
                "{value:?} is a list of choices, not a value: pick one of {}",
                names.join(", ")
            )
        } else {
            format!(
                "unknown value {value:?}; expected one of: {}",
                names.join(", ")
            )
        };
        if let Some(s) = &suggestion {
            message.push_str(&format!(" (did you mean {s:?}?)"));
        }
        Self {
            message,
            suggestion,
        }
    }
}

/// The candidate closest to `value` (case-insensitive), if it is plausibly a typo.
pub fn suggest<'a>(value: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let lower = value.to_lowercase();
    let first_choice = lower.split('|').next().unwrap_or(&lower).to_string();
    candidates
        .into_iter()
        .map(|c| {
            let score = strsim::jaro_winkler(&first_choice, &c.to_lowercase());
            (score, c)
        })
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.to_string())
}

/// Implements `Serialize`/`Deserialize` through `Display`/`FromStr`.
macro_rules! string_serde {
    ($ty:ty) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use string_serde;

macro_rules! plan_enum {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $canon:literal $(| $alias:literal)* ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Canonical spellings, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($canon),+];
            /// Every accepted spelling, aliases included.
            pub const ACCEPTED: &'static [&'static str] = &[$($canon $(, $alias)*),+];
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The canonical spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $canon ),+
                }
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $( $canon $(| $alias)* => Ok($name::$variant), )+
                    _ => Err(UnknownValue::new(s, Self::NAMES)),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl schemars::JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({ "type": "string", "enum": $name::ACCEPTED })
            }
        }

        string_serde!($name);
    };
}

plan_enum! {
    /// Which LLM platform runs an agent (the seed's names).
    #[derive(Default)]
    Platform {
        /// Detect from API keys in the environment and CLIs on PATH.
        #[default]
        Auto => "auto" | "auto-detect",
        /// Anthropic Claude (Claude Code CLI or the Messages API).
        Claude => "claude",
        /// OpenAI GPT (Codex CLI or the Responses/Chat API).
        Gpt => "gpt" | "openai",
        /// Google Gemini (Gemini CLI or the Gemini API, with Batch).
        Gemini => "gemini",
        /// Any OpenAI-compatible server (Ollama, vLLM, llama.cpp), aider or opencode.
        OpenSource => "open-source" | "opensource" | "oss",
        /// Rendered numbered instructions for any other LLM; replies are ingested.
        Generic => "generic",
    }
}

plan_enum! {
    /// How the scheduler orders agents.
    #[derive(Default)]
    ExecutionMode {
        /// Wave k+1 starts after wave k finished and passed its gates.
        #[default]
        Waves => "waves",
        /// An agent starts as soon as its dependencies completed.
        Continuous => "continuous",
        /// Waves, with analysis and plan adaptation between them.
        Adaptive => "adaptive",
    }
}

plan_enum! {
    /// What happens when agents' work conflicts (overlapping scopes, merge conflicts).
    #[derive(Default)]
    ConflictHandling {
        /// Pause the wave and wait for a person to resolve (exit 3).
        #[default]
        PauseAndResolve => "pause-and-resolve",
        /// Start a resolver agent on the conflict.
        ResolveWithAgent => "resolve-with-agent",
        /// Fail the agents involved.
        Fail => "fail",
        /// Refuse to start a wave whose agents' scopes overlap.
        Strict => "strict",
    }
}

plan_enum! {
    /// What happens to other agents when one fails.
    #[derive(Default)]
    FailureStrategy {
        /// Others go on; dependants of the failed agent become BLOCKED.
        #[default]
        ContinueOthers => "continue-others",
        /// Cancel every running agent and stop.
        StopAll => "stop-all",
        /// Let the running agents of the wave finish, start nothing new, pause.
        PauseWave => "pause-wave",
    }
}

plan_enum! {
    /// What a failed quality-gate stage does.
    #[derive(Default)]
    FailureAction {
        /// Stop scheduling, keep state, exit 3; `resume` re-runs the gate first.
        #[default]
        PauseWave => "pause-wave",
        /// Reset the agent's work and run it again with the failure as context.
        RollbackAndRetry => "rollback-and-retry",
        /// Pause and write review.md; `resume --approve` or `--reject`.
        ManualReview => "manual-review",
        /// Record the failure and go on.
        Continue => "continue",
    }
}

plan_enum! {
    /// How a gate's output is read.
    #[derive(Default)]
    GateParser {
        /// Guess from the command and output.
        #[default]
        Auto => "auto",
        /// `cargo test` output.
        Cargo => "cargo",
        /// cargo-nextest output.
        Nextest => "nextest",
        /// pytest output.
        Pytest => "pytest",
        /// `go test` output.
        Go => "go",
        /// Jest output.
        Jest => "jest",
        /// Vitest output.
        Vitest => "vitest",
        /// `node --test` output.
        NodeTest => "node-test",
        /// A JUnit XML file (`junitPath`).
        JunitXml => "junit-xml" | "junit",
        /// A TAP stream.
        Tap => "tap",
        /// Only the exit code counts.
        ExitCode => "exit-code",
    }
}

plan_enum! {
    /// The concrete program or API that runs an agent.
    DriverKind {
        /// The agent's `command`, run as a child process.
        Shell => "shell",
        /// The Claude Code CLI (`claude -p`).
        ClaudeCode => "claude-code",
        /// The Codex CLI (`codex exec --json`).
        Codex => "codex",
        /// The Gemini CLI (`gemini -p`).
        GeminiCli => "gemini-cli",
        /// aider.
        Aider => "aider",
        /// opencode.
        Opencode => "opencode",
        /// The Anthropic Messages API with the built-in agent loop.
        Anthropic => "anthropic",
        /// The OpenAI Responses/Chat API with the built-in agent loop.
        Openai => "openai",
        /// The Gemini API with the built-in agent loop.
        GeminiApi => "gemini-api",
        /// An OpenAI-compatible server with the built-in agent loop.
        OpenaiCompatible => "openai-compatible",
        /// Rendered instructions; the reply is ingested.
        Generic => "generic",
    }
}

plan_enum! {
    /// What an agent CLI may do without asking (extension `permissions`), mapped
    /// to each CLI's own permission or sandbox mode (see `crate::drivers::cli`).
    #[derive(Default)]
    Permissions {
        /// Edit files in its working directory without asking (the default).
        #[default]
        WorkspaceWrite => "workspace-write",
        /// Read and plan only: no edits, no commands that change anything.
        ReadOnly => "read-only",
        /// Everything, without asking and without a sandbox.
        FullAccess => "full-access",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_canonical_names_and_aliases() {
        assert_eq!("auto-detect".parse::<Platform>().unwrap(), Platform::Auto);
        assert_eq!("auto".parse::<Platform>().unwrap(), Platform::Auto);
        assert_eq!(
            "open-source".parse::<Platform>().unwrap(),
            Platform::OpenSource
        );
        assert_eq!(Platform::Auto.to_string(), "auto");
        assert_eq!("junit".parse::<GateParser>().unwrap(), GateParser::JunitXml);
    }

    #[test]
    fn unknown_values_suggest_the_closest_name() {
        let err = "cluade".parse::<Platform>().unwrap_err();
        assert_eq!(err.suggestion.as_deref(), Some("claude"));
        assert!(
            err.message.contains("did you mean \"claude\""),
            "{}",
            err.message
        );
        let err = "banana".parse::<Platform>().unwrap_err();
        assert_eq!(err.suggestion, None);
    }

    #[test]
    fn a_copied_list_of_choices_gets_a_specific_message() {
        let err = "auto-detect|claude|gpt|gemini|generic"
            .parse::<Platform>()
            .unwrap_err();
        assert!(err.message.contains("list of choices"), "{}", err.message);
    }

    #[test]
    fn serde_round_trips_through_the_canonical_name() {
        let json = serde_json::to_string(&ExecutionMode::Continuous).unwrap();
        assert_eq!(json, "\"continuous\"");
        let back: ExecutionMode = serde_json::from_str(&json).unwrap();
        assert_eq!(back, ExecutionMode::Continuous);
        assert!(serde_json::from_str::<ExecutionMode>("\"sideways\"").is_err());
    }
}
