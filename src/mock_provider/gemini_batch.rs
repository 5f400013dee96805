//! Gemini's Batch API with inlined requests: `models/{model}:batchGenerateContent`
//! creates a batch (a long-running operation) and `GET batches/{id}` polls it.
//! Every inlined request is answered like `generateContent` (no faults); the
//! batch succeeds once its longest scripted latency has passed.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::gemini;
use super::handler::{no_agent_message, resolve};
use super::state::{Batch, State};
use super::wire::{ErrorKind, unix_now};

const BATCH_TYPE: &str =
    "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch";
const OUTPUT_TYPE: &str =
    "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput";

/// Creates a batch from a `batchGenerateContent` body; returns the operation,
/// or an error message for a body without inlined requests.
pub fn create(state: &State, model: &str, body: &Value) -> Result<Value, String> {
    let batch = body.get("batch").unwrap_or(body);
    let requests = batch
        .pointer("/inputConfig/requests/requests")
        .and_then(Value::as_array)
        .ok_or(
            "mock-provider: batch.inputConfig.requests.requests (inlined requests) is missing",
        )?;
    let mut longest = Duration::ZERO;
    let responses = requests
        .iter()
        .map(|item| {
            let request = item.get("request").unwrap_or(&Value::Null);
            let mut inbound = gemini::inbound(request);
            inbound.model = model.to_string();
            let mut out = match resolve(state, &inbound) {
                Some(reply) => {
                    longest = longest.max(reply.latency);
                    json!({"response": gemini::response(&reply)})
                }
                None => {
                    let (_, err) = gemini::error(ErrorKind::BadRequest, &no_agent_message(state));
                    err
                }
            };
            if let (Some(obj), Some(meta)) = (out.as_object_mut(), item.get("metadata")) {
                obj.insert("metadata".into(), meta.clone());
            }
            out
        })
        .collect();
    let created = state.add_batch(Batch {
        name: String::new(),
        model: format!("models/{model}"),
        display_name: batch
            .get("displayName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        created: unix_now(),
        ready_at: Instant::now() + longest,
        responses,
    });
    Ok(operation(&created, false))
}

/// The operation of a batch: running until ready, then succeeded with output.
pub fn operation(batch: &Batch, poll: bool) -> Value {
    let done = poll && Instant::now() >= batch.ready_at;
    let count = batch.responses.len().to_string();
    let state = match (poll, done) {
        (false, _) => "BATCH_STATE_PENDING",
        (true, false) => "BATCH_STATE_RUNNING",
        (true, true) => "BATCH_STATE_SUCCEEDED",
    };
    let time = rfc3339(batch.created);
    let mut metadata = json!({
        "@type": BATCH_TYPE,
        "name": batch.name,
        "model": batch.model,
        "displayName": batch.display_name,
        "createTime": time,
        "updateTime": time,
        "batchStats": if done {
            json!({"requestCount": count, "successfulRequestCount": count})
        } else {
            json!({"requestCount": count, "pendingRequestCount": count})
        },
        "state": state,
    });
    let mut op = json!({"name": batch.name, "metadata": metadata.clone()});
    if done {
        let inlined = json!({"inlinedResponses": {"inlinedResponses": batch.responses}});
        if let Some(meta) = metadata.as_object_mut() {
            meta.insert("output".into(), inlined.clone());
            meta.insert("endTime".into(), json!(time));
        }
        if let Some(obj) = op.as_object_mut() {
            obj.insert("metadata".into(), metadata);
            obj.insert("done".into(), json!(true));
            let mut response = inlined;
            if let Some(r) = response.as_object_mut() {
                r.insert("@type".into(), json!(OUTPUT_TYPE));
            }
            obj.insert("response".into(), response);
        }
    }
    op
}

/// `YYYY-MM-DDTHH:MM:SSZ` of Unix seconds.
fn rfc3339(secs: u64) -> String {
    let secs = i64::try_from(secs).unwrap_or(0);
    let (y, m, d) = crate::report::status::civil_from_days(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        t / 3600,
        t % 3600 / 60,
        t % 60
    )
}
