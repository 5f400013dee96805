//! Fuzz plan loading, diagnostics location, graph analysis and rendering.
//!
//! Input layout: the first byte selects options, the rest is the plan file.
//! - bit 0: 0 = "plan.json", 1 = "plan.yaml"
//! - bit 1: `strict`
//! - bits 2-3: `mode` (None, Waves, Continuous, Adaptive)
//!
//! None of these calls may panic, whatever the bytes.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use llm_orchestrate::graph::analysis::{AnalysisOptions, analyze};
use llm_orchestrate::plan::enums::ExecutionMode;
use llm_orchestrate::plan::{LoadOptions, load_bytes};
use llm_orchestrate::render::{RenderPlatform, render};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let name = if selector & 1 == 0 {
        "plan.json"
    } else {
        "plan.yaml"
    };
    let mode = match (selector >> 2) & 3 {
        0 => None,
        1 => Some(ExecutionMode::Waves),
        2 => Some(ExecutionMode::Continuous),
        _ => Some(ExecutionMode::Adaptive),
    };
    let options = LoadOptions {
        strict: selector & 2 != 0,
        mode,
    };

    let loaded = load_bytes(name, bytes, options);
    let _ = loaded.located();

    if let Some(plan) = loaded.valid_plan() {
        let _ = analyze(
            plan,
            AnalysisOptions {
                concurrency: 4,
                default_estimate: Duration::from_secs(1800),
                auto_waves_batch: Some(3),
            },
        );
        let _ = render(plan, RenderPlatform::Generic, None);
    }
});
