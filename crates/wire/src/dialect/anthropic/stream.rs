//! Anthropic streaming: `message_start`, `content_block_*`, `message_delta`, `message_stop`.
//!
//! Deltas are the bulk of a stream, so they are read and written through small serde structs with
//! borrowed fields instead of `serde_json::Value`.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::{ErrorIn, UsageIn, UsageOut, finish_reason_from_str, finish_reason_str};
use crate::canonical::{BlockStart, Delta, StreamDecoder, StreamEncoder, StreamEvent, Usage};
use crate::sse::write_event;

// ---------------------------------------------------------------------------------------------
// Decoder
// ---------------------------------------------------------------------------------------------

/// What became of one Anthropic content block index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Unseen,
    /// A block canonical cannot carry (server tool use and results): its deltas and stop are dropped.
    Skipped,
    Open(u32),
    Closed(u32),
}

/// Anthropic SSE → canonical events.
#[derive(Debug)]
pub struct Decoder {
    /// By Anthropic index. Canonical indices are dense, so they differ once a block is skipped.
    slots: Vec<Slot>,
    next_index: u32,
    usage: UsageIn,
    finished: bool,
    stopped: bool,
    errored: bool,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    pub fn new() -> Self {
        Decoder {
            slots: Vec::new(),
            next_index: 0,
            usage: UsageIn::default(),
            finished: false,
            stopped: false,
            errored: false,
        }
    }

    fn slot(&self, index: usize) -> Slot {
        self.slots.get(index).copied().unwrap_or(Slot::Unseen)
    }

    fn set_slot(&mut self, index: usize, slot: Slot) {
        if self.slots.len() <= index {
            self.slots.resize(index + 1, Slot::Unseen);
        }
        self.slots[index] = slot;
    }

    fn close_open_blocks(&mut self, out: &mut Vec<StreamEvent>) {
        for slot in &mut self.slots {
            if let Slot::Open(i) = *slot {
                out.push(StreamEvent::BlockStop { index: i });
                *slot = Slot::Closed(i);
            }
        }
    }

    fn emit_finish(
        &mut self,
        reason: Option<String>,
        stop_sequence: Option<String>,
        out: &mut Vec<StreamEvent>,
    ) {
        if self.finished {
            return;
        }
        self.close_open_blocks(out);
        self.finished = true;
        out.push(StreamEvent::Finish {
            reason: reason.as_deref().map(finish_reason_from_str),
            stop_sequence,
            usage: self.usage.to_canonical(),
        });
    }

    fn malformed(name: &str, err: &serde_json::Error, out: &mut Vec<StreamEvent>) {
        out.push(StreamEvent::Error {
            kind: "api_error".to_string(),
            message: format!("malformed {name} event from upstream: {err}"),
        });
    }

    fn block_start(&mut self, ev: BlockStartIn<'_>, out: &mut Vec<StreamEvent>) {
        let at = ev.index as usize;
        let b = ev.content_block;
        let block = match b.kind.as_ref() {
            "text" => BlockStart::Text,
            "thinking" => BlockStart::Thinking,
            "redacted_thinking" => BlockStart::RedactedThinking {
                data: b.data.clone().unwrap_or_default(),
            },
            "tool_use" => BlockStart::ToolCall {
                id: b.id.clone().unwrap_or_default(),
                name: b.name.clone().unwrap_or_default(),
            },
            _ => {
                self.set_slot(at, Slot::Skipped);
                return;
            }
        };
        let index = self.next_index;
        self.next_index += 1;
        self.set_slot(at, Slot::Open(index));
        out.push(StreamEvent::BlockStart { index, block });
        // Anthropic starts blocks empty, but a start that already carries content must not lose it.
        let initial = match b.kind.as_ref() {
            "text" => b.text.filter(|t| !t.is_empty()).map(Delta::Text),
            "thinking" => b.thinking.filter(|t| !t.is_empty()).map(Delta::Thinking),
            "tool_use" => b
                .input
                .map(|raw| raw.get().trim())
                .filter(|raw| !raw.is_empty() && *raw != "{}")
                .map(|raw| Delta::ToolArguments(raw.to_string())),
            _ => None,
        };
        if let Some(delta) = initial {
            out.push(StreamEvent::BlockDelta { index, delta });
        }
        if let Some(sig) = b.signature.filter(|s| !s.is_empty()) {
            out.push(StreamEvent::BlockDelta {
                index,
                delta: Delta::Signature(sig),
            });
        }
    }
}

#[derive(Deserialize)]
struct TypeProbe<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
}

#[derive(Deserialize)]
struct MessageStartIn {
    message: MessageIn,
}

#[derive(Deserialize)]
struct MessageIn {
    #[serde(default)]
    id: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    usage: UsageIn,
}

#[derive(Deserialize)]
struct BlockStartIn<'a> {
    index: u32,
    #[serde(borrow)]
    content_block: BlockIn<'a>,
}

#[derive(Deserialize)]
struct BlockIn<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    data: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    thinking: Option<String>,
    #[serde(default)]
    signature: Option<String>,
    #[serde(default, borrow)]
    input: Option<&'a serde_json::value::RawValue>,
}

#[derive(Deserialize)]
struct BlockDeltaIn<'a> {
    index: u32,
    #[serde(borrow)]
    delta: DeltaIn<'a>,
}

/// Flat rather than a tagged enum: serde buffers internally tagged enums, and this is the hot path.
#[derive(Deserialize)]
struct DeltaIn<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    partial_json: Option<String>,
    #[serde(default)]
    thinking: Option<String>,
    #[serde(default)]
    signature: Option<String>,
}

#[derive(Deserialize)]
struct BlockStopIn {
    index: u32,
}

#[derive(Deserialize)]
struct MessageDeltaIn {
    #[serde(default)]
    delta: MessageDeltaBody,
    #[serde(default)]
    usage: Option<UsageIn>,
}

#[derive(Deserialize, Default)]
struct MessageDeltaBody {
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    stop_sequence: Option<String>,
}

#[derive(Deserialize)]
struct ErrorEventIn {
    error: ErrorIn,
}

impl StreamDecoder for Decoder {
    fn decode(&mut self, event: Option<&str>, data: &str, out: &mut Vec<StreamEvent>) {
        let probed;
        let name = match event {
            Some(name) => name,
            None => match serde_json::from_str::<TypeProbe<'_>>(data) {
                Ok(p) => {
                    probed = p.kind;
                    probed.as_ref()
                }
                Err(e) => return Self::malformed("unnamed", &e, out),
            },
        };
        match name {
            "message_start" => match serde_json::from_str::<MessageStartIn>(data) {
                Ok(ev) => {
                    self.usage.merge_max(&ev.message.usage);
                    out.push(StreamEvent::Start {
                        id: ev.message.id,
                        model: ev.message.model,
                        usage: self.usage.to_canonical(),
                    });
                }
                Err(e) => Self::malformed(name, &e, out),
            },
            "content_block_start" => match serde_json::from_str::<BlockStartIn<'_>>(data) {
                Ok(ev) => self.block_start(ev, out),
                Err(e) => Self::malformed(name, &e, out),
            },
            "content_block_delta" => match serde_json::from_str::<BlockDeltaIn<'_>>(data) {
                Ok(ev) => {
                    let Slot::Open(index) = self.slot(ev.index as usize) else {
                        return;
                    };
                    let d = ev.delta;
                    let delta = match d.kind.as_ref() {
                        "text_delta" => d.text.map(Delta::Text),
                        "thinking_delta" => d.thinking.map(Delta::Thinking),
                        "signature_delta" => d.signature.map(Delta::Signature),
                        "input_json_delta" => d.partial_json.map(Delta::ToolArguments),
                        // citations_delta and newer kinds have no canonical form.
                        _ => None,
                    };
                    if let Some(delta) = delta {
                        out.push(StreamEvent::BlockDelta { index, delta });
                    }
                }
                Err(e) => Self::malformed(name, &e, out),
            },
            "content_block_stop" => match serde_json::from_str::<BlockStopIn>(data) {
                Ok(ev) => {
                    if let Slot::Open(index) = self.slot(ev.index as usize) {
                        self.set_slot(ev.index as usize, Slot::Closed(index));
                        out.push(StreamEvent::BlockStop { index });
                    }
                }
                Err(e) => Self::malformed(name, &e, out),
            },
            "message_delta" => match serde_json::from_str::<MessageDeltaIn>(data) {
                Ok(ev) => {
                    if let Some(usage) = &ev.usage {
                        self.usage.merge_max(usage);
                    }
                    self.emit_finish(ev.delta.stop_reason, ev.delta.stop_sequence, out);
                }
                Err(e) => Self::malformed(name, &e, out),
            },
            "message_stop" if !self.stopped => {
                self.emit_finish(None, None, out);
                self.stopped = true;
                out.push(StreamEvent::Stop);
            }
            "ping" => out.push(StreamEvent::Ping),
            "error" => {
                self.errored = true;
                match serde_json::from_str::<ErrorEventIn>(data) {
                    Ok(ev) => out.push(StreamEvent::Error {
                        kind: ev.error.kind,
                        message: ev.error.message,
                    }),
                    Err(e) => Self::malformed(name, &e, out),
                }
            }
            _ => {}
        }
    }

    fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        // An error already ended the stream; a Finish after it would claim a completed response.
        if self.stopped || self.errored {
            return;
        }
        self.emit_finish(None, None, out);
        self.stopped = true;
        out.push(StreamEvent::Stop);
    }
}

// ---------------------------------------------------------------------------------------------
// Encoder
// ---------------------------------------------------------------------------------------------

/// Canonical events → Anthropic SSE. It repairs what a translated stream may lack: a missing
/// `message_start`, blocks left open, deltas for blocks never started, a `Stop` without `Finish`.
#[derive(Debug, Default)]
pub struct Encoder {
    started: bool,
    finished: bool,
    stopped: bool,
    /// By canonical index.
    blocks: Vec<EncBlock>,
    start_usage: Usage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum EncBlock {
    #[default]
    Unseen,
    Open,
    Closed,
}

impl Encoder {
    pub fn new() -> Self {
        Self::default()
    }

    fn block(&self, index: u32) -> EncBlock {
        self.blocks
            .get(index as usize)
            .copied()
            .unwrap_or(EncBlock::Unseen)
    }

    fn set_block(&mut self, index: u32, state: EncBlock) {
        let i = index as usize;
        if self.blocks.len() <= i {
            self.blocks.resize(i + 1, EncBlock::Unseen);
        }
        self.blocks[i] = state;
    }

    fn ensure_started(&mut self, id: &str, model: &str, usage: &Usage, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        self.start_usage = *usage;
        emit(
            out,
            "message_start",
            &MessageStartOut {
                kind: "message_start",
                message: MessageOut {
                    id,
                    kind: "message",
                    role: "assistant",
                    model,
                    content: [],
                    stop_reason: None,
                    stop_sequence: None,
                    usage: UsageOut::from_canonical(usage),
                },
            },
        );
    }

    fn start_block(&mut self, index: u32, block: &BlockStart, out: &mut Vec<u8>) {
        let content_block = match block {
            BlockStart::Text => BlockOut::Text { text: "" },
            BlockStart::Thinking => BlockOut::Thinking {
                thinking: "",
                signature: "",
            },
            BlockStart::RedactedThinking { data } => BlockOut::RedactedThinking { data },
            BlockStart::ToolCall { id, name } => BlockOut::ToolUse {
                id,
                name,
                input: EmptyObject {},
            },
        };
        self.set_block(index, EncBlock::Open);
        emit(
            out,
            "content_block_start",
            &BlockStartOut {
                kind: "content_block_start",
                index,
                content_block,
            },
        );
    }

    fn stop_block(&mut self, index: u32, out: &mut Vec<u8>) {
        self.set_block(index, EncBlock::Closed);
        emit(
            out,
            "content_block_stop",
            &BlockStopOut {
                kind: "content_block_stop",
                index,
            },
        );
    }

    fn finish(
        &mut self,
        reason: Option<&str>,
        stop_sequence: Option<&str>,
        usage: &Usage,
        out: &mut Vec<u8>,
    ) {
        self.ensure_started("", "", &Usage::default(), out);
        // Anthropic clients expect every block closed before message_delta.
        for index in 0..self.blocks.len() {
            if self.blocks[index] == EncBlock::Open {
                if let Ok(i) = u32::try_from(index) {
                    self.stop_block(i, out);
                }
            }
        }
        let mut usage = *usage;
        usage.merge_max(&self.start_usage);
        self.finished = true;
        emit(
            out,
            "message_delta",
            &MessageDeltaOut {
                kind: "message_delta",
                delta: MessageDeltaBodyOut {
                    stop_reason: reason,
                    stop_sequence,
                },
                usage: UsageOut::from_canonical(&usage),
            },
        );
    }
}

impl StreamEncoder for Encoder {
    fn encode(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        if self.stopped {
            return;
        }
        match event {
            StreamEvent::Start { id, model, usage } => self.ensure_started(id, model, usage, out),
            StreamEvent::BlockStart { index, block } => {
                if self.finished || self.block(*index) != EncBlock::Unseen {
                    return;
                }
                self.ensure_started("", "", &Usage::default(), out);
                self.start_block(*index, block, out);
            }
            StreamEvent::BlockDelta { index, delta } => {
                if self.finished {
                    return;
                }
                match self.block(*index) {
                    EncBlock::Open => {}
                    EncBlock::Closed => return,
                    EncBlock::Unseen => {
                        self.ensure_started("", "", &Usage::default(), out);
                        let block = match delta {
                            Delta::Text(_) => BlockStart::Text,
                            Delta::Thinking(_) | Delta::Signature(_) => BlockStart::Thinking,
                            Delta::ToolArguments(_) => BlockStart::ToolCall {
                                id: String::new(),
                                name: String::new(),
                            },
                        };
                        self.start_block(*index, &block, out);
                    }
                }
                let delta = match delta {
                    Delta::Text(text) => DeltaOut::Text { text },
                    Delta::Thinking(thinking) => DeltaOut::Thinking { thinking },
                    Delta::Signature(signature) => DeltaOut::Signature { signature },
                    Delta::ToolArguments(partial_json) => DeltaOut::InputJson { partial_json },
                };
                emit(
                    out,
                    "content_block_delta",
                    &BlockDeltaOut {
                        kind: "content_block_delta",
                        index: *index,
                        delta,
                    },
                );
            }
            StreamEvent::BlockStop { index } => {
                if self.block(*index) == EncBlock::Open {
                    self.stop_block(*index, out);
                }
            }
            StreamEvent::Finish {
                reason,
                stop_sequence,
                usage,
            } => {
                if !self.finished {
                    self.finish(
                        reason.as_ref().map(finish_reason_str),
                        stop_sequence.as_deref(),
                        usage,
                        out,
                    );
                }
            }
            StreamEvent::Stop => {
                if !self.finished {
                    let usage = self.start_usage;
                    self.finish(None, None, &usage, out);
                }
                self.stopped = true;
                emit(
                    out,
                    "message_stop",
                    &TypeOnly {
                        kind: "message_stop",
                    },
                );
            }
            StreamEvent::Ping => emit(out, "ping", &TypeOnly { kind: "ping" }),
            StreamEvent::Error { kind, message } => emit(
                out,
                "error",
                &ErrorEventOut {
                    kind: "error",
                    error: ErrorOut { kind, message },
                },
            ),
        }
    }
}

fn emit<T: Serialize>(out: &mut Vec<u8>, name: &str, value: &T) {
    // These structs hold only strings and integers, so serialization cannot fail.
    if let Ok(data) = serde_json::to_string(value) {
        write_event(out, Some(name), &data);
    }
}

#[derive(Serialize)]
struct TypeOnly {
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct MessageStartOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    message: MessageOut<'a>,
}

#[derive(Serialize)]
struct MessageOut<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: [(); 0],
    stop_reason: Option<&'a str>,
    stop_sequence: Option<&'a str>,
    usage: UsageOut,
}

#[derive(Serialize)]
struct BlockStartOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: u32,
    content_block: BlockOut<'a>,
}

#[derive(Serialize)]
struct EmptyObject {}

#[derive(Serialize)]
#[serde(tag = "type")]
enum BlockOut<'a> {
    #[serde(rename = "text")]
    Text { text: &'a str },
    #[serde(rename = "thinking")]
    Thinking {
        thinking: &'a str,
        signature: &'a str,
    },
    #[serde(rename = "redacted_thinking")]
    RedactedThinking { data: &'a str },
    #[serde(rename = "tool_use")]
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: EmptyObject,
    },
}

#[derive(Serialize)]
struct BlockDeltaOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: u32,
    delta: DeltaOut<'a>,
}

#[derive(Serialize)]
#[serde(tag = "type")]
enum DeltaOut<'a> {
    #[serde(rename = "text_delta")]
    Text { text: &'a str },
    #[serde(rename = "thinking_delta")]
    Thinking { thinking: &'a str },
    #[serde(rename = "signature_delta")]
    Signature { signature: &'a str },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: &'a str },
}

#[derive(Serialize)]
struct BlockStopOut {
    #[serde(rename = "type")]
    kind: &'static str,
    index: u32,
}

#[derive(Serialize)]
struct MessageDeltaOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    delta: MessageDeltaBodyOut<'a>,
    usage: UsageOut,
}

#[derive(Serialize)]
struct MessageDeltaBodyOut<'a> {
    stop_reason: Option<&'a str>,
    stop_sequence: Option<&'a str>,
}

#[derive(Serialize)]
struct ErrorEventOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: ErrorOut<'a>,
}

#[derive(Serialize)]
struct ErrorOut<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    message: &'a str,
}
