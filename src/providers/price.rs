//! Prices of the current Claude, GPT and Gemini models, per million
//! tokens, to turn [`Usage`] into dollars.
//!
//! Model names match by longest prefix (`claude-sonnet-4-5-20250929`
//! matches `claude-sonnet-4-5`); a vendor prefix (`models/`,
//! `anthropic/`…) is ignored. Unknown models have no price. Prices are
//! list prices for standard (not batch, not long-context) requests; cache
//! writes are counted as ordinary input. Plans can override or add models
//! with [`PriceTable::with_overrides`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::types::Usage;

/// One model's prices in US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModelPrice {
    /// Uncached prompt tokens.
    pub input: f64,
    /// Generated tokens (reasoning included).
    pub output: f64,
    /// Prompt tokens read from the cache.
    #[serde(alias = "cached_input")]
    pub cached_input: f64,
}

impl ModelPrice {
    /// A price triple (input, output, cached input).
    pub const fn new(input: f64, output: f64, cached_input: f64) -> Self {
        Self {
            input,
            output,
            cached_input,
        }
    }

    /// The cost of `usage` at these prices.
    pub fn cost_usd(&self, usage: &Usage) -> f64 {
        let cached = usage.cached_input_tokens.min(usage.input_tokens);
        let uncached = usage.input_tokens - cached;
        (uncached as f64 * self.input
            + cached as f64 * self.cached_input
            + usage.output_tokens as f64 * self.output)
            / 1_000_000.0
    }
}

/// Built-in prices: (model-name prefix, input, output, cached input).
const BUILTIN: &[(&str, f64, f64, f64)] = &[
    // Anthropic
    ("claude-opus-4-6", 5.0, 25.0, 0.50),
    ("claude-opus-4-5", 5.0, 25.0, 0.50),
    ("claude-opus-4-1", 15.0, 75.0, 1.50),
    ("claude-opus-4", 15.0, 75.0, 1.50),
    ("claude-sonnet-4", 3.0, 15.0, 0.30),
    ("claude-3-7-sonnet", 3.0, 15.0, 0.30),
    ("claude-3-5-sonnet", 3.0, 15.0, 0.30),
    ("claude-haiku-4", 1.0, 5.0, 0.10),
    ("claude-3-5-haiku", 0.80, 4.0, 0.08),
    ("claude-3-haiku", 0.25, 1.25, 0.03),
    ("claude-3-opus", 15.0, 75.0, 1.50),
    // OpenAI
    ("gpt-5.2-pro", 21.0, 168.0, 21.0),
    ("gpt-5.2", 1.75, 14.0, 0.175),
    ("gpt-5.1-codex-mini", 0.25, 2.0, 0.025),
    ("gpt-5.1", 1.25, 10.0, 0.125),
    ("gpt-5-pro", 15.0, 120.0, 15.0),
    ("gpt-5-mini", 0.25, 2.0, 0.025),
    ("gpt-5-nano", 0.05, 0.40, 0.005),
    ("gpt-5", 1.25, 10.0, 0.125),
    ("gpt-4.1-mini", 0.40, 1.60, 0.10),
    ("gpt-4.1-nano", 0.10, 0.40, 0.025),
    ("gpt-4.1", 2.0, 8.0, 0.50),
    ("gpt-4o-mini", 0.15, 0.60, 0.075),
    ("gpt-4o", 2.50, 10.0, 1.25),
    ("o4-mini", 1.10, 4.40, 0.275),
    ("o3-pro", 20.0, 80.0, 20.0),
    ("o3-mini", 1.10, 4.40, 0.55),
    ("o3", 2.0, 8.0, 0.50),
    ("o1-mini", 1.10, 4.40, 0.55),
    ("o1", 15.0, 60.0, 7.50),
    // Google
    ("gemini-3-pro", 2.0, 12.0, 0.20),
    ("gemini-3-flash", 0.50, 3.0, 0.05),
    ("gemini-2.5-pro", 1.25, 10.0, 0.125),
    ("gemini-2.5-flash-lite", 0.10, 0.40, 0.01),
    ("gemini-2.5-flash", 0.30, 2.50, 0.03),
    ("gemini-2.0-flash-lite", 0.075, 0.30, 0.075),
    ("gemini-2.0-flash", 0.10, 0.40, 0.025),
];

/// Model prices, looked up by longest matching prefix.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriceTable {
    prices: BTreeMap<String, ModelPrice>,
}

impl PriceTable {
    /// An empty table.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The built-in prices of current Claude, GPT and Gemini models.
    pub fn builtin() -> Self {
        Self {
            prices: BUILTIN
                .iter()
                .map(|&(name, i, o, c)| (name.to_string(), ModelPrice::new(i, o, c)))
                .collect(),
        }
    }

    /// The same table with `overrides` (model-name prefix → price) added or
    /// replacing built-in entries.
    pub fn with_overrides(
        mut self,
        overrides: impl IntoIterator<Item = (String, ModelPrice)>,
    ) -> Self {
        self.prices.extend(overrides);
        self
    }

    /// The price of `model`: the entry with the longest prefix of its name.
    pub fn price(&self, model: &str) -> Option<&ModelPrice> {
        let name = model.trim();
        let name = name.rsplit_once('/').map_or(name, |(_, last)| last);
        self.prices
            .iter()
            .filter(|(prefix, _)| name.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, price)| price)
    }

    /// What `usage` cost on `model`, in US dollars; `None` for unknown models.
    pub fn cost_usd(&self, model: &str, usage: &Usage) -> Option<f64> {
        self.price(model).map(|p| p.cost_usd(usage))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(input: u64, output: u64, cached: u64) -> Usage {
        Usage {
            input_tokens: input,
            output_tokens: output,
            cached_input_tokens: cached,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn longest_prefix_wins() {
        let t = PriceTable::builtin();
        let u = usage(1_000_000, 0, 0);
        assert_eq!(t.cost_usd("claude-opus-4-5-20251101", &u), Some(5.0));
        assert_eq!(t.cost_usd("claude-opus-4-20250514", &u), Some(15.0));
        assert_eq!(t.cost_usd("claude-opus-4-1-20250805", &u), Some(15.0));
        assert_eq!(t.cost_usd("claude-sonnet-4-5-20250929", &u), Some(3.0));
        assert_eq!(t.cost_usd("gpt-5-mini-2025-08-07", &u), Some(0.25));
        assert_eq!(t.cost_usd("gpt-5", &u), Some(1.25));
        assert_eq!(t.cost_usd("gpt-4o-mini", &u), Some(0.15));
        assert_eq!(t.cost_usd("o3-mini", &u), Some(1.10));
        assert_eq!(t.cost_usd("models/gemini-2.5-flash-lite", &u), Some(0.10));
        assert_eq!(t.cost_usd("gemini-2.5-flash", &u), Some(0.30));
        assert_eq!(t.cost_usd("anthropic/claude-haiku-4-5", &u), Some(1.0));
    }

    #[test]
    fn unknown_models_have_no_price() {
        let t = PriceTable::builtin();
        assert_eq!(t.cost_usd("llama3.1:8b", &usage(10, 10, 0)), None);
        assert_eq!(t.cost_usd("", &usage(10, 10, 0)), None);
    }

    #[test]
    fn cached_tokens_are_cheaper() {
        let t = PriceTable::builtin();
        // 1M prompt tokens of which 400k cached, 100k output on Sonnet 4.5:
        // 600k·3 + 400k·0.3 + 100k·15 = 1.8 + 0.12 + 1.5
        let cost = t
            .cost_usd("claude-sonnet-4-5", &usage(1_000_000, 100_000, 400_000))
            .expect("priced");
        assert!(close(cost, 3.42), "{cost}");
        // cached never exceeds input
        let p = ModelPrice::new(1.0, 0.0, 0.5);
        assert!(close(p.cost_usd(&usage(10, 0, 20)), 5e-6));
    }

    #[test]
    fn overrides_replace_and_add() {
        let t = PriceTable::builtin().with_overrides([
            ("gpt-5".to_string(), ModelPrice::new(1.0, 2.0, 0.1)),
            ("qwen3".to_string(), ModelPrice::new(0.0, 0.0, 0.0)),
        ]);
        assert_eq!(t.cost_usd("gpt-5", &usage(1_000_000, 0, 0)), Some(1.0));
        assert_eq!(
            t.cost_usd("gpt-5-mini", &usage(1_000_000, 0, 0)),
            Some(0.25)
        );
        assert_eq!(t.cost_usd("qwen3:32b", &usage(5, 5, 0)), Some(0.0));
        let from_map: std::collections::HashMap<String, ModelPrice> =
            [("x".to_string(), ModelPrice::new(1.0, 1.0, 1.0))].into();
        assert!(
            PriceTable::empty()
                .with_overrides(from_map)
                .price("x-1")
                .is_some()
        );
    }
}
