//! The one HTML page of the dashboard, for the server and for `report --html`.
//!
//! The page is `assets/page.html` with `assets/app.css` and `assets/app.js`
//! inlined (all embedded in the binary) and a JSON block of data: for the
//! server, which run is live (the script then loads everything from the API
//! and the event stream); for the report, the whole run (the script then
//! needs nothing else). A Content-Security-Policy forbids every fetch but the
//! server's own API (none at all in the report), so the page never reaches
//! for another host.

use std::path::Path;

use serde::Serialize;

use super::DashboardError;
use super::output::{self, Redactor};
use super::runs::{Catalog, HistoryEntry};
use super::view::RunView;

const TEMPLATE: &str = include_str!("assets/page.html");
const CSS: &str = include_str!("assets/app.css");
const JS: &str = include_str!("assets/app.js");

/// The served page's Content-Security-Policy: its own inline code, and
/// requests to its own server only.
pub const LIVE_CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'";

/// The HTML report's Content-Security-Policy: no requests at all.
pub const STATIC_CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'";

/// Bytes of each agent's output kept in the HTML report.
pub const REPORT_TAIL_BYTES: u64 = 8 * 1024;
/// Bytes of output the HTML report holds at most, over all agents.
pub const REPORT_OUTPUT_BUDGET: usize = 4 * 1024 * 1024;

/// The data block of the served page.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct LiveConfig<'a> {
    mode: &'static str,
    live_run: Option<&'a str>,
    version: &'static str,
}

/// The data block of the HTML report.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct StaticData<'a> {
    mode: &'static str,
    version: &'static str,
    generated_at: String,
    run: &'a RunView,
    history: &'a [HistoryEntry],
}

/// JSON that is safe inside a `<script>` element and has no `://` in it:
/// `<`, `>`, `&`, U+2028 and U+2029 become `\u` escapes and `://` becomes
/// `:\/\/` (the same JSON values; only ever inside strings).
pub fn embed_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len() + json.len() / 16);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.replace("://", ":\\/\\/")
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The page with its parts filled in (the data last, so nothing in it is
/// taken for a placeholder).
fn render(title: &str, csp: &str, data_json: &str) -> String {
    TEMPLATE
        .replacen("@@CSP@@", csp, 1)
        .replacen("@@TITLE@@", &escape_html(title), 1)
        .replacen("@@CSS@@", CSS, 1)
        .replacen("@@JS@@", JS, 1)
        .replacen("@@DATA@@", &embed_json(data_json), 1)
}

/// The served page; `live_run` is the run this process is running, if any.
pub fn live_page(live_run: Option<&str>) -> String {
    let config = LiveConfig {
        mode: "live",
        live_run,
        version: env!("CARGO_PKG_VERSION"),
    };
    let json = serde_json::to_string(&config).unwrap_or_else(|_| "{}".into());
    render("llm-orchestrate dashboard", LIVE_CSP, &json)
}

/// The self-contained HTML report of the run in `run_dir` at `now_ms`:
/// the overview, the Gantt chart, every agent's detail (with the end of its
/// output) and the run's history entry, with no reference to anything outside
/// the file. Secret values are redacted as on the server.
pub async fn report_html(run_dir: &Path, now_ms: i64) -> Result<String, DashboardError> {
    let catalog = Catalog::new(None, vec![run_dir.to_path_buf()], None);
    let run_id = catalog
        .run_dirs()?
        .first()
        .map(|(id, _)| id.clone())
        .unwrap_or_default();
    let mut view = match catalog.view(&run_id, now_ms).await? {
        Some(view) => view,
        None => return Ok(String::new()),
    };
    let history = catalog.history(now_ms).await?;
    let mut budget = REPORT_OUTPUT_BUDGET;
    for agent in &mut view.agents {
        let path = run_dir.join("agents").join(&agent.id).join("output.log");
        let tail = output::tail(&path, REPORT_TAIL_BYTES)
            .unwrap_or_else(|e| Some(format!("(cannot read {}: {e})", path.display())));
        agent.output_tail = Some(match tail {
            Some(text) if text.len() <= budget => {
                budget -= text.len();
                text
            }
            Some(_) => "(output left out: the report holds at most 4 MiB of output)".into(),
            None => String::new(),
        });
    }
    let data = StaticData {
        mode: "static",
        version: env!("CARGO_PKG_VERSION"),
        generated_at: crate::report::format_timestamp(now_ms),
        run: &view,
        history: &history,
    };
    let json = serde_json::to_string(&data).unwrap_or_else(|_| "{}".into());
    let json = Redactor::from_env(&[]).redact(json);
    Ok(render(
        &format!("Run {} · llm-orchestrate report", view.run.run_id),
        STATIC_CSP,
        &json,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_hold_no_placeholder_no_closing_tag_and_no_external_url() {
        for (name, text) in [("app.css", CSS), ("app.js", JS)] {
            for marker in ["@@CSP@@", "@@TITLE@@", "@@CSS@@", "@@JS@@", "@@DATA@@"] {
                assert!(!text.contains(marker), "{name} contains {marker}");
            }
            assert!(!text.to_lowercase().contains("</script"), "{name}");
            assert!(!text.to_lowercase().contains("</style"), "{name}");
            assert!(!text.contains("://"), "{name} names a URL");
        }
        assert!(!TEMPLATE.contains("://"));
    }

    #[test]
    fn embedded_json_cannot_close_its_script_and_keeps_its_value() {
        let value = serde_json::json!({"text": "</script><b>&\u{2028} see https://example.com"});
        let embedded = embed_json(&value.to_string());
        assert!(
            !embedded.contains('<') && !embedded.contains("://"),
            "{embedded}"
        );
        let back: serde_json::Value = serde_json::from_str(&embedded).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn the_live_page_names_its_live_run() {
        let page = live_page(Some("r-1"));
        assert!(page.contains(r#""liveRun":"r-1""#));
        assert!(page.contains(LIVE_CSP));
        assert!(!page.contains("@@"));
    }
}
