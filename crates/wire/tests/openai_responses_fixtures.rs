//! Golden fixtures for the OpenAI Responses dialect (Codex CLI's wire format).
//!
//! - Requests and responses go Responses → canonical → Responses and are compared with checked-in
//!   `<case>.expected.json` snapshots (`UPDATE_SNAPSHOTS=1` writes them).
//! - Streams are real-shaped SSE transcripts decoded and checked field by field, then re-encoded
//!   and decoded again.
//! - Cross-dialect: each request fixture is rendered for a Chat and an Anthropic upstream
//!   (`cross/responses_to_{chat,anthropic}/`), each response for Chat and Anthropic clients, and
//!   Anthropic stream transcripts are re-encoded for a Responses client
//!   (`cross/responses_from_anthropic/`) and checked to be a sequence Codex accepts.
//! - Gemini both ways: requests and responses rendered for Gemini (`cross/responses_to_gemini/`),
//!   Gemini responses and stream transcripts re-encoded for a Responses client
//!   (`cross/responses_from_gemini/`), Responses stream transcripts re-encoded for a Gemini client
//!   (`cross/gemini_from_responses/`), and a Codex tool loop through Gemini and back.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

mod support;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use ekai_wire::canonical::{
    ContentBlock, Dialect, FinishReason, ImageSource, Reasoning, Request, Response,
    ResponseAccumulator, ResponseFormat, Role, StreamDecoder, StreamEncoder, StreamEvent, Tool,
    ToolCall, ToolChoice, Usage,
};
use ekai_wire::dialect::openai_responses::{
    self, Decoder, Encoder, ResponsesState, is_terminal_event, parse_request, parse_response,
    request_state, request_to_json, response_to_json, usage_from_event, usage_from_response,
};
use ekai_wire::dialect::{anthropic, gemini, openai_chat};
use ekai_wire::sse::SseParser;
use serde_json::{Value, json};

const CREATED: u64 = 1_753_000_000;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn read(name: &str) -> Vec<u8> {
    let path = fixtures().join("openai_responses").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn assert_snapshot(case: &str, actual: &Value) {
    support::assert_json_snapshot(
        &fixtures()
            .join("openai_responses")
            .join(format!("{case}.expected.json")),
        actual,
    );
}

fn cross_json(rel: &str, actual: &Value) {
    support::assert_json_snapshot(&fixtures().join("cross").join(rel), actual);
}

const REQUEST_CASES: &[&str] = &[
    "req_codex",
    "req_codex_tools",
    "req_simple",
    "req_json_schema",
];
const RESPONSE_CASES: &[&str] = &["resp_text", "resp_function_call", "resp_reasoning_text"];

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

#[test]
fn request_snapshots() {
    for case in REQUEST_CASES {
        let req =
            parse_request(&read(&format!("{case}.json"))).unwrap_or_else(|e| panic!("{case}: {e}"));
        let out = request_to_json(&req).unwrap();
        assert_snapshot(case, &out);
        // The output is itself a valid request, and converting it again changes nothing.
        let again = parse_request(out.to_string().as_bytes()).unwrap();
        assert_eq!(request_to_json(&again).unwrap(), out, "{case}");
        assert_eq!(again.tools, req.tools, "{case}");
    }
}

#[test]
fn codex_request_canonical_details() {
    let req = parse_request(&read("req_codex.json")).unwrap();
    // instructions + the leading developer message.
    assert_eq!(req.system.len(), 2);
    assert!(req.system[0].text.starts_with("You are Codex"));
    assert!(req.system[1].text.contains("permissions instructions"));
    let roles: Vec<Role> = req.messages.iter().map(|m| m.role).collect();
    assert_eq!(
        roles,
        [
            Role::User,
            Role::User,
            Role::Assistant,
            Role::User,
            Role::Assistant,
            Role::User,
            Role::User
        ]
    );
    // reasoning + function_call: one assistant turn, Thinking then its item then the call.
    match &req.messages[2].content[..] {
        [
            ContentBlock::Thinking { text, signature },
            ContentBlock::Unknown { dialect, value },
            ContentBlock::ToolCall(call),
        ] => {
            assert_eq!(text, "**Running tests**\n\nI should run cargo test first.");
            assert_eq!(signature, &None);
            assert_eq!(*dialect, Dialect::OpenAiResponses);
            assert_eq!(
                value["encrypted_content"],
                "gAAAAABo_enc_reasoning_blob_1=="
            );
            assert_eq!(call.id, "call_Xk2PqT9");
            assert_eq!(call.name, "shell");
        }
        other => panic!("unexpected {other:?}"),
    }
    match &req.messages[3].content[..] {
        [
            ContentBlock::ToolResult {
                tool_call_id,
                content,
                is_error: false,
                ..
            },
        ] => {
            assert_eq!(tool_call_id, "call_Xk2PqT9");
            assert!(matches!(&content[..], [ContentBlock::Text(t)] if t.text.contains("FAILED")));
        }
        other => panic!("unexpected {other:?}"),
    }
    // Empty-summary reasoning, assistant text and the custom tool call: one turn.
    let kinds: Vec<&str> = req.messages[4]
        .content
        .iter()
        .map(|b| match b {
            ContentBlock::Thinking { .. } => "thinking",
            ContentBlock::Text(_) => "text",
            ContentBlock::Unknown { value, .. } => value["type"].as_str().unwrap(),
            ContentBlock::ToolCall(_) => "call",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["thinking", "reasoning", "text", "call"]);
    // The custom tool call is a canonical call of the `apply_patch` function, its text the
    // `input` argument; its output a tool result.
    match &req.messages[4].content[3] {
        ContentBlock::ToolCall(call) => {
            assert_eq!(call.id, "call_Pa7");
            assert_eq!(call.name, "apply_patch");
            let args: Value = serde_json::from_str(&call.arguments).unwrap();
            assert_eq!(
                args,
                json!({"input": "*** Begin Patch\n*** Update File: src/math.rs\n@@\n-    a - b\n+    a + b\n*** End Patch"})
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(&req.messages[5].content[..],
        [ContentBlock::ToolResult { tool_call_id, content, .. }]
            if tool_call_id == "call_Pa7" && matches!(&content[..], [ContentBlock::Text(t)] if t.text.starts_with("Success."))));
    assert!(matches!(
        &req.messages[6].content[1],
        ContentBlock::Image { source: ImageSource::Base64 { media_type, .. }, .. } if media_type == "image/png"
    ));

    let names: Vec<String> = req
        .tools
        .iter()
        .map(|t| match t {
            Tool::Function(f) => format!("fn:{}", f.name),
            Tool::Unknown { dialect, value } => {
                assert_eq!(*dialect, Dialect::OpenAiResponses);
                format!("other:{}", value["type"].as_str().unwrap())
            }
        })
        .collect();
    assert_eq!(
        names,
        [
            "fn:shell",
            "fn:update_plan",
            "fn:apply_patch",
            "other:web_search"
        ]
    );
    match &req.tools[2] {
        Tool::Function(f) => {
            assert_eq!(
                f.parameters,
                json!({"type": "object", "properties": {"input": {"type": "string",
                    "description": "The tool's whole input as free-form text (not JSON)."}},
                    "required": ["input"], "additionalProperties": false})
            );
            let d = f.description.as_deref().unwrap();
            assert!(
                d.starts_with("Use the `apply_patch` tool to edit files."),
                "{d}"
            );
            assert!(
                d.contains("lark grammar:\nstart: begin_patch hunk+ end_patch"),
                "{d}"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    let map = openai_responses::ToolMap::of(&req);
    assert_eq!(
        map.get("apply_patch"),
        Some(&openai_responses::ClientTool {
            name: "apply_patch".into(),
            namespace: None,
            custom: true
        })
    );
    assert_eq!(map.get("shell"), None);
    assert!(matches!(&req.tools[0], Tool::Function(f) if f.strict == Some(false)));
    assert_eq!(req.tool_choice, Some(ToolChoice::Auto));
    assert_eq!(req.parallel_tool_calls, Some(false));
    assert_eq!(
        req.reasoning,
        Some(Reasoning {
            effort: Some("medium".into()),
            budget_tokens: None,
            disabled: false
        })
    );
    assert!(req.stream && req.stream_include_usage);
    let extra = req.extra.as_ref().unwrap();
    assert_eq!(extra.dialect, Dialect::OpenAiResponses);
    let mut keys: Vec<&str> = extra.fields.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "__ekai",
            "include",
            "prompt_cache_key",
            "reasoning",
            "store",
            "text"
        ]
    );
    assert_eq!(openai_responses::instruction_parts(&req), 1);
    assert_eq!(extra.fields["reasoning"], json!({"summary": "auto"}));
    assert_eq!(
        request_state(&req),
        ResponsesState {
            store: false,
            previous_response_id: None
        }
    );
}

/// Codex's other tool kinds: custom tools and namespaces become functions every model can call,
/// hosted tools stay for OpenAI alone, and a Responses rendering gives back exactly what came.
#[test]
fn codex_tool_kinds_map_to_functions_and_back() {
    let raw: Value = serde_json::from_slice(&read("req_codex_tools.json")).unwrap();
    let req = parse_request(&read("req_codex_tools.json")).unwrap();
    let names: Vec<String> = req
        .tools
        .iter()
        .map(|t| match t {
            Tool::Function(f) => format!("fn:{}", f.name),
            Tool::Unknown { value, .. } => format!("hosted:{}", value["type"].as_str().unwrap()),
        })
        .collect();
    assert_eq!(
        names,
        [
            "fn:exec_command",
            "fn:apply_patch",
            "fn:notes",
            "fn:mcp__weather__get_forecast",
            "fn:mcp__weather__alerts",
            "fn:mcp__db__query",
            "hosted:web_search",
            "hosted:local_shell",
            "hosted:tool_search",
            "hosted:mcp",
            "hosted:image_generation",
        ]
    );
    let func = |name: &str| match req
        .tools
        .iter()
        .find(|t| matches!(t, Tool::Function(f) if f.name == name))
    {
        Some(Tool::Function(f)) => f.clone(),
        _ => panic!("no function {name}"),
    };
    // A text-format custom tool: no grammar to state.
    let notes = func("notes");
    assert_eq!(notes.parameters["required"], json!(["input"]));
    assert!(!notes.description.unwrap().contains("grammar"));
    // Namespace members keep their schema; the group's description follows the member's own.
    let forecast = func("mcp__weather__get_forecast");
    assert_eq!(
        forecast.parameters,
        raw["tools"][3]["tools"][0]["parameters"]
    );
    assert_eq!(
        forecast.description.as_deref(),
        Some("Forecast for a city.\n\n(mcp__weather__: Weather MCP tools.)")
    );
    assert_eq!(
        func("mcp__weather__alerts").description.as_deref(),
        Some("Weather MCP tools.")
    );
    let query = func("mcp__db__query");
    assert_eq!(query.parameters["properties"]["input"]["type"], "string");
    assert_eq!(
        req.tool_choice,
        Some(ToolChoice::Tool("apply_patch".into()))
    );

    // Calls and outputs are canonical calls and results, linked by id.
    let roles: Vec<Role> = req.messages.iter().map(|m| m.role).collect();
    assert_eq!(
        roles,
        [
            Role::User,
            Role::Assistant,
            Role::User,
            Role::Assistant,
            Role::User,
            Role::Assistant,
            Role::User,
            Role::User
        ]
    );
    let call = |i: usize| match &req.messages[i].content[..] {
        [ContentBlock::ToolCall(c)] => c.clone(),
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(call(1).name, "apply_patch");
    assert_eq!(
        openai_responses::custom_input(&call(1).arguments),
        "*** Begin Patch\n*** Add File: hello.txt\n+say \"hi\"\n*** End Patch"
    );
    assert_eq!(call(3).name, "mcp__weather__get_forecast");
    assert_eq!(call(3).arguments, "{\"city\":\"Bern\"}");
    assert_eq!(call(5).name, "mcp__db__query");
    assert_eq!(call(5).arguments, "{\"input\":\"select 1\"}");
    for (i, id) in [(2, "call_ap1"), (4, "call_ns1"), (6, "call_sq1")] {
        assert!(
            matches!(&req.messages[i].content[..], [ContentBlock::ToolResult { tool_call_id, .. }] if tool_call_id == id),
            "{i}"
        );
    }
    let map = openai_responses::ToolMap::of(&req);
    let tool = |n: &str, ns: Option<&str>, custom: bool| openai_responses::ClientTool {
        name: n.into(),
        namespace: ns.map(str::to_string),
        custom,
    };
    assert_eq!(
        map.get("apply_patch"),
        Some(&tool("apply_patch", None, true))
    );
    assert_eq!(
        map.get("mcp__weather__get_forecast"),
        Some(&tool("get_forecast", Some("mcp__weather__"), false))
    );
    assert_eq!(
        map.get("mcp__db__query"),
        Some(&tool("query", Some("mcp__db__"), true))
    );
    assert_eq!(map.get("exec_command"), None);

    // Back to a Responses upstream: the very tools, tool choice and items the client sent.
    let out = request_to_json(&req).unwrap();
    assert_eq!(out["tools"], raw["tools"]);
    assert_eq!(out["tool_choice"], raw["tool_choice"]);
    assert_eq!(out["input"], raw["input"]);
    assert!(!out.to_string().contains("__ekai"));

    // To Chat and Anthropic: functions only, with the hosted tools dropped.
    let chat = openai_chat::request_to_json(&req).unwrap();
    assert_eq!(chat["tools"].as_array().unwrap().len(), 6);
    assert_eq!(
        chat["tool_choice"],
        json!({"type": "function", "function": {"name": "apply_patch"}})
    );
    let claude = anthropic::request_to_json(&req).unwrap();
    assert_eq!(claude["tools"].as_array().unwrap().len(), 6);
    assert_eq!(
        claude["tool_choice"]["name"], "apply_patch",
        "{}",
        claude["tool_choice"]
    );
    for body in [&chat, &claude] {
        let text = body.to_string();
        for hosted in [
            "web_search",
            "local_shell",
            "tool_search",
            "deepwiki",
            "image_generation",
        ] {
            assert!(!text.contains(hosted), "{hosted} leaked: {text}");
        }
    }
    // A client cannot plant the gateway's own bookkeeping.
    let planted = parse_request(
        br#"{"model":"m","input":"x","__ekai":{"tools":{"f":{"name":"g","custom":true}}}}"#,
    )
    .unwrap();
    assert!(openai_responses::ToolMap::of(&planted).is_empty());
    assert!(planted.extra.is_none());
}

#[test]
fn simple_and_json_schema_details() {
    let req = parse_request(&read("req_simple.json")).unwrap();
    assert!(req.system.is_empty());
    assert_eq!(req.messages.len(), 1);
    assert_eq!(
        req.messages[0].content,
        vec![ContentBlock::text(
            "Tell me a three sentence bedtime story about a unicorn."
        )]
    );
    assert_eq!(req.max_tokens, Some(300));
    assert_eq!(req.temperature, Some(0.7));
    assert_eq!(req.user.as_deref(), Some("user-42"));
    assert!(!req.stream);
    assert!(request_state(&req).store);

    let req = parse_request(&read("req_json_schema.json")).unwrap();
    assert!(matches!(&req.response_format,
        Some(ResponseFormat::JsonSchema { name, strict: Some(true), description: Some(_), schema })
            if name == "calendar_event" && schema["required"].as_array().unwrap().len() == 3));
    assert_eq!(
        req.tool_choice,
        Some(ToolChoice::Tool("lookup_date".into()))
    );
    assert_eq!(req.user.as_deref(), Some("hash-77"));
    assert_eq!(req.system[0].text, "Extract the event information.");
    // Only the gateway's note that the first system part is the instructions.
    let extra = req.extra.as_ref().unwrap();
    assert_eq!(extra.fields.keys().collect::<Vec<_>>(), ["__ekai"]);
    assert_eq!(openai_responses::instruction_parts(&req), 1);
}

#[test]
fn malformed_requests_are_rejected_with_a_reason() {
    let err = parse_request(b"{\"model\":\"gpt-5\",\"input\":[").unwrap_err();
    assert!(err.message.contains("line"), "{err}");
    let err = parse_request(
        br#"{"model":"gpt-5","input":[{"type":"function_call_output","output":"x"}]}"#,
    )
    .unwrap_err();
    assert_eq!(err.param.as_deref(), Some("input[0].call_id"));
    assert!(err.to_string().contains("input[0].call_id"));
    let err =
        parse_request(br#"{"model":"gpt-5","input":"x","tool_choice":"sometimes"}"#).unwrap_err();
    assert_eq!(err.param.as_deref(), Some("tool_choice"));
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

#[test]
fn response_snapshots() {
    for case in RESPONSE_CASES {
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
    let r = parse_response(&read("resp_text.json")).unwrap();
    assert_eq!(r.finish_reason, Some(FinishReason::EndTurn));
    assert_eq!(r.created, Some(1741476542));
    assert!(
        matches!(&r.content[..], [ContentBlock::Text(t)] if t.text.starts_with("In a peaceful grove"))
    );

    let r = parse_response(&read("resp_function_call.json")).unwrap();
    assert_eq!(r.finish_reason, Some(FinishReason::ToolUse));
    assert_eq!(
        r.content[2],
        ContentBlock::ToolCall(ToolCall {
            id: "call_YbF1tZ8".into(),
            name: "get_weather".into(),
            arguments: "{\"location\":\"Paris, France\",\"unit\":\"celsius\"}".into()
        })
    );
    assert_eq!(r.usage.reasoning_tokens, 64);
    let out = response_to_json(&r);
    assert_eq!(out["output"][0]["encrypted_content"], "gAAAAABo_fc_enc==");
    assert_eq!(out["output"][1]["id"], "fc_call_YbF1tZ8");

    let r = parse_response(&read("resp_reasoning_text.json")).unwrap();
    assert_eq!(r.finish_reason, Some(FinishReason::MaxTokens));
    assert!(
        matches!(&r.content[0], ContentBlock::Thinking { text, signature: None }
        if text == "**Counting letters**\n\nStrawberry has three r's.\n**Answering briefly**")
    );
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
    let out = response_to_json(&r);
    assert_eq!(out["status"], "incomplete");
    assert_eq!(
        out["incomplete_details"],
        json!({"reason": "max_output_tokens"})
    );
    assert_eq!(out["usage"]["total_tokens"], 1601);

    // A response from another dialect: ids and items are made up in Responses' shape.
    let foreign = Response {
        id: "msg_01ABC".into(),
        model: "claude-sonnet-4-5".into(),
        content: vec![
            ContentBlock::Thinking {
                text: "think".into(),
                signature: Some("sig".into()),
            },
            ContentBlock::text("Hello"),
            ContentBlock::ToolCall(ToolCall {
                id: "toolu_1".into(),
                name: "f".into(),
                arguments: "{}".into(),
            }),
        ],
        finish_reason: Some(FinishReason::Refusal),
        ..Response::default()
    };
    let out = response_to_json(&foreign);
    assert_eq!(out["id"], "resp_msg_01ABC");
    assert_eq!(out["object"], "response");
    assert_eq!(out["created_at"], 0);
    assert_eq!(out["status"], "incomplete");
    assert_eq!(out["incomplete_details"]["reason"], "content_filter");
    assert!(out["error"].is_null());
    assert_eq!(out["tools"], json!([]));
    assert_eq!(
        out["output"],
        json!([
            {"id": "rs_msg_01ABC_0", "type": "reasoning", "summary": [{"type": "summary_text", "text": "think"}]},
            {"id": "msg_msg_01ABC_1", "type": "message", "status": "completed", "role": "assistant",
             "content": [{"type": "output_text", "text": "Hello", "annotations": [], "logprobs": []}]},
            {"id": "fc_toolu_1", "type": "function_call", "status": "completed", "arguments": "{}",
             "call_id": "toolu_1", "name": "f"}
        ])
    );
}

// ---------------------------------------------------------------------------------------------
// Streams
// ---------------------------------------------------------------------------------------------

/// SSE events `(event, data)` of a byte stream.
fn sse_events(bytes: &[u8]) -> Vec<(Option<String>, String)> {
    let mut parser = SseParser::new();
    parser.push(bytes);
    let mut out: Vec<(Option<String>, String)> = std::iter::from_fn(|| parser.next_event())
        .map(|e| (e.event, e.data))
        .collect();
    out.extend(parser.finish().map(|e| (e.event, e.data)));
    out
}

/// Decodes SSE bytes fed in `step`-byte pieces, as a TCP read would split them.
fn decode_sse(bytes: &[u8], step: usize, decoder: &mut dyn StreamDecoder) -> Vec<StreamEvent> {
    let mut parser = SseParser::new();
    let mut events = Vec::new();
    for piece in bytes.chunks(step) {
        parser.push(piece);
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
    let count = |f: fn(&StreamEvent) -> bool| events.iter().filter(|e| f(e)).count();
    assert_eq!(count(|e| matches!(e, StreamEvent::Finish { .. })), 1);
    assert_eq!(
        count(|e| matches!(e, StreamEvent::BlockStart { .. })),
        count(|e| matches!(e, StreamEvent::BlockStop { .. }))
    );
}

fn encode(events: &[StreamEvent]) -> Vec<u8> {
    let mut encoder = Encoder::new(CREATED);
    let mut bytes = Vec::new();
    for ev in events {
        encoder.encode(ev, &mut bytes);
    }
    bytes
}

/// Checks what Codex relies on: every event named as its `type`, sequence numbers 0, 1, 2 …,
/// every delta after its item's `output_item.added` and before its `output_item.done`, every
/// added item done, and a final `response.completed` (or `.incomplete`) carrying usage.
/// Returns the terminal event's data.
fn assert_valid_responses_sse(bytes: &[u8]) -> Value {
    let events = sse_events(bytes);
    assert!(!events.is_empty());
    let mut open: HashSet<String> = HashSet::new();
    let mut done: HashSet<String> = HashSet::new();
    let mut last = Value::Null;
    for (i, (name, data)) in events.iter().enumerate() {
        let v: Value = serde_json::from_str(data).unwrap();
        let kind = v["type"].as_str().unwrap();
        assert_eq!(name.as_deref(), Some(kind), "event name at {i}");
        assert_eq!(v["sequence_number"], json!(i), "sequence_number at {i}");
        match kind {
            "response.created" | "response.in_progress" => {
                assert!(i < 2, "{kind} at {i}");
                assert_eq!(v["response"]["status"], "in_progress");
                assert_eq!(v["response"]["output"], json!([]));
            }
            "response.output_item.added" => {
                let id = v["item"]["id"].as_str().unwrap().to_string();
                assert!(open.insert(id.clone()), "item {id} added twice");
            }
            "response.output_item.done" => {
                let id = v["item"]["id"].as_str().unwrap().to_string();
                assert!(open.remove(&id), "item {id} done before added");
                done.insert(id);
            }
            "response.completed" | "response.incomplete" => {
                assert_eq!(i, events.len() - 1, "terminal event is last");
                assert!(open.is_empty(), "items left open: {open:?}");
                let out_ids: HashSet<String> = v["response"]["output"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|it| it["id"].as_str().unwrap().to_string())
                    .collect();
                assert_eq!(out_ids, done);
                assert!(v["response"]["usage"]["total_tokens"].is_u64());
                assert_eq!(
                    usage_from_event(name.as_deref(), data),
                    usage_from_event(None, data)
                );
                assert!(usage_from_event(None, data).is_some());
                assert!(is_terminal_event(None, data));
                last = v.clone();
            }
            _ => {
                let id = v["item_id"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{kind} has no item_id"));
                assert!(open.contains(id), "{kind} for item {id} that is not open");
                assert!(!is_terminal_event(name.as_deref(), data));
                assert_eq!(usage_from_event(None, data), None);
            }
        }
    }
    assert!(
        !last.is_null(),
        "stream does not end with response.completed"
    );
    last
}

fn assert_round_trip(events: &[StreamEvent], original: &Response) {
    let bytes = encode(events);
    assert_valid_responses_sse(&bytes);
    let again = decode_sse(&bytes, 64, &mut Decoder::new());
    assert_well_formed(&again);
    assert_eq!(&accumulate(&again), original);
}

#[test]
fn stream_reasoning_then_text() {
    let bytes = read("stream_reasoning_text.sse");
    for step in [1, 7, bytes.len()] {
        let events = decode_sse(&bytes, step, &mut Decoder::new());
        assert_well_formed(&events);
        let r = accumulate(&events);
        assert_eq!(r.id, "resp_68c0a1b2c3d4e5f6");
        assert_eq!(r.model, "gpt-5-mini-2025-08-07");
        assert_eq!(
            r.content,
            vec![
                ContentBlock::Thinking {
                    text: "**Choosing a greeting**\n\nThe user said hi\n**Keeping it short**"
                        .into(),
                    signature: None
                },
                ContentBlock::text("Bonjour ! Ça va ?"),
            ]
        );
        assert_eq!(r.finish_reason, Some(FinishReason::EndTurn));
        assert_eq!(
            r.usage,
            Usage {
                input_tokens: 24,
                output_tokens: 80,
                reasoning_tokens: 64,
                ..Usage::default()
            }
        );
        if step == 1 {
            assert_round_trip(&events, &r);
        }
    }
    // Passthrough accounting: only the last event is terminal, and it has the usage.
    let events = sse_events(&bytes);
    let terminal: Vec<bool> = events
        .iter()
        .map(|(e, d)| is_terminal_event(e.as_deref(), d))
        .collect();
    assert_eq!(terminal.iter().filter(|t| **t).count(), 1);
    assert!(terminal[terminal.len() - 1]);
    let usages: Vec<Usage> = events
        .iter()
        .filter_map(|(e, d)| usage_from_event(e.as_deref(), d))
        .collect();
    assert_eq!(usages.len(), 1);
    assert_eq!(usages[0].output_tokens, 80);
    // The upstream transcript itself passes the checks the encoder's output is held to.
    assert_valid_responses_sse(&bytes);
}

#[test]
fn stream_function_call_argument_deltas() {
    let bytes = read("stream_function_call.sse");
    let events = decode_sse(&bytes, 13, &mut Decoder::new());
    assert_well_formed(&events);
    let r = accumulate(&events);
    // The reasoning item had no summary: no block at all.
    assert_eq!(
        r.content,
        vec![ContentBlock::ToolCall(ToolCall {
            id: "call_9sLkQ2".into(),
            name: "get_weather".into(),
            arguments: "{\"city\":\"Paris\"}".into()
        })]
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(
                e,
                StreamEvent::BlockDelta {
                    delta: ekai_wire::canonical::Delta::ToolArguments(_),
                    ..
                }
            ))
            .count(),
        5,
        "argument fragments pass through as they came (done does not repeat them)"
    );
    assert_eq!(r.finish_reason, Some(FinishReason::ToolUse));
    assert_eq!(r.usage.cache_read_tokens, 64);
    assert_eq!(r.usage.input_tokens, 75);
    assert_round_trip(&events, &r);

    let out = encode(&events);
    let last = assert_valid_responses_sse(&out);
    assert_eq!(
        last["response"]["output"][0],
        json!({"id": "fc_call_9sLkQ2", "type": "function_call", "status": "completed",
            "arguments": "{\"city\":\"Paris\"}", "call_id": "call_9sLkQ2", "name": "get_weather"})
    );
    assert_eq!(last["response"]["id"], "resp_68c0b9f1e2d3");
    assert_eq!(last["response"]["created_at"], CREATED);
}

#[test]
fn stream_failures() {
    let sse = "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"model\":\"gpt-5\",\"output\":[]}}\n\n\
event: response.failed\ndata: {\"type\":\"response.failed\",\"sequence_number\":1,\"response\":{\"id\":\"resp_1\",\"status\":\"failed\",\"error\":{\"code\":\"rate_limit_exceeded\",\"message\":\"Slow down\"},\"usage\":null}}\n\n";
    let events = decode_sse(sse.as_bytes(), 5, &mut Decoder::new());
    assert_eq!(
        events.last(),
        Some(&StreamEvent::Error {
            kind: "rate_limit_error".into(),
            message: "Slow down".into()
        })
    );
    assert!(!events.iter().any(|e| matches!(e, StreamEvent::Stop)));
    assert!(is_terminal_event(Some("response.failed"), ""));
    // Re-encoded for a Responses client: response.failed with the code Codex knows.
    let out = encode(&events);
    let last = sse_events(&out).pop().unwrap();
    assert_eq!(last.0.as_deref(), Some("response.failed"));
    let v: Value = serde_json::from_str(&last.1).unwrap();
    assert_eq!(v["response"]["error"]["code"], "rate_limit_exceeded");
    assert_eq!(
        openai_responses::parse_error(br#"{"error":{"message":"bad","type":"invalid_request_error","param":"input","code":null}}"#),
        Some(("invalid_request_error".into(), "bad".into()))
    );
}

#[test]
fn stream_incomplete_is_max_tokens() {
    let events = [
        StreamEvent::Start {
            id: "chatcmpl-1".into(),
            model: "gpt-4o".into(),
            usage: Usage::default(),
        },
        StreamEvent::BlockStart {
            index: 0,
            block: ekai_wire::canonical::BlockStart::Text,
        },
        StreamEvent::BlockDelta {
            index: 0,
            delta: ekai_wire::canonical::Delta::Text("cut o".into()),
        },
        // No BlockStop: the encoder closes the item itself before the terminal event.
        StreamEvent::Finish {
            reason: Some(FinishReason::MaxTokens),
            stop_sequence: None,
            usage: Usage {
                input_tokens: 3,
                output_tokens: 2,
                ..Usage::default()
            },
        },
        StreamEvent::Stop,
    ];
    let out = encode(&events);
    let last = assert_valid_responses_sse(&out);
    assert_eq!(last["type"], "response.incomplete");
    assert_eq!(last["response"]["status"], "incomplete");
    assert_eq!(
        last["response"]["incomplete_details"]["reason"],
        "max_output_tokens"
    );
    let again = accumulate(&decode_sse(&out, 9, &mut Decoder::new()));
    assert_eq!(again.finish_reason, Some(FinishReason::MaxTokens));
    assert_eq!(again.content, vec![ContentBlock::text("cut o")]);
    assert_eq!(again.id, "resp_chatcmpl-1");
}

// ---------------------------------------------------------------------------------------------
// Calls of custom and namespaced tools, answered by a model that only knows functions
// ---------------------------------------------------------------------------------------------

const PATCH: &str =
    "*** Begin Patch\n*** Add File: hello.txt\n+say \"hi\" \u{e9}\u{1F600}\\\n*** End Patch";

fn tool_calls_response() -> Response {
    Response {
        id: "msg_01Tools".into(),
        model: "claude-sonnet-4-5".into(),
        content: vec![
            ContentBlock::text("Patching."),
            ContentBlock::ToolCall(ToolCall {
                id: "toolu_1".into(),
                name: "apply_patch".into(),
                arguments: openai_responses::custom_arguments(PATCH),
            }),
            ContentBlock::ToolCall(ToolCall {
                id: "toolu_2".into(),
                name: "mcp__weather__get_forecast".into(),
                arguments: "{\"city\":\"Paris\"}".into(),
            }),
            ContentBlock::ToolCall(ToolCall {
                id: "toolu_3".into(),
                name: "mcp__db__query".into(),
                arguments: "{\"input\":\"select 2\"}".into(),
            }),
            ContentBlock::ToolCall(ToolCall {
                id: "toolu_4".into(),
                name: "exec_command".into(),
                arguments: "{\"cmd\":\"ls\"}".into(),
            }),
        ],
        finish_reason: Some(FinishReason::ToolUse),
        usage: Usage {
            input_tokens: 40,
            output_tokens: 30,
            ..Usage::default()
        },
        ..Response::default()
    }
}

fn tools_reply() -> openai_responses::Reply {
    let req = parse_request(&read("req_codex_tools.json")).unwrap();
    openai_responses::Reply::for_request(&req)
}

/// The output items a Codex client must get for `tool_calls_response`.
fn expected_call_items() -> Value {
    json!([
        {"id": "ctc_toolu_1", "type": "custom_tool_call", "call_id": "toolu_1",
         "name": "apply_patch", "input": PATCH},
        {"id": "fc_toolu_2", "type": "function_call", "status": "completed",
         "arguments": "{\"city\":\"Paris\"}", "call_id": "toolu_2", "name": "get_forecast",
         "namespace": "mcp__weather__"},
        {"id": "ctc_toolu_3", "type": "custom_tool_call", "call_id": "toolu_3", "name": "query",
         "namespace": "mcp__db__", "input": "select 2"},
        {"id": "fc_toolu_4", "type": "function_call", "status": "completed",
         "arguments": "{\"cmd\":\"ls\"}", "call_id": "toolu_4", "name": "exec_command"}
    ])
}

#[test]
fn calls_of_custom_and_namespaced_tools_answer_in_the_declared_shape() {
    let mut reply = tools_reply();
    assert!(!reply.store);
    let resp = tool_calls_response();
    let out = openai_responses::response_to_json_for(&resp, &reply);
    assert_eq!(
        out["output"].as_array().unwrap()[1..],
        expected_call_items().as_array().unwrap()[..]
    );
    assert_eq!(out["id"], "resp_msg_01Tools");
    assert_eq!(out["store"], false);
    // Read back (as from an OpenAI upstream): the same canonical calls.
    let again = parse_response(out.to_string().as_bytes()).unwrap();
    assert_eq!(again.content, resp.content);
    assert_eq!(again.finish_reason, Some(FinishReason::ToolUse));
    // Without the request's tools, every call is a plain function call.
    let plain = response_to_json(&resp);
    assert!(
        plain["output"]
            .as_array()
            .unwrap()
            .iter()
            .skip(1)
            .all(|i| i["type"] == "function_call")
    );
    // The id the gateway chose, and what the client asked to have kept, are echoed.
    reply.id = Some("resp_gw_1".into());
    reply.store = true;
    reply.previous_response_id = Some("resp_gw_0".into());
    let out = openai_responses::response_to_json_for(&resp, &reply);
    assert_eq!(out["id"], "resp_gw_1");
    assert_eq!(out["store"], true);
    assert_eq!(out["previous_response_id"], "resp_gw_0");
    assert_eq!(out["output"][0]["id"], "msg_gw_1_0");
}

/// Canonical events for `tool_calls_response`, the arguments cut into `pieces`-byte fragments
/// (escapes and multi-byte characters cut where they fall).
fn tool_call_events(pieces: usize) -> Vec<StreamEvent> {
    use ekai_wire::canonical::{BlockStart, Delta};
    let resp = tool_calls_response();
    let mut events = vec![StreamEvent::Start {
        id: resp.id.clone(),
        model: resp.model.clone(),
        usage: Usage::default(),
    }];
    for (i, block) in resp.content.iter().enumerate() {
        let index = i as u32;
        match block {
            ContentBlock::Text(t) => {
                events.push(StreamEvent::BlockStart {
                    index,
                    block: BlockStart::Text,
                });
                events.push(StreamEvent::BlockDelta {
                    index,
                    delta: Delta::Text(t.text.clone()),
                });
            }
            ContentBlock::ToolCall(c) => {
                events.push(StreamEvent::BlockStart {
                    index,
                    block: BlockStart::ToolCall {
                        id: c.id.clone(),
                        name: c.name.clone(),
                    },
                });
                let mut rest = c.arguments.as_str();
                while !rest.is_empty() {
                    let mut cut = pieces.min(rest.len());
                    while !rest.is_char_boundary(cut) {
                        cut += 1;
                    }
                    events.push(StreamEvent::BlockDelta {
                        index,
                        delta: Delta::ToolArguments(rest[..cut].to_string()),
                    });
                    rest = &rest[cut..];
                }
            }
            _ => unreachable!(),
        }
        events.push(StreamEvent::BlockStop { index });
    }
    events.push(StreamEvent::Finish {
        reason: resp.finish_reason.clone(),
        stop_sequence: None,
        usage: resp.usage,
    });
    events.push(StreamEvent::Stop);
    events
}

#[test]
fn streamed_custom_tool_input_is_relayed_as_it_is_generated() {
    for pieces in [1, 3, 7, 1000] {
        let events = tool_call_events(pieces);
        let mut encoder = Encoder::for_reply(CREATED, tools_reply());
        let mut bytes = Vec::new();
        for ev in &events {
            encoder.encode(ev, &mut bytes);
        }
        let last = assert_valid_responses_sse(&bytes);
        assert_eq!(
            last["response"]["output"].as_array().unwrap()[1..],
            expected_call_items().as_array().unwrap()[..],
            "pieces={pieces}"
        );
        let evs: Vec<Value> = sse_events(&bytes)
            .iter()
            .map(|(_, d)| serde_json::from_str(d).unwrap())
            .collect();
        let of = |kind: &str, item: &str| -> Vec<&Value> {
            evs.iter()
                .filter(|v| v["type"] == kind && v["item_id"] == item)
                .collect()
        };
        // apply_patch: its text comes out in pieces (not JSON), then once whole.
        let deltas = of("response.custom_tool_call_input.delta", "ctc_toolu_1");
        let text: String = deltas
            .iter()
            .map(|d| d["delta"].as_str().unwrap())
            .collect();
        assert_eq!(text, PATCH, "pieces={pieces}");
        if pieces < 10 {
            assert!(deltas.len() > 5, "pieces={pieces}: {}", deltas.len());
        }
        let done = of("response.custom_tool_call_input.done", "ctc_toolu_1");
        assert_eq!(done.len(), 1);
        assert_eq!(done[0]["input"], PATCH);
        assert_eq!(done[0]["output_index"], 1);
        let added = evs
            .iter()
            .find(|v| v["type"] == "response.output_item.added" && v["output_index"] == 1)
            .unwrap();
        assert_eq!(
            added["item"],
            json!({"id": "ctc_toolu_1", "type": "custom_tool_call", "call_id": "toolu_1",
                   "name": "apply_patch", "input": ""})
        );
        // A namespaced function streams its arguments under its own name.
        let fn_done = of("response.function_call_arguments.done", "fc_toolu_2");
        assert_eq!(fn_done[0]["name"], "get_forecast");
        assert!(of("response.function_call_arguments.delta", "ctc_toolu_1").is_empty());
        // Codex reading it back (or an OpenAI upstream's stream, decoded): the same calls.
        let again = accumulate(&decode_sse(&bytes, 11, &mut Decoder::new()));
        assert_eq!(
            again.content,
            tool_calls_response().content,
            "pieces={pieces}"
        );
        assert_eq!(again.finish_reason, Some(FinishReason::ToolUse));
    }
    // Arguments that are not `{"input": …}` (a model that named the field otherwise) come out
    // whole when the call ends.
    use ekai_wire::canonical::{BlockStart, Delta};
    let mut encoder = Encoder::for_reply(CREATED, tools_reply());
    let mut bytes = Vec::new();
    for ev in [
        StreamEvent::BlockStart {
            index: 0,
            block: BlockStart::ToolCall {
                id: "t".into(),
                name: "apply_patch".into(),
            },
        },
        StreamEvent::BlockDelta {
            index: 0,
            delta: Delta::ToolArguments("{\"patch\": \"a\\n".into()),
        },
        StreamEvent::BlockDelta {
            index: 0,
            delta: Delta::ToolArguments("b\"}".into()),
        },
        StreamEvent::BlockStop { index: 0 },
        StreamEvent::Stop,
    ] {
        encoder.encode(&ev, &mut bytes);
    }
    let last = assert_valid_responses_sse(&bytes);
    assert_eq!(last["response"]["output"][0]["input"], "a\nb");
}

// ---------------------------------------------------------------------------------------------
// Cross-dialect
// ---------------------------------------------------------------------------------------------

/// Every tool call id in a Chat body has its tool message, and every tool message its call.
fn assert_chat_ids_link(body: &Value) {
    let mut calls = HashSet::new();
    let mut results = HashSet::new();
    for m in body["messages"].as_array().unwrap() {
        for c in m["tool_calls"].as_array().into_iter().flatten() {
            calls.insert(c["id"].as_str().unwrap().to_string());
        }
        if m["role"] == "tool" {
            results.insert(m["tool_call_id"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(calls, results);
}

fn assert_anthropic_ids_link(body: &Value) {
    let mut calls = HashSet::new();
    let mut results = HashSet::new();
    for m in body["messages"].as_array().unwrap() {
        for b in m["content"].as_array().into_iter().flatten() {
            match b["type"].as_str() {
                Some("tool_use") => {
                    calls.insert(b["id"].as_str().unwrap().to_string());
                }
                Some("tool_result") => {
                    results.insert(b["tool_use_id"].as_str().unwrap().to_string());
                }
                _ => {}
            }
        }
    }
    assert_eq!(calls, results);
}

#[test]
fn requests_for_chat_and_anthropic_upstreams() {
    for case in REQUEST_CASES {
        let req: Request = parse_request(&read(&format!("{case}.json"))).unwrap();
        let chat = openai_chat::request_to_json(&req).unwrap();
        cross_json(&format!("responses_to_chat/{case}.request.json"), &chat);
        assert_chat_ids_link(&chat);
        let claude = anthropic::request_to_json(&req).unwrap();
        cross_json(
            &format!("responses_to_anthropic/{case}.request.json"),
            &claude,
        );
        assert_anthropic_ids_link(&claude);
        // Nothing that only a Responses upstream understands leaks out.
        for (name, body) in [("chat", &chat), ("anthropic", &claude)] {
            let text = body.to_string();
            for leak in [
                "encrypted_content",
                "custom_tool_call",
                "prompt_cache_key",
                "\"include\"",
                "\"store\"",
                "input_text",
            ] {
                assert!(!text.contains(leak), "{case} → {name} carries {leak}");
            }
            // Both parse back in their own dialect.
            let ok = match name {
                "chat" => openai_chat::parse_request(text.as_bytes()).map(|_| ()),
                _ => anthropic::parse_request(text.as_bytes()).map(|_| ()),
            };
            ok.unwrap_or_else(|e| panic!("{case} → {name}: {e}"));
        }
    }
    // The Codex conversation keeps its shell call linked to its output in both.
    let req = parse_request(&read("req_codex.json")).unwrap();
    let chat = openai_chat::request_to_json(&req).unwrap();
    let msgs = chat["messages"].as_array().unwrap();
    let call_at = msgs
        .iter()
        .position(|m| m["tool_calls"][0]["id"] == "call_Xk2PqT9")
        .unwrap();
    assert_eq!(msgs[call_at + 1]["role"], "tool");
    assert_eq!(msgs[call_at + 1]["tool_call_id"], "call_Xk2PqT9");
    // So does the apply_patch call (a custom tool, now a function) with its output.
    let call_at = msgs
        .iter()
        .position(|m| m["tool_calls"][0]["id"] == "call_Pa7")
        .unwrap();
    assert_eq!(
        msgs[call_at]["tool_calls"][0]["function"]["name"],
        "apply_patch"
    );
    assert_eq!(msgs[call_at + 1]["tool_call_id"], "call_Pa7");
    // shell, update_plan and apply_patch; the hosted web_search has no equivalent.
    let names = |tools: &Value, key: &str| -> Vec<String> {
        tools
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.pointer(key).unwrap().as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names(&chat["tools"], "/function/name"),
        ["shell", "update_plan", "apply_patch"]
    );
    assert_eq!(chat["reasoning_effort"], "medium");
    let claude = anthropic::request_to_json(&req).unwrap();
    assert_eq!(
        names(&claude["tools"], "/name"),
        ["shell", "update_plan", "apply_patch"]
    );
    assert!(claude["system"].to_string().contains("You are Codex"));
}

#[test]
fn responses_for_chat_and_anthropic_clients() {
    for case in RESPONSE_CASES {
        let resp = parse_response(&read(&format!("{case}.json"))).unwrap();
        let chat = openai_chat::response_to_json(&resp);
        cross_json(&format!("responses_to_chat/{case}.response.json"), &chat);
        let claude = anthropic::response_to_json(&resp);
        cross_json(
            &format!("responses_to_anthropic/{case}.response.json"),
            &claude,
        );
        assert!(!chat.to_string().contains("encrypted_content"), "{case}");
        assert!(!claude.to_string().contains("encrypted_content"), "{case}");
    }
}

/// What a Responses client can see of an Anthropic response: no signatures, no redacted thinking,
/// no empty text.
fn visible_to_responses(mut r: Response) -> Response {
    r.content = r
        .content
        .into_iter()
        .filter_map(|b| match b {
            ContentBlock::Thinking { text, .. } if text.is_empty() => None,
            ContentBlock::Thinking { text, .. } => Some(ContentBlock::Thinking {
                text,
                signature: None,
            }),
            ContentBlock::RedactedThinking { .. } => None,
            ContentBlock::Text(t) if t.text.is_empty() => None,
            other => Some(other),
        })
        .collect();
    r.id = format!("resp_{}", r.id);
    r.stop_sequence = None;
    r
}

#[test]
fn anthropic_streams_reencoded_for_codex() {
    let dir = fixtures().join("anthropic/streams");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sse"))
        .collect();
    cases.sort();
    assert!(!cases.is_empty());
    for path in cases {
        let case = path.file_stem().unwrap().to_str().unwrap().to_string();
        let bytes = std::fs::read(&path).unwrap();
        let events = decode_sse(&bytes, 17, &mut anthropic::Decoder::new());
        let original = accumulate(&events);
        let out = encode(&events);
        support::assert_text_snapshot(
            &fixtures()
                .join("cross/responses_from_anthropic")
                .join(format!("{case}.sse")),
            std::str::from_utf8(&out).unwrap(),
        );
        let last = assert_valid_responses_sse(&out);
        let usage = &last["response"]["usage"];
        assert_eq!(
            usage["input_tokens"].as_u64(),
            Some(original.usage.input_tokens),
            "{case}"
        );
        assert!(usage["input_tokens"].as_u64().unwrap() > 0, "{case}");
        assert_eq!(
            usage["input_tokens_details"]["cached_tokens"].as_u64(),
            Some(original.usage.cache_read_tokens),
            "{case}"
        );
        // Decoded again as Codex would read it: the same conversation.
        let again = accumulate(&decode_sse(&out, 64, &mut Decoder::new()));
        let mut expected = visible_to_responses(original);
        // Responses has no stop-sequence or pause status: those read back as a plain end of turn.
        if matches!(
            expected.finish_reason,
            Some(FinishReason::StopSequence | FinishReason::PauseTurn)
        ) {
            expected.finish_reason = Some(FinishReason::EndTurn);
        }
        assert_eq!(again.content, expected.content, "{case}");
        assert_eq!(again.finish_reason, expected.finish_reason, "{case}");
        assert_eq!(
            again.usage.input_tokens, expected.usage.input_tokens,
            "{case}"
        );
        assert_eq!(
            again.usage.output_tokens, expected.usage.output_tokens,
            "{case}"
        );
        assert_eq!(again.id, expected.id, "{case}");
    }
}

// ---------------------------------------------------------------------------------------------
// Gemini, both ways
// ---------------------------------------------------------------------------------------------

/// Every functionCall in a Gemini body is answered by a functionResponse of the same name, in
/// order, in the next turn.
fn assert_gemini_calls_answered(body: &Value) {
    let contents = body["contents"].as_array().unwrap();
    for (i, c) in contents.iter().enumerate() {
        let calls: Vec<&Value> = c["parts"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p.get("functionCall"))
            .collect();
        if calls.is_empty() {
            continue;
        }
        assert_eq!(c["role"], "model");
        let answers: Vec<&Value> = contents[i + 1]["parts"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p.get("functionResponse"))
            .collect();
        let names = |v: &[&Value]| -> Vec<String> {
            v.iter()
                .map(|x| x["name"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(names(&calls), names(&answers), "turn {i}");
    }
}

#[test]
fn requests_for_gemini_upstreams() {
    for case in REQUEST_CASES {
        let req: Request = parse_request(&read(&format!("{case}.json"))).unwrap();
        let body = gemini::request_to_json(&req).unwrap();
        cross_json(&format!("responses_to_gemini/{case}.request.json"), &body);
        assert_gemini_calls_answered(&body);
        let text = body.to_string();
        for leak in [
            "encrypted_content",
            "custom_tool_call",
            "prompt_cache_key",
            "__ekai",
            "web_search",
            "local_shell",
            "\"store\"",
            "input_text",
        ] {
            assert!(!text.contains(leak), "{case} → gemini carries {leak}");
        }
        gemini::parse_request(text.as_bytes(), "gemini-2.5-pro")
            .unwrap_or_else(|e| panic!("{case} → gemini: {e}"));
    }
    // The Codex conversation: instructions and the developer message are the system
    // instruction, reasoning effort a thinking budget, the shell call paired with its output.
    let req = parse_request(&read("req_codex.json")).unwrap();
    let body = gemini::request_to_json(&req).unwrap();
    let system = body["systemInstruction"].to_string();
    assert!(system.contains("You are Codex") && system.contains("permissions instructions"));
    let contents = body["contents"].as_array().unwrap();
    let call = contents
        .iter()
        .flat_map(|c| c["parts"].as_array().unwrap())
        .find_map(|p| p.get("functionCall"))
        .unwrap();
    assert_eq!(call["name"], "shell");
    assert_eq!(
        call["args"]["command"],
        json!(["bash", "-lc", "cargo test"])
    );
    let names: Vec<&str> = body["tools"][0]["functionDeclarations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["shell", "update_plan", "apply_patch"]);
    assert!(
        body["generationConfig"]["thinkingConfig"].is_object(),
        "{body}"
    );

    // Codex's tool kinds: the flattened functions, the custom calls' text as `input`.
    let req = parse_request(&read("req_codex_tools.json")).unwrap();
    let body = gemini::request_to_json(&req).unwrap();
    let calls: Vec<&Value> = body["contents"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["parts"].as_array().unwrap())
        .filter_map(|p| p.get("functionCall"))
        .collect();
    assert_eq!(calls[0]["name"], "apply_patch");
    assert_eq!(
        calls[0]["args"]["input"],
        "*** Begin Patch\n*** Add File: hello.txt\n+say \"hi\"\n*** End Patch"
    );
    assert_eq!(calls[1]["name"], "mcp__weather__get_forecast");
    assert_eq!(calls[2]["args"], json!({"input": "select 1"}));
    assert_eq!(
        body["toolConfig"]["functionCallingConfig"],
        json!({"mode": "ANY", "allowedFunctionNames": ["apply_patch"]})
    );
}

#[test]
fn responses_for_gemini_clients_and_back() {
    for case in RESPONSE_CASES {
        let resp = parse_response(&read(&format!("{case}.json"))).unwrap();
        let body = gemini::response_to_json(&resp);
        cross_json(&format!("responses_to_gemini/{case}.response.json"), &body);
        assert!(!body.to_string().contains("encrypted_content"), "{case}");
        let back = gemini::parse_response(body.to_string().as_bytes()).unwrap();
        let calls = |r: &Response| -> Vec<ToolCall> {
            r.content
                .iter()
                .filter_map(|b| match b {
                    ContentBlock::ToolCall(c) => Some(c.clone()),
                    _ => None,
                })
                .collect()
        };
        assert_eq!(
            calls(&back).iter().map(|c| &c.name).collect::<Vec<_>>(),
            calls(&resp).iter().map(|c| &c.name).collect::<Vec<_>>(),
            "{case}"
        );
        assert_eq!(back.usage.output_tokens, resp.usage.output_tokens, "{case}");
    }
    // Gemini answers for a Responses client (Codex on Gemini), and read back.
    let dir = fixtures().join("gemini/responses");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.ends_with(".json") && !n.ends_with(".expected.json")
        })
        .collect();
    cases.sort();
    assert!(!cases.is_empty());
    for path in cases {
        let case = path.file_stem().unwrap().to_str().unwrap().to_string();
        let resp = gemini::parse_response(&std::fs::read(&path).unwrap()).unwrap();
        let out = response_to_json(&resp);
        cross_json(&format!("responses_from_gemini/{case}.response.json"), &out);
        let mut again = parse_response(out.to_string().as_bytes()).unwrap();
        // The reasoning items read back whole beside their summaries.
        again
            .content
            .retain(|b| !matches!(b, ContentBlock::Unknown { .. }));
        let expected = visible_to_responses(resp.clone());
        assert_eq!(again.content, expected.content, "{case}");
        assert_eq!(again.usage.input_tokens, resp.usage.input_tokens, "{case}");
        assert_eq!(
            again.usage.reasoning_tokens, resp.usage.reasoning_tokens,
            "{case}"
        );
    }
}

#[test]
fn gemini_streams_reencoded_for_codex() {
    let dir = fixtures().join("gemini/streams");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sse"))
        .collect();
    cases.sort();
    assert!(!cases.is_empty());
    for path in cases {
        let case = path.file_stem().unwrap().to_str().unwrap().to_string();
        let bytes = std::fs::read(&path).unwrap();
        let events = decode_sse(&bytes, 23, &mut gemini::Decoder::new());
        let original = accumulate(&events);
        let out = encode(&events);
        support::assert_text_snapshot(
            &fixtures()
                .join("cross/responses_from_gemini")
                .join(format!("{case}.sse")),
            std::str::from_utf8(&out).unwrap(),
        );
        let last = assert_valid_responses_sse(&out);
        let usage = &last["response"]["usage"];
        assert_eq!(
            usage["input_tokens"].as_u64(),
            Some(original.usage.input_tokens)
        );
        assert_eq!(
            usage["output_tokens_details"]["reasoning_tokens"].as_u64(),
            Some(original.usage.reasoning_tokens),
            "{case}"
        );
        let again = accumulate(&decode_sse(&out, 64, &mut Decoder::new()));
        let expected = visible_to_responses(original);
        assert_eq!(again.content, expected.content, "{case}");
        assert_eq!(again.finish_reason, expected.finish_reason, "{case}");
        assert_eq!(again.id, expected.id, "{case}");
    }
}

#[test]
fn responses_streams_reencoded_for_gemini_clients() {
    for case in ["stream_function_call", "stream_reasoning_text"] {
        let bytes = read(&format!("{case}.sse"));
        let events = decode_sse(&bytes, 29, &mut Decoder::new());
        let original = accumulate(&events);
        let mut encoder = gemini::Encoder::new();
        let mut out = Vec::new();
        for ev in &events {
            encoder.encode(ev, &mut out);
        }
        support::assert_text_snapshot(
            &fixtures()
                .join("cross/gemini_from_responses")
                .join(format!("{case}.sse")),
            std::str::from_utf8(&out).unwrap(),
        );
        let again = accumulate(&decode_sse(&out, 64, &mut gemini::Decoder::new()));
        let texts = |r: &Response| -> Vec<String> {
            r.content
                .iter()
                .filter_map(|b| match b {
                    ContentBlock::Text(t) => Some(t.text.clone()),
                    ContentBlock::Thinking { text, .. } if !text.is_empty() => {
                        Some(format!("thought: {text}"))
                    }
                    _ => None,
                })
                .collect()
        };
        let calls = |r: &Response| -> Vec<(String, Value)> {
            r.content
                .iter()
                .filter_map(|b| match b {
                    ContentBlock::ToolCall(c) => {
                        Some((c.name.clone(), serde_json::from_str(&c.arguments).unwrap()))
                    }
                    _ => None,
                })
                .collect()
        };
        assert_eq!(texts(&again), texts(&original), "{case}");
        assert_eq!(calls(&again), calls(&original), "{case}");
        assert_eq!(again.finish_reason, original.finish_reason, "{case}");
        assert_eq!(
            again.usage.input_tokens, original.usage.input_tokens,
            "{case}"
        );
        assert_eq!(
            again.usage.output_tokens, original.usage.output_tokens,
            "{case}"
        );
    }
}

/// A Codex turn on Gemini, end to end in the wire crate: the Responses request rendered for
/// Gemini, Gemini's streamed answer (a thought, then calls of a custom and a namespaced tool)
/// re-encoded for Codex, and Codex's next request (those calls and their outputs) rendered for
/// Gemini again with each call answered.
#[test]
fn codex_tool_loop_through_gemini() {
    let req = parse_request(&read("req_codex_tools.json")).unwrap();
    let reply = openai_responses::Reply::for_request(&req);
    let upstream = gemini::request_to_json(&req).unwrap();
    let decls = upstream["tools"][0]["functionDeclarations"]
        .as_array()
        .unwrap();
    assert_eq!(decls.len(), 6);
    // Gemini's answer, as its stream would carry it.
    let patch = "*** Begin Patch\n*** Add File: b.txt\n+\"q\" \u{e9}\n*** End Patch";
    let chunk = |parts: Value, finish: Option<&str>| {
        let mut cand = json!({"content": {"role": "model", "parts": parts}, "index": 0});
        if let Some(f) = finish {
            cand["finishReason"] = json!(f);
        }
        format!(
            "data: {}\n\n",
            json!({"candidates": [cand], "responseId": "g1", "modelVersion": "gemini-2.5-pro",
                   "usageMetadata": {"promptTokenCount": 50, "candidatesTokenCount": 20,
                                     "thoughtsTokenCount": 7, "totalTokenCount": 77}})
        )
    };
    let sse = [
        chunk(json!([{"text": "Patch first, then the forecast.", "thought": true}]), None),
        chunk(
            json!([
                {"functionCall": {"name": "apply_patch", "args": {"input": patch}}, "thoughtSignature": "c2ln"},
                {"functionCall": {"name": "mcp__weather__get_forecast", "args": {"city": "Bern"}}}
            ]),
            Some("STOP"),
        ),
    ]
    .concat();
    let events = decode_sse(sse.as_bytes(), 17, &mut gemini::Decoder::new());
    let mut encoder = Encoder::for_reply(CREATED, reply);
    let mut out = Vec::new();
    for ev in &events {
        encoder.encode(ev, &mut out);
    }
    support::assert_text_snapshot(
        &fixtures().join("cross/responses_from_gemini/codex_tool_loop.sse"),
        std::str::from_utf8(&out).unwrap(),
    );
    let last = assert_valid_responses_sse(&out);
    let output = last["response"]["output"].as_array().unwrap();
    let kinds: Vec<&str> = output.iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["reasoning", "custom_tool_call", "function_call"]);
    assert_eq!(
        output[0]["summary"][0]["text"],
        "Patch first, then the forecast."
    );
    assert_eq!(output[1]["name"], "apply_patch");
    assert_eq!(output[1]["input"], patch);
    assert_eq!(output[2]["name"], "get_forecast");
    assert_eq!(output[2]["namespace"], "mcp__weather__");
    assert_eq!(
        last["response"]["usage"]["output_tokens_details"]["reasoning_tokens"],
        7
    );

    // Codex's next request: the items it got, then their outputs.
    let mut next: Value = serde_json::from_slice(&read("req_codex_tools.json")).unwrap();
    let input = next["input"].as_array_mut().unwrap();
    input.extend(output.iter().cloned());
    input.push(
        json!({"type": "custom_tool_call_output", "call_id": output[1]["call_id"],
                      "output": "Success. A b.txt"}),
    );
    input.push(
        json!({"type": "function_call_output", "call_id": output[2]["call_id"],
                      "output": "rain"}),
    );
    let req = parse_request(next.to_string().as_bytes()).unwrap();
    let upstream = gemini::request_to_json(&req).unwrap();
    assert_gemini_calls_answered(&upstream);
    let contents = upstream["contents"].as_array().unwrap();
    let last_model = &contents[contents.len() - 2];
    let calls: Vec<&Value> = last_model["parts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.get("functionCall"))
        .collect();
    assert_eq!(calls[0]["args"], json!({"input": patch}));
    assert_eq!(calls[1]["name"], "mcp__weather__get_forecast");
    let answers: Vec<&Value> = contents[contents.len() - 1]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.get("functionResponse"))
        .collect();
    assert_eq!(answers.len(), 2);
    assert!(
        answers[0]["response"]
            .to_string()
            .contains("Success. A b.txt")
    );
}
