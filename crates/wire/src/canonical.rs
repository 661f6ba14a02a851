//! The one internal vocabulary every dialect converts to and from.
//!
//! Conventions that every dialect must respect (they are what makes N dialects cost 2N conversions):
//! - `Usage::input_tokens` counts ALL prompt tokens, cache reads and writes included (OpenAI's meaning);
//!   `cache_read_tokens` / `cache_write_tokens` are subsets of it. Anthropic reports uncached input apart,
//!   so its conversion adds the three together. `output_tokens` includes `reasoning_tokens`.
//! - Tool-call arguments are kept as JSON *text*, exactly as streamed, because OpenAI sends them as a string
//!   and a stream delivers them in fragments that are not valid JSON on their own.
//! - Tool results are content blocks of a `User` message (Anthropic's shape); OpenAI's `role:"tool"`
//!   messages are merged into / split out of that message by the OpenAI conversion.
//! - Anything a dialect has that this model does not name survives as `Unknown` / `extra`, tagged with the
//!   dialect it came from, so the same dialect can put it back and others can drop it knowingly.
//! - Nothing here imports a dialect: this module depends on serde_json only.

pub mod embedding;

use serde_json::{Map, Value};

/// The wire formats the gateway speaks, on either side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    OpenAiChat,
    Anthropic,
    /// OpenAI Responses API (`/v1/responses`).
    OpenAiResponses,
    /// Google Gemini native API (`generateContent`).
    Gemini,
}

impl Dialect {
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::OpenAiChat => "openai_chat",
            Dialect::Anthropic => "anthropic",
            Dialect::OpenAiResponses => "openai_responses",
            Dialect::Gemini => "gemini",
        }
    }
}

/// A conversion failure caused by the caller's input: rendered as a 400 naming `param`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    pub message: String,
    /// JSON path of the offending field (`messages[2].content`), when known.
    pub param: Option<String>,
}

impl WireError {
    pub fn new(message: impl Into<String>) -> Self {
        WireError {
            message: message.into(),
            param: None,
        }
    }
    pub fn at(param: impl Into<String>, message: impl Into<String>) -> Self {
        WireError {
            message: message.into(),
            param: Some(param.into()),
        }
    }
    /// Turns a serde_json error into a message that names the field and says what was wrong.
    pub fn from_json(err: &serde_json::Error) -> Self {
        WireError::new(format!("invalid request body: {err}"))
    }
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.param {
            Some(p) => write!(f, "{}: {}", p, self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for WireError {}

/// What went wrong, independent of dialect. Each dialect renders it with its own `type` string and
/// the HTTP layer picks the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    InvalidRequest,
    Authentication,
    PermissionDenied,
    NotFound,
    RequestTooLarge,
    RateLimit,
    /// Upstream or gateway failure (5xx).
    Api,
    Overloaded,
    Timeout,
}

impl ErrorKind {
    /// The conventional HTTP status for this kind.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::InvalidRequest => 400,
            ErrorKind::Authentication => 401,
            ErrorKind::PermissionDenied => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::RequestTooLarge => 413,
            ErrorKind::RateLimit => 429,
            ErrorKind::Api => 500,
            ErrorKind::Overloaded => 529,
            ErrorKind::Timeout => 504,
        }
    }

    /// A stable name for logs and the ledger.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "invalid_request_error",
            ErrorKind::Authentication => "authentication_error",
            ErrorKind::PermissionDenied => "permission_error",
            ErrorKind::NotFound => "not_found_error",
            ErrorKind::RequestTooLarge => "request_too_large",
            ErrorKind::RateLimit => "rate_limit_error",
            ErrorKind::Api => "api_error",
            ErrorKind::Overloaded => "overloaded_error",
            ErrorKind::Timeout => "timeout_error",
        }
    }

    /// The kind an upstream HTTP status means.
    pub fn from_status(status: u16) -> Self {
        match status {
            401 => ErrorKind::Authentication,
            403 => ErrorKind::PermissionDenied,
            404 => ErrorKind::NotFound,
            413 => ErrorKind::RequestTooLarge,
            429 => ErrorKind::RateLimit,
            408 | 504 => ErrorKind::Timeout,
            503 | 529 => ErrorKind::Overloaded,
            400..=499 => ErrorKind::InvalidRequest,
            _ => ErrorKind::Api,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Request
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Request {
    pub model: String,
    /// System prompt parts in order (Anthropic `system` blocks; OpenAI leading system/developer messages).
    pub system: Vec<TextPart>,
    pub messages: Vec<Message>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<u32>,
    pub stop_sequences: Vec<String>,
    pub stream: bool,
    /// The client asked for usage in the stream (OpenAI `stream_options.include_usage`).
    /// Anthropic always streams usage, so its conversion sets this to true.
    pub stream_include_usage: bool,
    pub tools: Vec<Tool>,
    pub tool_choice: Option<ToolChoice>,
    /// `Some(false)` = at most one tool call per turn (OpenAI `parallel_tool_calls:false`,
    /// Anthropic `tool_choice.disable_parallel_tool_use:true`).
    pub parallel_tool_calls: Option<bool>,
    pub reasoning: Option<Reasoning>,
    pub response_format: Option<ResponseFormat>,
    /// End-user identifier (OpenAI `user` / `safety_identifier`, Anthropic `metadata.user_id`).
    pub user: Option<String>,
    /// Fields with no canonical name, kept with the dialect they came from.
    pub extra: Option<Extra>,
}

/// Dialect-specific fields carried through unchanged when the same dialect is the target.
#[derive(Debug, Clone, PartialEq)]
pub struct Extra {
    pub dialect: Dialect,
    pub fields: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A system instruction that appears between turns (not leading). Dialects without a place for
    /// it mid-conversation hoist it into the system prompt.
    System,
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: Role,
    pub content: Vec<ContentBlock>,
    /// Participant name (OpenAI `name`), when given.
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TextPart {
    pub text: String,
    /// Anthropic prompt-caching marker (`{"type":"ephemeral","ttl":"1h"}`), kept verbatim.
    pub cache_control: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ContentBlock {
    Text(TextPart),
    Image {
        source: ImageSource,
        cache_control: Option<Value>,
    },
    ToolCall(ToolCall),
    ToolResult {
        tool_call_id: String,
        /// Text and image blocks only.
        content: Vec<ContentBlock>,
        is_error: bool,
        cache_control: Option<Value>,
    },
    Thinking {
        text: String,
        /// Anthropic's signature that lets a thinking block be sent back; None when the source had none.
        signature: Option<String>,
    },
    RedactedThinking {
        data: String,
    },
    /// A block this model does not name (Anthropic `document`, OpenAI `input_audio`, …).
    Unknown {
        dialect: Dialect,
        value: Value,
    },
}

impl ContentBlock {
    pub fn text(s: impl Into<String>) -> Self {
        ContentBlock::Text(TextPart {
            text: s.into(),
            cache_control: None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ImageSource {
    /// An http(s) URL the provider fetches itself.
    Url(String),
    Base64 {
        media_type: String,
        data: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// JSON text of the arguments object (may be "" or "{}" for no arguments).
    pub arguments: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Tool {
    Function(FunctionTool),
    /// Provider-hosted tools (Anthropic `web_search_20250305`, OpenAI `custom`, …).
    Unknown {
        dialect: Dialect,
        value: Value,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct FunctionTool {
    pub name: String,
    pub description: Option<String>,
    /// JSON Schema of the arguments object.
    pub parameters: Value,
    pub strict: Option<bool>,
    pub cache_control: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    Auto,
    None,
    /// Must call some tool (OpenAI `required`, Anthropic `any`).
    Required,
    /// Must call this tool.
    Tool(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reasoning {
    /// OpenAI effort level as given (`minimal`, `low`, `medium`, `high`, …; kept as text so new
    /// levels pass through).
    pub effort: Option<String>,
    /// Anthropic / Gemini thinking budget in tokens.
    pub budget_tokens: Option<u32>,
    /// Explicitly off (Anthropic `thinking.type: disabled`, OpenAI effort `none`).
    pub disabled: bool,
}

impl Reasoning {
    /// Budget to use for a provider that wants tokens when the client gave an effort level.
    pub fn budget_or_from_effort(&self) -> Option<u32> {
        if self.disabled {
            return None;
        }
        self.budget_tokens.or_else(|| {
            self.effort.as_deref().map(|e| match e {
                "none" => 0,
                "minimal" => 1024,
                "low" => 2048,
                "medium" => 8192,
                "high" => 24576,
                _ => 32768,
            })
        })
    }

    /// Effort level for a provider that wants one when the client gave a budget.
    pub fn effort_or_from_budget(&self) -> Option<String> {
        if self.disabled {
            return None;
        }
        self.effort.clone().or_else(|| {
            self.budget_tokens.map(|b| {
                match b {
                    0..=1024 => "minimal",
                    1025..=4096 => "low",
                    4097..=16384 => "medium",
                    _ => "high",
                }
                .to_string()
            })
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema {
        name: String,
        schema: Value,
        strict: Option<bool>,
        description: Option<String>,
    },
}

// ---------------------------------------------------------------------------------------------
// Response
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Response {
    pub id: String,
    pub model: String,
    /// The assistant's content in order: thinking, text and tool calls.
    pub content: Vec<ContentBlock>,
    pub finish_reason: Option<FinishReason>,
    /// The stop sequence that ended generation, when one did.
    pub stop_sequence: Option<String>,
    pub usage: Usage,
    /// Unix seconds; dialects that need one and get None use the current time at the edge.
    pub created: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinishReason {
    /// Natural end of turn (OpenAI `stop`, Anthropic `end_turn`).
    EndTurn,
    MaxTokens,
    StopSequence,
    ToolUse,
    ContentFilter,
    /// Anthropic `refusal`.
    Refusal,
    /// Anthropic `pause_turn` (server tool loop paused).
    PauseTurn,
    Other(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// All prompt tokens, including cache reads and writes.
    pub input_tokens: u64,
    /// All completion tokens, including reasoning.
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    pub reasoning_tokens: u64,
}

impl Usage {
    pub fn is_empty(&self) -> bool {
        *self == Usage::default()
    }
    /// Keeps the larger of each counter: providers report usage cumulatively across a stream,
    /// sometimes in more than one event.
    pub fn merge_max(&mut self, other: &Usage) {
        self.input_tokens = self.input_tokens.max(other.input_tokens);
        self.output_tokens = self.output_tokens.max(other.output_tokens);
        self.cache_read_tokens = self.cache_read_tokens.max(other.cache_read_tokens);
        self.cache_write_tokens = self.cache_write_tokens.max(other.cache_write_tokens);
        self.reasoning_tokens = self.reasoning_tokens.max(other.reasoning_tokens);
    }
}

// ---------------------------------------------------------------------------------------------
// Streaming
// ---------------------------------------------------------------------------------------------

/// One step of a streamed response, independent of dialect.
///
/// A well-formed stream is: `Start`, then for each content block `BlockStart`, any number of
/// `BlockDelta`, `BlockStop` (blocks are numbered 0, 1, 2 … in order of first appearance; a decoder
/// may interleave blocks only if its source does), then `Finish` carrying the final cumulative usage,
/// then `Stop`. `Ping` may appear anywhere. `Error` ends the stream early.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    Start {
        id: String,
        model: String,
        /// Usage known at the start (Anthropic reports input tokens in `message_start`).
        usage: Usage,
    },
    BlockStart {
        index: u32,
        block: BlockStart,
    },
    BlockDelta {
        index: u32,
        delta: Delta,
    },
    BlockStop {
        index: u32,
    },
    Finish {
        reason: Option<FinishReason>,
        stop_sequence: Option<String>,
        /// Final cumulative usage of the whole response.
        usage: Usage,
    },
    Stop,
    Ping,
    Error {
        /// Canonical error kind: `overloaded_error`, `rate_limit_error`, `api_error`, …
        kind: String,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum BlockStart {
    Text,
    Thinking,
    RedactedThinking { data: String },
    ToolCall { id: String, name: String },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Delta {
    Text(String),
    Thinking(String),
    Signature(String),
    /// A fragment of the tool call's JSON arguments text.
    ToolArguments(String),
}

/// Turns one dialect's stream into canonical events. Implementations keep whatever state the
/// dialect needs (open blocks, tool-call index maps, usage seen so far).
pub trait StreamDecoder {
    /// Feed one SSE event (its `event:` name, if any, and its `data:` payload).
    fn decode(&mut self, event: Option<&str>, data: &str, out: &mut Vec<StreamEvent>);
    /// The upstream ended; emit whatever closing events the dialect left implicit
    /// (open `BlockStop`s, `Finish`, `Stop`) so a consumer always sees a complete stream.
    fn finish(&mut self, out: &mut Vec<StreamEvent>);
}

/// Renders canonical events as one dialect's SSE bytes.
pub trait StreamEncoder {
    fn encode(&mut self, event: &StreamEvent, out: &mut Vec<u8>);
}

/// Builds the final response from a stream: the gateway uses it for accounting, and tests use it to
/// check that a translated stream says the same thing as the original.
#[derive(Debug, Default)]
pub struct ResponseAccumulator {
    response: Response,
    /// canonical block index → position in `response.content`
    slots: Vec<Option<usize>>,
    pub error: Option<(String, String)>,
    pub finished: bool,
}

impl ResponseAccumulator {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, ev: &StreamEvent) {
        match ev {
            StreamEvent::Start { id, model, usage } => {
                self.response.id.clone_from(id);
                self.response.model.clone_from(model);
                self.response.usage.merge_max(usage);
            }
            StreamEvent::BlockStart { index, block } => {
                let i = *index as usize;
                if self.slots.len() <= i {
                    self.slots.resize(i + 1, None);
                }
                let content = match block {
                    BlockStart::Text => ContentBlock::text(""),
                    BlockStart::Thinking => ContentBlock::Thinking {
                        text: String::new(),
                        signature: None,
                    },
                    BlockStart::RedactedThinking { data } => {
                        ContentBlock::RedactedThinking { data: data.clone() }
                    }
                    BlockStart::ToolCall { id, name } => ContentBlock::ToolCall(ToolCall {
                        id: id.clone(),
                        name: name.clone(),
                        arguments: String::new(),
                    }),
                };
                self.slots[i] = Some(self.response.content.len());
                self.response.content.push(content);
            }
            StreamEvent::BlockDelta { index, delta } => {
                let Some(Some(pos)) = self.slots.get(*index as usize) else {
                    return;
                };
                let Some(block) = self.response.content.get_mut(*pos) else {
                    return;
                };
                match (block, delta) {
                    (ContentBlock::Text(t), Delta::Text(s)) => t.text.push_str(s),
                    (ContentBlock::Thinking { text, .. }, Delta::Thinking(s)) => text.push_str(s),
                    (ContentBlock::Thinking { signature, .. }, Delta::Signature(s)) => {
                        signature.get_or_insert_with(String::new).push_str(s)
                    }
                    (ContentBlock::ToolCall(c), Delta::ToolArguments(s)) => c.arguments.push_str(s),
                    _ => {}
                }
            }
            StreamEvent::BlockStop { .. } | StreamEvent::Ping | StreamEvent::Stop => {}
            StreamEvent::Finish {
                reason,
                stop_sequence,
                usage,
            } => {
                self.response.finish_reason.clone_from(reason);
                self.response.stop_sequence.clone_from(stop_sequence);
                self.response.usage.merge_max(usage);
                self.finished = true;
            }
            StreamEvent::Error { kind, message } => {
                self.error = Some((kind.clone(), message.clone()));
            }
        }
    }

    pub fn usage(&self) -> Usage {
        self.response.usage
    }

    /// The response so far.
    pub fn response(&self) -> &Response {
        &self.response
    }

    pub fn into_response(self) -> Response {
        self.response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accumulator_rebuilds_text_and_tool_call() {
        let mut acc = ResponseAccumulator::new();
        for ev in [
            StreamEvent::Start {
                id: "m1".into(),
                model: "x".into(),
                usage: Usage {
                    input_tokens: 10,
                    ..Usage::default()
                },
            },
            StreamEvent::BlockStart {
                index: 0,
                block: BlockStart::Text,
            },
            StreamEvent::BlockDelta {
                index: 0,
                delta: Delta::Text("Hel".into()),
            },
            StreamEvent::BlockDelta {
                index: 0,
                delta: Delta::Text("lo".into()),
            },
            StreamEvent::BlockStop { index: 0 },
            StreamEvent::BlockStart {
                index: 1,
                block: BlockStart::ToolCall {
                    id: "c1".into(),
                    name: "f".into(),
                },
            },
            StreamEvent::BlockDelta {
                index: 1,
                delta: Delta::ToolArguments("{\"a\":".into()),
            },
            StreamEvent::BlockDelta {
                index: 1,
                delta: Delta::ToolArguments("1}".into()),
            },
            StreamEvent::Finish {
                reason: Some(FinishReason::ToolUse),
                stop_sequence: None,
                usage: Usage {
                    output_tokens: 5,
                    ..Usage::default()
                },
            },
            StreamEvent::Stop,
        ] {
            acc.push(&ev);
        }
        assert!(acc.finished);
        let r = acc.into_response();
        assert_eq!(r.usage.input_tokens, 10);
        assert_eq!(r.usage.output_tokens, 5);
        assert_eq!(r.content[0], ContentBlock::text("Hello"));
        assert_eq!(
            r.content[1],
            ContentBlock::ToolCall(ToolCall {
                id: "c1".into(),
                name: "f".into(),
                arguments: "{\"a\":1}".into()
            })
        );
    }

    #[test]
    fn effort_and_budget_map_both_ways() {
        let r = Reasoning {
            effort: Some("high".into()),
            ..Reasoning::default()
        };
        assert_eq!(r.budget_or_from_effort(), Some(24576));
        let r = Reasoning {
            budget_tokens: Some(2000),
            ..Reasoning::default()
        };
        assert_eq!(r.effort_or_from_budget().as_deref(), Some("low"));
        let r = Reasoning {
            disabled: true,
            effort: Some("high".into()),
            ..Reasoning::default()
        };
        assert_eq!(r.budget_or_from_effort(), None);
    }
}
