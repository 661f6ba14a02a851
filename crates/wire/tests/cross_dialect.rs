//! Cross-dialect golden tests: every fixture of one dialect is converted to the other and back.
//!
//! Snapshots live in `tests/fixtures/cross/{openai_to_anthropic,anthropic_to_openai}/`:
//! - requests: `<case>.request.json` (source → canonical → other dialect) and `<case>.roundtrip.json`
//!   (that body parsed by the other dialect and rendered in the source dialect again);
//! - responses: `<case>.response.json` and `<case>.roundtrip.json`, the same way;
//! - streams: `<case>.sse`, the source transcript decoded and re-encoded by the other dialect.
//!
//! They are the golden truth: run with `UPDATE_SNAPSHOTS=1` to (re)write them, then read the diff.
//! Besides the snapshots, every conversion is checked for what must survive it, and what a dialect
//! cannot carry (thinking through OpenAI requests, signatures, cache markers, …) is asserted lost
//! explicitly, so a change in either direction shows up here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

mod support;

use std::path::{Path, PathBuf};

use ekai_wire::canonical::{
    ContentBlock, Dialect, FinishReason, FunctionTool, ImageSource, Message, Reasoning, Request,
    Response, ResponseAccumulator, ResponseFormat, Role, StreamDecoder, StreamEncoder, StreamEvent,
    Tool, ToolChoice, Usage,
};
use ekai_wire::dialect::{anthropic, openai_chat};
use ekai_wire::sse::SseParser;
use serde_json::{Value, json};

/// `created` the OpenAI encoder stamps on translated chunks (the gateway passes the clock in).
const CREATED: u64 = 1_753_000_000;

// ---------------------------------------------------------------------------------------------
// Fixtures and snapshots
// ---------------------------------------------------------------------------------------------

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `(case, path)` of the inputs in `dir` named `<prefix>*<ext>` (snapshots excluded), sorted.
fn inputs(dir: &str, prefix: &str, ext: &str) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(fixtures().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_string();
            if !name.starts_with(prefix) || !name.ends_with(ext) || name.contains(".expected.") {
                return None;
            }
            Some((name[..name.len() - ext.len()].to_string(), p))
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no {prefix}*{ext} fixtures in {dir}");
    out
}

fn snapshot_text(rel: &str, actual: &str) {
    support::assert_text_snapshot(&fixtures().join("cross").join(rel), actual);
}

fn snapshot_json(rel: &str, actual: &Value) {
    support::assert_json_snapshot(&fixtures().join("cross").join(rel), actual);
}

fn to_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

// ---------------------------------------------------------------------------------------------
// A dialect-neutral view of conversations, and what each dialect is expected to lose
// ---------------------------------------------------------------------------------------------

/// One content block as compared across dialects: tool arguments as parsed JSON, no cache markers.
#[derive(Debug, Clone, PartialEq)]
enum Item {
    Text(String),
    Image(ImageSource),
    Call {
        id: String,
        name: String,
        args: Value,
    },
    Result {
        id: String,
        content: Vec<Item>,
        is_error: bool,
    },
    Thinking {
        text: String,
        signature: Option<String>,
    },
    Redacted(String),
    Unknown(Dialect, Value),
}

fn args_value(arguments: &str) -> Value {
    if arguments.trim().is_empty() {
        return json!({});
    }
    serde_json::from_str(arguments)
        .unwrap_or_else(|e| panic!("tool arguments are not JSON ({e}): {arguments}"))
}

/// None for empty text, which no dialect keeps as a block of its own.
fn item(block: &ContentBlock) -> Option<Item> {
    Some(match block {
        ContentBlock::Text(t) if t.text.is_empty() => return None,
        ContentBlock::Text(t) => Item::Text(t.text.clone()),
        ContentBlock::Image { source, .. } => Item::Image(source.clone()),
        ContentBlock::ToolCall(c) => Item::Call {
            id: c.id.clone(),
            name: c.name.clone(),
            args: args_value(&c.arguments),
        },
        ContentBlock::ToolResult {
            tool_call_id,
            content,
            is_error,
            ..
        } => Item::Result {
            id: tool_call_id.clone(),
            content: content.iter().filter_map(item).collect(),
            is_error: *is_error,
        },
        ContentBlock::Thinking { text, signature } => Item::Thinking {
            text: text.clone(),
            signature: signature.clone(),
        },
        ContentBlock::RedactedThinking { data } => Item::Redacted(data.clone()),
        ContentBlock::Unknown { dialect, value } => Item::Unknown(*dialect, value.clone()),
    })
}

/// What of one message's content a request in `to` can carry, in the order parsing it back gives.
fn carried(role: Role, items: Vec<Item>, to: Dialect) -> Vec<Item> {
    match to {
        Dialect::Gemini => panic!("Gemini has its own cross tests (gemini_fixtures.rs)"),
        // Anthropic rejects thinking it did not sign, and has no place for OpenAI-only parts.
        Dialect::Anthropic => items
            .into_iter()
            .filter(|i| {
                !matches!(
                    i,
                    Item::Thinking {
                        signature: None,
                        ..
                    } | Item::Unknown(Dialect::OpenAiChat, _)
                )
            })
            .map(|i| match i {
                Item::Result {
                    id,
                    content,
                    is_error,
                } => Item::Result {
                    id,
                    content: content
                        .into_iter()
                        .filter(|c| !matches!(c, Item::Unknown(Dialect::OpenAiChat, _)))
                        .collect(),
                    is_error,
                },
                other => other,
            })
            .collect(),
        Dialect::OpenAiChat => {
            // Chat Completions takes no thinking back, and nothing Anthropic-only.
            let items = items.into_iter().filter(|i| {
                !matches!(
                    i,
                    Item::Thinking { .. }
                        | Item::Redacted(_)
                        | Item::Unknown(Dialect::Anthropic, _)
                )
            });
            match role {
                // One `content` string (text blocks joined by a blank line), then `tool_calls`.
                Role::Assistant => {
                    let (texts, calls): (Vec<Item>, Vec<Item>) =
                        items.partition(|i| matches!(i, Item::Text(_)));
                    let texts: Vec<String> = texts
                        .into_iter()
                        .map(|t| match t {
                            Item::Text(s) => s,
                            _ => unreachable!(),
                        })
                        .collect();
                    let mut out = Vec::new();
                    if !texts.is_empty() {
                        out.push(Item::Text(texts.join("\n\n")));
                    }
                    out.extend(calls);
                    out
                }
                // `tool` messages first (text only, no is_error), their images next, then the rest.
                _ => {
                    let mut results = Vec::new();
                    let mut images = Vec::new();
                    let mut rest = Vec::new();
                    for i in items {
                        match i {
                            Item::Result { id, content, .. } => {
                                let mut texts = Vec::new();
                                for c in content {
                                    match c {
                                        Item::Text(_) => texts.push(c),
                                        Item::Image(_) => images.push(c),
                                        _ => {}
                                    }
                                }
                                results.push(Item::Result {
                                    id,
                                    content: texts,
                                    is_error: false,
                                });
                            }
                            other => rest.push(other),
                        }
                    }
                    results.extend(images);
                    results.extend(rest);
                    results
                }
            }
        }
        Dialect::OpenAiResponses => unreachable!(
            "this suite covers Chat and Anthropic; Responses has openai_responses_fixtures.rs"
        ),
    }
}

/// The non-system turns with consecutive same-role messages merged (Anthropic merges them, OpenAI
/// splits a user turn into `tool` + `user` messages), after what `through` cannot carry is removed.
fn turns(req: &Request, through: Option<Dialect>) -> Vec<(Role, Vec<Item>)> {
    let mut out: Vec<(Role, Vec<Item>)> = Vec::new();
    for msg in req.messages.iter().filter(|m| m.role != Role::System) {
        let mut items: Vec<Item> = msg.content.iter().filter_map(item).collect();
        if let Some(to) = through {
            items = carried(msg.role, items, to);
        }
        if items.is_empty() {
            continue;
        }
        match out.last_mut() {
            Some((role, last)) if *role == msg.role => last.extend(items),
            _ => out.push((msg.role, items)),
        }
    }
    out
}

/// The whole system prompt: leading parts, then mid-conversation system messages in order
/// (Anthropic hoists those into `system`; OpenAI keeps them in place).
fn system_texts(req: &Request) -> Vec<String> {
    let mid = req
        .messages
        .iter()
        .filter(|m| m.role == Role::System)
        .flat_map(|m| m.content.iter())
        .filter_map(|b| match b {
            ContentBlock::Text(t) => Some(&t.text),
            _ => None,
        });
    req.system
        .iter()
        .map(|t| &t.text)
        .chain(mid)
        .filter(|t| !t.is_empty())
        .cloned()
        .collect()
}

fn function_tools(req: &Request) -> Vec<(String, Option<String>, Value, Option<bool>)> {
    req.tools
        .iter()
        .filter_map(|t| match t {
            Tool::Function(FunctionTool {
                name,
                description,
                parameters,
                strict,
                ..
            }) => Some((
                name.clone(),
                description.clone(),
                parameters.clone(),
                *strict,
            )),
            Tool::Unknown { .. } => None,
        })
        .collect()
}

fn unknown_tools(req: &Request, dialect: Dialect) -> Vec<Value> {
    req.tools
        .iter()
        .filter_map(|t| match t {
            Tool::Unknown { dialect: d, value } if *d == dialect => Some(value.clone()),
            _ => None,
        })
        .collect()
}

/// The reasoning level any dialect can express (OpenAI effort ⇄ Anthropic budget).
fn reasoning_level(req: &Request) -> Option<String> {
    req.reasoning
        .as_ref()
        .and_then(Reasoning::effort_or_from_budget)
}

fn level_rank(level: Option<String>) -> u8 {
    match level.as_deref() {
        None => 0,
        Some("minimal") => 1,
        Some("low") => 2,
        Some("medium") => 3,
        Some("high") => 4,
        Some(_) => 5,
    }
}

fn all_blocks(req: &Request) -> impl Iterator<Item = &ContentBlock> {
    req.messages.iter().flat_map(|m| m.content.iter())
}

/// Everything that must survive `from` → `to` (a request rendered in `to`'s dialect and parsed
/// back), and the documented losses.
fn assert_request_survives(case: &str, from: &Request, to: &Request, target: Dialect) {
    let ctx = format!("{case} → {}", target.as_str());
    assert_eq!(to.model, from.model, "{ctx}: model");
    assert_eq!(system_texts(to), system_texts(from), "{ctx}: system text");
    if target == Dialect::Anthropic {
        assert!(
            to.messages.iter().all(|m| m.role != Role::System),
            "{ctx}: Anthropic has no system turn; mid-conversation system text joins `system`"
        );
    }
    assert_eq!(
        turns(to, None),
        turns(from, Some(target)),
        "{ctx}: conversation turns"
    );
    assert_eq!(function_tools(to), function_tools(from), "{ctx}: tools");
    let other = match target {
        Dialect::Gemini => panic!("Gemini has its own cross tests (gemini_fixtures.rs)"),
        Dialect::Anthropic => Dialect::OpenAiChat,
        Dialect::OpenAiChat => Dialect::Anthropic,
        Dialect::OpenAiResponses => unreachable!("this suite covers Chat and Anthropic only"),
    };
    assert!(
        unknown_tools(to, other).is_empty(),
        "{ctx}: {}-only tools cannot be sent to {}",
        other.as_str(),
        target.as_str()
    );
    assert_eq!(
        unknown_tools(to, target),
        unknown_tools(from, target),
        "{ctx}: own hosted tools"
    );
    if to.tools.is_empty() {
        assert_eq!(to.tool_choice, None, "{ctx}: tool_choice without tools");
    } else {
        assert_eq!(to.tool_choice, from.tool_choice, "{ctx}: tool_choice");
        // `true` is both dialects' default, so only `false` has to be said.
        assert_eq!(
            to.parallel_tool_calls.unwrap_or(true),
            from.parallel_tool_calls.unwrap_or(true),
            "{ctx}: parallel tool calls"
        );
    }
    assert_eq!(
        to.stop_sequences, from.stop_sequences,
        "{ctx}: stop sequences"
    );
    assert_eq!(to.stream, from.stream, "{ctx}: stream");
    assert_eq!(to.user, from.user, "{ctx}: end-user id");
    match target {
        Dialect::Gemini => panic!("Gemini has its own cross tests (gemini_fixtures.rs)"),
        Dialect::Anthropic => {
            // Anthropic thinks only where it accepts thinking (see `thinking_budget` in the
            // dialect and the dedicated tests below): when it does, the level is at most the
            // client's (a budget is capped by an explicit max_tokens), and max_tokens is kept.
            let thinking = to.reasoning.is_some();
            if thinking {
                assert!(
                    level_rank(reasoning_level(to)) <= level_rank(reasoning_level(from)),
                    "{ctx}: reasoning level"
                );
            }
            match from.max_tokens {
                // Anthropic requires max_tokens: a default is filled in (room for thinking).
                None if thinking => assert!(to.max_tokens > Some(4096), "{ctx}: max_tokens"),
                None => assert_eq!(to.max_tokens, Some(4096), "{ctx}: default max_tokens"),
                Some(n) => assert_eq!(to.max_tokens, Some(n), "{ctx}: max_tokens"),
            }
            // Anthropic rejects sampling parameters while thinking; its range is 0..=1.
            if thinking {
                assert_eq!((to.temperature, to.top_p), (None, None), "{ctx}: sampling");
            } else {
                assert_eq!(
                    to.temperature,
                    from.temperature.map(|t| t.clamp(0.0, 1.0)),
                    "{ctx}: temperature"
                );
                assert_eq!(to.top_p, from.top_p, "{ctx}: top_p");
            }
            assert_eq!(to.top_k, from.top_k, "{ctx}: top_k");
            assert!(to.stream_include_usage || !to.stream, "{ctx}: stream usage");
        }
        Dialect::OpenAiChat => {
            assert_eq!(to.max_tokens, from.max_tokens, "{ctx}: max_tokens");
            assert_eq!(to.temperature, from.temperature, "{ctx}: temperature");
            assert_eq!(to.top_p, from.top_p, "{ctx}: top_p");
            assert_eq!(to.top_k, None, "{ctx}: OpenAI has no top_k");
            // The gateway always asks an OpenAI upstream for usage.
            assert_eq!(to.stream_include_usage, to.stream, "{ctx}: stream usage");
        }
        Dialect::OpenAiResponses => unreachable!(
            "this suite covers Chat and Anthropic; Responses has openai_responses_fixtures.rs"
        ),
    }
    match (&from.response_format, &to.response_format) {
        (Some(ResponseFormat::JsonSchema { schema: a, .. }), b) => match b {
            Some(ResponseFormat::JsonSchema { schema: b, .. }) => {
                assert_eq!(b, a, "{ctx}: response schema")
            }
            other => panic!("{ctx}: json_schema response format lost: {other:?}"),
        },
        // Anthropic has no plain JSON mode; OpenAI's `text` is the default.
        (Some(_), got) if target == Dialect::Anthropic => {
            assert_eq!(got, &None, "{ctx}: response format")
        }
        (a, b) => assert_eq!(b, a, "{ctx}: response format"),
    }
    // Neither dialect reads the other's extra fields.
    if let Some(extra) = &to.extra {
        assert_eq!(extra.dialect, target, "{ctx}: extra fields");
    }
}

/// The parts of a request the test reads by hand: the message holding a tool result for `id`.
fn result_for<'a>(req: &'a Request, id: &str) -> Option<&'a Message> {
    req.messages.iter().find(|m| {
        m.content.iter().any(
            |b| matches!(b, ContentBlock::ToolResult { tool_call_id, .. } if tool_call_id == id),
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

struct RequestTrip {
    src: Request,
    /// `src` rendered in the other dialect and parsed there.
    mid: Request,
    /// `mid` rendered in the source dialect and parsed there.
    back: Request,
}

fn openai_request_trip(case: &str, path: &Path) -> RequestTrip {
    let src = openai_chat::parse_request(&read(path)).unwrap_or_else(|e| panic!("{case}: {e}"));
    let out = anthropic::request_to_json(&src).unwrap_or_else(|e| panic!("{case}: {e}"));
    snapshot_json(&format!("openai_to_anthropic/{case}.request.json"), &out);
    let mid = anthropic::parse_request(&to_bytes(&out)).unwrap_or_else(|e| panic!("{case}: {e}"));
    let out = openai_chat::request_to_json(&mid).unwrap_or_else(|e| panic!("{case}: {e}"));
    snapshot_json(&format!("openai_to_anthropic/{case}.roundtrip.json"), &out);
    let back =
        openai_chat::parse_request(&to_bytes(&out)).unwrap_or_else(|e| panic!("{case}: {e}"));
    RequestTrip { src, mid, back }
}

fn anthropic_request_trip(case: &str, path: &Path) -> RequestTrip {
    let src = anthropic::parse_request(&read(path)).unwrap_or_else(|e| panic!("{case}: {e}"));
    let out = openai_chat::request_to_json(&src).unwrap_or_else(|e| panic!("{case}: {e}"));
    snapshot_json(&format!("anthropic_to_openai/{case}.request.json"), &out);
    let mid = openai_chat::parse_request(&to_bytes(&out)).unwrap_or_else(|e| panic!("{case}: {e}"));
    let out = anthropic::request_to_json(&mid).unwrap_or_else(|e| panic!("{case}: {e}"));
    snapshot_json(&format!("anthropic_to_openai/{case}.roundtrip.json"), &out);
    let back = anthropic::parse_request(&to_bytes(&out)).unwrap_or_else(|e| panic!("{case}: {e}"));
    RequestTrip { src, mid, back }
}

#[test]
fn openai_requests_to_anthropic_and_back() {
    for (case, path) in inputs("openai_chat", "req_", ".json") {
        let t = openai_request_trip(&case, &path);
        assert_request_survives(&case, &t.src, &t.mid, Dialect::Anthropic);
        assert_request_survives(&case, &t.mid, &t.back, Dialect::OpenAiChat);
    }
}

#[test]
fn anthropic_requests_to_openai_and_back() {
    for (case, path) in inputs("anthropic/requests", "", ".json") {
        let t = anthropic_request_trip(&case, &path);
        assert_request_survives(&case, &t.src, &t.mid, Dialect::OpenAiChat);
        assert_request_survives(&case, &t.mid, &t.back, Dialect::Anthropic);
    }
}

#[test]
fn openai_request_details_across_anthropic() {
    let dir = fixtures().join("openai_chat");

    // Tool calls and results: ids, names, parsed arguments and result text all survive, and each
    // result still answers its call.
    let t = openai_request_trip("req_tools_parallel", &dir.join("req_tools_parallel.json"));
    for req in [&t.mid, &t.back] {
        let calls: Vec<(&str, &str, Value)> = all_blocks(req)
            .filter_map(|b| match b {
                ContentBlock::ToolCall(c) => {
                    Some((c.id.as_str(), c.name.as_str(), args_value(&c.arguments)))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            calls,
            [
                (
                    "call_paris",
                    "get_weather",
                    json!({"city": "Paris", "unit": "celsius"})
                ),
                (
                    "call_tokyo",
                    "get_weather",
                    json!({"city": "Tokyo", "unit": "celsius"})
                ),
            ]
        );
        assert!(result_for(req, "call_paris").is_some() && result_for(req, "call_tokyo").is_some());
        assert_eq!(req.tool_choice, Some(ToolChoice::Required));
    }
    // Two text parts of one tool message stay two blocks of the Anthropic tool_result.
    let tokyo = result_for(&t.mid, "call_tokyo").unwrap();
    let Some(ContentBlock::ToolResult { content, .. }) = tokyo.content.get(1) else {
        panic!("{tokyo:?}")
    };
    assert_eq!(
        content,
        &[
            ContentBlock::text("{\"temp\":24,"),
            ContentBlock::text("\"sky\":\"clear\"}")
        ]
    );

    // Reasoning: the effort level goes to Anthropic as a budget capped to fit the client's
    // max_completion_tokens (4000), and comes back as the level of that budget; the earlier
    // turn's `reasoning_content` is unsigned, so Anthropic cannot take it (lost).
    let t = openai_request_trip("req_reasoning", &dir.join("req_reasoning.json"));
    assert!(
        all_blocks(&t.src).any(|b| matches!(b, ContentBlock::Thinking { .. })),
        "the fixture has reasoning text"
    );
    assert!(!all_blocks(&t.mid).any(|b| matches!(b, ContentBlock::Thinking { .. })));
    assert_eq!(t.mid.reasoning.as_ref().unwrap().budget_tokens, Some(2000));
    assert_eq!(t.mid.max_tokens, Some(4000));
    assert_eq!(
        t.back.reasoning.as_ref().unwrap().effort.as_deref(),
        Some("low")
    );
    // OpenAI-only fields (service_tier, prompt_cache_key, verbosity) do not reach Anthropic.
    assert_eq!(t.mid.extra, None);
    assert_eq!(t.src.user.as_deref(), Some("hash-abc"));
    assert_eq!(t.back.user.as_deref(), Some("hash-abc"));

    // Images: URL and base64 sources both survive; input_audio has no Anthropic form (lost).
    let t = openai_request_trip("req_images", &dir.join("req_images.json"));
    let images = |req: &Request| -> Vec<ImageSource> {
        all_blocks(req)
            .filter_map(|b| match b {
                ContentBlock::Image { source, .. } => Some(source.clone()),
                _ => None,
            })
            .collect()
    };
    assert_eq!(images(&t.src).len(), 2);
    assert_eq!(images(&t.mid), images(&t.src));
    assert_eq!(images(&t.back), images(&t.src));
    assert!(all_blocks(&t.src).any(|b| matches!(b, ContentBlock::Unknown { .. })));
    assert!(!all_blocks(&t.mid).any(|b| matches!(b, ContentBlock::Unknown { .. })));
    assert_eq!(t.mid.max_tokens, Some(500));

    // Participant names have no Anthropic field (lost); the mid-conversation system message is
    // hoisted into Anthropic's system prompt and comes back as part of the leading one.
    let t = openai_request_trip(
        "req_system_multiturn",
        &dir.join("req_system_multiturn.json"),
    );
    assert_eq!(t.src.messages[0].name.as_deref(), Some("alice"));
    assert!(t.mid.messages.iter().all(|m| m.name.is_none()));
    assert_eq!(t.mid.system.len(), 4);
    assert_eq!(t.mid.system[3].text, "The user is now asking follow-ups.");
    assert!(t.back.messages.iter().all(|m| m.role != Role::System));

    // json_schema: the schema survives; Anthropic's format has no name, description or strict.
    let t = openai_request_trip("req_json_schema", &dir.join("req_json_schema.json"));
    match &t.back.response_format {
        Some(ResponseFormat::JsonSchema {
            name,
            strict,
            description,
            ..
        }) => {
            assert_eq!(name, "response");
            assert_eq!((strict, description), (&None, &None));
        }
        other => panic!("{other:?}"),
    }

    let t = openai_request_trip("req_simple", &dir.join("req_simple.json"));
    assert_eq!(t.mid.temperature, Some(0.7));
    assert_eq!(t.back.temperature, Some(0.7));
}

#[test]
fn anthropic_request_details_across_openai() {
    let dir = fixtures().join("anthropic/requests");

    let t = anthropic_request_trip("claude_code", &dir.join("claude_code.json"));
    // Thinking (signed) and redacted thinking cannot be sent back through Chat Completions: both
    // are lost on the way, so the Anthropic request rebuilt from it has none.
    let thinking = |req: &Request| {
        all_blocks(req)
            .filter(|b| {
                matches!(
                    b,
                    ContentBlock::Thinking { .. } | ContentBlock::RedactedThinking { .. }
                )
            })
            .count()
    };
    assert_eq!(thinking(&t.src), 2);
    assert_eq!(thinking(&t.mid), 0);
    assert_eq!(thinking(&t.back), 0);
    // Tool calls keep id, name and arguments; each result still follows its call.
    for req in [&t.mid, &t.back] {
        let calls: Vec<(&str, &str, Value)> = all_blocks(req)
            .filter_map(|b| match b {
                ContentBlock::ToolCall(c) => {
                    Some((c.id.as_str(), c.name.as_str(), args_value(&c.arguments)))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            calls,
            [
                (
                    "toolu_01A09q90qw90lq917835lq9",
                    "Bash",
                    json!({"command": "cargo test 2>&1 | tail -20", "description": "Run the test suite"})
                ),
                (
                    "toolu_01Rp8B2kGdVdXn6YhQjvVZ3b",
                    "Read",
                    json!({"file_path": "/home/dev/project/src/lib.rs", "offset": 30, "limit": 20})
                ),
            ]
        );
        for id in [
            "toolu_01A09q90qw90lq917835lq9",
            "toolu_01Rp8B2kGdVdXn6YhQjvVZ3b",
        ] {
            let call_at = req
                .messages
                .iter()
                .position(|m| {
                    m.content
                        .iter()
                        .any(|b| matches!(b, ContentBlock::ToolCall(c) if c.id == id))
                })
                .unwrap();
            let result_at = req
                .messages
                .iter()
                .position(|m| std::ptr::eq(m, result_for(req, id).unwrap()))
                .unwrap();
            assert_eq!(result_at, call_at + 1, "{id}");
        }
    }
    // The hosted web_search tool is Anthropic's: lost through OpenAI. Cache markers are too.
    assert_eq!(unknown_tools(&t.src, Dialect::Anthropic).len(), 1);
    assert!(t.mid.tools.len() == 2 && t.back.tools.len() == 2);
    assert!(t.src.system.iter().all(|s| s.cache_control.is_some()));
    assert!(t.back.system.iter().all(|s| s.cache_control.is_none()));
    // The thinking budget reaches OpenAI as an effort level. Coming back, the signed thinking was
    // lost on the way, and the final assistant turn calls tools: Anthropic would reject thinking
    // there, so it is left off (and temperature may be sent again).
    assert_eq!(t.src.reasoning.as_ref().unwrap().budget_tokens, Some(31999));
    assert_eq!(
        t.mid.reasoning.as_ref().unwrap().effort.as_deref(),
        Some("high")
    );
    assert_eq!(t.back.reasoning, None);
    assert_eq!(t.back.max_tokens, Some(32000));
    assert_eq!(t.mid.temperature, Some(1.0));
    assert_eq!(t.back.temperature, Some(1.0));
    // Anthropic-only fields (context_management) do not reach OpenAI.
    assert_eq!(t.mid.extra, None);

    let t = anthropic_request_trip("images", &dir.join("images.json"));
    let images = |req: &Request| -> Vec<ImageSource> {
        all_blocks(req)
            .filter_map(|b| match b {
                ContentBlock::Image { source, .. } => Some(source.clone()),
                _ => None,
            })
            .collect()
    };
    assert_eq!(images(&t.src).len(), 2);
    assert_eq!(images(&t.mid), images(&t.src));
    assert_eq!(images(&t.back), images(&t.src));
    // The PDF document block is Anthropic's own: lost through OpenAI. So is top_k.
    assert!(all_blocks(&t.src).any(|b| matches!(b, ContentBlock::Unknown { .. })));
    assert!(!all_blocks(&t.back).any(|b| matches!(b, ContentBlock::Unknown { .. })));
    assert_eq!((t.src.top_k, t.mid.top_k), (Some(40), None));
    assert_eq!(t.back.stop_sequences, ["\n\nHuman:"]);
    assert_eq!(t.back.temperature, Some(0.2));

    let t = anthropic_request_trip("tool_choice_any", &dir.join("tool_choice_any.json"));
    // `any` + disable_parallel_tool_use ⇄ `required` + parallel_tool_calls:false.
    for req in [&t.mid, &t.back] {
        assert_eq!(req.tool_choice, Some(ToolChoice::Required));
        assert_eq!(req.parallel_tool_calls, Some(false));
    }
    // A mid-conversation system message stays in place in OpenAI.
    let roles: Vec<Role> = t.mid.messages.iter().map(|m| m.role).collect();
    assert_eq!(roles, [Role::User, Role::System]);

    // Adaptive thinking has no OpenAI form: it goes as its effort level, and comes back as a
    // fixed budget, fitted under the client's max_tokens (16000).
    let t = anthropic_request_trip("adaptive", &dir.join("adaptive.json"));
    assert_eq!(
        t.mid.reasoning.as_ref().unwrap().effort.as_deref(),
        Some("high")
    );
    let back_thinking = anthropic::request_to_json(&t.mid).unwrap()["thinking"].clone();
    assert_eq!(
        back_thinking,
        json!({"type": "enabled", "budget_tokens": 8000})
    );
}

/// An explicit `max_tokens` is the client's spending cap (it includes thinking tokens in both
/// dialects), so an effort-derived thinking budget shrinks to fit under it.
#[test]
fn explicit_max_tokens_caps_the_thinking_budget() {
    let t = openai_request_trip(
        "req_reasoning",
        &fixtures().join("openai_chat/req_reasoning.json"),
    );
    let out = anthropic::request_to_json(&t.src).unwrap();
    assert_eq!(out["max_tokens"], 4000, "{out}");
    let budget = out["thinking"]["budget_tokens"].as_u64().unwrap();
    assert!((1024..4000).contains(&budget), "{out}");

    let t = anthropic_request_trip(
        "adaptive",
        &fixtures().join("anthropic/requests/adaptive.json"),
    );
    let out = anthropic::request_to_json(&t.mid).unwrap();
    assert_eq!(out["max_tokens"], 16000, "{out}");
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

/// `r` with tool arguments re-serialized, so JSON-equal arguments compare equal.
fn normalized(mut r: Response) -> Response {
    for block in &mut r.content {
        if let ContentBlock::ToolCall(c) = block {
            c.arguments = args_value(&c.arguments).to_string();
        }
    }
    r
}

fn finish_through(reason: &Option<FinishReason>, to: Dialect) -> Option<FinishReason> {
    reason.as_ref().map(|r| match (to, r) {
        // OpenAI's `stop` cannot say why generation stopped.
        (
            Dialect::OpenAiChat,
            FinishReason::StopSequence | FinishReason::PauseTurn | FinishReason::EndTurn,
        ) => FinishReason::EndTurn,
        (Dialect::OpenAiChat, FinishReason::Refusal) => FinishReason::ContentFilter,
        (Dialect::Anthropic, FinishReason::ContentFilter) => FinishReason::Refusal,
        (_, other) => other.clone(),
    })
}

/// What a response says after a trip through `to`'s wire format. `streamed`: through a stream,
/// where adjacent blocks of one kind merge but order is kept; otherwise through a response body,
/// which OpenAI shapes as one reasoning text, one content text and the tool calls.
fn response_through(r: &Response, to: Dialect, streamed: bool) -> Response {
    let mut out = r.clone();
    out.content.clear();
    match to {
        Dialect::Gemini => panic!("Gemini has its own cross tests (gemini_fixtures.rs)"),
        Dialect::Anthropic => {
            // Anthropic reports no reasoning tokens and no creation time.
            out.usage.reasoning_tokens = 0;
            out.created = None;
            out.content = r.content.clone();
        }
        Dialect::OpenAiChat if streamed => {
            out.stop_sequence = None;
            for block in &r.content {
                let block = match block {
                    ContentBlock::Thinking { text, .. } => ContentBlock::Thinking {
                        text: text.clone(),
                        signature: None,
                    },
                    ContentBlock::Text(t) => ContentBlock::text(t.text.clone()),
                    ContentBlock::ToolCall(_) => block.clone(),
                    _ => continue,
                };
                match (out.content.last_mut(), &block) {
                    (
                        Some(ContentBlock::Thinking { text: a, .. }),
                        ContentBlock::Thinking { text: b, .. },
                    ) => a.push_str(b),
                    (Some(ContentBlock::Text(a)), ContentBlock::Text(b)) => {
                        a.text.push_str(&b.text)
                    }
                    _ => out.content.push(block),
                }
            }
        }
        Dialect::OpenAiChat => {
            out.stop_sequence = None;
            out.created = Some(r.created.unwrap_or(0));
            let mut thinking = None::<String>;
            let mut text = String::new();
            let mut calls = Vec::new();
            for block in &r.content {
                match block {
                    ContentBlock::Thinking { text: t, .. } => {
                        thinking.get_or_insert_with(String::new).push_str(t)
                    }
                    ContentBlock::Text(t) => text.push_str(&t.text),
                    ContentBlock::ToolCall(_) => calls.push(block.clone()),
                    _ => {}
                }
            }
            if let Some(t) = thinking.filter(|t| !t.is_empty()) {
                out.content.push(ContentBlock::Thinking {
                    text: t,
                    signature: None,
                });
            }
            if !text.is_empty() {
                out.content.push(ContentBlock::text(text));
            }
            out.content.extend(calls);
        }
        Dialect::OpenAiResponses => unreachable!(
            "this suite covers Chat and Anthropic; Responses has openai_responses_fixtures.rs"
        ),
    }
    out.finish_reason = finish_through(&r.finish_reason, to);
    normalized(out)
}

fn texts(r: &Response) -> Vec<&str> {
    r.content
        .iter()
        .filter_map(|b| match b {
            ContentBlock::Text(t) => Some(t.text.as_str()),
            _ => None,
        })
        .collect()
}

fn calls(r: &Response) -> Vec<(String, String, Value)> {
    r.content
        .iter()
        .filter_map(|b| match b {
            ContentBlock::ToolCall(c) => {
                Some((c.id.clone(), c.name.clone(), args_value(&c.arguments)))
            }
            _ => None,
        })
        .collect()
}

fn thinking_texts(r: &Response) -> Vec<(&str, Option<&str>)> {
    r.content
        .iter()
        .filter_map(|b| match b {
            ContentBlock::Thinking { text, signature } => {
                Some((text.as_str(), signature.as_deref()))
            }
            _ => None,
        })
        .collect()
}

/// Field by field first (readable failures), then the whole response.
fn assert_same_response(ctx: &str, actual: &Response, expected: &Response) {
    let actual = normalized(actual.clone());
    assert_eq!(
        texts(&actual).concat(),
        texts(expected).concat(),
        "{ctx}: text"
    );
    assert_eq!(calls(&actual), calls(expected), "{ctx}: tool calls");
    assert_eq!(
        thinking_texts(&actual),
        thinking_texts(expected),
        "{ctx}: thinking"
    );
    assert_eq!(
        actual.finish_reason, expected.finish_reason,
        "{ctx}: finish reason"
    );
    assert_eq!(actual.usage, expected.usage, "{ctx}: usage");
    assert_eq!(
        (&actual.id, &actual.model),
        (&expected.id, &expected.model),
        "{ctx}: id and model"
    );
    assert_eq!(&actual, expected, "{ctx}");
}

#[test]
fn openai_responses_to_anthropic_and_back() {
    for (case, path) in inputs("openai_chat", "resp_", ".json") {
        let src = openai_chat::parse_response(&read(&path)).unwrap();
        let out = anthropic::response_to_json(&src);
        snapshot_json(&format!("openai_to_anthropic/{case}.response.json"), &out);
        let mid = anthropic::parse_response(&to_bytes(&out)).unwrap();
        let out = openai_chat::response_to_json(&mid);
        snapshot_json(&format!("openai_to_anthropic/{case}.roundtrip.json"), &out);
        let back = openai_chat::parse_response(&to_bytes(&out)).unwrap();

        let expected_mid = response_through(&src, Dialect::Anthropic, false);
        assert_same_response(&format!("{case} → anthropic"), &mid, &expected_mid);
        let expected_back = response_through(&expected_mid, Dialect::OpenAiChat, false);
        assert_same_response(
            &format!("{case} → anthropic → openai"),
            &back,
            &expected_back,
        );
        // Usage counters keep their meaning: cached tokens are part of the prompt on both sides.
        assert_eq!(
            anthropic::usage_from_response(&to_bytes(&anthropic::response_to_json(&src))),
            Some(expected_mid.usage),
            "{case}"
        );
    }
}

#[test]
fn anthropic_responses_to_openai_and_back() {
    for (case, path) in inputs("anthropic/responses", "", ".json") {
        let src = anthropic::parse_response(&read(&path)).unwrap();
        let out = openai_chat::response_to_json(&src);
        snapshot_json(&format!("anthropic_to_openai/{case}.response.json"), &out);
        let mid = openai_chat::parse_response(&to_bytes(&out)).unwrap();
        let out = anthropic::response_to_json(&mid);
        snapshot_json(&format!("anthropic_to_openai/{case}.roundtrip.json"), &out);
        let back = anthropic::parse_response(&to_bytes(&out)).unwrap();

        let expected_mid = response_through(&src, Dialect::OpenAiChat, false);
        assert_same_response(&format!("{case} → openai"), &mid, &expected_mid);
        let expected_back = response_through(&expected_mid, Dialect::Anthropic, false);
        assert_same_response(
            &format!("{case} → openai → anthropic"),
            &back,
            &expected_back,
        );
    }
}

#[test]
fn response_losses_are_the_expected_ones() {
    let dir = fixtures().join("anthropic/responses");
    // Thinking text reaches OpenAI as reasoning_content; the signature and the redacted block
    // cannot be carried.
    let src = anthropic::parse_response(&read(&dir.join("thinking.json"))).unwrap();
    let out = openai_chat::response_to_json(&src);
    let message = &out["choices"][0]["message"];
    assert_eq!(
        message["reasoning_content"],
        "The user asks for 27 * 453. 27 * 453 = 12231."
    );
    assert_eq!(message["content"], "27 × 453 = **12,231**.");
    assert!(
        !out.to_string().contains("EuYBCkQYAiJA"),
        "signature leaked"
    );
    assert!(
        !out.to_string().contains("EmwKAhgBEgy3"),
        "redacted data leaked"
    );

    // A stop sequence end is a plain `stop` in OpenAI, and which sequence matched is lost; cache
    // reads and writes survive as prompt_tokens_details.
    let src = anthropic::parse_response(&read(&dir.join("cache_usage.json"))).unwrap();
    let out = openai_chat::response_to_json(&src);
    assert_eq!(out["choices"][0]["finish_reason"], "stop");
    assert_eq!(out["usage"]["prompt_tokens"], 21 + 1888 + 30544);
    assert_eq!(
        out["usage"]["prompt_tokens_details"]["cached_tokens"],
        30544
    );
    assert_eq!(
        out["usage"]["prompt_tokens_details"]["cache_write_tokens"],
        1888
    );
    // The server tool call is Anthropic's own and has no OpenAI form.
    assert_eq!(out["choices"][0]["message"]["tool_calls"], Value::Null);

    // Reasoning tokens have no Anthropic counter (they stay inside output_tokens).
    let src = openai_chat::parse_response(&read(
        &fixtures().join("openai_chat/resp_reasoning_cached.json"),
    ))
    .unwrap();
    assert_eq!(src.usage.reasoning_tokens, 270);
    let out = anthropic::response_to_json(&src);
    assert_eq!(
        out["usage"],
        json!({"input_tokens": 266, "output_tokens": 311, "cache_read_input_tokens": 1024, "cache_creation_input_tokens": 0})
    );
    assert_eq!(out["stop_reason"], "max_tokens");
    // Unsigned thinking is rendered with an empty signature, which the parser reads as none.
    assert_eq!(out["content"][0]["signature"], "");
}

// ---------------------------------------------------------------------------------------------
// Streams
// ---------------------------------------------------------------------------------------------

fn decode_sse(bytes: &[u8], decoder: &mut dyn StreamDecoder) -> Vec<StreamEvent> {
    let mut parser = SseParser::new();
    let mut events = Vec::new();
    // Odd chunk sizes so events straddle reads, as they do off a socket.
    for chunk in bytes.chunks(41) {
        parser.push(chunk);
        while let Some(ev) = parser.next_event() {
            decoder.decode(ev.event.as_deref(), &ev.data, &mut events);
        }
    }
    if let Some(ev) = parser.finish() {
        decoder.decode(ev.event.as_deref(), &ev.data, &mut events);
    }
    decoder.finish(&mut events);
    events
}

fn encode(events: &[StreamEvent], encoder: &mut dyn StreamEncoder) -> Vec<u8> {
    let mut out = Vec::new();
    for ev in events {
        encoder.encode(ev, &mut out);
    }
    out
}

fn accumulate(ctx: &str, events: &[StreamEvent]) -> Response {
    assert!(
        matches!(events.first(), Some(StreamEvent::Start { .. })),
        "{ctx}: {events:?}"
    );
    assert_eq!(events.last(), Some(&StreamEvent::Stop), "{ctx}");
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, StreamEvent::Finish { .. }))
            .count(),
        1,
        "{ctx}"
    );
    let mut acc = ResponseAccumulator::new();
    for ev in events {
        acc.push(ev);
    }
    assert!(acc.finished, "{ctx}: stream never finished");
    assert!(acc.error.is_none(), "{ctx}: {:?}", acc.error);
    acc.into_response()
}

/// Decodes `src` as `from`, encodes it as the other dialect, snapshots that, decodes it again and
/// checks it says what the original said. Returns (original, translated) responses and the SSE.
fn stream_trip(case: &str, path: &Path, from: Dialect) -> (Response, Response, String) {
    let bytes = read(path);
    let (events, sse, again) = match from {
        Dialect::Gemini => panic!("Gemini has its own cross tests (gemini_fixtures.rs)"),
        Dialect::OpenAiChat => {
            let events = decode_sse(&bytes, &mut openai_chat::Decoder::new());
            let sse = encode(&events, &mut anthropic::Encoder::new());
            let again = decode_sse(&sse, &mut anthropic::Decoder::new());
            (events, sse, again)
        }
        Dialect::Anthropic => {
            let events = decode_sse(&bytes, &mut anthropic::Decoder::new());
            let sse = encode(&events, &mut openai_chat::Encoder::new(CREATED, true));
            let again = decode_sse(&sse, &mut openai_chat::Decoder::new());
            (events, sse, again)
        }
        Dialect::OpenAiResponses => unreachable!("this suite covers Chat and Anthropic only"),
    };
    let dir = match from {
        Dialect::Gemini => panic!("Gemini has its own cross tests (gemini_fixtures.rs)"),
        Dialect::OpenAiChat => "openai_to_anthropic",
        Dialect::Anthropic => "anthropic_to_openai",
        Dialect::OpenAiResponses => unreachable!("this suite covers Chat and Anthropic only"),
    };
    let sse = String::from_utf8(sse).unwrap();
    snapshot_text(&format!("{dir}/{case}.sse"), &sse);
    let original = accumulate(&format!("{case} (source)"), &events);
    let translated = accumulate(&format!("{case} (translated)"), &again);
    let to = match from {
        Dialect::Gemini => panic!("Gemini has its own cross tests (gemini_fixtures.rs)"),
        Dialect::OpenAiChat => Dialect::Anthropic,
        Dialect::Anthropic => Dialect::OpenAiChat,
        Dialect::OpenAiResponses => unreachable!("this suite covers Chat and Anthropic only"),
    };
    assert_same_response(
        &format!("{case} → {}", to.as_str()),
        &translated,
        &response_through(&original, to, true),
    );
    (original, translated, sse)
}

#[test]
fn openai_streams_to_anthropic() {
    for (case, path) in inputs("openai_chat", "", ".sse") {
        stream_trip(&case, &path, Dialect::OpenAiChat);
    }
}

#[test]
fn anthropic_streams_to_openai() {
    for (case, path) in inputs("anthropic/streams", "", ".sse") {
        stream_trip(&case, &path, Dialect::Anthropic);
    }
}

#[test]
fn stream_details_per_case() {
    let oa = fixtures().join("openai_chat");
    let an = fixtures().join("anthropic/streams");

    // OpenRouter reasoning becomes an Anthropic thinking block (unsigned: an empty signature) and
    // reads back as the same text; reasoning_tokens have no Anthropic counter.
    let (orig, got, sse) = stream_trip(
        "stream_reasoning_openrouter",
        &oa.join("stream_reasoning_openrouter.sse"),
        Dialect::OpenAiChat,
    );
    assert_eq!(
        thinking_texts(&got),
        [("The user wants 2+2.", None::<&str>)]
    );
    assert_eq!(texts(&got), ["2 + 2 = 4"]);
    assert!(sse.contains(r#""content_block":{"type":"thinking","thinking":"","signature":""}"#));
    assert!(!sse.contains("signature_delta"));
    assert_eq!(
        (orig.usage.reasoning_tokens, got.usage.reasoning_tokens),
        (33, 0)
    );
    assert_eq!(got.usage.output_tokens, 40);

    // Cached prompt tokens leave Anthropic's input_tokens and come back into the total.
    let (orig, got, sse) = stream_trip(
        "stream_parallel_tools",
        &oa.join("stream_parallel_tools.sse"),
        Dialect::OpenAiChat,
    );
    assert_eq!(got.usage, orig.usage);
    assert_eq!(
        (got.usage.input_tokens, got.usage.cache_read_tokens),
        (88, 64)
    );
    assert!(sse.contains(r#""stop_reason":"tool_use""#));
    assert!(sse.contains(r#""input_tokens":24"#));
    assert_eq!(
        calls(&got),
        [
            (
                "call_paris".to_string(),
                "get_weather".to_string(),
                json!({"city": "Paris"})
            ),
            (
                "call_tokyo".to_string(),
                "get_weather".to_string(),
                json!({"city": "Tokyo"})
            ),
        ]
    );

    // Thinking text reaches OpenAI as reasoning_content; the signature cannot (lost).
    let (orig, got, sse) = stream_trip(
        "thinking_text",
        &an.join("thinking_text.sse"),
        Dialect::Anthropic,
    );
    assert_eq!(
        thinking_texts(&orig)[0].1,
        Some("EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds2wJ8W2f5RX3pkDGd0Wm0x3v5rEw==")
    );
    assert_eq!(thinking_texts(&got)[0].1, None);
    assert_eq!(thinking_texts(&got)[0].0, thinking_texts(&orig)[0].0);
    assert!(sse.contains("reasoning_content"));
    assert!(!sse.contains("EqQBCgIYAhIM"));
    // Cache reads and writes both survive (writes as OpenRouter's cache_write_tokens).
    assert_eq!(
        got.usage,
        Usage {
            input_tokens: 38 + 1200 + 15000,
            output_tokens: 87,
            cache_read_tokens: 15000,
            cache_write_tokens: 1200,
            reasoning_tokens: 0,
        }
    );
    assert_eq!(sse.matches(": ping\n\n").count(), 2);

    // Server tool blocks and citations are Anthropic's own: only the answer text reaches OpenAI.
    let (_, got, sse) = stream_trip("web_search", &an.join("web_search.sse"), Dialect::Anthropic);
    assert_eq!(texts(&got), ["It is sunny, 22°C."]);
    assert!(calls(&got).is_empty());
    assert!(!sse.contains("srvtoolu_") && !sse.contains("cited_text"));
    assert_eq!(got.usage.input_tokens, 10682);

    let (_, got, _) = stream_trip(
        "parallel_tools",
        &an.join("parallel_tools.sse"),
        Dialect::Anthropic,
    );
    assert_eq!(got.finish_reason, Some(FinishReason::ToolUse));
    assert_eq!(
        calls(&got),
        [
            (
                "toolu_01T1x1fJ34qAmk2tNTrN7Up6".to_string(),
                "get_weather".to_string(),
                json!({"city": "Paris", "unit": "celsius"})
            ),
            (
                "toolu_01VjHfp8XqKJ4Tq9V8r2cW3d".to_string(),
                "get_weather".to_string(),
                json!({"city": "Berlin"})
            ),
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// A conversation that changes API half-way
// ---------------------------------------------------------------------------------------------

/// An OpenAI client runs a tool loop, then the conversation continues from an Anthropic client
/// (or the gateway fails over to an Anthropic upstream and back): every call still finds its
/// result and nothing moves.
#[test]
fn conversation_switches_api_mid_way() {
    let openai = json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You are a travel assistant."},
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": "Let me check.", "tool_calls": [
                {"id": "call_w1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_w1", "content": "{\"temp\":18}"},
            {"role": "assistant", "content": "18°C in Paris. Shall I book a table?"},
            {"role": "user", "content": "Yes, for two."},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_b2", "type": "function", "function": {"name": "book_table", "arguments": "{\"city\":\"Paris\",\"people\":2}"}}
            ]}
        ],
        "tools": [
            {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
            {"type": "function", "function": {"name": "book_table", "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "people": {"type": "integer"}}}}}
        ]
    });
    let req = openai_chat::parse_request(&to_bytes(&openai)).unwrap();
    let mut anthropic_body = anthropic::request_to_json(&req).unwrap();
    // The Anthropic side answers the pending call and adds a turn of its own.
    anthropic_body["messages"]
        .as_array_mut()
        .unwrap()
        .push(json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "call_b2", "content": "booked: table 12"},
            {"type": "text", "text": "Thanks! And tomorrow's weather?"}
        ]}));
    let req = anthropic::parse_request(&to_bytes(&anthropic_body)).unwrap();
    let out = openai_chat::request_to_json(&req).unwrap();
    let messages = out["messages"].as_array().unwrap();
    let shape: Vec<(String, Option<String>)> = messages
        .iter()
        .map(|m| {
            let role = m["role"].as_str().unwrap().to_string();
            let link = m["tool_call_id"]
                .as_str()
                .or_else(|| m["tool_calls"][0]["id"].as_str())
                .map(str::to_string);
            (role, link)
        })
        .collect();
    let s = |r: &str, l: Option<&str>| (r.to_string(), l.map(str::to_string));
    assert_eq!(
        shape,
        [
            s("system", None),
            s("user", None),
            s("assistant", Some("call_w1")),
            s("tool", Some("call_w1")),
            s("assistant", None),
            s("user", None),
            s("assistant", Some("call_b2")),
            s("tool", Some("call_b2")),
            s("user", None),
        ],
        "{out:#}"
    );
    assert_eq!(messages[2]["content"], "Let me check.");
    assert_eq!(
        args_value(
            messages[2]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .unwrap()
        ),
        json!({"city": "Paris"})
    );
    assert_eq!(messages[3]["content"], "{\"temp\":18}");
    assert_eq!(
        args_value(
            messages[6]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .unwrap()
        ),
        json!({"city": "Paris", "people": 2})
    );
    assert_eq!(messages[7]["content"], "booked: table 12");
    assert_eq!(messages[8]["content"], "Thanks! And tomorrow's weather?");
    // And the OpenAI body is itself a valid request that reads back the same conversation.
    let again = openai_chat::parse_request(&to_bytes(&out)).unwrap();
    assert_eq!(turns(&again, None), turns(&req, Some(Dialect::OpenAiChat)));
}

/// Guards the snapshot naming: request and response cases of one direction share a folder.
#[test]
fn snapshot_names_do_not_collide() {
    let mut names: Vec<String> = inputs("anthropic/requests", "", ".json")
        .into_iter()
        .chain(inputs("anthropic/responses", "", ".json"))
        .chain(inputs("anthropic/streams", "", ".sse"))
        .map(|(case, _)| case)
        .collect();
    let n = names.len();
    names.sort();
    names.dedup();
    assert_eq!(
        names.len(),
        n,
        "Anthropic fixture names must be unique across kinds"
    );
}

// ---------------------------------------------------------------------------------------------
// Conversions Anthropic would reject (found while reading the snapshots)
// ---------------------------------------------------------------------------------------------

fn openai_to_anthropic(body: Value) -> Value {
    let req = openai_chat::parse_request(&to_bytes(&body)).unwrap();
    anthropic::request_to_json(&req).unwrap()
}

/// An OpenAI function may omit `parameters` (no arguments); Anthropic requires `input_schema`.
#[test]
fn openai_tool_without_parameters_gets_an_object_schema() {
    let out = openai_to_anthropic(json!({
        "model": "m",
        "messages": [{"role": "user", "content": "what time is it?"}],
        "tools": [{"type": "function", "function": {"name": "now", "description": "Current time"}}]
    }));
    assert_eq!(
        out["tools"][0]["input_schema"],
        json!({"type": "object", "properties": {}}),
        "{out}"
    );
}

/// Anthropic's temperature range is 0..=1, OpenAI's 0..=2.
#[test]
fn openai_temperature_above_one_fits_anthropic_range() {
    let out = openai_to_anthropic(json!({
        "model": "m",
        "messages": [{"role": "user", "content": "be creative"}],
        "temperature": 1.5
    }));
    let t = out["temperature"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&t), "{out}");
}

/// With thinking on, Anthropic rejects a forced tool choice (`any` / `tool`): "Thinking may not be
/// enabled when tool_choice forces tool use."
#[test]
fn openai_reasoning_with_forced_tool_choice_is_accepted_by_anthropic() {
    let out = openai_to_anthropic(json!({
        "model": "m",
        "messages": [{"role": "user", "content": "weather in Paris?"}],
        "reasoning_effort": "low",
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        "tool_choice": "required"
    }));
    let forced = matches!(out["tool_choice"]["type"].as_str(), Some("any" | "tool"));
    assert!(!(forced && out.get("thinking").is_some()), "{out}");
}

/// With thinking on, Anthropic requires the assistant turn whose tool calls the last user turn
/// answers to start with a thinking block ("When `thinking` is enabled, a final `assistant` message
/// must start with a thinking block"). OpenAI clients cannot send signed thinking, so an OpenAI
/// tool loop with a reasoning effort must go without thinking (or the request fails).
#[test]
fn openai_tool_loop_with_reasoning_is_accepted_by_anthropic() {
    let out = openai_to_anthropic(json!({
        "model": "m",
        "reasoning_effort": "medium",
        "messages": [
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18°C"}
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
    }));
    let messages = out["messages"].as_array().unwrap();
    let last_assistant = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "assistant")
        .unwrap();
    let starts_with_thinking = matches!(
        last_assistant["content"][0]["type"].as_str(),
        Some("thinking" | "redacted_thinking")
    );
    assert!(
        out.get("thinking").is_none() || starts_with_thinking,
        "{out}"
    );

    // The same happens to Claude Code's own request after a trip through OpenAI: its thinking was
    // lost on the way, and `cross/anthropic_to_openai/claude_code.roundtrip.json` enables thinking
    // with a final tool-use turn that has none.
    let t = anthropic_request_trip(
        "claude_code",
        &fixtures().join("anthropic/requests/claude_code.json"),
    );
    let out = anthropic::request_to_json(&t.mid).unwrap();
    let messages = out["messages"].as_array().unwrap();
    let last_assistant = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "assistant")
        .unwrap();
    let starts_with_thinking = matches!(
        last_assistant["content"][0]["type"].as_str(),
        Some("thinking" | "redacted_thinking")
    );
    assert!(
        out.get("thinking").is_none() || starts_with_thinking,
        "{out}"
    );
}
