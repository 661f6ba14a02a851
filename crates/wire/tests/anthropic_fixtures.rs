//! Golden fixtures for the Anthropic dialect: real-shaped requests, responses and SSE transcripts.
//!
//! Snapshots (`<case>.expected.json`) are compared exactly; run with `UPDATE_SNAPSHOTS=1` to write
//! the ones that are missing, then review them before committing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

mod support;

use std::path::{Path, PathBuf};

use ekai_wire::canonical::{
    ContentBlock, FinishReason, ImageSource, Reasoning, ResponseAccumulator, ResponseFormat, Role,
    StreamDecoder, StreamEncoder, StreamEvent, Tool, ToolChoice, Usage,
};
use ekai_wire::dialect::anthropic::{self, Decoder, Encoder};
use ekai_wire::sse::SseParser;
use serde_json::{Value, json};

fn dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/anthropic")
        .join(kind)
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Inputs of one fixture folder (everything but the snapshots), sorted so failures are stable.
fn cases(kind: &str, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir(kind))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.ends_with(ext) && !name.ends_with(".expected.json")
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no {kind} fixtures");
    out
}

fn snapshot(input: &Path, actual: &Value) {
    let stem = input.file_stem().unwrap().to_string_lossy().into_owned();
    support::assert_json_snapshot(
        &input.with_file_name(format!("{stem}.expected.json")),
        actual,
    );
}

#[test]
fn request_snapshots() {
    for path in cases("requests", ".json") {
        let req = anthropic::parse_request(&read(&path))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let out = anthropic::request_to_json(&req).unwrap();
        snapshot(&path, &out);
        // What we send upstream must read back as the same request.
        let again = anthropic::parse_request(out.to_string().as_bytes()).unwrap();
        assert_eq!(
            anthropic::request_to_json(&again).unwrap(),
            out,
            "{}",
            path.display()
        );
    }
}

#[test]
fn response_snapshots() {
    for path in cases("responses", ".json") {
        let resp = anthropic::parse_response(&read(&path))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let out = anthropic::response_to_json(&resp);
        snapshot(&path, &out);
        let again = anthropic::parse_response(out.to_string().as_bytes()).unwrap();
        assert_eq!(again, resp, "{}", path.display());
        assert_eq!(
            anthropic::usage_from_response(&read(&path)),
            Some(resp.usage),
            "{}",
            path.display()
        );
    }
}

#[test]
fn claude_code_request_canonical() {
    let req = anthropic::parse_request(&read(&dir("requests").join("claude_code.json"))).unwrap();
    assert_eq!(req.system.len(), 2);
    assert_eq!(
        req.system[1].cache_control,
        Some(json!({"type": "ephemeral", "ttl": "1h"}))
    );
    assert_eq!(req.max_tokens, Some(32000));
    assert!(req.stream && req.stream_include_usage);
    assert_eq!(req.reasoning.as_ref().unwrap().budget_tokens, Some(31999));
    assert_eq!(
        req.user.as_deref(),
        Some("user_2f1e0c7d_account__session_6d1c4f0e-8a0b-4c6a-9f53-0e5e3f0c9a11")
    );
    assert!(
        matches!(&req.tools[2], Tool::Unknown { value, .. } if value["type"] == "web_search_20250305")
    );
    let assistant = &req.messages[1];
    assert_eq!(assistant.role, Role::Assistant);
    assert!(
        matches!(&assistant.content[0], ContentBlock::Thinking { signature: Some(s), .. } if s.starts_with("EqQB"))
    );
    let ContentBlock::ToolCall(call) = &assistant.content[2] else {
        panic!("expected a tool call");
    };
    let args: Value = serde_json::from_str(&call.arguments).unwrap();
    assert_eq!(args["command"], "cargo test 2>&1 | tail -20");
    assert!(matches!(
        &req.messages[2].content[0],
        ContentBlock::ToolResult { tool_call_id, is_error: false, content, .. }
            if tool_call_id == "toolu_01A09q90qw90lq917835lq9" && content.len() == 1
    ));
    assert!(matches!(
        &req.messages[3].content[0],
        ContentBlock::RedactedThinking { .. }
    ));
    let extra = req.extra.as_ref().unwrap();
    assert!(extra.fields.contains_key("context_management"));

    // Thinking is on, so the temperature the client sent must not reach Anthropic; the budget
    // (31999) stays below max_tokens (32000), so max_tokens is kept.
    let out = anthropic::request_to_json(&req).unwrap();
    assert!(out.get("temperature").is_none());
    assert_eq!(out["max_tokens"], 32000);
    assert_eq!(
        out["thinking"],
        json!({"type": "enabled", "budget_tokens": 31999})
    );
}

#[test]
fn image_and_tool_choice_requests_canonical() {
    let req = anthropic::parse_request(&read(&dir("requests").join("images.json"))).unwrap();
    let content = &req.messages[0].content;
    assert!(
        matches!(&content[0], ContentBlock::Image { source: ImageSource::Base64 { media_type, .. }, cache_control: None } if media_type == "image/png")
    );
    assert!(
        matches!(&content[1], ContentBlock::Image { source: ImageSource::Url(u), cache_control: Some(_) } if u.ends_with(".jpg"))
    );
    assert!(
        matches!(&content[2], ContentBlock::Unknown { value, .. } if value["type"] == "document")
    );
    assert!(
        matches!(&req.response_format, Some(ResponseFormat::JsonSchema { schema, .. }) if schema["required"][0] == "difference")
    );
    assert_eq!(req.stop_sequences, vec!["\n\nHuman:".to_string()]);
    let out = anthropic::request_to_json(&req).unwrap();
    // Canonical format and the effort kept in extra end up side by side.
    assert_eq!(out["output_config"]["effort"], "low");
    assert_eq!(out["output_config"]["format"]["type"], "json_schema");

    let req =
        anthropic::parse_request(&read(&dir("requests").join("tool_choice_any.json"))).unwrap();
    assert_eq!(req.tool_choice, Some(ToolChoice::Required));
    assert_eq!(req.parallel_tool_calls, Some(false));
    assert_eq!(req.messages[1].role, Role::System);
    let out = anthropic::request_to_json(&req).unwrap();
    assert_eq!(
        out["tool_choice"],
        json!({"type": "any", "disable_parallel_tool_use": true})
    );
    assert_eq!(out["system"], "Answer in metric units.");
    assert_eq!(out["messages"].as_array().unwrap().len(), 1);
    assert_eq!(out["service_tier"], "auto");
}

#[test]
fn adaptive_thinking_survives_and_maps_to_effort() {
    let req = anthropic::parse_request(&read(&dir("requests").join("adaptive.json"))).unwrap();
    assert_eq!(
        req.reasoning,
        Some(Reasoning {
            effort: Some("high".into()),
            ..Reasoning::default()
        })
    );
    let out = anthropic::request_to_json(&req).unwrap();
    assert_eq!(out["thinking"], json!({"type": "adaptive"}));
    assert_eq!(out["output_config"], json!({"effort": "high"}));
    assert_eq!(out["max_tokens"], 16000);
}

#[test]
fn missing_max_tokens_is_named() {
    let body = br#"{"model":"claude-haiku-4-5","messages":[{"role":"user","content":"hi"}]}"#;
    let err = anthropic::parse_request(body).unwrap_err();
    assert_eq!(err.param.as_deref(), Some("max_tokens"));
    // count_tokens does not need it.
    let req = anthropic::count_tokens_request(body).unwrap();
    assert_eq!(req.max_tokens, None);
    assert!(anthropic::estimate_input_tokens(&req) >= 1);
    assert_eq!(anthropic::count_tokens_json(7), json!({"input_tokens": 7}));
}

#[test]
fn unknown_block_survives_and_is_re_emitted() {
    let block = json!({"type": "search_result", "source": "https://docs.example/x", "title": "X", "content": [{"type": "text", "text": "x"}]});
    let body = json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 100,
        "messages": [
            {"role": "user", "content": "look"},
            {"role": "user", "content": [block.clone(), {"type": "text", "text": "summarize"}]}
        ]
    });
    let req = anthropic::parse_request(body.to_string().as_bytes()).unwrap();
    assert!(
        matches!(&req.messages[1].content[0], ContentBlock::Unknown { value, .. } if *value == block)
    );
    let out = anthropic::request_to_json(&req).unwrap();
    // Consecutive user turns merge, and the unknown block comes back verbatim.
    let messages = out["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["content"][1], block);
}

fn decode_transcript(bytes: &[u8]) -> Vec<StreamEvent> {
    let mut parser = SseParser::new();
    let mut decoder = Decoder::new();
    let mut events = Vec::new();
    // Odd chunk sizes so events straddle reads, as they do off a socket.
    for chunk in bytes.chunks(37) {
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

fn accumulate(events: &[StreamEvent]) -> ResponseAccumulator {
    let mut acc = ResponseAccumulator::new();
    for ev in events {
        acc.push(ev);
    }
    acc
}

/// Encoder → SSE bytes → Decoder must tell the same story.
fn assert_round_trip(events: &[StreamEvent]) {
    let mut encoder = Encoder::new();
    let mut bytes = Vec::new();
    for ev in events {
        encoder.encode(ev, &mut bytes);
    }
    let again = decode_transcript(&bytes);
    assert_eq!(
        accumulate(&again).into_response(),
        accumulate(events).into_response()
    );
    assert_eq!(again.iter().filter(|e| **e == StreamEvent::Stop).count(), 1);
}

fn passthrough_usage(bytes: &[u8]) -> Usage {
    let mut parser = SseParser::new();
    parser.push(bytes);
    let mut usage = Usage::default();
    while let Some(ev) = parser.next_event() {
        if let Some(u) = anthropic::usage_from_event(ev.event.as_deref(), &ev.data) {
            usage.merge_max(&u);
        }
    }
    usage
}

#[test]
fn stream_thinking_then_text() {
    let bytes = read(&dir("streams").join("thinking_text.sse"));
    let events = decode_transcript(&bytes);
    assert_eq!(
        events.iter().filter(|e| **e == StreamEvent::Ping).count(),
        2
    );
    let acc = accumulate(&events);
    assert!(acc.finished && acc.error.is_none());
    let resp = acc.into_response();
    assert_eq!(resp.id, "msg_01Hg4f2nQz8uYb1eRvKJ3sPt");
    assert_eq!(resp.model, "claude-sonnet-4-5-20250929");
    let ContentBlock::Thinking { text, signature } = &resp.content[0] else {
        panic!("expected thinking first: {:?}", resp.content);
    };
    assert!(text.starts_with("The user wants a haiku about Rust.\nFive, seven, five"));
    assert!(signature.as_deref().unwrap().starts_with("EqQBCgIYAh"));
    assert_eq!(
        resp.content[1],
        ContentBlock::text(
            "Borrowed, not owned —\nlifetimes braid through quiet code,\nthe compiler smiles."
        )
    );
    assert_eq!(resp.finish_reason, Some(FinishReason::EndTurn));
    let expected = Usage {
        input_tokens: 38 + 1200 + 15000,
        output_tokens: 87,
        cache_read_tokens: 15000,
        cache_write_tokens: 1200,
        reasoning_tokens: 0,
    };
    assert_eq!(resp.usage, expected);
    assert_eq!(passthrough_usage(&bytes), expected);
    assert_round_trip(&events);
}

#[test]
fn stream_parallel_tool_calls() {
    let bytes = read(&dir("streams").join("parallel_tools.sse"));
    let events = decode_transcript(&bytes);
    let resp = accumulate(&events).into_response();
    assert_eq!(resp.content.len(), 3);
    assert_eq!(
        resp.content[0],
        ContentBlock::text("I'll check both cities.")
    );
    let calls: Vec<(String, String, Value)> = resp.content[1..]
        .iter()
        .map(|b| match b {
            ContentBlock::ToolCall(c) => (
                c.id.clone(),
                c.name.clone(),
                serde_json::from_str(&c.arguments).unwrap(),
            ),
            other => panic!("expected a tool call, got {other:?}"),
        })
        .collect();
    assert_eq!(
        calls,
        vec![
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
    assert_eq!(resp.finish_reason, Some(FinishReason::ToolUse));
    assert_eq!(resp.usage.input_tokens, 472);
    assert_eq!(resp.usage.output_tokens, 118);
    assert_eq!(passthrough_usage(&bytes), resp.usage);
    assert_round_trip(&events);
}

#[test]
fn stream_server_tool_blocks_are_skipped_and_renumbered() {
    let bytes = read(&dir("streams").join("web_search.sse"));
    let events = decode_transcript(&bytes);
    // Only the text block is canonical, and it becomes block 0.
    assert!(events.contains(&StreamEvent::BlockStop { index: 0 }));
    assert!(!events.iter().any(|e| matches!(
        e,
        StreamEvent::BlockStart { index: 1.., .. } | StreamEvent::BlockStop { index: 1.. }
    )));
    let resp = accumulate(&events).into_response();
    assert_eq!(resp.content, vec![ContentBlock::text("It is sunny, 22°C.")]);
    assert_eq!(resp.usage.input_tokens, 10682);
    assert_eq!(resp.usage.output_tokens, 510);
    assert_round_trip(&events);
}

#[test]
fn usage_from_event_reads_only_usage_events() {
    let start = r#"{"type":"message_start","message":{"id":"m","type":"message","role":"assistant","model":"c","content":[],"usage":{"input_tokens":5,"cache_read_input_tokens":100,"cache_creation_input_tokens":20,"output_tokens":1}}}"#;
    let u = anthropic::usage_from_event(Some("message_start"), start).unwrap();
    assert_eq!(
        (
            u.input_tokens,
            u.cache_read_tokens,
            u.cache_write_tokens,
            u.output_tokens
        ),
        (125, 100, 20, 1)
    );
    // Unnamed events are recognized by their type.
    assert_eq!(anthropic::usage_from_event(None, start), Some(u));
    let delta = r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":42}}"#;
    let u = anthropic::usage_from_event(Some("message_delta"), delta).unwrap();
    assert_eq!(u.output_tokens, 42);
    assert_eq!(u.input_tokens, 0);
    assert_eq!(
        anthropic::usage_from_event(
            Some("content_block_delta"),
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}}"#
        ),
        None
    );
    // Not JSON, but never parsed: the event name says it carries no usage.
    assert_eq!(anthropic::usage_from_event(Some("ping"), "{"), None);
}
