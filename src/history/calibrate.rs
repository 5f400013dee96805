//! Calibrated estimates: how long agents really take compared with their
//! `estimatedDuration`, and how often their attempts fail.
//!
//! For each row with a positive estimate and a completing attempt, the ratio
//! `attempt_secs / estimate_secs` is a sample. Samples are grouped four ways,
//! and an agent is calibrated by the first group that has a sample, in this
//! order (the fallback chain):
//!
//! 1. the same plan (`orchestrationId`) and agent id;
//! 2. the same platform and model (only when the agent names a model);
//! 3. the same platform;
//! 4. every row.
//!
//! A group gives the median ratio, the 10th and 90th percentiles (linear
//! interpolation between order statistics), the number of samples and the
//! failure rate: failed attempts / attempts over its rows (rows without an
//! estimate count for the failure rate too). With no sample anywhere, there
//! is no calibration and callers use the plan's estimates.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::store::{HistoryStore, RowFilter};
use super::{HistoryError, HistoryRow, platform_key};
use crate::plan::{Agent, Plan};

/// Which group of the fallback chain calibrated an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CalibrationLevel {
    /// Earlier runs of the same agent of the same plan.
    PlanAgent,
    /// Agents on the same platform with the same model.
    PlatformModel,
    /// Agents on the same platform.
    Platform,
    /// Every agent in the history.
    All,
}

/// A calibrated estimate for one agent.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Calibrated {
    /// Median of actual / estimated duration.
    pub median_ratio: f64,
    /// 10th percentile of the ratio.
    pub p10_ratio: f64,
    /// 90th percentile of the ratio.
    pub p90_ratio: f64,
    /// Ratio samples behind it.
    pub samples: usize,
    /// Failed attempts / attempts, in [0, 1].
    pub failure_rate: f64,
    /// What it is based on, e.g. `claude/sonnet-4 (42 runs)`.
    pub basis: String,
}

impl Calibrated {
    /// The median duration for an agent estimated at `estimate`.
    pub fn duration(&self, estimate: Duration) -> Duration {
        scale(estimate, self.median_ratio)
    }

    /// The 90th-percentile duration for an agent estimated at `estimate`.
    pub fn upper(&self, estimate: Duration) -> Duration {
        scale(estimate, self.p90_ratio)
    }

    /// The 10th-percentile duration for an agent estimated at `estimate`.
    pub fn lower(&self, estimate: Duration) -> Duration {
        scale(estimate, self.p10_ratio)
    }

    /// The spread as the σ of a log-normal distribution with the same 10th
    /// and 90th percentiles (0 when they are equal or unusable).
    pub fn log_sigma(&self) -> f64 {
        /// The 90th percentile of the standard normal distribution.
        const Z90: f64 = 1.281_551_565_5;
        if self.p10_ratio > 0.0 && self.p90_ratio > self.p10_ratio {
            (self.p90_ratio / self.p10_ratio).ln() / (2.0 * Z90)
        } else {
            0.0
        }
    }
}

fn scale(estimate: Duration, ratio: f64) -> Duration {
    let secs = estimate.as_secs_f64() * ratio;
    if secs.is_finite() && secs > 0.0 {
        Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
    } else {
        Duration::ZERO
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    PlanAgent(String, String),
    PlatformModel(String, String),
    Platform(String),
    All,
}

#[derive(Debug, Default)]
struct Group {
    ratios: Vec<f64>,
    attempts: u64,
    failed: u64,
}

/// Calibrated estimates built from history rows (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct Calibration {
    /// The plan whose agents [`Self::for_agent`] looks up first.
    plan: Option<String>,
    groups: HashMap<Key, Calibrated>,
    rows: usize,
}

impl Calibration {
    /// Builds the calibration of `rows`.
    pub fn from_rows(rows: &[HistoryRow]) -> Self {
        let mut groups: HashMap<Key, Group> = HashMap::new();
        for row in rows {
            let mut keys = vec![
                Key::PlanAgent(row.plan.clone(), row.agent_id.clone()),
                Key::Platform(row.platform.clone()),
                Key::All,
            ];
            if let Some(model) = &row.model {
                keys.push(Key::PlatformModel(row.platform.clone(), model.clone()));
            }
            let ratio = row.ratio();
            for key in keys {
                let group = groups.entry(key).or_default();
                group.attempts += u64::from(row.attempts);
                group.failed += u64::from(row.failed_attempts.min(row.attempts));
                if let Some(r) = ratio {
                    group.ratios.push(r);
                }
            }
        }
        let groups = groups
            .into_iter()
            .filter(|(_, g)| !g.ratios.is_empty())
            .map(|(key, mut group)| {
                group.ratios.sort_by(f64::total_cmp);
                let samples = group.ratios.len();
                let basis = match &key {
                    Key::PlanAgent(plan, agent) => format!("{plan}/{agent} ({samples} runs)"),
                    Key::PlatformModel(platform, model) => {
                        format!("{platform}/{model} ({samples} runs)")
                    }
                    Key::Platform(platform) => format!("{platform} ({samples} runs)"),
                    Key::All => format!("all agents ({samples} runs)"),
                };
                let calibrated = Calibrated {
                    median_ratio: percentile(&group.ratios, 0.5),
                    p10_ratio: percentile(&group.ratios, 0.1),
                    p90_ratio: percentile(&group.ratios, 0.9),
                    samples,
                    failure_rate: if group.attempts == 0 {
                        0.0
                    } else {
                        group.failed as f64 / group.attempts as f64
                    },
                    basis,
                };
                (key, calibrated)
            })
            .collect();
        Self {
            plan: None,
            groups,
            rows: rows.len(),
        }
    }

    /// Reads the whole history file at `path` (a missing file is an empty history).
    pub async fn load(path: &Path) -> Result<Self, HistoryError> {
        Self::load_filtered(path, &RowFilter::default()).await
    }

    /// Reads the rows of the history file at `path` that `filter` keeps.
    pub async fn load_filtered(path: &Path, filter: &RowFilter) -> Result<Self, HistoryError> {
        let Some(store) = HistoryStore::open_existing(path).await? else {
            return Ok(Self::default());
        };
        let rows = store.rows(filter).await;
        store.close().await;
        Ok(Self::from_rows(&rows?))
    }

    /// The same calibration, looking up agents of the plan `orchestration_id`
    /// first (level 1 of the fallback chain) in [`Self::for_agent`].
    pub fn with_plan(mut self, orchestration_id: &str) -> Self {
        self.plan = Some(orchestration_id.to_string());
        self
    }

    /// History rows it was built from.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// True when no row had a usable ratio: nothing can be calibrated.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// The calibrated estimate of `agent` running on `platform` (a key as
    /// [`platform_key`] makes it) with `model`, by the fallback chain; the
    /// plan level applies after [`Self::with_plan`].
    pub fn for_agent(
        &self,
        agent: &Agent,
        platform: &str,
        model: Option<&str>,
    ) -> Option<Calibrated> {
        self.lookup(self.plan.as_deref(), &agent.agent_id, platform, model)
            .map(|(c, _)| c.clone())
    }

    /// [`Self::for_agent`] with the level that answered.
    pub fn lookup(
        &self,
        plan: Option<&str>,
        agent_id: &str,
        platform: &str,
        model: Option<&str>,
    ) -> Option<(&Calibrated, CalibrationLevel)> {
        let mut chain: Vec<(Key, CalibrationLevel)> = Vec::with_capacity(4);
        if let Some(plan) = plan {
            chain.push((
                Key::PlanAgent(plan.to_string(), agent_id.to_string()),
                CalibrationLevel::PlanAgent,
            ));
        }
        if let Some(model) = model {
            chain.push((
                Key::PlatformModel(platform.to_string(), model.to_string()),
                CalibrationLevel::PlatformModel,
            ));
        }
        chain.push((
            Key::Platform(platform.to_string()),
            CalibrationLevel::Platform,
        ));
        chain.push((Key::All, CalibrationLevel::All));
        chain
            .into_iter()
            .find_map(|(key, level)| self.groups.get(&key).map(|c| (c, level)))
    }

    /// Every agent of `plan`, in plan order, calibrated by the fallback chain
    /// (the plan level first), with its platform key and the agent's `model`.
    pub fn for_plan(&self, plan: &Plan) -> Vec<Option<Calibrated>> {
        plan.agents()
            .map(|(_, _, agent)| {
                let platform = platform_key(agent, plan.platform);
                self.lookup(
                    Some(&plan.orchestration_id),
                    &agent.agent_id,
                    &platform,
                    agent.model.as_deref(),
                )
                .map(|(c, _)| c.clone())
            })
            .collect()
    }

    /// Each platform/model group (and each platform group) with its
    /// calibration, sorted by name: `("claude/sonnet-4", …)`, `("claude", …)`.
    pub fn platform_groups(&self) -> Vec<(String, Calibrated)> {
        let mut out: Vec<(String, Calibrated)> = self
            .groups
            .iter()
            .filter_map(|(key, c)| match key {
                Key::PlatformModel(p, m) => Some((format!("{p}/{m}"), c.clone())),
                Key::Platform(p) => Some((p.clone(), c.clone())),
                _ => None,
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// The `q` quantile of sorted values, interpolating linearly between order statistics.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    match sorted {
        [] => 0.0,
        [only] => *only,
        _ => {
            let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
            let low = pos.floor() as usize;
            let high = (low + 1).min(sorted.len() - 1);
            let frac = pos - low as f64;
            sorted[low] + (sorted[high] - sorted[low]) * frac
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::tests::test_plan;
    use crate::predict::rng::Rng;

    fn row(plan: &str, agent: &str, platform: &str, model: Option<&str>) -> HistoryRow {
        HistoryRow {
            run_id: "r".into(),
            plan: plan.into(),
            plan_path: None,
            agent_id: agent.into(),
            wave: None,
            platform: platform.into(),
            model: model.map(str::to_string),
            scope: Vec::new(),
            estimate_secs: Some(100.0),
            actual_secs: None,
            attempt_secs: Some(100.0),
            attempts: 1,
            failed_attempts: 0,
            outcome: "completed".into(),
            gates_passed: 0,
            gates_failed: 0,
            input_tokens: 0,
            output_tokens: 0,
            cost_usd: 0.0,
            started_at_ms: None,
            finished_at_ms: 0,
        }
    }

    /// A history whose ratios are log-normal with a known median per
    /// platform/model, and whose attempts fail with a known probability.
    fn generated(rng: &mut Rng, runs: usize) -> Vec<HistoryRow> {
        let truth = [
            ("claude", "sonnet-4", 1.8, 0.35, 0.10),
            ("claude", "opus-4", 1.2, 0.25, 0.05),
            ("gpt", "gpt-5", 0.7, 0.5, 0.20),
            ("shell", "none", 1.0, 0.05, 0.0),
        ];
        let mut rows = Vec::new();
        for i in 0..runs {
            for (platform, model, median, sigma, fail) in truth {
                let estimate = 60.0 * (1.0 + (i % 7) as f64);
                let ratio = median * (sigma * rng.normal()).exp();
                let mut r = row("gen", &format!("{platform}-{i}"), platform, Some(model));
                r.model = (model != "none").then(|| model.to_string());
                r.estimate_secs = Some(estimate);
                r.attempt_secs = Some(estimate * ratio);
                r.attempts = 0;
                r.failed_attempts = 0;
                // Attempts until one succeeds (at most 4), each failing with `fail`.
                loop {
                    r.attempts += 1;
                    if rng.next_f64() >= fail || r.attempts == 4 {
                        break;
                    }
                    r.failed_attempts += 1;
                }
                rows.push(r);
            }
        }
        rows
    }

    #[test]
    fn calibration_recovers_known_medians_within_ten_percent() {
        for seed in [1u64, 7, 42, 1234] {
            let mut rng = Rng::new(seed);
            let rows = generated(&mut rng, 300);
            let calibration = Calibration::from_rows(&rows);
            for (platform, model, median, sigma, fail) in [
                ("claude", Some("sonnet-4"), 1.8, 0.35, 0.10),
                ("claude", Some("opus-4"), 1.2, 0.25, 0.05),
                ("gpt", Some("gpt-5"), 0.7, 0.5, 0.20),
                ("shell", None, 1.0, 0.05, 0.0),
            ] {
                let (c, level) = calibration
                    .lookup(None, "new-agent", platform, model)
                    .expect("calibrated");
                let expected = if model.is_some() {
                    CalibrationLevel::PlatformModel
                } else {
                    CalibrationLevel::Platform
                };
                assert_eq!(level, expected);
                let error = (c.median_ratio - median).abs() / median;
                assert!(
                    error < 0.10,
                    "seed {seed} {platform}/{model:?}: median {} vs true {median}",
                    c.median_ratio
                );
                // The spread brackets the median with the right width (p90/p10 = e^(2·1.2816·σ)).
                let spread = (c.p90_ratio / c.p10_ratio).ln() / (2.0 * 1.2816);
                assert!(
                    (spread - sigma).abs() < 0.25 * sigma + 0.02,
                    "seed {seed} {platform}: σ {spread} vs {sigma}"
                );
                assert!((c.log_sigma() - spread).abs() < 1e-3);
                // Failure rate: failed / attempts of a geometric process capped at 4.
                assert!(
                    (c.failure_rate - fail).abs() < 0.05,
                    "seed {seed} {platform}: failure rate {} vs {fail}",
                    c.failure_rate
                );
                assert_eq!(c.samples, 300);
            }
        }
    }

    #[test]
    fn the_fallback_chain_goes_plan_agent_then_model_then_platform_then_all() {
        let mut rows = vec![
            row("p", "A", "claude", Some("m1")),
            row("q", "X", "claude", Some("m1")),
            row("q", "Y", "claude", Some("m2")),
            row("q", "Z", "gpt", None),
        ];
        let ratios = [3.0, 2.0, 1.5, 0.5];
        for (r, ratio) in rows.iter_mut().zip(ratios) {
            r.attempt_secs = Some(100.0 * ratio);
        }
        // Unusable rows: no estimate, a zero estimate, no completing attempt.
        let mut none = row("p", "B", "claude", Some("m1"));
        none.estimate_secs = None;
        none.attempts = 2;
        none.failed_attempts = 2;
        let mut zero = row("p", "B", "claude", Some("m1"));
        zero.estimate_secs = Some(0.0);
        let mut failed = row("p", "B", "claude", Some("m1"));
        failed.attempt_secs = None;
        rows.extend([none, zero, failed]);
        let c = Calibration::from_rows(&rows);
        let level = |plan, agent, platform, model| {
            c.lookup(plan, agent, platform, model)
                .map(|(c, l)| (l, c.median_ratio, c.basis.clone()))
        };
        assert_eq!(
            level(Some("p"), "A", "claude", Some("m1")),
            Some((CalibrationLevel::PlanAgent, 3.0, "p/A (1 runs)".into()))
        );
        // B has rows but no usable ratio: its platform/model group answers.
        assert_eq!(
            level(Some("p"), "B", "claude", Some("m1")),
            Some((
                CalibrationLevel::PlatformModel,
                2.5,
                "claude/m1 (2 runs)".into()
            ))
        );
        assert_eq!(
            level(None, "B", "claude", None),
            Some((CalibrationLevel::Platform, 2.0, "claude (3 runs)".into()))
        );
        assert_eq!(
            level(None, "B", "gemini", Some("m9")),
            Some((CalibrationLevel::All, 1.75, "all agents (4 runs)".into()))
        );
        // The failure rate counts rows without a ratio: 2 failed of 6 attempts for claude/m1.
        let (m1, _) = c.lookup(None, "B", "claude", Some("m1")).unwrap();
        assert!(
            (m1.failure_rate - 2.0 / 6.0).abs() < 1e-9,
            "{}",
            m1.failure_rate
        );
        assert!(Calibration::from_rows(&[]).is_empty());
        assert!(Calibration::from_rows(&rows[4..]).is_empty());
    }

    #[test]
    fn for_agent_and_for_plan_use_the_plan_level_and_scale_estimates() {
        let plan = test_plan(
            r#"{"orchestrationId":"p","platform":"claude","waves":[{"waveId":"w","agents":[
            {"agentId":"A","workDescription":"a","model":"m1","estimatedDuration":"10m"},
            {"agentId":"N","workDescription":"n","command":"true"}]}]}"#,
        );
        let mut a = row("p", "A", "claude", Some("m1"));
        a.attempt_secs = Some(300.0); // ratio 3
        let mut other = row("q", "A", "claude", Some("m1"));
        other.attempt_secs = Some(50.0); // ratio 0.5
        let c = Calibration::from_rows(&[a, other]);
        let agent = &plan.waves[0].agents[0];
        let plain = c.for_agent(agent, "claude", Some("m1")).unwrap();
        assert_eq!(plain.basis, "claude/m1 (2 runs)");
        let scoped = c.clone().with_plan("p");
        let cal = scoped.for_agent(agent, "claude", Some("m1")).unwrap();
        assert_eq!(cal.basis, "p/A (1 runs)");
        assert_eq!(
            cal.duration(Duration::from_secs(600)),
            Duration::from_secs(1800)
        );
        assert_eq!(
            cal.upper(Duration::from_secs(600)),
            Duration::from_secs(1800)
        );
        let all = c.for_plan(&plan);
        assert_eq!(all[0].as_ref().unwrap().basis, "p/A (1 runs)");
        assert_eq!(all[1].as_ref().unwrap().basis, "all agents (2 runs)");
        assert_eq!(
            c.platform_groups()
                .iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>(),
            ["claude", "claude/m1"]
        );
    }

    #[test]
    fn percentiles_interpolate() {
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.5);
        assert_eq!(percentile(&[5.0], 0.9), 5.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
        assert!((percentile(&[0.0, 10.0], 0.9) - 9.0).abs() < 1e-12);
    }
}
