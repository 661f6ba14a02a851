//! Golden fixtures for the OpenAI Chat Completions dialect.
//!
//! Requests and responses go OpenAI → canonical → OpenAI and are compared with checked-in
//! `<case>.expected.json` snapshots (`UPDATE_SNAPSHOTS=1` writes missing ones). Streams are real-shaped
//! SSE transcripts checked field by field, then re-encoded and decoded again.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

mod support;

use std::path::PathBuf;

use ekai_wire::canonical::{
    ContentBlock, Dialect, FinishReason, ImageSource, Reasoning, Response, ResponseAccumulator,
    ResponseFormat, Role, StreamDecoder, StreamEncoder, StreamEvent, ToolCall, ToolChoice, Usage,
};
use ekai_wire::dialect::openai_chat::{
    self, Decoder, Encoder, is_usage_only_chunk, parse_request, parse_response, request_to_json,
    response_to_json, usage_from_chunk, usage_from_response,
};
use ekai_wire::sse::SseParser;
use serde_json::{Value, json};

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/openai_chat")
}

fn read(name: &str) -> Vec<u8> {
    let path = fixture_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Compares `actual` with `<case>.expected.json` (`UPDATE_SNAPSHOTS=1` writes it).
fn assert_snapshot(case: &str, actual: &Value) {
    support::assert_json_snapshot(&fixture_dir().join(format!("{case}.expected.json")), actual);
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

const REQUEST_CASES: &[&str] = &[
    "req_simple",
    "req_system_multiturn",
    "req_tools_parallel",
    "req_images",
    "req_json_schema",
    "req_reasoning",
];

#[test]
fn request_snapshots() {
    for case in REQUEST_CASES {
        let req =
            parse_request(&read(&format!("{case}.json"))).unwrap_or_else(|e| panic!("{case}: {e}"));
        let out = request_to_json(&req).unwrap();
        assert_snapshot(case, &out);
        // The output is itself a valid request, and converting it again changes nothing
        // (the first pass may drop what OpenAI cannot take back, such as reasoning text).
        let again = parse_request(out.to_string().as_bytes()).unwrap();
        assert_eq!(request_to_json(&again).unwrap(), out, "{case}");
        assert_eq!(again.tools, req.tools, "{case}");
    }
}

#[test]
fn request_canonical_details() {
    let req = parse_request(&read("req_system_multiturn.json")).unwrap();
    assert_eq!(req.system.len(), 3);
    assert_eq!(req.system[2].text, "Never use emoji.");
    let roles: Vec<Role> = req.messages.iter().map(|m| m.role).collect();
    assert_eq!(
        roles,
        [Role::User, Role::Assistant, Role::System, Role::User]
    );
    assert_eq!(req.messages[0].name.as_deref(), Some("alice"));
    assert_eq!(req.stop_sequences, ["\n\n", "END"]);
    assert_eq!(req.user.as_deref(), Some("user-1234"));
    let extra = req.extra.as_ref().unwrap();
    assert_eq!(extra.dialect, Dialect::OpenAiChat);
    let mut keys: Vec<&str> = extra.fields.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "frequency_penalty",
            "logit_bias",
            "n",
            "presence_penalty",
            "seed"
        ]
    );

    let req = parse_request(&read("req_tools_parallel.json")).unwrap();
    assert_eq!(req.tool_choice, Some(ToolChoice::Required));
    assert_eq!(req.parallel_tool_calls, Some(true));
    assert!(req.stream && req.stream_include_usage);
    assert_eq!(req.tools.len(), 2);
    // user, assistant(2 calls), user(2 results), assistant, user
    assert_eq!(req.messages.len(), 5);
    match &req.messages[2].content[..] {
        [
            ContentBlock::ToolResult {
                tool_call_id: a,
                content: ca,
                ..
            },
            ContentBlock::ToolResult {
                tool_call_id: b,
                content: cb,
                ..
            },
        ] => {
            assert_eq!((a.as_str(), b.as_str()), ("call_paris", "call_tokyo"));
            assert_eq!(ca.len(), 1);
            assert_eq!(cb.len(), 2);
        }
        other => panic!("unexpected {other:?}"),
    }

    let req = parse_request(&read("req_images.json")).unwrap();
    assert_eq!(req.max_tokens, Some(500));
    let blocks = &req.messages[0].content;
    assert!(
        matches!(&blocks[1], ContentBlock::Image { source: ImageSource::Url(u), .. } if u.starts_with("https://"))
    );
    assert!(
        matches!(&blocks[2], ContentBlock::Image { source: ImageSource::Base64 { media_type, .. }, .. } if media_type == "image/png")
    );
    assert!(matches!(
        &blocks[3],
        ContentBlock::Unknown {
            dialect: Dialect::OpenAiChat,
            ..
        }
    ));

    let req = parse_request(&read("req_json_schema.json")).unwrap();
    assert!(matches!(&req.response_format,
        Some(ResponseFormat::JsonSchema { name, strict: Some(true), description: Some(_), .. }) if name == "calendar_event"));

    let req = parse_request(&read("req_reasoning.json")).unwrap();
    assert_eq!(
        req.reasoning,
        Some(Reasoning {
            effort: Some("high".into()),
            budget_tokens: None,
            disabled: false
        })
    );
    assert_eq!(req.user.as_deref(), Some("hash-abc"));
    assert!(matches!(
        &req.messages[1].content[0],
        ContentBlock::Thinking {
            signature: None,
            ..
        }
    ));
}

#[test]
fn malformed_requests_are_rejected_with_a_reason() {
    let err = parse_request(b"{\"model\":\"gpt-4o\",\"messages\":[{\"role\":").unwrap_err();
    assert!(!err.message.is_empty());
    assert!(err.message.contains("line"), "{err}");

    let err = parse_request(br#"{"model":"gpt-4o","messages":{"role":"user"}}"#).unwrap_err();
    assert_eq!(err.param.as_deref(), Some("messages"));
    assert!(err.to_string().contains("messages"));
}

#[test]
fn tool_message_run_merges_and_splits_back_identically() {
    let messages = json!([
        {"role": "user", "content": "Check both."},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "a", "arguments": "{}"}},
            {"id": "c2", "type": "function", "function": {"name": "b", "arguments": "{\"x\":1}"}},
            {"id": "c3", "type": "function", "function": {"name": "c", "arguments": "{}"}}
        ]},
        {"role": "tool", "tool_call_id": "c1", "content": "one"},
        {"role": "tool", "tool_call_id": "c2", "content": "two"},
        {"role": "tool", "tool_call_id": "c3", "content": "three"},
        {"role": "user", "content": "Summarise."}
    ]);
    let body = json!({"model": "m", "messages": messages});
    let req = parse_request(body.to_string().as_bytes()).unwrap();
    assert_eq!(req.messages.len(), 4);
    assert_eq!(req.messages[2].role, Role::User);
    assert_eq!(req.messages[2].content.len(), 3);
    assert!(
        req.messages[2]
            .content
            .iter()
            .all(|b| matches!(b, ContentBlock::ToolResult { .. }))
    );
    assert_eq!(
        req.messages[3].content,
        vec![ContentBlock::text("Summarise.")]
    );
    let out = request_to_json(&req).unwrap();
    assert_eq!(out["messages"], messages);
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

#[test]
fn response_snapshots() {
    for case in ["resp_text", "resp_tool_calls", "resp_reasoning_cached"] {
        let body = read(&format!("{case}.json"));
        let resp = parse_response(&body).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(usage_from_response(&body), Some(resp.usage), "{case}");
        let out = response_to_json(&resp);
        assert_snapshot(case, &out);
        let again = parse_response(out.to_string().as_bytes()).unwrap();
        assert_eq!(again, resp, "{case}");
    }
}

#[test]
fn response_canonical_details() {
    let r = parse_response(&read("resp_tool_calls.json")).unwrap();
    assert_eq!(r.finish_reason, Some(FinishReason::ToolUse));
    assert_eq!(r.created, Some(1699896916));
    assert_eq!(
        r.content[1],
        ContentBlock::ToolCall(ToolCall {
            id: "call_def456".into(),
            name: "get_weather".into(),
            arguments: "{\"city\":\"Tokyo\",\"unit\":\"celsius\"}".into()
        })
    );
    let out = response_to_json(&r);
    assert!(out["choices"][0]["message"]["content"].is_null());

    let r = parse_response(&read("resp_reasoning_cached.json")).unwrap();
    assert_eq!(r.finish_reason, Some(FinishReason::MaxTokens));
    assert!(
        matches!(&r.content[0], ContentBlock::Thinking { text, signature: None } if text.starts_with("Spell it out"))
    );
    assert!(matches!(&r.content[1], ContentBlock::Text(_)));
    assert_eq!(
        r.usage,
        Usage {
            input_tokens: 1290,
            output_tokens: 311,
            cache_read_tokens: 1024,
            cache_write_tokens: 0,
            reasoning_tokens: 270
        }
    );
}

// ---------------------------------------------------------------------------------------------
// Streams
// ---------------------------------------------------------------------------------------------

/// Decodes SSE bytes fed in `step`-byte pieces, as a TCP read would split them.
fn decode_sse(bytes: &[u8], step: usize) -> (Vec<StreamEvent>, Vec<String>) {
    let mut parser = SseParser::new();
    let mut decoder = Decoder::new();
    let mut events = Vec::new();
    let mut datas = Vec::new();
    for piece in bytes.chunks(step) {
        parser.push(piece);
        while let Some(ev) = parser.next_event() {
            decoder.decode(ev.event.as_deref(), &ev.data, &mut events);
            datas.push(ev.data);
        }
    }
    if let Some(ev) = parser.finish() {
        decoder.decode(ev.event.as_deref(), &ev.data, &mut events);
        datas.push(ev.data);
    }
    decoder.finish(&mut events);
    (events, datas)
}

fn accumulate(events: &[StreamEvent]) -> Response {
    let mut acc = ResponseAccumulator::new();
    for ev in events {
        acc.push(ev);
    }
    assert!(acc.finished, "stream never finished: {events:?}");
    assert!(acc.error.is_none(), "{:?}", acc.error);
    acc.into_response()
}

fn assert_well_formed(events: &[StreamEvent]) {
    assert!(matches!(events.first(), Some(StreamEvent::Start { .. })));
    assert_eq!(events.last(), Some(&StreamEvent::Stop));
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, StreamEvent::Finish { .. }))
            .count(),
        1
    );
    let starts = events
        .iter()
        .filter(|e| matches!(e, StreamEvent::BlockStart { .. }))
        .count();
    let stops = events
        .iter()
        .filter(|e| matches!(e, StreamEvent::BlockStop { .. }))
        .count();
    assert_eq!(starts, stops);
}

/// Canonical → OpenAI SSE → canonical must say the same thing.
fn assert_round_trip(events: &[StreamEvent], original: &Response) {
    let mut encoder = Encoder::new(1753000000, true);
    let mut bytes = Vec::new();
    for ev in events {
        encoder.encode(ev, &mut bytes);
    }
    let (again, _) = decode_sse(&bytes, 64);
    assert_well_formed(&again);
    assert_eq!(&accumulate(&again), original);
}

#[test]
fn stream_text_with_usage() {
    let bytes = read("stream_text_usage.sse");
    for step in [1, 7, bytes.len()] {
        let (events, datas) = decode_sse(&bytes, step);
        assert_well_formed(&events);
        let r = accumulate(&events);
        assert_eq!(r.id, "chatcmpl-BxT1");
        assert_eq!(r.model, "gpt-4o-mini-2024-07-18");
        assert_eq!(r.content, vec![ContentBlock::text("Bonjour !\nÇa va ?")]);
        assert_eq!(r.finish_reason, Some(FinishReason::EndTurn));
        assert_eq!(
            r.usage,
            Usage {
                input_tokens: 14,
                output_tokens: 6,
                ..Usage::default()
            }
        );
        if step == 1 {
            assert_round_trip(&events, &r);
            // Passthrough accounting sees the same usage, and only the last chunk is usage-only.
            let usages: Vec<Usage> = datas.iter().filter_map(|d| usage_from_chunk(d)).collect();
            assert_eq!(usages, vec![r.usage]);
            let usage_only: Vec<bool> = datas.iter().map(|d| is_usage_only_chunk(d)).collect();
            assert_eq!(usage_only.iter().filter(|b| **b).count(), 1);
            assert!(usage_only[usage_only.len() - 2]);
        }
    }
}

#[test]
fn stream_parallel_tool_calls() {
    let bytes = read("stream_parallel_tools.sse");
    let (events, datas) = decode_sse(&bytes, 13);
    assert_well_formed(&events);
    let r = accumulate(&events);
    assert_eq!(r.id, "chatcmpl-Tool9");
    assert_eq!(
        r.content,
        vec![
            ContentBlock::ToolCall(ToolCall {
                id: "call_paris".into(),
                name: "get_weather".into(),
                arguments: "{\"city\": \"Paris\"}".into()
            }),
            ContentBlock::ToolCall(ToolCall {
                id: "call_tokyo".into(),
                name: "get_weather".into(),
                arguments: "{\"city\": \"Tokyo\"}".into()
            }),
        ]
    );
    for block in &r.content {
        if let ContentBlock::ToolCall(c) = block {
            serde_json::from_str::<Value>(&c.arguments).unwrap();
        }
    }
    assert_eq!(r.finish_reason, Some(FinishReason::ToolUse));
    assert_eq!(
        r.usage,
        Usage {
            input_tokens: 88,
            output_tokens: 45,
            cache_read_tokens: 64,
            ..Usage::default()
        }
    );
    // The Finish waits for the usage chunk that follows finish_reason.
    let finish_at = events
        .iter()
        .position(|e| matches!(e, StreamEvent::Finish { .. }))
        .unwrap();
    assert_eq!(finish_at, events.len() - 2);
    assert_round_trip(&events, &r);
    assert!(is_usage_only_chunk(&datas[datas.len() - 2]));
}

#[test]
fn stream_openrouter_reasoning() {
    let bytes = read("stream_reasoning_openrouter.sse");
    let (events, datas) = decode_sse(&bytes, 5);
    assert_well_formed(&events);
    let r = accumulate(&events);
    assert_eq!(
        r.content,
        vec![
            ContentBlock::Thinking {
                text: "The user wants 2+2.".into(),
                signature: None
            },
            ContentBlock::text("2 + 2 = 4"),
        ]
    );
    assert_eq!(r.finish_reason, Some(FinishReason::EndTurn));
    assert_eq!(r.usage.reasoning_tokens, 33);
    assert_eq!(r.usage.input_tokens, 12);
    assert_round_trip(&events, &r);
    // Usage rides on the finish chunk here, which must not be stripped as usage-only.
    assert!(datas.iter().all(|d| !is_usage_only_chunk(d)));
    assert_eq!(datas.iter().filter_map(|d| usage_from_chunk(d)).count(), 1);
}

#[test]
fn stream_error_mid_way() {
    let sse = b"data: {\"id\":\"x\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n\
data: {\"error\":{\"message\":\"The server had an error\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n";
    let (events, _) = decode_sse(sse, 10);
    assert_eq!(
        events.last(),
        Some(&StreamEvent::Error {
            kind: "api_error".into(),
            message: "The server had an error".into()
        })
    );
    assert!(!events.iter().any(|e| matches!(e, StreamEvent::Stop)));
    assert_eq!(
        openai_chat::parse_error(
            br#"{"error":{"message":"The server had an error","type":"server_error","param":null,"code":null}}"#
        ),
        Some(("server_error".into(), "The server had an error".into()))
    );
}
