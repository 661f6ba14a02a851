//! OpenAI Responses dialect (`POST /v1/responses`), hand-written.

use serde_json::{Value, json};

use crate::plan::{
    Analysis, CACHE_READ_TOKENS, Plan, PlannedCall, THINKING_TEXT, THINKING_TOKENS, content_text,
    fragments, word_chunks, word_count,
};
use crate::sse::Frame;

const REASONING_ID: &str = "rs_mock_1";
const MESSAGE_ID: &str = "msg_mock_1";

fn item_type(item: &Value) -> &str {
    match item.get("type").and_then(Value::as_str) {
        Some(t) => t,
        // Easy input messages carry only `role` and `content`.
        None if item.get("role").is_some() => "message",
        None => "",
    }
}

/// Text of a function_call_output `output`: a string, or its text parts.
fn output_text(item: &Value) -> String {
    item.get("output").map(content_text).unwrap_or_default()
}

pub fn analyze(body: &Value) -> Analysis {
    let items: Vec<Value> = match body.get("input") {
        Some(Value::String(s)) => vec![json!({ "role": "user", "content": s })],
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    };

    let instruction_words = body
        .get("instructions")
        .and_then(Value::as_str)
        .map_or(0, word_count);
    let input_words = instruction_words
        + items
            .iter()
            .map(|item| match item_type(item) {
                "message" => item
                    .get("content")
                    .map_or(0, |c| word_count(&content_text(c))),
                "function_call_output" => word_count(&output_text(item)),
                _ => 0,
            })
            .sum::<usize>();

    let trailing: Vec<String> = items
        .iter()
        .rev()
        .take_while(|item| item_type(item) == "function_call_output")
        .map(output_text)
        .collect();
    let tool_results = if trailing.is_empty() {
        None
    } else {
        Some(trailing.into_iter().rev().collect())
    };

    let last_user_text = items
        .iter()
        .rev()
        .find(|item| {
            item_type(item) == "message" && item.get("role").and_then(Value::as_str) == Some("user")
        })
        .and_then(|item| item.get("content"))
        .map(content_text)
        .unwrap_or_default();

    // Function tools sit at the top level: {type:"function", name, description, parameters}.
    let tools = body
        .get("tools")
        .and_then(Value::as_array)
        .map(|ts| {
            ts.iter()
                .filter(|t| t.get("type").and_then(Value::as_str) == Some("function"))
                .filter_map(|t| {
                    let name = t.get("name")?.as_str()?.to_string();
                    Some((name, t.get("parameters").cloned().unwrap_or(Value::Null)))
                })
                .collect()
        })
        .unwrap_or_default();

    let tool_choice = body.get("tool_choice");
    let tool_choice_none = tool_choice.and_then(Value::as_str) == Some("none");
    let forced_tool = tool_choice
        .filter(|c| c.get("type").and_then(Value::as_str) == Some("function"))
        .and_then(|c| c.get("name"))
        .and_then(Value::as_str)
        .map(str::to_string);

    let effort = body
        .get("reasoning")
        .and_then(|r| r.get("effort"))
        .and_then(Value::as_str);

    Analysis {
        model: body
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        tools,
        forced_tool,
        tool_choice_none,
        tool_results,
        last_user_text,
        input_words,
        wants_thinking: effort.is_some_and(|e| e != "none"),
        stream: body.get("stream").and_then(Value::as_bool) == Some(true),
        include_usage: true,
    }
}

fn usage(plan: &Plan) -> Value {
    json!({
        "input_tokens": plan.input_tokens,
        "input_tokens_details": {
            "cached_tokens": if plan.cache { CACHE_READ_TOKENS } else { 0 }
        },
        "output_tokens": plan.output_tokens,
        "output_tokens_details": {
            "reasoning_tokens": if plan.thinking { THINKING_TOKENS } else { 0 }
        },
        "total_tokens": plan.input_tokens + plan.output_tokens
    })
}

fn reasoning_item() -> Value {
    json!({
        "type": "reasoning",
        "id": REASONING_ID,
        "summary": [{ "type": "summary_text", "text": THINKING_TEXT }]
    })
}

fn output_text_part(text: &str) -> Value {
    json!({ "type": "output_text", "text": text, "annotations": [] })
}

fn message_item(text: &str, status: &str) -> Value {
    let content = if status == "completed" {
        vec![output_text_part(text)]
    } else {
        Vec::new()
    };
    json!({
        "type": "message",
        "id": MESSAGE_ID,
        "status": status,
        "role": "assistant",
        "content": content
    })
}

fn call_item(call: &PlannedCall, arguments: &str, status: &str) -> Value {
    json!({
        "type": "function_call",
        "id": format!("fc_mock_{}", call.n),
        "call_id": format!("call_mock_{}", call.n),
        "name": call.name,
        "arguments": arguments,
        "status": status
    })
}

/// Every output item of the finished response, in order.
fn output(plan: &Plan) -> Vec<Value> {
    let mut out = Vec::new();
    if plan.thinking {
        out.push(reasoning_item());
    }
    if let Some(text) = &plan.text {
        out.push(message_item(text, "completed"));
    }
    for call in &plan.tool_calls {
        out.push(call_item(call, &call.arguments, "completed"));
    }
    out
}

/// The `response` object. `done` selects the final form (status completed, output, usage)
/// over the in-progress one sent by `response.created` / `response.in_progress`.
fn response_object(plan: &Plan, id: &str, created: u64, body: &Value, done: bool) -> Value {
    let field = |name: &str| body.get(name).cloned().unwrap_or(Value::Null);
    let effort = body
        .get("reasoning")
        .and_then(|r| r.get("effort"))
        .cloned()
        .unwrap_or(Value::Null);
    let tools = body.get("tools").cloned().unwrap_or_else(|| json!([]));
    let tool_choice = body
        .get("tool_choice")
        .cloned()
        .unwrap_or_else(|| json!("auto"));
    let mut out = json!({
        "id": id,
        "object": "response",
        "created_at": created,
        "status": if done { "completed" } else { "in_progress" },
        "error": null,
        "incomplete_details": null,
        "instructions": field("instructions"),
        "max_output_tokens": field("max_output_tokens"),
        "model": plan.model,
        "output": if done { output(plan) } else { Vec::new() },
        "parallel_tool_calls": true,
        "previous_response_id": field("previous_response_id"),
        "reasoning": { "effort": effort, "summary": null },
        "store": body.get("store").and_then(Value::as_bool).unwrap_or(true),
        "temperature": 1.0,
        "text": { "format": { "type": "text" } },
        "tool_choice": tool_choice,
        "tools": tools,
        "top_p": 1.0,
        "truncation": "disabled",
        "user": null,
        "metadata": {}
    });
    if let Some(o) = out.as_object_mut() {
        if !done {
            o.insert("usage".into(), Value::Null);
        } else if plan.usage {
            o.insert("usage".into(), usage(plan));
        }
    }
    out
}

pub fn response(plan: &Plan, id: &str, created: u64, body: &Value) -> Value {
    response_object(plan, id, created, body, true)
}

/// Builds `event: <type>` frames whose data carries `type` and an increasing `sequence_number`.
struct Events {
    frames: Vec<Frame>,
    seq: u64,
}

impl Events {
    fn push(&mut self, kind: &str, mut data: Value, terminal: bool) {
        if let Some(o) = data.as_object_mut() {
            o.insert("type".into(), json!(kind));
            o.insert("sequence_number".into(), json!(self.seq));
        }
        self.seq += 1;
        let text = format!("event: {kind}\ndata: {data}\n\n");
        self.frames.push(if terminal {
            Frame::terminal(text)
        } else {
            Frame::body(text)
        });
    }

    fn add(&mut self, kind: &str, data: Value) {
        self.push(kind, data, false);
    }
}

pub fn stream_frames(plan: &Plan, id: &str, created: u64, body: &Value) -> Vec<Frame> {
    let mut ev = Events {
        frames: Vec::new(),
        seq: 0,
    };
    let pending = response_object(plan, id, created, body, false);
    ev.add("response.created", json!({ "response": pending }));
    ev.add("response.in_progress", json!({ "response": pending }));

    let mut index = 0usize;
    if plan.thinking {
        let item_id = REASONING_ID;
        ev.add(
            "response.output_item.added",
            json!({ "output_index": index, "item": { "type": "reasoning", "id": item_id, "summary": [] } }),
        );
        ev.add(
            "response.reasoning_summary_part.added",
            json!({ "item_id": item_id, "output_index": index, "summary_index": 0,
                    "part": { "type": "summary_text", "text": "" } }),
        );
        for piece in word_chunks(THINKING_TEXT) {
            ev.add(
                "response.reasoning_summary_text.delta",
                json!({ "item_id": item_id, "output_index": index, "summary_index": 0, "delta": piece }),
            );
        }
        ev.add(
            "response.reasoning_summary_text.done",
            json!({ "item_id": item_id, "output_index": index, "summary_index": 0, "text": THINKING_TEXT }),
        );
        ev.add(
            "response.reasoning_summary_part.done",
            json!({ "item_id": item_id, "output_index": index, "summary_index": 0,
                    "part": { "type": "summary_text", "text": THINKING_TEXT } }),
        );
        ev.add(
            "response.output_item.done",
            json!({ "output_index": index, "item": reasoning_item() }),
        );
        index += 1;
    }
    if let Some(text) = &plan.text {
        let item_id = MESSAGE_ID;
        ev.add(
            "response.output_item.added",
            json!({ "output_index": index, "item": message_item(text, "in_progress") }),
        );
        ev.add(
            "response.content_part.added",
            json!({ "item_id": item_id, "output_index": index, "content_index": 0,
                    "part": output_text_part("") }),
        );
        for piece in word_chunks(text) {
            ev.add(
                "response.output_text.delta",
                json!({ "item_id": item_id, "output_index": index, "content_index": 0,
                        "delta": piece, "logprobs": [] }),
            );
        }
        ev.add(
            "response.output_text.done",
            json!({ "item_id": item_id, "output_index": index, "content_index": 0,
                    "text": text, "logprobs": [] }),
        );
        ev.add(
            "response.content_part.done",
            json!({ "item_id": item_id, "output_index": index, "content_index": 0,
                    "part": output_text_part(text) }),
        );
        ev.add(
            "response.output_item.done",
            json!({ "output_index": index, "item": message_item(text, "completed") }),
        );
        index += 1;
    }
    for call in &plan.tool_calls {
        let item_id = format!("fc_mock_{}", call.n);
        ev.add(
            "response.output_item.added",
            json!({ "output_index": index, "item": call_item(call, "", "in_progress") }),
        );
        for frag in fragments(&call.arguments) {
            ev.add(
                "response.function_call_arguments.delta",
                json!({ "item_id": item_id, "output_index": index, "delta": frag }),
            );
        }
        ev.add(
            "response.function_call_arguments.done",
            json!({ "item_id": item_id, "output_index": index, "arguments": call.arguments }),
        );
        ev.add(
            "response.output_item.done",
            json!({ "output_index": index, "item": call_item(call, &call.arguments, "completed") }),
        );
        index += 1;
    }
    ev.push(
        "response.completed",
        json!({ "response": response_object(plan, id, created, body, true) }),
        true,
    );
    ev.frames
}

/// The malformed frame inserted with the `malformed` scenario.
pub fn malformed_frame() -> Frame {
    Frame::body("event: response.output_text.delta\ndata: {not json\n\n".to_string())
}
