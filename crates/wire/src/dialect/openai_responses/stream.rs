//! Streaming: Responses API typed SSE events ↔ canonical stream events.
//!
//! One canonical block is one output item: a message (its text), a function call, or a reasoning
//! item (its summary). The decoder opens message and reasoning blocks at their first text, so
//! empty items make no blocks; the encoder writes the complete nesting
//! (`output_item.added` → `content_part.added` → deltas → `*.done` → `output_item.done`).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::Reply;
use super::response::{
    Head, WireUsage, call_item_id, client_call_item, custom_call_item, finish_of,
    function_call_item, item_blocks, item_id, message_item, output_text_part, reasoning_text,
    response_id, response_object, status_of,
};
use super::tools::{ClientTool, InputReader};
use crate::canonical::{
    BlockStart, ContentBlock, Delta, FinishReason, StreamDecoder, StreamEncoder, StreamEvent,
    ToolCall, Usage,
};

// ---------------------------------------------------------------------------------------------
// Decoder
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct WireEvent<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    output_index: Option<u64>,
    #[serde(borrow)]
    item_id: Option<Cow<'a, str>>,
    summary_index: Option<u64>,
    delta: Option<String>,
    text: Option<String>,
    refusal: Option<String>,
    arguments: Option<String>,
    input: Option<String>,
    item: Option<Value>,
    response: Option<WireResponse>,
    // `error` events carry these at the top level.
    code: Option<Value>,
    message: Option<String>,
}

#[derive(Deserialize)]
struct WireResponse {
    id: Option<String>,
    model: Option<String>,
    status: Option<String>,
    incomplete_details: Option<Value>,
    error: Option<Value>,
    output: Option<Vec<Value>>,
    usage: Option<WireUsage>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Message,
    Call,
    /// A `custom_tool_call`: its input text becomes canonical `{"input": …}` arguments.
    Custom,
    Reasoning,
    /// Hosted tool calls and anything newer: no canonical block.
    Other,
}

#[derive(Debug)]
struct Item {
    output_index: u64,
    id: String,
    kind: Kind,
    /// Canonical block, once opened.
    block: Option<u32>,
    /// The block was closed: nothing more goes into it.
    closed: bool,
    /// Some text or arguments arrived as deltas (so `*.done` repeats need not be used).
    got_delta: bool,
    /// Last reasoning summary part seen, to separate parts with a newline.
    summary_index: Option<u64>,
}

/// Responses SSE (from an OpenAI upstream) → canonical events.
#[derive(Debug, Default)]
pub struct Decoder {
    started: bool,
    next_block: u32,
    items: Vec<Item>,
    has_calls: bool,
    /// `Stop` or `Error` has been emitted: nothing more comes out.
    done: bool,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    fn start(&mut self, resp: Option<&WireResponse>, out: &mut Vec<StreamEvent>) {
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: resp.and_then(|r| r.id.clone()).unwrap_or_default(),
                model: resp.and_then(|r| r.model.clone()).unwrap_or_default(),
                usage: Usage::default(),
            });
        }
    }

    /// The item an event refers to, by output_index, else by item_id.
    fn find(&self, output_index: Option<u64>, item_id: Option<&str>) -> Option<usize> {
        if let Some(i) = output_index {
            if let Some(pos) = self.items.iter().position(|it| it.output_index == i) {
                return Some(pos);
            }
        }
        let id = item_id.filter(|s| !s.is_empty())?;
        self.items.iter().position(|it| it.id == id)
    }

    /// The item for a delta event, registering one of `kind` when the upstream skipped
    /// `output_item.added`.
    fn find_or_add(&mut self, ev: &WireEvent<'_>, kind: Kind) -> usize {
        match self.find(ev.output_index, ev.item_id.as_deref()) {
            Some(pos) => pos,
            None => self.add(
                ev.output_index
                    .unwrap_or_else(|| self.items.len() as u64 + 1_000_000),
                ev.item_id.as_deref().unwrap_or_default().to_string(),
                kind,
            ),
        }
    }

    fn add(&mut self, output_index: u64, id: String, kind: Kind) -> usize {
        self.items.push(Item {
            output_index,
            id,
            kind,
            block: None,
            closed: false,
            got_delta: false,
            summary_index: None,
        });
        self.items.len() - 1
    }

    fn open(&mut self, pos: usize, block: BlockStart, out: &mut Vec<StreamEvent>) -> Option<u32> {
        let item = self.items.get_mut(pos)?;
        if item.closed {
            return None;
        }
        if let Some(index) = item.block {
            return Some(index);
        }
        let index = self.next_block;
        self.next_block += 1;
        item.block = Some(index);
        out.push(StreamEvent::BlockStart { index, block });
        Some(index)
    }

    fn text(&mut self, pos: usize, text: String, out: &mut Vec<StreamEvent>) {
        if text.is_empty() {
            return;
        }
        let (block, delta) = match self.items.get(pos).map(|i| i.kind) {
            Some(Kind::Message) => (BlockStart::Text, Delta::Text(text)),
            Some(Kind::Reasoning) => (BlockStart::Thinking, Delta::Thinking(text)),
            Some(kind @ (Kind::Call | Kind::Custom)) => {
                let Some(index) = self.items.get(pos).and_then(|i| i.block) else {
                    return;
                };
                if self.items.get(pos).is_some_and(|i| !i.closed) {
                    let text = if kind == Kind::Custom {
                        json_string_body(&text)
                    } else {
                        text
                    };
                    out.push(StreamEvent::BlockDelta {
                        index,
                        delta: Delta::ToolArguments(text),
                    });
                }
                return;
            }
            _ => return,
        };
        if let Some(index) = self.open(pos, block, out) {
            out.push(StreamEvent::BlockDelta { index, delta });
        }
    }

    fn close(&mut self, pos: usize, out: &mut Vec<StreamEvent>) {
        if let Some(item) = self.items.get_mut(pos) {
            if !item.closed {
                item.closed = true;
                if let Some(index) = item.block {
                    if item.kind == Kind::Custom {
                        out.push(StreamEvent::BlockDelta {
                            index,
                            delta: Delta::ToolArguments("\"}".into()),
                        });
                    }
                    out.push(StreamEvent::BlockStop { index });
                }
            }
        }
    }

    fn close_all(&mut self, out: &mut Vec<StreamEvent>) {
        for pos in 0..self.items.len() {
            self.close(pos, out);
        }
    }

    fn item_added(&mut self, ev: &WireEvent<'_>, out: &mut Vec<StreamEvent>) {
        let Some(Value::Object(item)) = &ev.item else {
            return;
        };
        let output_index = ev.output_index.unwrap_or(self.items.len() as u64);
        if self.find(Some(output_index), None).is_some() {
            return;
        }
        let id = str_field(item, "id").to_string();
        let kind = match str_field(item, "type") {
            "message" => Kind::Message,
            "function_call" => Kind::Call,
            "custom_tool_call" => Kind::Custom,
            "reasoning" => Kind::Reasoning,
            _ => Kind::Other,
        };
        let pos = self.add(output_index, id, kind);
        if matches!(kind, Kind::Call | Kind::Custom) {
            self.has_calls = true;
            let namespace = item.get("namespace").and_then(Value::as_str);
            let block = BlockStart::ToolCall {
                id: str_field(item, "call_id").to_string(),
                name: super::tools::flat_name(namespace, str_field(item, "name")),
            };
            let index = self.open(pos, block, out);
            if let (Kind::Custom, Some(index)) = (kind, index) {
                out.push(StreamEvent::BlockDelta {
                    index,
                    delta: Delta::ToolArguments("{\"input\":\"".into()),
                });
            }
            let arguments = str_field(
                item,
                if kind == Kind::Custom {
                    "input"
                } else {
                    "arguments"
                },
            );
            if !arguments.is_empty() {
                self.text(pos, arguments.to_string(), out);
                if let Some(it) = self.items.get_mut(pos) {
                    it.got_delta = true;
                }
            }
        }
    }

    /// `output_item.done`: fills in what no delta carried, then closes the block.
    fn item_done(&mut self, ev: &WireEvent<'_>, out: &mut Vec<StreamEvent>) {
        let Some(Value::Object(item)) = &ev.item else {
            return;
        };
        let pos = match self.find(ev.output_index, Some(str_field(item, "id"))) {
            Some(pos) => pos,
            None => {
                // Never announced: take it whole.
                let added = WireEvent {
                    item: ev.item.clone(),
                    ..empty_event(ev.output_index)
                };
                self.item_added(&added, out);
                match self.find(ev.output_index, Some(str_field(item, "id"))) {
                    Some(pos) => pos,
                    None => return,
                }
            }
        };
        if self.items.get(pos).is_some_and(|i| !i.got_delta) {
            let text = match self.items.get(pos).map(|i| i.kind) {
                Some(Kind::Message) => {
                    let mut blocks = Vec::new();
                    item_blocks(&Value::Object(item.clone()), &mut blocks);
                    blocks
                        .iter()
                        .filter_map(|b| match b {
                            ContentBlock::Text(t) => Some(t.text.as_str()),
                            _ => None,
                        })
                        .collect::<String>()
                }
                Some(Kind::Reasoning) => reasoning_text(item),
                Some(Kind::Call) => str_field(item, "arguments").to_string(),
                Some(Kind::Custom) => str_field(item, "input").to_string(),
                _ => String::new(),
            };
            self.text(pos, text, out);
        }
        self.close(pos, out);
    }

    fn delta(&mut self, ev: WireEvent<'_>, kind: Kind, out: &mut Vec<StreamEvent>) {
        let pos = self.find_or_add(&ev, kind);
        let mut text = ev.delta.unwrap_or_default();
        if let Some(item) = self.items.get_mut(pos) {
            item.got_delta = true;
            if kind == Kind::Reasoning {
                if let Some(si) = ev.summary_index {
                    if item.summary_index.is_some_and(|prev| prev != si) && !text.is_empty() {
                        text.insert(0, '\n');
                    }
                    item.summary_index = Some(si);
                }
            }
        }
        self.text(pos, text, out);
    }

    /// `*.done` events repeat the full text: used only when no delta came before.
    fn done_text(&mut self, ev: WireEvent<'_>, kind: Kind, out: &mut Vec<StreamEvent>) {
        let pos = self.find_or_add(&ev, kind);
        if self.items.get(pos).is_some_and(|i| i.got_delta) {
            return;
        }
        let text = ev
            .text
            .or(ev.refusal)
            .or(ev.arguments)
            .or(ev.input)
            .unwrap_or_default();
        if !text.is_empty() {
            if let Some(item) = self.items.get_mut(pos) {
                item.got_delta = true;
            }
            self.text(pos, text, out);
        }
    }

    fn complete(&mut self, resp: Option<WireResponse>, out: &mut Vec<StreamEvent>) {
        self.start(resp.as_ref(), out);
        let Some(resp) = resp else {
            self.end(None, Usage::default(), out);
            return;
        };
        // An upstream that sent no item events still says everything in the final response.
        if self.next_block == 0 {
            let mut blocks = Vec::new();
            for item in resp.output.iter().flatten() {
                item_blocks(item, &mut blocks);
            }
            for block in blocks {
                self.synthesize(block, out);
            }
        }
        let has_calls = self.has_calls
            || resp.output.iter().flatten().any(|i| {
                matches!(
                    i.get("type").and_then(Value::as_str),
                    Some("function_call" | "custom_tool_call")
                )
            });
        let reason = resp
            .incomplete_details
            .as_ref()
            .and_then(|d| d.get("reason"))
            .and_then(Value::as_str);
        let finish = finish_of(resp.status.as_deref(), reason, has_calls);
        let usage = resp.usage.map(|u| u.to_canonical()).unwrap_or_default();
        self.end(finish, usage, out);
    }

    fn synthesize(&mut self, block: ContentBlock, out: &mut Vec<StreamEvent>) {
        let (start, delta) = match block {
            ContentBlock::Text(t) => (BlockStart::Text, Delta::Text(t.text)),
            ContentBlock::Thinking { text, .. } => (BlockStart::Thinking, Delta::Thinking(text)),
            ContentBlock::ToolCall(ToolCall {
                id,
                name,
                arguments,
            }) => (
                BlockStart::ToolCall { id, name },
                Delta::ToolArguments(arguments),
            ),
            _ => return,
        };
        let empty = match &delta {
            Delta::Text(s) | Delta::Thinking(s) | Delta::ToolArguments(s) => s.is_empty(),
            Delta::Signature(_) => true,
        };
        if empty && !matches!(start, BlockStart::ToolCall { .. }) {
            return;
        }
        let index = self.next_block;
        self.next_block += 1;
        out.push(StreamEvent::BlockStart {
            index,
            block: start,
        });
        if !empty {
            out.push(StreamEvent::BlockDelta { index, delta });
        }
        out.push(StreamEvent::BlockStop { index });
    }

    fn end(&mut self, reason: Option<FinishReason>, usage: Usage, out: &mut Vec<StreamEvent>) {
        if self.done {
            return;
        }
        self.start(None, out);
        self.close_all(out);
        out.push(StreamEvent::Finish {
            reason,
            stop_sequence: None,
            usage,
        });
        out.push(StreamEvent::Stop);
        self.done = true;
    }

    fn fail(&mut self, code: Option<&Value>, message: String, out: &mut Vec<StreamEvent>) {
        let kind = match code {
            Some(Value::String(c)) if !c.is_empty() => canonical_error_kind(c),
            Some(Value::Number(n)) => n.to_string(),
            _ => "api_error".to_string(),
        };
        self.done = true;
        out.push(StreamEvent::Error { kind, message });
    }
}

fn empty_event<'a>(output_index: Option<u64>) -> WireEvent<'a> {
    WireEvent {
        kind: None,
        output_index,
        item_id: None,
        summary_index: None,
        delta: None,
        text: None,
        refusal: None,
        arguments: None,
        input: None,
        item: None,
        response: None,
        code: None,
        message: None,
    }
}

/// `text` as it appears inside a JSON string literal (escaped, without the quotes).
fn json_string_body(text: &str) -> String {
    let quoted = Value::String(text.to_string()).to_string();
    quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or_default()
        .to_string()
}

fn str_field<'a>(obj: &'a Map<String, Value>, key: &str) -> &'a str {
    obj.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// OpenAI error codes under the canonical names the other dialects render.
fn canonical_error_kind(code: &str) -> String {
    match code {
        "server_error" => "api_error".into(),
        "rate_limit_exceeded" => "rate_limit_error".into(),
        other => other.into(),
    }
}

/// Canonical error kinds as Responses error codes.
fn responses_error_code(kind: &str) -> &str {
    match kind {
        "api_error" | "overloaded_error" | "timeout_error" => "server_error",
        "rate_limit_error" => "rate_limit_exceeded",
        other => other,
    }
}

impl StreamDecoder for Decoder {
    fn decode(&mut self, event: Option<&str>, data: &str, out: &mut Vec<StreamEvent>) {
        if self.done {
            return;
        }
        let data = data.trim();
        if data.is_empty() || data == "[DONE]" {
            return;
        }
        let ev: WireEvent<'_> = match serde_json::from_str(data) {
            Ok(ev) => ev,
            Err(e) => {
                self.done = true;
                out.push(StreamEvent::Error {
                    kind: "api_error".into(),
                    message: format!("malformed upstream event: {e}"),
                });
                return;
            }
        };
        let kind = ev
            .kind
            .clone()
            .or_else(|| event.map(Cow::Borrowed))
            .unwrap_or_default();
        match kind.as_ref() {
            "response.created" | "response.in_progress" | "response.queued" => {
                self.start(ev.response.as_ref(), out);
            }
            "response.output_item.added" => {
                self.start(None, out);
                self.item_added(&ev, out);
            }
            "response.output_item.done" => {
                self.start(None, out);
                self.item_done(&ev, out);
            }
            "response.output_text.delta" | "response.refusal.delta" => {
                self.start(None, out);
                self.delta(ev, Kind::Message, out);
            }
            "response.output_text.done" | "response.refusal.done" => {
                self.start(None, out);
                self.done_text(ev, Kind::Message, out);
            }
            "response.function_call_arguments.delta" => {
                self.start(None, out);
                self.delta(ev, Kind::Call, out);
            }
            "response.function_call_arguments.done" => {
                self.start(None, out);
                self.done_text(ev, Kind::Call, out);
            }
            "response.custom_tool_call_input.delta" => {
                self.start(None, out);
                self.delta(ev, Kind::Custom, out);
            }
            "response.custom_tool_call_input.done" => {
                self.start(None, out);
                self.done_text(ev, Kind::Custom, out);
            }
            "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
                self.start(None, out);
                self.delta(ev, Kind::Reasoning, out);
            }
            "response.reasoning_summary_text.done" | "response.reasoning_text.done" => {
                self.start(None, out);
                self.done_text(ev, Kind::Reasoning, out);
            }
            "response.completed" | "response.incomplete" => self.complete(ev.response, out),
            "response.failed" => {
                let err = ev.response.and_then(|r| r.error);
                let (code, message) = match &err {
                    Some(Value::Object(e)) => (
                        e.get("code"),
                        e.get("message")
                            .and_then(Value::as_str)
                            .unwrap_or("response failed")
                            .to_string(),
                    ),
                    _ => (None, "response failed".to_string()),
                };
                self.fail(code, message, out);
            }
            "error" => {
                let message = ev.message.unwrap_or_default();
                self.fail(ev.code.as_ref(), message, out);
            }
            // content_part.*, reasoning_summary_part.*, hosted tool progress, keep-alives.
            _ => {}
        }
    }

    fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        self.end(None, Usage::default(), out);
    }
}

// ---------------------------------------------------------------------------------------------
// Encoder
// ---------------------------------------------------------------------------------------------

/// `response.output_text.delta`
#[derive(Serialize)]
struct TextDelta<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    sequence_number: u64,
    item_id: &'a str,
    output_index: usize,
    content_index: u32,
    delta: &'a str,
    logprobs: [(); 0],
}

/// `response.function_call_arguments.delta`
#[derive(Serialize)]
struct ArgumentsDelta<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    sequence_number: u64,
    item_id: &'a str,
    output_index: usize,
    delta: &'a str,
}

/// `response.reasoning_summary_text.delta`
#[derive(Serialize)]
struct SummaryDelta<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    sequence_number: u64,
    item_id: &'a str,
    output_index: usize,
    summary_index: u32,
    delta: &'a str,
}

/// `response.custom_tool_call_input.delta`
#[derive(Serialize)]
struct InputDelta<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    sequence_number: u64,
    item_id: &'a str,
    output_index: usize,
    delta: &'a str,
}

#[derive(Debug)]
enum OutKind {
    Message,
    Call {
        call_id: String,
        name: String,
        /// Declared inside a namespace: goes out under its own name and namespace.
        client: Option<ClientTool>,
    },
    /// A call of a tool the client declared as `custom`: its `input` text is streamed out of the
    /// canonical `{"input": …}` arguments.
    Custom {
        call_id: String,
        tool: ClientTool,
        reader: InputReader,
    },
    Reasoning {
        part_open: bool,
    },
}

#[derive(Debug)]
struct OutItem {
    /// Canonical block index.
    block: u32,
    id: String,
    kind: OutKind,
    /// Text, arguments or summary so far.
    text: String,
    done: bool,
    /// The final item, once done.
    value: Value,
}

/// Canonical events → Responses SSE bytes (for Codex and other Responses clients).
#[derive(Debug)]
pub struct Encoder {
    created: u64,
    reply: Reply,
    id: String,
    model: String,
    seq: u64,
    started: bool,
    items: Vec<OutItem>,
    usage: Usage,
    /// A terminal event was written.
    closed: bool,
}

impl Encoder {
    pub fn new(created: u64) -> Self {
        Self::for_reply(created, Reply::default())
    }

    /// An encoder answering the request `reply` describes (its tools, the id the gateway chose).
    pub fn for_reply(created: u64, reply: Reply) -> Self {
        Encoder {
            created,
            reply,
            id: String::new(),
            model: String::new(),
            seq: 0,
            started: false,
            items: Vec::new(),
            usage: Usage::default(),
            closed: false,
        }
    }

    fn next_seq(&mut self) -> u64 {
        let n = self.seq;
        self.seq += 1;
        n
    }

    /// `event: <type>` and the data line, serialized straight into `out` (serde_json never emits a
    /// raw newline, so the payload is one `data:` line).
    fn write<T: Serialize>(out: &mut Vec<u8>, kind: &str, value: &T) {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\ndata: ");
        // Writing plain structs and Values into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, value);
        out.extend_from_slice(b"\n\n");
    }

    /// A non-hot-path event: `fields` plus `type` and `sequence_number`.
    fn emit(&mut self, out: &mut Vec<u8>, kind: &str, fields: Value) {
        let mut obj = Map::new();
        obj.insert("type".into(), Value::String(kind.to_string()));
        obj.insert("sequence_number".into(), self.next_seq().into());
        if let Value::Object(f) = fields {
            obj.extend(f);
        }
        Self::write(out, kind, &Value::Object(obj));
    }

    fn head<'a>(&'a self, status: &'a str, reason: Option<&'a str>, error: Value) -> Head<'a> {
        Head {
            id: &self.id,
            created_at: self.created,
            model: &self.model,
            status,
            incomplete_reason: reason,
            error,
            store: self.reply.store,
            previous_response_id: self.reply.previous_response_id.as_deref(),
        }
    }

    fn ensure_started(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        if let Some(chosen) = &self.reply.id {
            self.id.clone_from(chosen);
        }
        if self.id.is_empty() {
            self.id = response_id("");
        }
        let resp = response_object(
            self.head("in_progress", None, Value::Null),
            Vec::new(),
            None,
        );
        self.emit(out, "response.created", json!({"response": resp}));
        let resp = response_object(
            self.head("in_progress", None, Value::Null),
            Vec::new(),
            None,
        );
        self.emit(out, "response.in_progress", json!({"response": resp}));
    }

    fn position(&self, block: u32) -> Option<usize> {
        self.items
            .iter()
            .rposition(|it| it.block == block && !it.done)
    }

    fn add_item(&mut self, block: u32, kind: OutKind, out: &mut Vec<u8>) -> usize {
        let n = self.items.len();
        let (id, item) = match &kind {
            OutKind::Message => {
                let id = item_id("msg", &self.id, n);
                let item = message_item(&id, "in_progress", Vec::new());
                (id, item)
            }
            OutKind::Call {
                call_id,
                name,
                client,
            } => {
                let id = call_item_id(call_id, client.as_ref());
                let call = ToolCall {
                    id: call_id.clone(),
                    name: name.clone(),
                    arguments: String::new(),
                };
                let item = match client {
                    Some(t) => client_call_item(&id, "in_progress", &call, t),
                    None => function_call_item(&id, "in_progress", &call),
                };
                (id, item)
            }
            OutKind::Custom { call_id, tool, .. } => {
                let id = call_item_id(call_id, Some(tool));
                let item = custom_call_item(&id, call_id, tool, "");
                (id, item)
            }
            OutKind::Reasoning { .. } => {
                let id = item_id("rs", &self.id, n);
                let item = json!({"id": id, "type": "reasoning", "summary": []});
                (id, item)
            }
        };
        self.emit(
            out,
            "response.output_item.added",
            json!({"output_index": n, "item": item}),
        );
        if matches!(kind, OutKind::Message) {
            self.emit(
                out,
                "response.content_part.added",
                json!({"item_id": id, "output_index": n, "content_index": 0, "part": output_text_part("")}),
            );
        }
        self.items.push(OutItem {
            block,
            id,
            kind,
            text: String::new(),
            done: false,
            value: Value::Null,
        });
        n
    }

    fn delta(&mut self, block: u32, delta: &Delta, out: &mut Vec<u8>) {
        let pos = match (self.position(block), delta) {
            (Some(pos), _) => pos,
            // A text or thinking delta without its BlockStart still gets a proper item.
            (None, Delta::Text(_)) => self.add_item(block, OutKind::Message, out),
            (None, Delta::Thinking(t)) if !t.is_empty() => {
                self.add_item(block, OutKind::Reasoning { part_open: false }, out)
            }
            (None, _) => return,
        };
        let seq = self.seq;
        let Some(item) = self.items.get_mut(pos) else {
            return;
        };
        match (&mut item.kind, delta) {
            (OutKind::Message, Delta::Text(text)) => {
                if text.is_empty() {
                    return;
                }
                item.text.push_str(text);
                self.seq += 1;
                Self::write(
                    out,
                    "response.output_text.delta",
                    &TextDelta {
                        kind: "response.output_text.delta",
                        sequence_number: seq,
                        item_id: &item.id,
                        output_index: pos,
                        content_index: 0,
                        delta: text,
                        logprobs: [],
                    },
                );
            }
            (OutKind::Call { .. }, Delta::ToolArguments(args)) => {
                if args.is_empty() {
                    return;
                }
                item.text.push_str(args);
                self.seq += 1;
                Self::write(
                    out,
                    "response.function_call_arguments.delta",
                    &ArgumentsDelta {
                        kind: "response.function_call_arguments.delta",
                        sequence_number: seq,
                        item_id: &item.id,
                        output_index: pos,
                        delta: args,
                    },
                );
            }
            (OutKind::Custom { reader, .. }, Delta::ToolArguments(args)) => {
                let text = reader.push(args);
                if text.is_empty() {
                    return;
                }
                self.seq += 1;
                Self::write(
                    out,
                    "response.custom_tool_call_input.delta",
                    &InputDelta {
                        kind: "response.custom_tool_call_input.delta",
                        sequence_number: seq,
                        item_id: &item.id,
                        output_index: pos,
                        delta: &text,
                    },
                );
            }
            (OutKind::Reasoning { part_open }, Delta::Thinking(text)) => {
                if text.is_empty() {
                    return;
                }
                if !*part_open {
                    *part_open = true;
                    let id = item.id.clone();
                    self.emit(
                        out,
                        "response.reasoning_summary_part.added",
                        json!({"item_id": id, "output_index": pos, "summary_index": 0,
                            "part": {"type": "summary_text", "text": ""}}),
                    );
                }
                let seq = self.next_seq();
                let Some(item) = self.items.get_mut(pos) else {
                    return;
                };
                item.text.push_str(text);
                Self::write(
                    out,
                    "response.reasoning_summary_text.delta",
                    &SummaryDelta {
                        kind: "response.reasoning_summary_text.delta",
                        sequence_number: seq,
                        item_id: &item.id,
                        output_index: pos,
                        summary_index: 0,
                        delta: text,
                    },
                );
            }
            // Signatures (Anthropic) have no place in a Responses stream.
            _ => {}
        }
    }

    fn finish_item(&mut self, pos: usize, out: &mut Vec<u8>) {
        let Some(item) = self.items.get_mut(pos) else {
            return;
        };
        if item.done {
            return;
        }
        item.done = true;
        let id = item.id.clone();
        let text = std::mem::take(&mut item.text);
        let (events, value): (Vec<(&str, Value)>, Value) = match &mut item.kind {
            OutKind::Message => {
                let part = output_text_part(&text);
                let events = vec![
                    (
                        "response.output_text.done",
                        json!({"item_id": id, "output_index": pos, "content_index": 0, "text": text, "logprobs": []}),
                    ),
                    (
                        "response.content_part.done",
                        json!({"item_id": id, "output_index": pos, "content_index": 0, "part": part}),
                    ),
                ];
                (events, message_item(&id, "completed", vec![part]))
            }
            OutKind::Call {
                call_id,
                name,
                client,
            } => {
                let call = ToolCall {
                    id: call_id.clone(),
                    name: name.clone(),
                    arguments: text,
                };
                let shown = client.as_ref().map_or(&call.name, |t| &t.name);
                let events = vec![(
                    "response.function_call_arguments.done",
                    json!({"item_id": id, "output_index": pos, "name": shown, "arguments": call.arguments}),
                )];
                let value = match client {
                    Some(t) => client_call_item(&id, "completed", &call, t),
                    None => function_call_item(&id, "completed", &call),
                };
                (events, value)
            }
            OutKind::Custom {
                call_id,
                tool,
                reader,
            } => {
                let mut events = Vec::new();
                // Arguments that were not `{"input": …}`-shaped are read whole now.
                let rest = reader.finish();
                if !rest.is_empty() {
                    events.push((
                        "response.custom_tool_call_input.delta",
                        json!({"item_id": id, "output_index": pos, "delta": rest}),
                    ));
                }
                let input = reader.input();
                events.push((
                    "response.custom_tool_call_input.done",
                    json!({"item_id": id, "output_index": pos, "input": input}),
                ));
                (events, custom_call_item(&id, call_id, tool, input))
            }
            OutKind::Reasoning { part_open } => {
                let mut events = Vec::new();
                let summary = if *part_open {
                    let part = json!({"type": "summary_text", "text": text});
                    events.push((
                        "response.reasoning_summary_text.done",
                        json!({"item_id": id, "output_index": pos, "summary_index": 0, "text": text}),
                    ));
                    events.push((
                        "response.reasoning_summary_part.done",
                        json!({"item_id": id, "output_index": pos, "summary_index": 0, "part": part}),
                    ));
                    vec![part]
                } else {
                    Vec::new()
                };
                (
                    events,
                    json!({"id": id, "type": "reasoning", "summary": summary}),
                )
            }
        };
        item.value = value.clone();
        for (kind, fields) in events {
            self.emit(out, kind, fields);
        }
        self.emit(
            out,
            "response.output_item.done",
            json!({"output_index": pos, "item": value}),
        );
    }

    fn finish_all(&mut self, out: &mut Vec<u8>) {
        for pos in 0..self.items.len() {
            self.finish_item(pos, out);
        }
    }

    fn output(&self) -> Vec<Value> {
        self.items
            .iter()
            .filter(|it| it.done)
            .map(|it| it.value.clone())
            .collect()
    }

    fn complete(&mut self, reason: Option<&FinishReason>, out: &mut Vec<u8>) {
        self.ensure_started(out);
        self.finish_all(out);
        let (status, detail) = status_of(reason);
        let (status, detail) = (status.to_string(), detail);
        let kind = match status.as_str() {
            "incomplete" => "response.incomplete",
            "failed" => "response.failed",
            _ => "response.completed",
        };
        let usage = self.usage;
        let resp = response_object(
            self.head(&status, detail, Value::Null),
            self.output(),
            Some(&usage),
        );
        self.emit(out, kind, json!({"response": resp}));
        self.closed = true;
    }
}

impl StreamEncoder for Encoder {
    fn encode(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        if self.closed {
            return;
        }
        match event {
            StreamEvent::Start { id, model, usage } => {
                if !self.started {
                    self.id = match &self.reply.id {
                        Some(chosen) => chosen.clone(),
                        None => response_id(id),
                    };
                    self.model.clone_from(model);
                }
                self.usage.merge_max(usage);
                self.ensure_started(out);
            }
            StreamEvent::BlockStart { index, block } => {
                self.ensure_started(out);
                let kind = match block {
                    BlockStart::Text => OutKind::Message,
                    // Opened by its first text: a thinking block that is only a signature
                    // (Gemini's, Anthropic's) makes no empty reasoning item.
                    BlockStart::Thinking => return,
                    BlockStart::ToolCall { id, name } => match self.reply.tools.get(name) {
                        Some(t) if t.custom => OutKind::Custom {
                            call_id: id.clone(),
                            tool: t.clone(),
                            reader: InputReader::default(),
                        },
                        client => OutKind::Call {
                            call_id: id.clone(),
                            name: name.clone(),
                            client: client.cloned(),
                        },
                    },
                    // Opaque Anthropic data: nothing a Responses client can use.
                    BlockStart::RedactedThinking { .. } => return,
                };
                self.add_item(*index, kind, out);
            }
            StreamEvent::BlockDelta { index, delta } => {
                self.ensure_started(out);
                self.delta(*index, delta, out);
            }
            StreamEvent::BlockStop { index } => {
                if let Some(pos) = self.position(*index) {
                    self.finish_item(pos, out);
                }
            }
            StreamEvent::Finish { reason, usage, .. } => {
                self.usage.merge_max(usage);
                self.complete(reason.as_ref(), out);
            }
            // A stream that stops without Finish still ends the way Codex needs.
            StreamEvent::Stop => self.complete(None, out),
            StreamEvent::Ping => out.extend_from_slice(b": ping\n\n"),
            StreamEvent::Error { kind, message } => {
                self.ensure_started(out);
                let error = json!({"code": responses_error_code(kind), "message": message});
                let usage = self.usage;
                let resp = response_object(
                    self.head("failed", None, error),
                    self.output(),
                    Some(&usage),
                );
                self.emit(out, "response.failed", json!({"response": resp}));
                self.closed = true;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::canonical::ResponseAccumulator;
    use crate::sse::SseParser;

    fn decode_all(events: &[&str]) -> Vec<StreamEvent> {
        let mut d = Decoder::new();
        let mut out = Vec::new();
        for e in events {
            d.decode(None, e, &mut out);
        }
        d.finish(&mut out);
        out
    }

    fn parse_sse(bytes: &[u8]) -> Vec<(String, Value)> {
        let mut p = SseParser::new();
        p.push(bytes);
        std::iter::from_fn(|| p.next_event())
            .map(|e| (e.event.unwrap(), serde_json::from_str(&e.data).unwrap()))
            .collect()
    }

    #[test]
    fn decoder_without_item_events_uses_the_final_response() {
        let evs = decode_all(&[
            r#"{"type":"response.created","response":{"id":"resp_1","model":"gpt-5","status":"in_progress","output":[]}}"#,
            r#"{"type":"response.completed","response":{"id":"resp_1","model":"gpt-5","status":"completed","output":[
                {"type":"message","id":"msg_1","role":"assistant","content":[{"type":"output_text","text":"hi","annotations":[]}]},
                {"type":"function_call","id":"fc_1","call_id":"call_1","name":"f","arguments":"{}"}
            ],"usage":{"input_tokens":5,"output_tokens":2,"total_tokens":7}}}"#,
        ]);
        let mut acc = ResponseAccumulator::new();
        evs.iter().for_each(|e| acc.push(e));
        assert!(acc.finished);
        let r = acc.into_response();
        assert_eq!(r.id, "resp_1");
        assert_eq!(r.content[0], ContentBlock::text("hi"));
        assert!(matches!(&r.content[1], ContentBlock::ToolCall(c) if c.id == "call_1"));
        assert_eq!(r.finish_reason, Some(FinishReason::ToolUse));
        assert_eq!(r.usage.output_tokens, 2);
    }

    #[test]
    fn decoder_done_events_fill_in_missing_deltas_and_errors_end() {
        let evs = decode_all(&[
            r#"{"type":"response.output_item.added","output_index":0,"item":{"type":"message","id":"m","content":[]}}"#,
            r#"{"type":"response.output_text.done","output_index":0,"item_id":"m","content_index":0,"text":"whole"}"#,
            r#"{"type":"response.output_item.done","output_index":0,"item":{"type":"message","id":"m","content":[{"type":"output_text","text":"whole"}]}}"#,
            r#"{"type":"error","code":"server_error","message":"boom","param":null}"#,
            r#"{"type":"response.completed","response":{}}"#,
        ]);
        let mut acc = ResponseAccumulator::new();
        evs.iter().for_each(|e| acc.push(e));
        assert_eq!(acc.error, Some(("api_error".into(), "boom".into())));
        assert!(!acc.finished);
        assert_eq!(
            acc.into_response().content,
            vec![ContentBlock::text("whole")]
        );
        let evs = decode_all(&["{oops"]);
        assert!(
            matches!(&evs[..], [StreamEvent::Error { message, .. }] if message.starts_with("malformed upstream event"))
        );
        // Truncated upstream: closed, finished once.
        let evs = decode_all(&[
            r#"{"type":"response.output_item.added","output_index":0,"item":{"type":"function_call","id":"fc","call_id":"c","name":"f","arguments":""}}"#,
            r#"{"type":"response.function_call_arguments.delta","output_index":0,"item_id":"fc","delta":"{\"a\""}"#,
        ]);
        assert_eq!(evs.last(), Some(&StreamEvent::Stop));
        assert!(evs.contains(&StreamEvent::BlockStop { index: 0 }));
    }

    #[test]
    fn encoder_sequence_for_thinking_and_error() {
        let mut enc = Encoder::new(1_700_000_000);
        let mut out = Vec::new();
        for ev in [
            StreamEvent::Start {
                id: "msg_01".into(),
                model: "claude".into(),
                usage: Usage::default(),
            },
            StreamEvent::BlockStart {
                index: 0,
                block: BlockStart::Thinking,
            },
            StreamEvent::BlockDelta {
                index: 0,
                delta: Delta::Thinking("hm".into()),
            },
            StreamEvent::BlockDelta {
                index: 0,
                delta: Delta::Signature("sig".into()),
            },
            StreamEvent::BlockStop { index: 0 },
            StreamEvent::Error {
                kind: "overloaded_error".into(),
                message: "busy".into(),
            },
            StreamEvent::Stop,
        ] {
            enc.encode(&ev, &mut out);
        }
        let evs = parse_sse(&out);
        let kinds: Vec<&str> = evs.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.reasoning_summary_part.added",
                "response.reasoning_summary_text.delta",
                "response.reasoning_summary_text.done",
                "response.reasoning_summary_part.done",
                "response.output_item.done",
                "response.failed",
            ]
        );
        for (i, (k, v)) in evs.iter().enumerate() {
            assert_eq!(v["sequence_number"], i as u64, "{k}");
            assert_eq!(v["type"], k.as_str());
        }
        assert_eq!(evs[0].1["response"]["id"], "resp_msg_01");
        assert_eq!(evs[0].1["response"]["created_at"], 1_700_000_000u64);
        assert_eq!(
            evs[7].1["item"]["summary"],
            json!([{"type": "summary_text", "text": "hm"}])
        );
        let failed = &evs[8].1["response"];
        assert_eq!(failed["status"], "failed");
        assert_eq!(
            failed["error"],
            json!({"code": "server_error", "message": "busy"})
        );
        assert_eq!(failed["output"].as_array().unwrap().len(), 1);
    }
}
