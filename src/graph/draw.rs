//! Drawing the dependency graph as Mermaid or Graphviz DOT, waves as clusters,
//! the critical path highlighted.

use std::collections::HashSet;
use std::fmt::Write;

use super::Dag;
use crate::plan::Plan;
use crate::plan::duration::format_duration;

fn label(dag: &Dag, n: usize) -> String {
    let duration = format_duration(std::time::Duration::from_secs_f64(dag.duration[n]));
    if dag.estimated[n] {
        format!("{} ({duration})", dag.ids[n])
    } else {
        dag.ids[n].clone()
    }
}

fn critical_edges(critical: &[usize]) -> HashSet<(usize, usize)> {
    critical.windows(2).map(|w| (w[0], w[1])).collect()
}

/// A Mermaid flowchart: one subgraph per wave, edges from dependency to dependant.
pub fn mermaid(plan: &Plan, dag: &Dag, critical: &[usize]) -> String {
    let mut out = String::from("flowchart LR\n");
    let mut n = 0;
    for (w, wave) in plan.waves.iter().enumerate() {
        let _ = writeln!(
            out,
            "  subgraph wave{w}[\"{}\"]",
            escape_mermaid(&wave.wave_id)
        );
        for _ in &wave.agents {
            let _ = writeln!(out, "    a{n}[\"{}\"]", escape_mermaid(&label(dag, n)));
            n += 1;
        }
        out.push_str("  end\n");
    }
    let on_path = critical_edges(critical);
    let mut link = 0;
    let mut critical_links = Vec::new();
    for (node, deps) in dag.deps.iter().enumerate() {
        for &d in deps {
            let _ = writeln!(out, "  a{d} --> a{node}");
            if on_path.contains(&(d, node)) {
                critical_links.push(link.to_string());
            }
            link += 1;
        }
    }
    if !critical.is_empty() {
        out.push_str("  classDef critical stroke:#d62728,stroke-width:3px\n");
        let nodes: Vec<String> = critical.iter().map(|n| format!("a{n}")).collect();
        let _ = writeln!(out, "  class {} critical", nodes.join(","));
    }
    if !critical_links.is_empty() {
        let _ = writeln!(
            out,
            "  linkStyle {} stroke:#d62728,stroke-width:3px",
            critical_links.join(",")
        );
    }
    out
}

fn escape_mermaid(text: &str) -> String {
    text.replace('"', "#quot;")
}

fn escape_dot(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

/// A Graphviz digraph: one cluster per wave, critical path in red.
pub fn dot(plan: &Plan, dag: &Dag, critical: &[usize]) -> String {
    let on_path: HashSet<usize> = critical.iter().copied().collect();
    let path_edges = critical_edges(critical);
    let mut out =
        String::from("digraph plan {\n  rankdir=LR;\n  node [shape=box, style=rounded];\n");
    let mut n = 0;
    for (w, wave) in plan.waves.iter().enumerate() {
        let _ = writeln!(
            out,
            "  subgraph cluster_{w} {{\n    label=\"{}\";",
            escape_dot(&wave.wave_id)
        );
        for _ in &wave.agents {
            let style = if on_path.contains(&n) {
                ", color=\"#d62728\", penwidth=3"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "    a{n} [label=\"{}\"{style}];",
                escape_dot(&label(dag, n))
            );
            n += 1;
        }
        out.push_str("  }\n");
    }
    for (node, deps) in dag.deps.iter().enumerate() {
        for &d in deps {
            let style = if path_edges.contains(&(d, node)) {
                " [color=\"#d62728\", penwidth=3]"
            } else {
                ""
            };
            let _ = writeln!(out, "  a{d} -> a{node}{style};");
        }
    }
    out.push_str("}\n");
    out
}
