//! Marker-parsing throughput on a large synthetic agent log (target: at least 1 GB/s).
//!
//! The log mixes compiler/test output, `[INFO]`-style bracketed lines, ANSI
//! colours and, every 100 lines, a STATUS marker; it is fed in 64 KiB chunks
//! as a pipe would deliver it.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use llm_orchestrate::protocol::MarkerParser;

fn synthetic_log(bytes: usize) -> Vec<u8> {
    let lines = [
        "   Compiling serde v1.0.219\n",
        "warning: unused variable: `x` --> src/lib.rs:10:9\n",
        "test auth::token::refresh_expired ... ok\n",
        "\x1b[32m    Finished\x1b[0m `test` profile [unoptimized + debuginfo] target(s) in 3.21s\n",
        "[INFO] 2026-11-26T10:00:00Z handled request id=42 path=/api/v1/users\n",
        "npm WARN deprecated glob@7.2.3: Glob versions prior to v9 are no longer supported\n",
        "    let value = parse(&input)?; // TODO: handle errors properly here\n",
    ];
    let mut out = Vec::with_capacity(bytes + 256);
    let mut i = 0usize;
    while out.len() < bytes {
        if i % 100 == 99 {
            out.extend_from_slice(format!("[STATUS: PROGRESS-{}%] step {i}\n", i % 100).as_bytes());
        } else {
            out.extend_from_slice(lines[i % lines.len()].as_bytes());
        }
        i += 1;
    }
    out
}

fn bench(c: &mut Criterion) {
    let log = synthetic_log(64 << 20);
    let mut group = c.benchmark_group("marker_parser");
    group.throughput(Throughput::Bytes(log.len() as u64));
    group.sample_size(10);
    group.bench_function("64MiB_log_in_64KiB_chunks", |b| {
        b.iter(|| {
            let mut parser = MarkerParser::new();
            let mut events = Vec::new();
            for chunk in log.chunks(64 * 1024) {
                parser.feed(chunk, &mut events);
                events.clear();
            }
            parser.finish(&mut events);
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
