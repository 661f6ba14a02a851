//! Gemini streaming (`:streamGenerateContent?alt=sse`): every `data:` is a whole
//! `GenerateContentResponse` holding the next parts; `finishReason` and the final `usageMetadata`
//! come with the last chunk, and the stream simply ends (no sentinel), so `finish` closes it.
//!
//! Chunks are read and written through small serde structs with borrowed fields.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::parts::synth_id;
use super::response::PromptFeedbackIn;
use super::{
    UsageIn, UsageOut, error_fields, error_json, finish_reason_from_str, finish_reason_str,
    kind_from_name, kind_from_status,
};
use crate::canonical::{BlockStart, Delta, StreamDecoder, StreamEncoder, StreamEvent, Usage};
use crate::sse::write_event;

// ---------------------------------------------------------------------------------------------
// Decoder
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    Thinking { signed: bool },
}

/// Gemini SSE → canonical events.
#[derive(Debug, Default)]
pub struct Decoder {
    started: bool,
    next_index: u32,
    open: Option<(u32, Open)>,
    /// Function calls so far (for minted ids).
    calls: usize,
    reason: Option<String>,
    usage: Option<Usage>,
    finished: bool,
    stopped: bool,
    errored: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChunkIn<'a> {
    #[serde(default, borrow)]
    candidates: Vec<CandidateIn<'a>>,
    #[serde(default)]
    usage_metadata: Option<UsageIn>,
    #[serde(default)]
    response_id: Option<String>,
    #[serde(default)]
    model_version: Option<String>,
    #[serde(default)]
    prompt_feedback: Option<PromptFeedbackIn>,
    #[serde(default)]
    error: Option<ErrorIn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CandidateIn<'a> {
    #[serde(default, borrow)]
    content: Option<ContentIn<'a>>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ContentIn<'a> {
    #[serde(default, borrow)]
    parts: Vec<PartIn<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PartIn<'a> {
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default)]
    thought: Option<bool>,
    #[serde(default, borrow)]
    thought_signature: Option<Cow<'a, str>>,
    #[serde(default)]
    function_call: Option<FunctionCallIn>,
}

#[derive(Deserialize)]
struct FunctionCallIn {
    #[serde(default)]
    name: String,
    #[serde(default)]
    args: Option<Value>,
    #[serde(default)]
    id: Option<String>,
}

#[derive(Deserialize)]
struct ErrorIn {
    #[serde(default)]
    code: Option<Value>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    fn close(&mut self, out: &mut Vec<StreamEvent>) {
        if let Some((index, _)) = self.open.take() {
            out.push(StreamEvent::BlockStop { index });
        }
    }

    fn start_block(&mut self, block: BlockStart, out: &mut Vec<StreamEvent>) -> u32 {
        let index = self.next_index;
        self.next_index += 1;
        out.push(StreamEvent::BlockStart { index, block });
        index
    }

    fn text_block(&mut self, out: &mut Vec<StreamEvent>) -> u32 {
        if let Some((index, Open::Text)) = self.open {
            return index;
        }
        self.close(out);
        let index = self.start_block(BlockStart::Text, out);
        self.open = Some((index, Open::Text));
        index
    }

    fn thinking_block(&mut self, out: &mut Vec<StreamEvent>) -> u32 {
        if let Some((index, Open::Thinking { signed: false })) = self.open {
            return index;
        }
        self.close(out);
        let index = self.start_block(BlockStart::Thinking, out);
        self.open = Some((index, Open::Thinking { signed: false }));
        index
    }

    /// A signature that belongs to the part after it: an empty signed thinking block.
    fn signature_block(&mut self, sig: String, out: &mut Vec<StreamEvent>) {
        self.close(out);
        let index = self.start_block(BlockStart::Thinking, out);
        out.push(StreamEvent::BlockDelta {
            index,
            delta: Delta::Signature(sig),
        });
        out.push(StreamEvent::BlockStop { index });
    }

    fn part(&mut self, part: PartIn<'_>, out: &mut Vec<StreamEvent>) {
        let sig = part
            .thought_signature
            .filter(|s| !s.is_empty())
            .map(Cow::into_owned);
        if part.thought == Some(true) && part.function_call.is_none() {
            let text = part.text.unwrap_or_default();
            if text.is_empty() && sig.is_none() {
                return;
            }
            let index = self.thinking_block(out);
            if !text.is_empty() {
                out.push(StreamEvent::BlockDelta {
                    index,
                    delta: Delta::Thinking(text.into_owned()),
                });
            }
            if let Some(sig) = sig {
                out.push(StreamEvent::BlockDelta {
                    index,
                    delta: Delta::Signature(sig),
                });
                self.open = Some((index, Open::Thinking { signed: true }));
            }
            return;
        }
        if let Some(sig) = sig {
            self.signature_block(sig, out);
        }
        if let Some(call) = part.function_call {
            self.close(out);
            let id = match call.id.filter(|s| !s.is_empty()) {
                Some(id) => id,
                None => synth_id(&call.name, self.calls),
            };
            self.calls += 1;
            let arguments = match call.args {
                None | Some(Value::Null) => "{}".to_string(),
                Some(args) => args.to_string(),
            };
            let index = self.start_block(
                BlockStart::ToolCall {
                    id,
                    name: call.name,
                },
                out,
            );
            out.push(StreamEvent::BlockDelta {
                index,
                delta: Delta::ToolArguments(arguments),
            });
            out.push(StreamEvent::BlockStop { index });
        } else if let Some(text) = part.text.filter(|t| !t.is_empty()) {
            let index = self.text_block(out);
            out.push(StreamEvent::BlockDelta {
                index,
                delta: Delta::Text(text.into_owned()),
            });
        }
        // Other parts (executableCode, …) have no streamed canonical form.
    }

    fn emit_finish(&mut self, out: &mut Vec<StreamEvent>) {
        if self.finished {
            return;
        }
        self.close(out);
        self.finished = true;
        out.push(StreamEvent::Finish {
            reason: self
                .reason
                .as_deref()
                .map(|r| finish_reason_from_str(r, self.calls > 0)),
            stop_sequence: None,
            usage: self.usage.unwrap_or_default(),
        });
    }

    fn error(&mut self, status: String, message: String, out: &mut Vec<StreamEvent>) {
        self.errored = true;
        self.close(out);
        out.push(StreamEvent::Error {
            kind: kind_from_status(&status).name().to_string(),
            message,
        });
    }
}

impl StreamDecoder for Decoder {
    fn decode(&mut self, _event: Option<&str>, data: &str, out: &mut Vec<StreamEvent>) {
        if self.stopped || self.errored {
            return;
        }
        let data = data.trim();
        if data.is_empty() {
            return;
        }
        if data.starts_with('[') {
            // `[{"error":…}]`: how errors arrive when the body is a JSON array.
            if let Some((status, message)) = serde_json::from_str::<Value>(data)
                .ok()
                .and_then(error_fields)
            {
                self.error(status, message, out);
            }
            return;
        }
        let chunk = match serde_json::from_str::<ChunkIn<'_>>(data) {
            Ok(c) => c,
            Err(e) => {
                out.push(StreamEvent::Error {
                    kind: "api_error".to_string(),
                    message: format!("malformed stream chunk from upstream: {e}"),
                });
                return;
            }
        };
        if let Some(err) = chunk.error {
            let status = match (err.status, err.code) {
                (Some(s), _) if !s.is_empty() => s,
                (_, Some(code)) => code.to_string(),
                _ => "UNKNOWN".to_string(),
            };
            self.error(status, err.message.unwrap_or_default(), out);
            return;
        }
        let usage = chunk.usage_metadata.map(UsageIn::to_canonical);
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: chunk.response_id.unwrap_or_default(),
                model: chunk.model_version.unwrap_or_default(),
                usage: usage.unwrap_or_default(),
            });
        }
        let mut finishing = false;
        match chunk.candidates.into_iter().next() {
            Some(candidate) => {
                if let Some(content) = candidate.content {
                    for part in content.parts {
                        self.part(part, out);
                    }
                }
                if let Some(reason) = candidate.finish_reason {
                    self.reason = Some(reason);
                    finishing = true;
                }
            }
            None => {
                if chunk.prompt_feedback.and_then(|f| f.block_reason).is_some() {
                    self.reason = Some("SAFETY".to_string());
                    finishing = true;
                }
            }
        }
        if let Some(usage) = usage {
            // Cumulative: the latest report is the whole.
            self.usage = Some(usage);
        }
        if finishing && self.usage.is_some() {
            self.emit_finish(out);
        }
    }

    fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        if self.stopped || self.errored {
            return;
        }
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: String::new(),
                model: String::new(),
                usage: Usage::default(),
            });
        }
        self.emit_finish(out);
        self.stopped = true;
        out.push(StreamEvent::Stop);
    }
}

// ---------------------------------------------------------------------------------------------
// Encoder
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Default)]
enum EncBlock {
    #[default]
    Unseen,
    Text,
    Thinking {
        has_text: bool,
    },
    Tool {
        id: String,
        name: String,
        args: String,
    },
    /// Stopped, or a block Gemini has no part for (redacted thinking).
    Done,
}

/// Canonical events → Gemini SSE chunks, as `streamGenerateContent?alt=sse` sends them.
#[derive(Debug, Default)]
pub struct Encoder {
    id: String,
    model: String,
    /// Usage known at the start, sent with the first chunk (Gemini reports the prompt count early).
    start_usage: Option<Usage>,
    blocks: Vec<EncBlock>,
    /// A signature waiting for the next part (see the module doc of `gemini`).
    pending_signature: Option<String>,
    finished: bool,
    done: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ChunkOut<'a> {
    candidates: [CandidateOut<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage_metadata: Option<UsageOut>,
    model_version: &'a str,
    response_id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CandidateOut<'a> {
    content: ContentOut<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finish_reason: Option<&'a str>,
    index: u32,
}

#[derive(Serialize)]
struct ContentOut<'a> {
    parts: &'a [PartOut<'a>],
    role: &'static str,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct PartOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thought: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    function_call: Option<FunctionCallOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thought_signature: Option<&'a str>,
}

#[derive(Serialize)]
struct FunctionCallOut<'a> {
    name: &'a str,
    args: &'a Value,
    id: &'a str,
}

impl Encoder {
    pub fn new() -> Self {
        Self::default()
    }

    fn block_mut(&mut self, index: u32) -> &mut EncBlock {
        let i = index as usize;
        if self.blocks.len() <= i {
            self.blocks.resize(i + 1, EncBlock::Unseen);
        }
        &mut self.blocks[i]
    }

    fn emit(
        &mut self,
        parts: &[PartOut<'_>],
        finish_reason: Option<&str>,
        usage: Option<Usage>,
        out: &mut Vec<u8>,
    ) {
        let usage = usage.or_else(|| self.start_usage.take());
        let chunk = ChunkOut {
            candidates: [CandidateOut {
                content: ContentOut {
                    parts,
                    role: "model",
                },
                finish_reason,
                index: 0,
            }],
            usage_metadata: usage.as_ref().map(UsageOut::from_canonical),
            model_version: &self.model,
            response_id: &self.id,
        };
        if let Ok(json) = serde_json::to_string(&chunk) {
            write_event(out, None, &json);
        }
    }

    /// A signature left waiting when a part it cannot belong to comes: sent on an empty text part.
    fn flush_signature(&mut self, out: &mut Vec<u8>) {
        if let Some(sig) = self.pending_signature.take() {
            let part = PartOut {
                text: Some(""),
                thought_signature: Some(&sig),
                ..PartOut::default()
            };
            self.emit(&[part], None, None, out);
        }
    }

    fn emit_tool_call(&mut self, id: &str, name: &str, args: &str, out: &mut Vec<u8>) {
        let args = match serde_json::from_str::<Value>(args) {
            Ok(v @ Value::Object(_)) => v,
            _ => Value::Object(serde_json::Map::new()),
        };
        let sig = self.pending_signature.take();
        let part = PartOut {
            function_call: Some(FunctionCallOut {
                name,
                args: &args,
                id,
            }),
            thought_signature: sig.as_deref(),
            ..PartOut::default()
        };
        self.emit(&[part], None, None, out);
    }

    fn stop_block(&mut self, index: u32, out: &mut Vec<u8>) {
        let block = std::mem::replace(self.block_mut(index), EncBlock::Done);
        if let EncBlock::Tool { id, name, args } = block {
            self.emit_tool_call(&id, &name, &args, out);
        }
    }
}

impl StreamEncoder for Encoder {
    fn encode(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        match event {
            StreamEvent::Start { id, model, usage } => {
                self.id.clone_from(id);
                self.model.clone_from(model);
                self.start_usage = (!usage.is_empty()).then_some(*usage);
            }
            StreamEvent::BlockStart { index, block } => {
                let state = match block {
                    BlockStart::Text => EncBlock::Text,
                    BlockStart::Thinking => EncBlock::Thinking { has_text: false },
                    BlockStart::RedactedThinking { .. } => EncBlock::Done,
                    BlockStart::ToolCall { id, name } => EncBlock::Tool {
                        id: id.clone(),
                        name: name.clone(),
                        args: String::new(),
                    },
                };
                *self.block_mut(*index) = state;
            }
            StreamEvent::BlockDelta { index, delta } => {
                let block = self.block_mut(*index);
                match (block, delta) {
                    (EncBlock::Tool { args, .. }, Delta::ToolArguments(s)) => args.push_str(s),
                    (EncBlock::Text | EncBlock::Unseen, Delta::Text(s)) if !s.is_empty() => {
                        let sig = self.pending_signature.take();
                        let part = PartOut {
                            text: Some(s),
                            thought_signature: sig.as_deref(),
                            ..PartOut::default()
                        };
                        self.emit(&[part], None, None, out);
                    }
                    (EncBlock::Thinking { has_text }, Delta::Thinking(s)) if !s.is_empty() => {
                        *has_text = true;
                        self.flush_signature(out);
                        let part = PartOut {
                            text: Some(s),
                            thought: Some(true),
                            ..PartOut::default()
                        };
                        self.emit(&[part], None, None, out);
                    }
                    (EncBlock::Thinking { has_text: true }, Delta::Signature(s)) => {
                        let part = PartOut {
                            text: Some(""),
                            thought: Some(true),
                            thought_signature: Some(s),
                            ..PartOut::default()
                        };
                        self.emit(&[part], None, None, out);
                    }
                    (EncBlock::Thinking { has_text: false }, Delta::Signature(s)) => {
                        self.flush_signature(out);
                        self.pending_signature = Some(s.clone());
                    }
                    _ => {}
                }
            }
            StreamEvent::BlockStop { index } => self.stop_block(*index, out),
            StreamEvent::Finish { reason, usage, .. } => {
                if self.finished {
                    return;
                }
                self.finished = true;
                // Tool calls whose stop never came are still sent.
                for index in 0..self.blocks.len() {
                    if matches!(self.blocks[index], EncBlock::Tool { .. }) {
                        self.stop_block(index as u32, out);
                    }
                }
                let sig = self.pending_signature.take();
                let part = PartOut {
                    text: Some(""),
                    thought_signature: sig.as_deref(),
                    ..PartOut::default()
                };
                let reason = reason.as_ref().map(finish_reason_str);
                self.start_usage = None;
                self.emit(&[part], reason, Some(*usage), out);
            }
            StreamEvent::Stop | StreamEvent::Ping => {}
            StreamEvent::Error { kind, message } => {
                self.done = true;
                let body = error_json(kind_from_name(kind), message);
                write_event(out, None, &body.to_string());
            }
        }
    }
}
