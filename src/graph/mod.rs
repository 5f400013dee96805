//! The dependency graph of a plan: cycles, levels, critical path, scheduling
//! estimates and wave composition.
//!
//! Nodes are agents in plan order; an edge `a → d` means "a depends on d".
//! Every algorithm here is iterative (no recursion), so 10,000-agent plans and
//! long chains are fine.

pub mod analysis;
pub mod draw;
pub mod schedule;

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use crate::plan::Plan;

/// The agents of a plan as a graph with durations.
#[derive(Debug, Clone)]
pub struct Dag {
    /// Agent ids, in plan order.
    pub ids: Vec<String>,
    /// Wave index of each agent.
    pub wave: Vec<usize>,
    /// For each agent, the agents it depends on.
    pub deps: Vec<Vec<usize>>,
    /// For each agent, the agents that depend on it.
    pub dependants: Vec<Vec<usize>>,
    /// Estimated duration in seconds.
    pub duration: Vec<f64>,
    /// Whether the duration came from the plan (false: the default estimate).
    pub estimated: Vec<bool>,
}

impl Dag {
    /// Builds the graph of a plan. Unknown and self dependencies are ignored
    /// (validation reports them); agents without `estimatedDuration` get `default_estimate`.
    pub fn from_plan(plan: &Plan, default_estimate: Duration) -> Dag {
        let count = plan.agent_count();
        let mut dag = Dag {
            ids: Vec::with_capacity(count),
            wave: Vec::with_capacity(count),
            deps: Vec::with_capacity(count),
            dependants: vec![Vec::new(); count],
            duration: Vec::with_capacity(count),
            estimated: Vec::with_capacity(count),
        };
        let mut index: HashMap<&str, usize> = HashMap::with_capacity(count);
        for (w, _, agent) in plan.agents() {
            index
                .entry(agent.agent_id.as_str())
                .or_insert(dag.ids.len());
            dag.ids.push(agent.agent_id.clone());
            dag.wave.push(w);
            dag.duration.push(
                agent
                    .estimated_duration
                    .map_or(default_estimate.as_secs_f64(), |d| d.as_secs_f64()),
            );
            dag.estimated.push(agent.estimated_duration.is_some());
        }
        for (i, (_, _, agent)) in plan.agents().enumerate() {
            let mut deps: Vec<usize> = agent
                .dependencies
                .iter()
                .filter_map(|d| index.get(d.as_str()).copied())
                .filter(|&d| d != i)
                .collect();
            deps.sort_unstable();
            deps.dedup();
            for &d in &deps {
                dag.dependants[d].push(i);
            }
            dag.deps.push(deps);
        }
        dag
    }

    /// Number of agents.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when the plan has no agents.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Number of dependency edges.
    pub fn edge_count(&self) -> usize {
        self.deps.iter().map(Vec::len).sum()
    }

    /// A topological order (dependencies first), or `None` if there is a cycle.
    pub fn topological_order(&self) -> Option<Vec<usize>> {
        let mut remaining: Vec<usize> = self.deps.iter().map(Vec::len).collect();
        let mut queue: VecDeque<usize> = (0..self.len()).filter(|&i| remaining[i] == 0).collect();
        let mut order = Vec::with_capacity(self.len());
        while let Some(n) = queue.pop_front() {
            order.push(n);
            for &m in &self.dependants[n] {
                remaining[m] -= 1;
                if remaining[m] == 0 {
                    queue.push_back(m);
                }
            }
        }
        (order.len() == self.len()).then_some(order)
    }

    /// The minimal waves the dependencies allow: level 0 has no dependencies,
    /// level k depends on something at level k-1. Empty if there is a cycle.
    pub fn levels(&self) -> Vec<Vec<usize>> {
        let Some(order) = self.topological_order() else {
            return Vec::new();
        };
        let mut level = vec![0usize; self.len()];
        for &n in &order {
            level[n] = self.deps[n]
                .iter()
                .map(|&d| level[d] + 1)
                .max()
                .unwrap_or(0);
        }
        let depth = level.iter().copied().max().map_or(0, |m| m + 1);
        let mut levels = vec![Vec::new(); depth];
        for (n, &l) in level.iter().enumerate() {
            levels[l].push(n);
        }
        levels
    }

    /// For each agent, the longest duration from its start to the end of the
    /// plan through its dependants (its own duration included).
    pub fn bottom_levels(&self) -> Vec<f64> {
        let mut bottom = self.duration.clone();
        if let Some(order) = self.topological_order() {
            for &n in order.iter().rev() {
                let tail = self.dependants[n]
                    .iter()
                    .map(|&m| bottom[m])
                    .fold(0.0, f64::max);
                bottom[n] = self.duration[n] + tail;
            }
        }
        bottom
    }

    /// The longest chain of dependencies by duration, and its length in seconds.
    pub fn critical_path(&self) -> (Vec<usize>, f64) {
        let Some(order) = self.topological_order() else {
            return (Vec::new(), 0.0);
        };
        let mut finish = vec![0.0f64; self.len()];
        let mut via: Vec<Option<usize>> = vec![None; self.len()];
        for &n in &order {
            let mut start = 0.0;
            for &d in &self.deps[n] {
                if finish[d] > start || via[n].is_none() && finish[d] >= start {
                    start = finish[d];
                    via[n] = Some(d);
                }
            }
            finish[n] = start + self.duration[n];
        }
        let Some(end) =
            (0..self.len()).max_by(|&a, &b| finish[a].total_cmp(&finish[b]).then(b.cmp(&a)))
        else {
            return (Vec::new(), 0.0);
        };
        let mut path = vec![end];
        while let Some(prev) = via[*path.last().unwrap_or(&end)] {
            path.push(prev);
        }
        path.reverse();
        (path, finish[end])
    }
}

/// Finds the dependency cycles of a graph given as adjacency lists.
///
/// Returns one concrete cycle per strongly connected component with more than
/// one node: `[a, b, c]` means a → b → c → a. Iterative Tarjan, so deep graphs
/// cannot overflow the stack.
pub fn find_cycles(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = edges.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0usize; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<usize> = Vec::new();
    let mut component = vec![usize::MAX; n];
    let mut components: Vec<Vec<usize>> = Vec::new();
    let mut next_index = 0;
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        let mut call: Vec<(usize, usize)> = vec![(root, 0)];
        index[root] = next_index;
        low[root] = next_index;
        next_index += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut child)) = call.last_mut() {
            if let Some(&w) = edges[v].get(*child) {
                *child += 1;
                if index[w] == usize::MAX {
                    index[w] = next_index;
                    low[w] = next_index;
                    next_index += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    call.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            call.pop();
            if let Some(&(parent, _)) = call.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut members = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component[w] = components.len();
                    members.push(w);
                    if w == v {
                        break;
                    }
                }
                components.push(members);
            }
        }
    }
    let mut cycles = Vec::new();
    for (c, members) in components.iter().enumerate() {
        if members.len() < 2 {
            continue;
        }
        let start = members.iter().copied().min().unwrap_or(members[0]);
        // Shortest path from start back to start inside the component (BFS).
        let mut parent: HashMap<usize, usize> = HashMap::new();
        let mut queue = VecDeque::from([start]);
        let mut closing = None;
        'search: while let Some(v) = queue.pop_front() {
            for &w in &edges[v] {
                if component[w] != c {
                    continue;
                }
                if w == start {
                    closing = Some(v);
                    break 'search;
                }
                if let std::collections::hash_map::Entry::Vacant(e) = parent.entry(w) {
                    e.insert(v);
                    queue.push_back(w);
                }
            }
        }
        let Some(mut v) = closing else { continue };
        let mut cycle = vec![v];
        while v != start {
            v = parent[&v];
            cycle.push(v);
        }
        cycle.reverse();
        cycles.push(cycle);
    }
    cycles
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::load_str;

    pub(crate) fn plan(json: &str) -> Plan {
        let loaded = load_str("t.json", json, Default::default());
        loaded.plan.expect("plan parses")
    }

    fn diamond() -> Plan {
        plan(
            r#"{"orchestrationId":"d","executionMode":"continuous","waves":[{"waveId":"w","agents":[
            {"agentId":"A","workDescription":"a","estimatedDuration":"1h"},
            {"agentId":"B","workDescription":"b","estimatedDuration":"2h","dependencies":["A"]},
            {"agentId":"C","workDescription":"c","estimatedDuration":"30m","dependencies":["A"]},
            {"agentId":"D","workDescription":"d","estimatedDuration":"1h","dependencies":["B","C"]}]}]}"#,
        )
    }

    #[test]
    fn levels_and_critical_path_of_a_diamond() {
        let dag = Dag::from_plan(&diamond(), Duration::from_secs(1800));
        assert_eq!(dag.levels(), vec![vec![0], vec![1, 2], vec![3]]);
        let (path, length) = dag.critical_path();
        assert_eq!(path, vec![0, 1, 3]);
        assert_eq!(length, 4.0 * 3600.0);
        assert_eq!(dag.bottom_levels()[0], 4.0 * 3600.0);
        assert_eq!(dag.edge_count(), 4);
    }

    #[test]
    fn finds_cycles_with_their_path() {
        // 0 → 1 → 2 → 0, and 3 → 3 is not reported (self loops are separate), 4 alone.
        let edges = vec![vec![1], vec![2], vec![0], vec![], vec![0]];
        assert_eq!(find_cycles(&edges), vec![vec![0, 1, 2]]);
        assert!(find_cycles(&[vec![1], vec![]]).is_empty());
    }

    #[test]
    fn cycle_detection_survives_a_long_chain() {
        let n = 200_000;
        let mut edges: Vec<Vec<usize>> = (0..n).map(|i| vec![i + 1]).collect();
        edges[n - 1] = vec![0];
        let cycles = find_cycles(&edges);
        assert_eq!(cycles.len(), 1);
        assert_eq!(cycles[0].len(), n);
    }

    #[test]
    fn agrees_with_petgraph_style_oracle_on_random_dags() {
        // Property: levels respect every edge and the critical path is a real chain.
        use proptest::prelude::*;
        proptest!(|(edges in proptest::collection::vec((0usize..30, 0usize..30), 0..80))| {
            let mut deps = vec![Vec::new(); 30];
            for (a, b) in edges {
                if a > b { deps[a].push(b); }
            }
            let agents: Vec<String> = (0..30).map(|i| {
                let d: Vec<String> = deps[i].iter().map(|x| format!("\"A{x}\"")).collect();
                format!(r#"{{"agentId":"A{i}","workDescription":"x","estimatedDuration":"{}m","dependencies":[{}]}}"#, i % 7 + 1, d.join(","))
            }).collect();
            let p = plan(&format!(r#"{{"orchestrationId":"p","executionMode":"continuous","waves":[{{"waveId":"w","agents":[{}]}}]}}"#, agents.join(",")));
            let dag = Dag::from_plan(&p, Duration::from_secs(60));
            let mut level_of = vec![0; 30];
            for (l, members) in dag.levels().iter().enumerate() {
                for &m in members { level_of[m] = l; }
            }
            for n in 0..30 {
                for &d in &dag.deps[n] { prop_assert!(level_of[d] < level_of[n]); }
            }
            let (path, length) = dag.critical_path();
            for pair in path.windows(2) { prop_assert!(dag.deps[pair[1]].contains(&pair[0])); }
            let sum: f64 = path.iter().map(|&n| dag.duration[n]).sum();
            prop_assert!((sum - length).abs() < 1e-6);
            let best = dag.bottom_levels().into_iter().fold(0.0, f64::max);
            prop_assert!((best - length).abs() < 1e-6);
        });
    }
}
