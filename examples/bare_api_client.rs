//! The floor for `bench/api_bench.py`: the benchmark's 1,000 streaming
//! Anthropic Messages calls made by the thinnest Rust client we could write
//! (tokio, reqwest, a semaphore), with none of an orchestrator's work: no plan,
//! journal, transcripts, agent loop, status, report or history.
//!
//! It mirrors the benchmark's Python asyncio + httpx baseline call for call
//! (same bodies, headers and concurrency; every `data:` line parsed as JSON and
//! the text deltas joined), so the benchmark can show how much of
//! llm-orchestrate's wall time is the machine and the scripted server, and how
//! much is the orchestrator.
//!
//! ```text
//! cargo build --release --example bare_api_client
//! target/release/examples/bare_api_client BASE_URL [AGENTS] [CONCURRENCY]
//! ```
//!
//! Exits 0 when every call got its scripted `[STATUS: COMPLETE]` reply, 1 on
//! the first call that did not (with the reason on stderr), 2 on bad arguments.

use std::process::ExitCode;
use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::Semaphore;

/// The command line: base URL, agents, concurrency.
struct Args {
    base: String,
    agents: usize,
    concurrency: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let base = args
        .next()
        .ok_or("usage: bare_api_client BASE_URL [AGENTS] [CONCURRENCY]")?;
    let number = |value: Option<String>, default: usize, name: &str| -> Result<usize, String> {
        value.map_or(Ok(default), |v| {
            v.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or(format!("{name} must be a positive whole number, not {v:?}"))
        })
    };
    let agents = number(args.next(), 1000, "AGENTS")?;
    let concurrency = number(args.next(), 100, "CONCURRENCY")?;
    Ok(Args {
        base: base.trim_end_matches('/').to_string(),
        agents,
        concurrency,
    })
}

/// One call: the streamed reply's text, joined from its `content_block_delta` events.
async fn one_call(client: reqwest::Client, url: Arc<str>, i: usize) -> Result<String, String> {
    let body = serde_json::json!({
        "model": "claude-sonnet-4-5", "max_tokens": 1024, "stream": true,
        "system": format!("You are agent A{i:05}."),
        "messages": [{"role": "user", "content": format!("You are agent A{i:05}. Do the work.")}],
    });
    let response = client
        .post(&*url)
        .header("x-api-key", "bench-key")
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("call {i}: {e}"))?;
    let mut stream = response.bytes_stream();
    let mut pending: Vec<u8> = Vec::new();
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        pending.extend_from_slice(&chunk.map_err(|e| format!("call {i}: {e}"))?);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let Some(data) = line.strip_prefix(b"data: ") else {
                continue;
            };
            let event: serde_json::Value =
                serde_json::from_slice(data).map_err(|e| format!("call {i}: {e}"))?;
            if event["type"] == "content_block_delta"
                && let Some(piece) = event["delta"]["text"].as_str()
            {
                text.push_str(piece);
            }
        }
    }
    Ok(text)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let client = match reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            eprintln!("cannot build the HTTP client: {e}");
            return ExitCode::from(1);
        }
    };
    let url: Arc<str> = format!("{}/v1/messages", args.base).into();
    let limit = Arc::new(Semaphore::new(args.concurrency));
    // Like the Python baseline: every call is a task from the start, and
    // the semaphore lets `concurrency` of them run at a time.
    let calls: Vec<_> = (0..args.agents)
        .map(|i| {
            let (client, url, limit) = (client.clone(), url.clone(), limit.clone());
            tokio::spawn(async move {
                let _permit = limit.acquire_owned().await.map_err(|e| e.to_string())?;
                one_call(client, url, i).await
            })
        })
        .collect();
    for call in calls {
        match call.await {
            Ok(Ok(text)) if text.contains("COMPLETE") => {}
            Ok(Ok(text)) => {
                eprintln!("a reply without its scripted status: {text:?}");
                return ExitCode::from(1);
            }
            Ok(Err(message)) => {
                eprintln!("{message}");
                return ExitCode::from(1);
            }
            Err(e) => {
                eprintln!("a call's task failed: {e}");
                return ExitCode::from(1);
            }
        }
    }
    ExitCode::SUCCESS
}
