//! A discrete-event simulation of a run, with the engine's scheduling rules.
//!
//! - **waves** (and adaptive): only the first wave with unfinished agents runs;
//!   a parallel wave starts its startable agents in plan order, a sequential
//!   wave its first unfinished agent, and only when nothing of the wave runs
//!   or waits for a retry.
//! - **continuous**: any pending agent whose dependencies all completed, in plan order.
//! - At most `concurrency` attempts at once; agents whose retry is due start
//!   first (by id, as the engine does), then newly startable ones.
//! - An attempt fails with the agent's failure rate, or when it runs past its
//!   timeout (then it ends at the timeout). A failed attempt is retried after
//!   the engine's backoff (`retry_base × 2^(attempt−2)`, capped at
//!   `retry_max`, ×[0.75, 1.25) jitter) while `maxRetries` allows; a retry
//!   waiting for its time holds no slot. An agent that finally failed blocks
//!   its dependants, transitively; `stop-all` cancels everything running,
//!   `pause-wave` starts nothing more.
//!
//! A *nominal* run takes every attempt's median duration and no failures (so
//! it is deterministic); a *sampled* run draws durations from a log-normal
//! around the median with the calibrated spread, failures with the failure
//! rate and the jitter, from a seeded [`Rng`]. Gates, merges and process
//! start-up are not modelled.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeSet, BinaryHeap};

use serde::Serialize;

use super::SimModel;
use super::rng::Rng;
use crate::plan::{ExecutionMode, FailureStrategy};

/// How the simulated run is scheduled.
#[derive(Debug, Clone, Copy)]
pub struct SimOptions {
    /// Execution mode.
    pub mode: ExecutionMode,
    /// Most attempts at once.
    pub concurrency: usize,
    /// First retry delay, in seconds (`--retry-base`).
    pub retry_base: f64,
    /// Longest retry delay, in seconds (`--retry-max`).
    pub retry_max: f64,
    /// What a final failure does to the others.
    pub failure_strategy: FailureStrategy,
}

/// How one simulated attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttemptOutcome {
    /// The work is done.
    Completed,
    /// It failed.
    Failed,
    /// It ran past its timeout.
    TimedOut,
    /// `stop-all` cancelled it.
    Cancelled,
}

/// One simulated attempt.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimAttempt {
    /// Start, in seconds from the run's start.
    pub start: f64,
    /// End, in seconds from the run's start.
    pub end: f64,
    /// How it ended.
    pub outcome: AttemptOutcome,
}

/// How a simulated agent ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SimOutcome {
    /// Completed.
    Completed,
    /// Failed after its retries (or was cancelled).
    Failed,
    /// A dependency failed.
    Blocked,
    /// Never started (the run stopped first).
    NotRun,
}

/// One agent's simulated life.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentTimeline {
    /// Agent id.
    pub id: String,
    /// Wave index.
    pub wave: usize,
    /// Its attempts, in order.
    pub attempts: Vec<SimAttempt>,
    /// How it ended.
    pub outcome: SimOutcome,
    /// For a blocked agent, the dependency that failed or was blocked.
    pub blocked_by: Option<String>,
}

impl AgentTimeline {
    /// First start, if it ran.
    pub fn start(&self) -> Option<f64> {
        self.attempts.first().map(|a| a.start)
    }

    /// Last end, if it ran.
    pub fn end(&self) -> Option<f64> {
        self.attempts.last().map(|a| a.end)
    }
}

/// A simulated run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timeline {
    /// Agents in plan order.
    pub agents: Vec<AgentTimeline>,
    /// From the start to the last attempt's end, in seconds.
    pub makespan: f64,
    /// The chain that set the makespan (indices, first to last): each agent
    /// started when the one before it ended.
    pub critical: Vec<usize>,
}

/// Where durations and failures come from.
#[derive(Debug)]
pub enum Sampler<'a> {
    /// Medians, no failures, no jitter.
    Nominal,
    /// Drawn from this generator.
    Random(&'a mut Rng),
}

/// Where an agent stands when a simulation starts part-way through a run
/// (for live ETAs); times are seconds on the simulation's clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Initial {
    /// Not started.
    Pending,
    /// An attempt runs since `start`.
    Running {
        /// Its start.
        start: f64,
        /// Its number (1-based).
        attempt: u32,
    },
    /// Waiting to start attempt `attempt` at `at`.
    Retrying {
        /// When it starts.
        at: f64,
        /// Its number.
        attempt: u32,
    },
    /// Completed: its last attempt ran from `start` to `end`.
    Completed {
        /// When that attempt started.
        start: f64,
        /// When it ended.
        end: f64,
    },
    /// Failed for good.
    Failed,
    /// Blocked.
    Blocked,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Time(f64);
impl Eq for Time {}
impl PartialOrd for Time {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Time {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Pending,
    Running,
    Retrying { at: f64, attempt: u32 },
    Done,
    Failed,
    Blocked,
}

impl Phase {
    fn finished(self) -> bool {
        matches!(self, Phase::Done | Phase::Failed | Phase::Blocked)
    }
}

struct Sim<'m, 's> {
    model: &'m SimModel,
    options: SimOptions,
    sampler: Sampler<'s>,
    phase: Vec<Phase>,
    unmet: Vec<usize>,
    ready: BTreeSet<usize>,
    dependants: Vec<Vec<usize>>,
    unfinished: Vec<usize>,
    active: Vec<usize>,
    seq_next: Vec<usize>,
    current_wave: usize,
    running: usize,
    /// Agents waiting for a retry.
    retrying: Vec<usize>,
    events: BinaryHeap<Reverse<(Time, u64, usize)>>,
    event_seq: u64,
    /// Per running agent: (attempt number, end, outcome) of its attempt.
    pending_end: Vec<Option<(u32, f64, AttemptOutcome)>>,
    out: Vec<AgentTimeline>,
    stopped: Option<FailureStrategy>,
}

/// Simulates a run of `model` from its start.
pub fn simulate(model: &SimModel, options: SimOptions, sampler: Sampler<'_>) -> Timeline {
    simulate_from(
        model,
        options,
        sampler,
        &vec![Initial::Pending; model.agents.len()],
        0.0,
    )
}

/// Simulates the rest of a run whose agents stand as `initial` at time `now`.
pub fn simulate_from(
    model: &SimModel,
    options: SimOptions,
    sampler: Sampler<'_>,
    initial: &[Initial],
    now: f64,
) -> Timeline {
    let n = model.agents.len();
    let mut dependants = vec![Vec::new(); n];
    for (i, a) in model.agents.iter().enumerate() {
        for &d in &a.deps {
            dependants[d].push(i);
        }
    }
    let mut sim = Sim {
        model,
        options,
        sampler,
        phase: vec![Phase::Pending; n],
        unmet: model.agents.iter().map(|a| a.deps.len()).collect(),
        ready: BTreeSet::new(),
        dependants,
        unfinished: model.waves.iter().map(|w| w.members.len()).collect(),
        active: vec![0; model.waves.len()],
        seq_next: model
            .waves
            .iter()
            .map(|w| w.members.first().copied().unwrap_or(0))
            .collect(),
        current_wave: 0,
        running: 0,
        retrying: Vec::new(),
        events: BinaryHeap::new(),
        event_seq: 0,
        pending_end: vec![None; n],
        out: model
            .agents
            .iter()
            .map(|a| AgentTimeline {
                id: a.id.clone(),
                wave: a.wave,
                attempts: Vec::new(),
                outcome: SimOutcome::NotRun,
                blocked_by: None,
            })
            .collect(),
        stopped: None,
    };
    sim.seed(initial, now);
    sim.run(now);
    let mut timeline = sim.finish();
    timeline.critical = critical_chain(model, &timeline.agents);
    timeline
}

impl Sim<'_, '_> {
    fn seed(&mut self, initial: &[Initial], now: f64) {
        for (i, state) in initial.iter().enumerate().take(self.phase.len()) {
            match *state {
                Initial::Pending => {}
                Initial::Completed { start, end } => {
                    self.out[i].attempts.push(SimAttempt {
                        start: start.min(end),
                        end,
                        outcome: AttemptOutcome::Completed,
                    });
                    self.mark_finished(i, Phase::Done);
                    self.release_dependants(i);
                }
                Initial::Failed => self.mark_finished(i, Phase::Failed),
                Initial::Blocked => self.mark_finished(i, Phase::Blocked),
                Initial::Running { start, attempt } => {
                    let agent = &self.model.agents[i];
                    let end = (start + agent.duration).max(now);
                    self.begin(i, attempt, start, Some(end));
                }
                Initial::Retrying { at, attempt } => {
                    let w = self.model.agents[i].wave;
                    self.phase[i] = Phase::Retrying { at, attempt };
                    self.retrying.push(i);
                    self.active[w] += 1;
                    self.push_event(at.max(now), i);
                }
            }
        }
        for i in 0..self.phase.len() {
            if self.phase[i] == Phase::Pending && self.unmet[i] == 0 {
                self.ready.insert(i);
            }
        }
        // Dependants of agents that failed before `now` are blocked.
        for i in 0..self.phase.len() {
            if matches!(self.phase[i], Phase::Failed | Phase::Blocked) {
                self.block_dependants(i);
            }
        }
        self.advance_wave();
    }

    fn push_event(&mut self, at: f64, agent: usize) {
        self.event_seq += 1;
        self.events.push(Reverse((Time(at), self.event_seq, agent)));
    }

    fn run(&mut self, mut now: f64) {
        loop {
            if self.stopped.is_none() {
                self.start_ready(now);
            }
            if self.running == 0 && (self.retrying.is_empty() || self.stopped.is_some()) {
                break;
            }
            let Some(Reverse((Time(at), _, agent))) = self.events.pop() else {
                break;
            };
            now = at.max(now);
            if self.phase[agent] == Phase::Running {
                self.end_attempt(agent, now);
            }
        }
    }

    fn start_ready(&mut self, now: f64) {
        let slots = self.options.concurrency.max(1);
        // Due retries first, by agent id (the engine keeps them in a map by id).
        if !self.retrying.is_empty() {
            let mut due: Vec<usize> = self
                .retrying
                .iter()
                .copied()
                .filter(
                    |&i| matches!(self.phase[i], Phase::Retrying { at, .. } if at <= now + 1e-9),
                )
                .collect();
            due.sort_by(|&a, &b| self.model.agents[a].id.cmp(&self.model.agents[b].id));
            for i in due {
                if self.running >= slots {
                    return;
                }
                if let Phase::Retrying { attempt, .. } = self.phase[i] {
                    let w = self.model.agents[i].wave;
                    self.active[w] -= 1;
                    self.retrying.retain(|&r| r != i);
                    self.begin(i, attempt, now, None);
                }
            }
        }
        while self.running < slots {
            let Some(next) = self.next_startable() else {
                return;
            };
            self.ready.remove(&next);
            self.begin(next, 1, now, None);
        }
    }

    fn next_startable(&mut self) -> Option<usize> {
        if self.options.mode == ExecutionMode::Continuous {
            return self.ready.iter().next().copied();
        }
        self.advance_wave();
        let wave = self.model.waves.get(self.current_wave)?;
        if wave.parallel {
            let first = *wave.members.first()?;
            let last = *wave.members.last()?;
            self.ready.range(first..=last).next().copied()
        } else {
            if self.active[self.current_wave] > 0 {
                return None;
            }
            let next = self.seq_next[self.current_wave];
            self.ready.contains(&next).then_some(next)
        }
    }

    fn advance_wave(&mut self) {
        while self.current_wave < self.unfinished.len() && self.unfinished[self.current_wave] == 0 {
            self.current_wave += 1;
        }
        if let Some(wave) = self.model.waves.get(self.current_wave) {
            let last = wave.members.last().copied().unwrap_or(0);
            let w = self.current_wave;
            while self.seq_next[w] < last && self.phase[self.seq_next[w]].finished() {
                self.seq_next[w] += 1;
            }
        }
    }

    /// Starts attempt `attempt` of agent `i` at `start`; `end` forces its end (a running attempt seeded from a live run).
    fn begin(&mut self, i: usize, attempt: u32, start: f64, end: Option<f64>) {
        let agent = &self.model.agents[i];
        let (end, outcome) = match end {
            Some(end) => (end, AttemptOutcome::Completed),
            None => {
                let (duration, fails) = match &mut self.sampler {
                    Sampler::Nominal => (agent.duration, false),
                    Sampler::Random(rng) => {
                        let d = agent.duration * (agent.log_sigma * rng.normal()).exp();
                        (d, rng.next_f64() < agent.failure_rate)
                    }
                };
                match agent.timeout {
                    Some(limit) if duration > limit => (start + limit, AttemptOutcome::TimedOut),
                    _ if fails => (start + duration, AttemptOutcome::Failed),
                    _ => (start + duration, AttemptOutcome::Completed),
                }
            }
        };
        self.phase[i] = Phase::Running;
        self.active[agent.wave] += 1;
        self.running += 1;
        self.pending_end[i] = Some((attempt, end, outcome));
        self.out[i].attempts.push(SimAttempt {
            start,
            end,
            outcome,
        });
        self.push_event(end, i);
    }

    fn end_attempt(&mut self, i: usize, now: f64) {
        let Some((attempt, _, outcome)) = self.pending_end[i].take() else {
            return;
        };
        let wave = self.model.agents[i].wave;
        self.running -= 1;
        self.active[wave] -= 1;
        if outcome == AttemptOutcome::Completed {
            self.mark_finished(i, Phase::Done);
            self.release_dependants(i);
            return;
        }
        let agent = &self.model.agents[i];
        if self.stopped.is_none() && attempt <= agent.max_retries {
            let delay = self.backoff(attempt + 1);
            self.phase[i] = Phase::Retrying {
                at: now + delay,
                attempt: attempt + 1,
            };
            self.retrying.push(i);
            self.active[wave] += 1;
            self.push_event(now + delay, i);
            return;
        }
        self.mark_finished(i, Phase::Failed);
        self.block_dependants(i);
        match self.options.failure_strategy {
            FailureStrategy::ContinueOthers => {}
            FailureStrategy::PauseWave => self.stopped = Some(FailureStrategy::PauseWave),
            FailureStrategy::StopAll => {
                self.stopped = Some(FailureStrategy::StopAll);
                self.cancel_running(now);
            }
        }
    }

    fn release_dependants(&mut self, i: usize) {
        for k in 0..self.dependants[i].len() {
            let d = self.dependants[i][k];
            self.unmet[d] = self.unmet[d].saturating_sub(1);
            if self.unmet[d] == 0 && self.phase[d] == Phase::Pending {
                self.ready.insert(d);
            }
        }
    }

    fn cancel_running(&mut self, now: f64) {
        for i in 0..self.phase.len() {
            if self.phase[i] == Phase::Running {
                self.pending_end[i] = None;
                if let Some(last) = self.out[i].attempts.last_mut() {
                    last.end = now;
                    last.outcome = AttemptOutcome::Cancelled;
                }
                self.running -= 1;
                let w = self.model.agents[i].wave;
                self.active[w] -= 1;
                self.mark_finished(i, Phase::Failed);
            }
        }
    }

    fn backoff(&mut self, next_attempt: u32) -> f64 {
        let exponent = next_attempt.saturating_sub(2).min(30);
        let raw = (self.options.retry_base * f64::from(1u32 << exponent))
            .min(self.options.retry_max)
            .max(0.0);
        let jitter = match &mut self.sampler {
            Sampler::Nominal => 1.0,
            Sampler::Random(rng) => 0.75 + rng.next_f64() * 0.5,
        };
        raw * jitter
    }

    fn mark_finished(&mut self, i: usize, phase: Phase) {
        if self.phase[i].finished() {
            return;
        }
        self.ready.remove(&i);
        self.phase[i] = phase;
        let w = self.model.agents[i].wave;
        if let Some(count) = self.unfinished.get_mut(w) {
            *count = count.saturating_sub(1);
        }
        self.out[i].outcome = match phase {
            Phase::Done => SimOutcome::Completed,
            Phase::Blocked => SimOutcome::Blocked,
            _ => SimOutcome::Failed,
        };
    }

    fn block_dependants(&mut self, failed: usize) {
        let mut stack = vec![failed];
        while let Some(by) = stack.pop() {
            for k in 0..self.dependants[by].len() {
                let d = self.dependants[by][k];
                if self.phase[d] == Phase::Pending {
                    self.mark_finished(d, Phase::Blocked);
                    self.out[d].blocked_by = Some(self.model.agents[by].id.clone());
                    stack.push(d);
                }
            }
        }
    }

    fn finish(self) -> Timeline {
        let makespan = self
            .out
            .iter()
            .filter_map(AgentTimeline::end)
            .fold(0.0, f64::max);
        Timeline {
            agents: self.out,
            makespan,
            critical: Vec::new(),
        }
    }
}

/// The chain of agents behind the makespan: from the agent that ended last,
/// back through the agent that ended when it started (a dependency first,
/// else whatever freed its slot or closed the previous wave).
fn critical_chain(model: &SimModel, out: &[AgentTimeline]) -> Vec<usize> {
    const EPS: f64 = 1e-6;
    // Agents by end time, to find "what ended when this started" quickly.
    let mut by_end: Vec<(f64, usize)> = out
        .iter()
        .enumerate()
        .filter_map(|(i, a)| Some((a.end()?, i)))
        .collect();
    by_end.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let Some(&(_, last)) = by_end
        .iter()
        .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)))
    else {
        return Vec::new();
    };
    let mut current = last;
    let mut chain = vec![current];
    let mut seen = vec![false; out.len()];
    seen[current] = true;
    while let Some(start) = out[current].start() {
        if start <= EPS {
            break;
        }
        let from = by_end.partition_point(|&(e, _)| e < start - EPS);
        let to = by_end.partition_point(|&(e, _)| e <= start + EPS);
        let deps = &model.agents[current].deps;
        let Some(previous) = by_end[from..to]
            .iter()
            .map(|&(_, j)| j)
            .filter(|&j| !seen[j])
            .min_by_key(|&j| (!deps.contains(&j), j))
        else {
            break;
        };
        seen[previous] = true;
        chain.push(previous);
        current = previous;
    }
    chain.reverse();
    chain
}

/// Makespans of many sampled runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MonteCarlo {
    /// Runs simulated.
    pub runs: usize,
    /// The seed.
    pub seed: u64,
    /// Median makespan, seconds.
    pub p50: f64,
    /// 90th-percentile makespan, seconds.
    pub p90: f64,
    /// Mean makespan, seconds.
    pub mean: f64,
    /// Share of runs in which every agent completed.
    pub success_rate: f64,
    /// The run whose makespan is closest to the median.
    pub representative: Timeline,
}

/// Simulates `runs` sampled runs from `seed` (the same seed gives the same answer).
pub fn monte_carlo(model: &SimModel, options: SimOptions, runs: usize, seed: u64) -> MonteCarlo {
    let mut rng = Rng::new(seed);
    let runs = runs.max(1);
    let timelines: Vec<Timeline> = (0..runs)
        .map(|_| simulate(model, options, Sampler::Random(&mut rng)))
        .collect();
    let mut spans: Vec<f64> = timelines.iter().map(|t| t.makespan).collect();
    spans.sort_by(f64::total_cmp);
    let p50 = crate::history::calibrate::percentile(&spans, 0.5);
    let p90 = crate::history::calibrate::percentile(&spans, 0.9);
    let mean = spans.iter().sum::<f64>() / runs as f64;
    let succeeded = timelines
        .iter()
        .filter(|t| t.agents.iter().all(|a| a.outcome == SimOutcome::Completed))
        .count();
    let representative = timelines
        .into_iter()
        .min_by(|a, b| Time((a.makespan - p50).abs()).cmp(&Time((b.makespan - p50).abs())))
        .unwrap_or_else(|| simulate(model, options, Sampler::Nominal));
    MonteCarlo {
        runs,
        seed,
        p50,
        p90,
        mean,
        success_rate: succeeded as f64 / runs as f64,
        representative,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::tests::test_plan;
    use crate::predict::{ModelOptions, SimModel};
    use std::time::Duration;

    fn model(json: &str) -> SimModel {
        SimModel::from_plan(
            &test_plan(json),
            ModelOptions {
                calibration: None,
                default_estimate: Duration::from_secs(60),
                timeout_factor: 2.0,
            },
        )
    }

    fn options(mode: ExecutionMode, concurrency: usize) -> SimOptions {
        SimOptions {
            mode,
            concurrency,
            retry_base: 2.0,
            retry_max: 120.0,
            failure_strategy: FailureStrategy::ContinueOthers,
        }
    }

    fn spans(t: &Timeline) -> Vec<(String, f64, f64)> {
        t.agents
            .iter()
            .filter_map(|a| Some((a.id.clone(), a.start()?, a.end()?)))
            .collect()
    }

    const WAVES: &str = r#"{"orchestrationId":"w","waves":[
        {"waveId":"w1","agents":[
            {"agentId":"A","workDescription":"a","estimatedDuration":"10s"},
            {"agentId":"B","workDescription":"b","estimatedDuration":"30s"},
            {"agentId":"C","workDescription":"c","estimatedDuration":"20s"}]},
        {"waveId":"w2","parallel":false,"agents":[
            {"agentId":"D","workDescription":"d","estimatedDuration":"5s","dependencies":["A"]},
            {"agentId":"E","workDescription":"e","estimatedDuration":"5s"}]},
        {"waveId":"w3","agents":[
            {"agentId":"F","workDescription":"f","estimatedDuration":"1s","dependencies":["D"]}]}]}"#;

    #[test]
    fn waves_run_one_after_another_and_sequential_waves_one_at_a_time() {
        let m = model(WAVES);
        let t = simulate(&m, options(ExecutionMode::Waves, 2), Sampler::Nominal);
        // w1 on 2 slots: A 0-10, B 0-30, C 10-30; w2 sequential: D 30-35, E 35-40; w3: F 40-41.
        assert_eq!(
            spans(&t),
            vec![
                ("A".into(), 0.0, 10.0),
                ("B".into(), 0.0, 30.0),
                ("C".into(), 10.0, 30.0),
                ("D".into(), 30.0, 35.0),
                ("E".into(), 35.0, 40.0),
                ("F".into(), 40.0, 41.0),
            ]
        );
        assert_eq!(t.makespan, 41.0);
        let ids: Vec<&str> = t
            .critical
            .iter()
            .map(|&i| m.agents[i].id.as_str())
            .collect();
        assert_eq!(ids, ["B", "D", "E", "F"]);
        // Unlimited concurrency: w1 takes 30 s either way.
        let wide = simulate(&m, options(ExecutionMode::Waves, 10), Sampler::Nominal);
        assert_eq!(wide.makespan, 41.0);
        // One slot: everything in a row.
        let one = simulate(&m, options(ExecutionMode::Waves, 1), Sampler::Nominal);
        assert_eq!(one.makespan, 71.0);
    }

    #[test]
    fn continuous_mode_starts_agents_when_their_dependencies_complete() {
        let m = model(WAVES);
        let t = simulate(&m, options(ExecutionMode::Continuous, 10), Sampler::Nominal);
        let by_id = |id: &str| {
            spans(&t)
                .into_iter()
                .find(|s| s.0 == id)
                .map(|s| (s.1, s.2))
                .unwrap()
        };
        assert_eq!(by_id("D"), (10.0, 15.0));
        assert_eq!(by_id("E"), (0.0, 5.0));
        assert_eq!(by_id("F"), (15.0, 16.0));
        assert_eq!(t.makespan, 30.0);
        // The concurrency cap holds at every instant.
        let capped = simulate(&m, options(ExecutionMode::Continuous, 2), Sampler::Nominal);
        let s = spans(&capped);
        for &(_, start, _) in &s {
            let running = s.iter().filter(|x| x.1 <= start && start < x.2).count();
            assert!(running <= 2, "{s:?}");
        }
        // Plan order among ready agents: A, B first; C when A ends.
        assert_eq!(s[2], ("C".into(), 10.0, 30.0));
    }

    #[test]
    fn failures_retry_with_backoff_then_block_dependants() {
        let mut m = model(
            r#"{"orchestrationId":"f","waves":[
            {"waveId":"w1","agents":[
                {"agentId":"A","workDescription":"a","estimatedDuration":"10s","maxRetries":2},
                {"agentId":"B","workDescription":"b","estimatedDuration":"10s"}]},
            {"waveId":"w2","agents":[
                {"agentId":"C","workDescription":"c","estimatedDuration":"10s","dependencies":["A"]},
                {"agentId":"D","workDescription":"d","estimatedDuration":"10s","dependencies":["C"]},
                {"agentId":"E","workDescription":"e","estimatedDuration":"10s","dependencies":["B"]}]}]}"#,
        );
        m.agents[0].failure_rate = 1.0; // A always fails
        let mut rng = Rng::new(3);
        let t = simulate(
            &m,
            options(ExecutionMode::Continuous, 4),
            Sampler::Random(&mut rng),
        );
        let a = &t.agents[0];
        assert_eq!(a.attempts.len(), 3, "1 + maxRetries attempts");
        assert!(
            a.attempts
                .iter()
                .all(|x| x.outcome == AttemptOutcome::Failed)
        );
        // Backoff: 2 s then 4 s, ±25 %.
        let gap1 = a.attempts[1].start - a.attempts[0].end;
        let gap2 = a.attempts[2].start - a.attempts[1].end;
        assert!(
            (1.5..2.5).contains(&gap1) && (3.0..5.0).contains(&gap2),
            "{gap1} {gap2}"
        );
        assert_eq!(a.outcome, SimOutcome::Failed);
        assert_eq!(t.agents[2].outcome, SimOutcome::Blocked);
        assert_eq!(t.agents[2].blocked_by.as_deref(), Some("A"));
        assert_eq!(t.agents[3].outcome, SimOutcome::Blocked);
        assert_eq!(t.agents[3].blocked_by.as_deref(), Some("C"));
        assert_eq!(t.agents[4].outcome, SimOutcome::Completed);
        assert!(t.agents[2].attempts.is_empty());
        // stop-all cancels the others at the final failure.
        let mut stop = options(ExecutionMode::Continuous, 4);
        stop.failure_strategy = FailureStrategy::StopAll;
        m.agents[1].duration = 100.0;
        m.agents[1].timeout = None;
        let mut rng = Rng::new(3);
        let t = simulate(&m, stop, Sampler::Random(&mut rng));
        let end_a = t.agents[0].end().unwrap();
        assert_eq!(t.agents[1].attempts[0].outcome, AttemptOutcome::Cancelled);
        assert_eq!(t.agents[1].end(), Some(end_a));
        assert_eq!(t.agents[4].outcome, SimOutcome::NotRun);
        assert_eq!(t.makespan, end_a);
    }

    #[test]
    fn timeouts_end_attempts_and_a_waiting_retry_holds_a_sequential_wave() {
        let mut m = model(
            r#"{"orchestrationId":"t","waves":[{"waveId":"w","parallel":false,"agents":[
                {"agentId":"A","workDescription":"a","estimatedDuration":"10s","maxRetries":1},
                {"agentId":"B","workDescription":"b","estimatedDuration":"10s"}]}]}"#,
        );
        m.agents[0].duration = 50.0; // calibrated far past the 20 s timeout
        let t = simulate(&m, options(ExecutionMode::Waves, 2), Sampler::Nominal);
        let a = &t.agents[0];
        assert_eq!(a.attempts.len(), 2);
        assert_eq!(a.attempts[0].outcome, AttemptOutcome::TimedOut);
        assert_eq!((a.attempts[0].end, a.attempts[1].start), (20.0, 22.0));
        // B waits for A's retry (sequential wave), then runs.
        assert_eq!(t.agents[1].start(), Some(42.0));
        assert_eq!(t.makespan, 52.0);
    }

    #[test]
    fn monte_carlo_is_reproducible_and_brackets_the_nominal_run() {
        let mut m = model(WAVES);
        for a in &mut m.agents {
            a.log_sigma = 0.3;
            a.timeout = None; // else a long draw times out (2 × the estimate)
        }
        let o = options(ExecutionMode::Waves, 2);
        let first = monte_carlo(&m, o, 200, 9);
        let again = monte_carlo(&m, o, 200, 9);
        assert_eq!(first, again);
        assert!(first.p50 <= first.p90);
        let nominal = simulate(&m, o, Sampler::Nominal).makespan;
        assert!(
            (first.p50 - nominal).abs() / nominal < 0.25,
            "{} vs {nominal}",
            first.p50
        );
        assert_eq!(first.success_rate, 1.0);
        assert_ne!(monte_carlo(&m, o, 200, 10).p50, first.p50);
    }

    #[test]
    fn a_run_seen_part_way_continues_from_where_it_stands() {
        let m = model(WAVES);
        let mut initial = vec![Initial::Pending; m.agents.len()];
        initial[0] = Initial::Completed {
            start: 0.0,
            end: 10.0,
        };
        initial[1] = Initial::Running {
            start: 0.0,
            attempt: 1,
        };
        initial[2] = Initial::Running {
            start: 10.0,
            attempt: 1,
        };
        // At 35 s, B (30 s median) overran: it is taken to end now; C ends at 30 → now.
        let t = simulate_from(
            &m,
            options(ExecutionMode::Waves, 2),
            Sampler::Nominal,
            &initial,
            35.0,
        );
        assert_eq!(t.agents[1].end(), Some(35.0));
        assert_eq!(t.makespan, 46.0);
    }
}
