//! Makespan estimates: dependency-only list scheduling, the plan's own waves,
//! and an optimized wave composition.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use super::Dag;

/// A f64 that orders totally (for heaps).
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

/// Result of list scheduling.
#[derive(Debug, Clone, PartialEq)]
pub struct ListSchedule {
    /// Start time of each agent, in seconds.
    pub start: Vec<f64>,
    /// End of the last agent.
    pub makespan: f64,
}

/// Schedules agents as soon as their dependencies are done, at most
/// `concurrency` at once, longest remaining chain first (HLFET list scheduling).
pub fn list_schedule(dag: &Dag, concurrency: usize) -> ListSchedule {
    let slots = concurrency.max(1);
    let priority = dag.bottom_levels();
    let mut remaining: Vec<usize> = dag.deps.iter().map(Vec::len).collect();
    // Ready queue: highest bottom level first, then plan order.
    let mut ready: BinaryHeap<(Time, Reverse<usize>)> = (0..dag.len())
        .filter(|&n| remaining[n] == 0)
        .map(|n| (Time(priority[n]), Reverse(n)))
        .collect();
    let mut running: BinaryHeap<Reverse<(Time, usize)>> = BinaryHeap::new();
    let mut start = vec![0.0; dag.len()];
    let mut now = 0.0f64;
    let mut makespan = 0.0f64;
    let mut done = 0;
    while done < dag.len() {
        while running.len() < slots {
            let Some((_, Reverse(n))) = ready.pop() else {
                break;
            };
            start[n] = now;
            running.push(Reverse((Time(now + dag.duration[n]), n)));
        }
        let Some(Reverse((Time(end), n))) = running.pop() else {
            break; // a cycle: nothing can run
        };
        now = end;
        makespan = makespan.max(end);
        done += 1;
        for &m in &dag.dependants[n] {
            remaining[m] -= 1;
            if remaining[m] == 0 {
                ready.push((Time(priority[m]), Reverse(m)));
            }
        }
    }
    ListSchedule { start, makespan }
}

/// The timing of one wave under wave-by-wave execution.
#[derive(Debug, Clone, PartialEq)]
pub struct WaveTiming {
    /// When the wave starts (seconds from the run start).
    pub start: f64,
    /// How long it runs.
    pub span: f64,
    /// Sum of its agents' durations.
    pub busy: f64,
    /// Concurrency slots the wave never uses.
    pub idle_slots: usize,
    /// Slot-seconds left idle: `concurrency × span − busy`.
    pub idle_slot_seconds: f64,
}

/// Estimates wave-by-wave execution: each wave starts when the previous one
/// ended; a parallel wave runs its agents in plan order on `concurrency`
/// slots, a sequential one runs them one after another.
pub fn waves_schedule(
    dag: &Dag,
    waves: &[(Vec<usize>, bool)],
    concurrency: usize,
) -> Vec<WaveTiming> {
    let slots = concurrency.max(1);
    let mut now = 0.0;
    let mut out = Vec::with_capacity(waves.len());
    for (members, parallel) in waves {
        let busy: f64 = members.iter().map(|&n| dag.duration[n]).sum();
        let (span, idle_slots) = if *parallel {
            let mut running: BinaryHeap<Reverse<Time>> = BinaryHeap::new();
            let mut span = 0.0f64;
            for &n in members {
                let begin = if running.len() < slots {
                    0.0
                } else {
                    running.pop().map_or(0.0, |Reverse(Time(t))| t)
                };
                let end = begin + dag.duration[n];
                span = span.max(end);
                running.push(Reverse(Time(end)));
            }
            (span, slots.saturating_sub(members.len()))
        } else {
            (busy, slots - 1)
        };
        out.push(WaveTiming {
            start: now,
            span,
            busy,
            idle_slots,
            idle_slot_seconds: (slots as f64 * span - busy).max(0.0),
        });
        now += span;
    }
    out
}

/// Groups agents into waves of at most `batch_size`, each agent after all its
/// dependencies, longest remaining chain first, so that the waves' total
/// length is short. Returns agent indices per wave (empty if there is a cycle).
pub fn auto_waves(dag: &Dag, batch_size: usize) -> Vec<Vec<usize>> {
    let batch = batch_size.max(1);
    let priority = dag.bottom_levels();
    let mut remaining: Vec<usize> = dag.deps.iter().map(Vec::len).collect();
    let mut ready: Vec<usize> = (0..dag.len()).filter(|&n| remaining[n] == 0).collect();
    let mut waves = Vec::new();
    let mut placed = 0;
    while !ready.is_empty() {
        ready.sort_by(|&a, &b| priority[b].total_cmp(&priority[a]).then(a.cmp(&b)));
        let take = ready.len().min(batch);
        let mut wave: Vec<usize> = ready.drain(..take).collect();
        placed += wave.len();
        for &n in &wave {
            for &m in &dag.dependants[n] {
                remaining[m] -= 1;
                if remaining[m] == 0 {
                    ready.push(m);
                }
            }
        }
        wave.sort_unstable();
        waves.push(wave);
    }
    if placed < dag.len() {
        return Vec::new();
    }
    waves
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn dag(json: &str) -> Dag {
        Dag::from_plan(&crate::graph::tests::plan(json), Duration::from_secs(60))
    }

    fn chain_and_singles() -> Dag {
        // A(2h) → B(2h); C, D, E (1h each) independent.
        dag(
            r#"{"orchestrationId":"x","executionMode":"continuous","waves":[{"waveId":"w","agents":[
            {"agentId":"A","workDescription":"a","estimatedDuration":"2h"},
            {"agentId":"B","workDescription":"b","estimatedDuration":"2h","dependencies":["A"]},
            {"agentId":"C","workDescription":"c","estimatedDuration":"1h"},
            {"agentId":"D","workDescription":"d","estimatedDuration":"1h"},
            {"agentId":"E","workDescription":"e","estimatedDuration":"1h"}]}]}"#,
        )
    }

    #[test]
    fn list_scheduling_runs_the_critical_chain_first() {
        let d = chain_and_singles();
        let two = list_schedule(&d, 2);
        assert_eq!(two.makespan, 4.0 * 3600.0);
        assert_eq!(two.start[0], 0.0);
        let one = list_schedule(&d, 1);
        assert_eq!(one.makespan, 7.0 * 3600.0);
        let many = list_schedule(&d, 10);
        assert_eq!(many.makespan, 4.0 * 3600.0);
    }

    #[test]
    fn waves_schedule_sums_wave_spans_and_counts_idle_slots() {
        let d = chain_and_singles();
        let waves = vec![(vec![0, 2, 3, 4], true), (vec![1], false)];
        let t = waves_schedule(&d, &waves, 2);
        assert_eq!(t[0].span, 3.0 * 3600.0); // A(2h) || C,D then E → 2h+... = max(2h, 1h+1h... )
        assert_eq!(t[0].idle_slots, 0);
        assert_eq!(t[1].start, 3.0 * 3600.0);
        assert_eq!(t[1].span, 2.0 * 3600.0);
        assert_eq!(t[1].idle_slots, 1);
        assert_eq!(t[1].idle_slot_seconds, 2.0 * 3600.0);
    }

    #[test]
    fn auto_waves_respect_dependencies_and_batch_size() {
        let d = chain_and_singles();
        let waves = auto_waves(&d, 2);
        assert!(waves.iter().all(|w| w.len() <= 2));
        let mut wave_of = vec![0; d.len()];
        for (i, w) in waves.iter().enumerate() {
            for &n in w {
                wave_of[n] = i;
            }
        }
        assert!(wave_of[0] < wave_of[1]);
        assert_eq!(waves.iter().map(Vec::len).sum::<usize>(), 5);
        assert_eq!(waves[0], vec![0, 2]);
    }
}
