//! Streaming: OpenAI `chat.completion.chunk` SSE ↔ canonical stream events.
//!
//! OpenAI's stream has no block boundaries, so the decoder invents them: a run of `content` is one
//! Text block, a run of reasoning one Thinking block, each tool-call `index` one ToolCall block.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::response::{finish_from_str, finish_to_str};
use super::usage::{OutUsage, WireUsage};
use crate::canonical::{
    BlockStart, Delta, FinishReason, StreamDecoder, StreamEncoder, StreamEvent, Usage,
};

// ---------------------------------------------------------------------------------------------
// Decoder
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct Chunk {
    id: Option<String>,
    model: Option<String>,
    choices: Option<Vec<ChunkChoice>>,
    usage: Option<WireUsage>,
    error: Option<Value>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    index: Option<u64>,
    delta: Option<ChunkDelta>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChunkDelta {
    content: Option<String>,
    reasoning_content: Option<String>,
    reasoning: Option<Value>,
    refusal: Option<String>,
    tool_calls: Option<Vec<ToolCallDelta>>,
}

#[derive(Deserialize)]
struct ToolCallDelta {
    index: Option<u64>,
    id: Option<String>,
    function: Option<FunctionDelta>,
}

#[derive(Deserialize)]
struct FunctionDelta {
    name: Option<String>,
    arguments: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    Thinking,
    Tool,
}

#[derive(Debug)]
struct ToolSlot {
    /// OpenAI's `tool_calls[].index`.
    key: u64,
    /// Canonical block index.
    block: u32,
    id: String,
}

/// OpenAI chunks → canonical events.
#[derive(Debug, Default)]
pub struct Decoder {
    started: bool,
    next_block: u32,
    open: Option<(u32, Open)>,
    tools: Vec<ToolSlot>,
    finish_reason: Option<FinishReason>,
    /// A finish_reason arrived; deltas after it are ignored so the stream stays well formed.
    finish_seen: bool,
    finish_emitted: bool,
    usage: Usage,
    /// `Stop` or `Error` has been emitted: nothing more comes out.
    done: bool,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    fn start(&mut self, id: Option<String>, model: Option<String>, out: &mut Vec<StreamEvent>) {
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: id.unwrap_or_default(),
                model: model.unwrap_or_default(),
                usage: Usage::default(),
            });
        }
    }

    fn close_block(&mut self, out: &mut Vec<StreamEvent>) {
        if let Some((index, _)) = self.open.take() {
            out.push(StreamEvent::BlockStop { index });
        }
    }

    /// The index of the open block of `kind`, opening one (and closing any other) when needed.
    fn ensure_open(&mut self, kind: Open, out: &mut Vec<StreamEvent>) -> u32 {
        if let Some((index, open)) = self.open {
            if open == kind {
                return index;
            }
        }
        self.close_block(out);
        let index = self.next_block;
        self.next_block += 1;
        out.push(StreamEvent::BlockStart {
            index,
            block: match kind {
                Open::Thinking => BlockStart::Thinking,
                _ => BlockStart::Text,
            },
        });
        self.open = Some((index, kind));
        index
    }

    fn fail(&mut self, kind: String, message: String, out: &mut Vec<StreamEvent>) {
        self.done = true;
        out.push(StreamEvent::Error { kind, message });
    }

    fn apply_delta(&mut self, delta: ChunkDelta, out: &mut Vec<StreamEvent>) {
        // vLLM has sent both names with the same text during its rename; reading one avoids
        // doubling it.
        let reasoning = delta.reasoning_content.or(match delta.reasoning {
            Some(Value::String(s)) => Some(s),
            _ => None,
        });
        if let Some(text) = reasoning.filter(|s| !s.is_empty()) {
            let index = self.ensure_open(Open::Thinking, out);
            out.push(StreamEvent::BlockDelta {
                index,
                delta: Delta::Thinking(text),
            });
        }
        for text in [delta.content, delta.refusal].into_iter().flatten() {
            // The opening chunk carries `"content":""`: no block for nothing.
            if !text.is_empty() {
                let index = self.ensure_open(Open::Text, out);
                out.push(StreamEvent::BlockDelta {
                    index,
                    delta: Delta::Text(text),
                });
            }
        }
        for call in delta.tool_calls.into_iter().flatten() {
            self.apply_tool_call(call, out);
        }
    }

    fn apply_tool_call(&mut self, call: ToolCallDelta, out: &mut Vec<StreamEvent>) {
        let key = match call.index {
            Some(k) => k,
            // Some compatible upstreams omit `index`: a new id starts a new call, no id continues
            // the last one.
            None => match (&call.id, self.tools.last()) {
                (Some(id), _) => self
                    .tools
                    .iter()
                    .find(|t| &t.id == id)
                    .map(|t| t.key)
                    .unwrap_or_else(|| self.tools.iter().map(|t| t.key + 1).max().unwrap_or(0)),
                (None, Some(last)) => last.key,
                (None, None) => 0,
            },
        };
        let (name, arguments) = match call.function {
            Some(f) => (f.name, f.arguments),
            None => (None, None),
        };
        let block = match self.tools.iter().find(|t| t.key == key) {
            Some(slot) => slot.block,
            None => {
                self.close_block(out);
                let block = self.next_block;
                self.next_block += 1;
                let id = call.id.unwrap_or_default();
                out.push(StreamEvent::BlockStart {
                    index: block,
                    block: BlockStart::ToolCall {
                        id: id.clone(),
                        name: name.unwrap_or_default(),
                    },
                });
                self.tools.push(ToolSlot { key, block, id });
                self.open = Some((block, Open::Tool));
                block
            }
        };
        if let Some(arguments) = arguments.filter(|a| !a.is_empty()) {
            out.push(StreamEvent::BlockDelta {
                index: block,
                delta: Delta::ToolArguments(arguments),
            });
        }
    }

    fn emit_finish(&mut self, out: &mut Vec<StreamEvent>) {
        if !self.finish_emitted {
            self.finish_emitted = true;
            self.close_block(out);
            out.push(StreamEvent::Finish {
                reason: self.finish_reason.take(),
                stop_sequence: None,
                usage: self.usage,
            });
        }
    }

    fn end(&mut self, out: &mut Vec<StreamEvent>) {
        if self.done {
            return;
        }
        self.start(None, None, out);
        self.emit_finish(out);
        out.push(StreamEvent::Stop);
        self.done = true;
    }
}

impl StreamDecoder for Decoder {
    fn decode(&mut self, _event: Option<&str>, data: &str, out: &mut Vec<StreamEvent>) {
        if self.done {
            return;
        }
        let data = data.trim();
        if data.is_empty() {
            return;
        }
        if data == "[DONE]" {
            self.end(out);
            return;
        }
        let chunk: Chunk = match serde_json::from_str(data) {
            Ok(c) => c,
            Err(e) => {
                self.fail(
                    "api_error".into(),
                    format!("malformed upstream chunk: {e}"),
                    out,
                );
                return;
            }
        };
        if let Some(err) = chunk.error {
            let (kind, message) = match err {
                Value::Object(o) => super::super::openai_common::error_fields(&o),
                Value::String(m) => ("api_error".to_string(), m),
                other => ("api_error".to_string(), other.to_string()),
            };
            self.fail(canonical_error_kind(kind), message, out);
            return;
        }
        self.start(chunk.id, chunk.model, out);
        for choice in chunk.choices.into_iter().flatten() {
            if choice.index.unwrap_or(0) != 0 || self.finish_seen {
                continue;
            }
            if let Some(delta) = choice.delta {
                self.apply_delta(delta, out);
            }
            if let Some(reason) = choice.finish_reason.filter(|r| !r.is_empty()) {
                self.close_block(out);
                self.finish_reason = Some(finish_from_str(&reason));
                self.finish_seen = true;
            }
        }
        if let Some(usage) = chunk.usage {
            if !self.finish_emitted {
                self.usage.merge_max(&usage.to_canonical());
                // Usage at or after the finish_reason is final; earlier usage (upstreams that
                // report it on every chunk) is only remembered.
                if self.finish_seen {
                    self.emit_finish(out);
                }
            }
        }
    }

    fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        self.end(out);
    }
}

/// OpenAI error types under the canonical names the other dialects render.
fn canonical_error_kind(kind: String) -> String {
    match kind.as_str() {
        "server_error" => "api_error".into(),
        "rate_limit_exceeded" | "requests" | "tokens" => "rate_limit_error".into(),
        _ => kind,
    }
}

fn openai_error_kind(kind: &str) -> &str {
    match kind {
        "api_error" | "overloaded_error" => "server_error",
        other => other,
    }
}

// ---------------------------------------------------------------------------------------------
// Encoder
// ---------------------------------------------------------------------------------------------

#[derive(Serialize)]
struct OutChunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: &'a [OutChoice<'a>],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<OutUsage>,
}

#[derive(Serialize)]
struct OutChoice<'a> {
    index: u32,
    delta: OutDelta<'a>,
    finish_reason: Option<&'a str>,
}

#[derive(Serialize, Default)]
struct OutDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[OutToolCall<'a>; 1]>,
}

#[derive(Serialize)]
struct OutToolCall<'a> {
    index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: OutFunction<'a>,
}

#[derive(Serialize)]
struct OutFunction<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

#[derive(Serialize)]
struct OutError<'a> {
    error: OutErrorBody<'a>,
}

#[derive(Serialize)]
struct OutErrorBody<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

/// Canonical events → OpenAI chunk SSE bytes.
#[derive(Debug)]
pub struct Encoder {
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    /// canonical block index → OpenAI tool_calls index
    tool_slots: Vec<(u32, u32)>,
    tool_count: u32,
    /// `[DONE]` or an error was written.
    closed: bool,
}

impl Encoder {
    pub fn new(created: u64, include_usage: bool) -> Self {
        Encoder {
            id: String::new(),
            model: String::new(),
            created,
            include_usage,
            tool_slots: Vec::new(),
            tool_count: 0,
            closed: false,
        }
    }

    fn chunk(&self, out: &mut Vec<u8>, delta: OutDelta<'_>, finish_reason: Option<&str>) {
        let choice = [OutChoice {
            index: 0,
            delta,
            finish_reason,
        }];
        self.write(out, &choice, None);
    }

    fn write(&self, out: &mut Vec<u8>, choices: &[OutChoice<'_>], usage: Option<OutUsage>) {
        let chunk = OutChunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices,
            usage,
        };
        write_data(out, &chunk);
    }
}

/// What `sse::write_event(out, None, json)` produces, serialized straight into `out`: serde_json
/// never emits a raw newline, so the payload is always one `data:` line.
fn write_data<T: Serialize>(out: &mut Vec<u8>, value: &T) {
    out.extend_from_slice(b"data: ");
    // Writing these plain structs into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
    out.extend_from_slice(b"\n\n");
}

impl StreamEncoder for Encoder {
    fn encode(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        if self.closed {
            return;
        }
        match event {
            StreamEvent::Start { id, model, .. } => {
                self.id.clone_from(id);
                self.model.clone_from(model);
                self.chunk(
                    out,
                    OutDelta {
                        role: Some("assistant"),
                        content: Some(""),
                        ..OutDelta::default()
                    },
                    None,
                );
            }
            StreamEvent::BlockStart {
                index,
                block: BlockStart::ToolCall { id, name },
            } => {
                let n = self.tool_count;
                self.tool_count += 1;
                self.tool_slots.push((*index, n));
                self.chunk(
                    out,
                    OutDelta {
                        tool_calls: Some([OutToolCall {
                            index: n,
                            id: Some(id),
                            kind: Some("function"),
                            function: OutFunction {
                                name: Some(name),
                                arguments: "",
                            },
                        }]),
                        ..OutDelta::default()
                    },
                    None,
                );
            }
            StreamEvent::BlockDelta { index, delta } => match delta {
                Delta::Text(text) => self.chunk(
                    out,
                    OutDelta {
                        content: Some(text),
                        ..OutDelta::default()
                    },
                    None,
                ),
                Delta::Thinking(text) => self.chunk(
                    out,
                    OutDelta {
                        reasoning_content: Some(text),
                        ..OutDelta::default()
                    },
                    None,
                ),
                Delta::ToolArguments(arguments) => {
                    let Some(&(_, n)) = self.tool_slots.iter().rev().find(|(b, _)| b == index)
                    else {
                        return;
                    };
                    self.chunk(
                        out,
                        OutDelta {
                            tool_calls: Some([OutToolCall {
                                index: n,
                                id: None,
                                kind: None,
                                function: OutFunction {
                                    name: None,
                                    arguments,
                                },
                            }]),
                            ..OutDelta::default()
                        },
                        None,
                    );
                }
                // OpenAI clients have nowhere to keep a signature.
                Delta::Signature(_) => {}
            },
            StreamEvent::BlockStart { .. } | StreamEvent::BlockStop { .. } => {}
            StreamEvent::Finish { reason, usage, .. } => {
                let reason = reason.as_ref().map(finish_to_str).unwrap_or("stop");
                self.chunk(out, OutDelta::default(), Some(reason));
                if self.include_usage {
                    self.write(out, &[], Some(OutUsage::from(usage)));
                }
            }
            StreamEvent::Stop => {
                out.extend_from_slice(b"data: [DONE]\n\n");
                self.closed = true;
            }
            StreamEvent::Ping => out.extend_from_slice(b": ping\n\n"),
            StreamEvent::Error { kind, message } => {
                write_data(
                    out,
                    &OutError {
                        error: OutErrorBody {
                            message,
                            kind: openai_error_kind(kind),
                            param: None,
                            code: None,
                        },
                    },
                );
                self.closed = true;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::canonical::{ContentBlock, ResponseAccumulator, ToolCall};
    use crate::sse::SseParser;

    fn decode_all(chunks: &[&str]) -> Vec<StreamEvent> {
        let mut d = Decoder::new();
        let mut out = Vec::new();
        for c in chunks {
            d.decode(None, c, &mut out);
        }
        d.finish(&mut out);
        out
    }

    #[test]
    fn usage_after_finish_reason_completes_the_finish() {
        let evs = decode_all(&[
            r#"{"id":"c1","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}"#,
            r#"{"id":"c1","model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}],"usage":null}"#,
            r#"{"id":"c1","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"length"}],"usage":null}"#,
            r#"{"id":"c1","model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}"#,
            "[DONE]",
        ]);
        assert_eq!(
            evs,
            vec![
                StreamEvent::Start {
                    id: "c1".into(),
                    model: "m".into(),
                    usage: Usage::default()
                },
                StreamEvent::BlockStart {
                    index: 0,
                    block: BlockStart::Text
                },
                StreamEvent::BlockDelta {
                    index: 0,
                    delta: Delta::Text("Hi".into())
                },
                StreamEvent::BlockStop { index: 0 },
                StreamEvent::Finish {
                    reason: Some(FinishReason::MaxTokens),
                    stop_sequence: None,
                    usage: Usage {
                        input_tokens: 3,
                        output_tokens: 1,
                        ..Usage::default()
                    },
                },
                StreamEvent::Stop,
            ]
        );
    }

    #[test]
    fn finish_without_done_or_usage() {
        let evs = decode_all(&[
            r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{"reasoning":"think"}}]}"#,
            r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"x"}}]}"#,
        ]);
        assert_eq!(
            &evs[1..],
            &[
                StreamEvent::BlockStart {
                    index: 0,
                    block: BlockStart::Thinking
                },
                StreamEvent::BlockDelta {
                    index: 0,
                    delta: Delta::Thinking("think".into())
                },
                StreamEvent::BlockStop { index: 0 },
                StreamEvent::BlockStart {
                    index: 1,
                    block: BlockStart::Text
                },
                StreamEvent::BlockDelta {
                    index: 1,
                    delta: Delta::Text("x".into())
                },
                StreamEvent::BlockStop { index: 1 },
                StreamEvent::Finish {
                    reason: None,
                    stop_sequence: None,
                    usage: Usage::default()
                },
                StreamEvent::Stop,
            ]
        );
        // Nothing is repeated after the stream was completed.
        let mut d = Decoder::new();
        let mut out = Vec::new();
        d.decode(None, "[DONE]", &mut out);
        let n = out.len();
        d.finish(&mut out);
        assert_eq!(out.len(), n);
        assert_eq!(out.last(), Some(&StreamEvent::Stop));
    }

    #[test]
    fn usage_on_the_finish_chunk_and_both_reasoning_names() {
        let evs = decode_all(&[
            r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{"reasoning_content":"a","reasoning":"a"}}]}"#,
            r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2}}"#,
            r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"late"}}]}"#,
        ]);
        let mut acc = ResponseAccumulator::new();
        evs.iter().for_each(|e| acc.push(e));
        let r = acc.into_response();
        assert_eq!(
            r.content,
            vec![ContentBlock::Thinking {
                text: "a".into(),
                signature: None
            }]
        );
        assert_eq!(r.usage.output_tokens, 2);
        assert_eq!(
            evs.iter()
                .filter(|e| matches!(e, StreamEvent::Finish { .. }))
                .count(),
            1
        );
    }

    #[test]
    fn tool_fragments_without_index_and_late_fragments() {
        let evs = decode_all(&[
            r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"id":"a","function":{"name":"f","arguments":"{\"x\""}}]}}]}"#,
            r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"function":{"arguments":":1}"}}]}}]}"#,
            r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"id":"b","function":{"name":"g","arguments":"{}"}}]}}]}"#,
            r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
        ]);
        let mut acc = ResponseAccumulator::new();
        evs.iter().for_each(|e| acc.push(e));
        let r = acc.into_response();
        assert_eq!(
            r.content,
            vec![
                ContentBlock::ToolCall(ToolCall {
                    id: "a".into(),
                    name: "f".into(),
                    arguments: "{\"x\":1}".into()
                }),
                ContentBlock::ToolCall(ToolCall {
                    id: "b".into(),
                    name: "g".into(),
                    arguments: "{}".into()
                }),
            ]
        );
        assert_eq!(r.finish_reason, Some(FinishReason::ToolUse));

        // A fragment for a call whose block was closed still lands on that call.
        let evs = decode_all(&[
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"a","function":{"name":"f","arguments":"{"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":1,"id":"b","function":{"name":"g","arguments":"{}"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"}"}}]}}]}"#,
        ]);
        assert!(evs.contains(&StreamEvent::BlockDelta {
            index: 0,
            delta: Delta::ToolArguments("}".into())
        }));
    }

    #[test]
    fn errors_end_the_stream() {
        let evs = decode_all(&[
            r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"x"}}]}"#,
            r#"{"error":{"message":"boom","type":"server_error","param":null,"code":null}}"#,
            r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"y"}}]}"#,
        ]);
        assert_eq!(
            evs.last(),
            Some(&StreamEvent::Error {
                kind: "api_error".into(),
                message: "boom".into()
            })
        );
        let evs = decode_all(&["{not json"]);
        match &evs[..] {
            [StreamEvent::Error { kind, message }] => {
                assert_eq!(kind, "api_error");
                assert!(
                    message.starts_with("malformed upstream chunk: "),
                    "{message}"
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn encoder_output_shape() {
        let mut enc = Encoder::new(1700000000, true);
        let mut out = Vec::new();
        for ev in [
            StreamEvent::Start {
                id: "chatcmpl-1".into(),
                model: "gpt-4o".into(),
                usage: Usage::default(),
            },
            StreamEvent::Ping,
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
            StreamEvent::BlockStart {
                index: 1,
                block: BlockStart::ToolCall {
                    id: "call_1".into(),
                    name: "f".into(),
                },
            },
            StreamEvent::BlockDelta {
                index: 1,
                delta: Delta::ToolArguments("{\"a\":\"\\n\"}".into()),
            },
            StreamEvent::BlockStop { index: 1 },
            StreamEvent::Finish {
                reason: Some(FinishReason::ToolUse),
                stop_sequence: None,
                usage: Usage {
                    input_tokens: 5,
                    output_tokens: 2,
                    ..Usage::default()
                },
            },
            StreamEvent::Stop,
            StreamEvent::Stop,
        ] {
            enc.encode(&ev, &mut out);
        }
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.contains(": ping\n\n"));
        assert!(text.ends_with("data: [DONE]\n\n"));
        assert_eq!(text.matches("[DONE]").count(), 1);
        let mut p = SseParser::new();
        p.push(&out);
        let datas: Vec<Value> = std::iter::from_fn(|| p.next_event())
            .filter(|e| e.data != "[DONE]")
            .map(|e| serde_json::from_str(&e.data).unwrap())
            .collect();
        assert_eq!(datas.len(), 6);
        assert_eq!(
            datas[0],
            serde_json::json!({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o",
                "choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]})
        );
        assert_eq!(
            datas[1]["choices"][0]["delta"],
            serde_json::json!({"reasoning_content":"hm"})
        );
        assert_eq!(
            datas[2]["choices"][0]["delta"],
            serde_json::json!({"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]})
        );
        assert_eq!(
            datas[3]["choices"][0]["delta"],
            serde_json::json!({"tool_calls":[{"index":0,"function":{"arguments":"{\"a\":\"\\n\"}"}}]})
        );
        assert_eq!(datas[4]["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(datas[5]["choices"], serde_json::json!([]));
        assert_eq!(datas[5]["usage"]["total_tokens"], 7);
    }

    #[test]
    fn encoder_error_then_silence() {
        let mut enc = Encoder::new(0, false);
        let mut out = Vec::new();
        enc.encode(
            &StreamEvent::Error {
                kind: "overloaded_error".into(),
                message: "busy".into(),
            },
            &mut out,
        );
        enc.encode(&StreamEvent::Stop, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "data: {\"error\":{\"message\":\"busy\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n"
        );
    }
}
