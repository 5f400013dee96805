//! An SVG Gantt chart of a simulated timeline: one row per agent, grouped in
//! a lane per wave, one bar per attempt (failed and timed-out attempts in
//! orange, cancelled ones grey), the critical chain in red, and a time axis.

use super::SimModel;
use super::simulate::{AttemptOutcome, SimOutcome, Timeline};
use std::fmt::Write as _;

const LABEL_WIDTH: f64 = 180.0;
const CHART_WIDTH: f64 = 760.0;
const RIGHT_MARGIN: f64 = 20.0;
const ROW: f64 = 20.0;
const BAR: f64 = 14.0;
const TOP: f64 = 44.0;
const AXIS: f64 = 36.0;

/// Colours of the chart (also its legend).
const COMPLETED: &str = "#4c78a8";
const CRITICAL: &str = "#d62728";
const FAILED: &str = "#f58518";
const CANCELLED: &str = "#9d9d9d";

/// Escapes text for XML content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\t' && c != '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A tick step of 1, 2 or 5 × a power of ten seconds (or the minute/hour
/// equivalents) giving at most about 10 ticks over `span` seconds.
fn tick_step(span: f64) -> f64 {
    const STEPS: &[f64] = &[
        0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0,
        3600.0, 7200.0, 14_400.0, 21_600.0, 43_200.0, 86_400.0,
    ];
    STEPS
        .iter()
        .copied()
        .find(|s| span / s <= 10.0)
        .unwrap_or_else(|| (span / 10.0 / 86_400.0).ceil() * 86_400.0)
}

fn label(seconds: f64) -> String {
    if seconds == 0.0 {
        return "0".into();
    }
    super::human(seconds)
}

/// The chart of `timeline` (of `model`) titled `title`.
pub fn render(model: &SimModel, timeline: &Timeline, title: &str) -> String {
    let span = if timeline.makespan > 0.0 {
        timeline.makespan
    } else {
        1.0
    };
    let x = |t: f64| LABEL_WIDTH + (t / span).clamp(0.0, 1.0) * CHART_WIDTH;
    let rows = model.agents.len() + model.waves.len();
    let height = TOP + rows as f64 * ROW + AXIS;
    let width = LABEL_WIDTH + CHART_WIDTH + RIGHT_MARGIN;
    let critical: std::collections::HashSet<usize> = timeline.critical.iter().copied().collect();
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(
        svg,
        r#"<title>{}</title>"#,
        escape(&format!(
            "{title}: predicted makespan {}",
            label(timeline.makespan)
        ))
    );
    let _ = writeln!(
        svg,
        r##"<rect x="0" y="0" width="{width:.0}" height="{height:.0}" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        svg,
        r#"<text x="8" y="18" font-size="14" font-weight="bold">{}</text>"#,
        escape(&format!(
            "{title}: predicted makespan {}",
            label(timeline.makespan)
        ))
    );
    // Legend.
    let legend = [
        (COMPLETED, "completed"),
        (CRITICAL, "critical path"),
        (FAILED, "failed attempt"),
        (CANCELLED, "cancelled"),
    ];
    for (i, (colour, name)) in legend.iter().enumerate() {
        let lx = LABEL_WIDTH + i as f64 * 130.0;
        let _ = writeln!(
            svg,
            r#"<rect x="{lx:.1}" y="26" width="10" height="10" fill="{colour}"/><text x="{:.1}" y="35">{name}</text>"#,
            lx + 14.0
        );
    }
    // Lane backgrounds, then the grid over them, then labels and bars.
    let mut row = 0usize;
    for (w, wave) in model.waves.iter().enumerate() {
        let lane_top = TOP + row as f64 * ROW;
        let lane_height = (wave.members.len() + 1) as f64 * ROW;
        let fill = if w % 2 == 0 { "#f4f6fa" } else { "#ffffff" };
        let _ = writeln!(
            svg,
            r#"<rect x="0" y="{lane_top:.1}" width="{width:.0}" height="{lane_height:.1}" fill="{fill}"/>"#
        );
        row += wave.members.len() + 1;
    }
    // Grid and time axis.
    let step = tick_step(span);
    let axis_y = TOP + rows as f64 * ROW;
    let mut t = 0.0;
    while t <= span + 1e-9 {
        let gx = x(t);
        let _ = writeln!(
            svg,
            r##"<line x1="{gx:.1}" y1="{TOP:.1}" x2="{gx:.1}" y2="{:.1}" stroke="#dddddd"/><text x="{gx:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            axis_y + 4.0,
            axis_y + 16.0,
            escape(&label(t))
        );
        t += step;
    }
    let _ = writeln!(
        svg,
        r##"<line x1="{LABEL_WIDTH:.1}" y1="{axis_y:.1}" x2="{:.1}" y2="{axis_y:.1}" stroke="#333333"/>"##,
        LABEL_WIDTH + CHART_WIDTH
    );
    // Lanes: a header row per wave, then its agents.
    let mut row = 0usize;
    for wave in &model.waves {
        let lane_top = TOP + row as f64 * ROW;
        let _ = writeln!(
            svg,
            r#"<text x="8" y="{:.1}" font-weight="bold">{}</text>"#,
            lane_top + 14.0,
            escape(&format!(
                "wave {}{}",
                wave.id,
                if wave.parallel { "" } else { " (sequential)" }
            ))
        );
        row += 1;
        for &i in &wave.members {
            let Some(agent) = timeline.agents.get(i) else {
                continue;
            };
            let y = TOP + row as f64 * ROW;
            let _ = writeln!(
                svg,
                r#"<text x="16" y="{:.1}">{}</text>"#,
                y + 14.0,
                escape(&agent.id)
            );
            for attempt in &agent.attempts {
                let colour = match attempt.outcome {
                    AttemptOutcome::Completed if critical.contains(&i) => CRITICAL,
                    AttemptOutcome::Completed => COMPLETED,
                    AttemptOutcome::Failed | AttemptOutcome::TimedOut => FAILED,
                    AttemptOutcome::Cancelled => CANCELLED,
                };
                let bx = x(attempt.start);
                let bw = (x(attempt.end) - bx).max(1.0);
                let _ = writeln!(
                    svg,
                    r#"<rect x="{bx:.1}" y="{:.1}" width="{bw:.1}" height="{BAR:.1}" fill="{colour}"><title>{}</title></rect>"#,
                    y + (ROW - BAR) / 2.0,
                    escape(&format!(
                        "{} {:?}: {} – {}",
                        agent.id,
                        attempt.outcome,
                        label(attempt.start),
                        label(attempt.end)
                    ))
                );
            }
            let note = match agent.outcome {
                SimOutcome::Blocked => Some(format!(
                    "blocked by {}",
                    agent.blocked_by.as_deref().unwrap_or("a dependency")
                )),
                SimOutcome::NotRun => Some("not run".to_string()),
                _ => None,
            };
            if let Some(note) = note {
                let _ = writeln!(
                    svg,
                    r##"<text x="{:.1}" y="{:.1}" fill="#888888" font-style="italic">{}</text>"##,
                    LABEL_WIDTH + 4.0,
                    y + 14.0,
                    escape(&note)
                );
            }
            row += 1;
        }
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::tests::test_plan;
    use crate::plan::{ExecutionMode, FailureStrategy};
    use crate::predict::simulate::{Sampler, SimOptions, simulate};
    use crate::predict::{ModelOptions, SimModel};
    use std::time::Duration;

    fn chart() -> String {
        let plan = test_plan(
            r#"{"orchestrationId":"demo <&>","waves":[
            {"waveId":"build","agents":[
                {"agentId":"API","workDescription":"a","estimatedDuration":"20m"},
                {"agentId":"UI","workDescription":"b","estimatedDuration":"30m","maxRetries":1},
                {"agentId":"DB","workDescription":"c","estimatedDuration":"10m"}]},
            {"waveId":"check","parallel":false,"agents":[
                {"agentId":"E2E","workDescription":"d","estimatedDuration":"15m","dependencies":["API","UI"]},
                {"agentId":"DOCS","workDescription":"e","estimatedDuration":"5m","dependencies":["DB"]}]}]}"#,
        );
        let mut model = SimModel::from_plan(
            &plan,
            ModelOptions {
                calibration: None,
                default_estimate: Duration::from_secs(1800),
                timeout_factor: 2.0,
            },
        );
        model.agents[2].failure_rate = 1.0; // DB fails: DOCS is blocked
        let mut rng = crate::predict::rng::Rng::new(1);
        let timeline = simulate(
            &model,
            SimOptions {
                mode: ExecutionMode::Waves,
                concurrency: 2,
                retry_base: 2.0,
                retry_max: 120.0,
                failure_strategy: FailureStrategy::ContinueOthers,
            },
            Sampler::Random(&mut rng),
        );
        render(&model, &timeline, &plan.orchestration_id)
    }

    #[test]
    fn the_chart_is_valid_xml_with_a_bar_per_attempt() {
        let svg = chart();
        let doc = roxmltree::Document::parse(&svg).expect("valid XML");
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "svg");
        let bars = root
            .descendants()
            .filter(|n| n.has_tag_name("rect") && n.children().any(|c| c.has_tag_name("title")))
            .count();
        assert_eq!(
            bars, 4,
            "API, UI, DB (one failed attempt), E2E; DOCS blocked"
        );
        assert!(svg.contains("blocked by DB"));
        assert!(svg.contains(CRITICAL));
        assert!(svg.contains("demo &lt;&amp;&gt;"));
        insta::assert_snapshot!(svg);
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(tick_step(41.0), 5.0);
        assert_eq!(tick_step(3.0 * 3600.0), 1800.0);
        assert_eq!(tick_step(0.5), 0.1);
        assert_eq!(label(90.0), "1m30s");
    }
}
