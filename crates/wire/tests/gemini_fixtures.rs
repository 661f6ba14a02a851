//! Golden fixtures for the Gemini native dialect, and its cross-dialect checks.
//!
//! Snapshots (`<case>.expected.json`, `cross/gemini_*/…`) are compared exactly; run with
//! `UPDATE_SNAPSHOTS=1` to write them, then review them before committing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

mod support;

use std::path::{Path, PathBuf};

use ekai_wire::canonical::{
    ContentBlock, ErrorKind, FinishReason, ImageSource, Reasoning, Response, ResponseAccumulator,
    ResponseFormat, Role, StreamDecoder, StreamEncoder, StreamEvent, Tool, ToolCall, ToolChoice,
    Usage,
};
use ekai_wire::dialect::gemini::{self, Decoder, Encoder};
use ekai_wire::dialect::{anthropic, openai_chat};
use ekai_wire::sse::SseParser;
use serde_json::{Value, json};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn dir(kind: &str) -> PathBuf {
    fixtures().join("gemini").join(kind)
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

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

fn cross(rel: &str, actual: &Value) {
    support::assert_json_snapshot(&fixtures().join("cross").join(rel), actual);
}

fn decode_sse(bytes: &[u8], decoder: &mut dyn StreamDecoder) -> Vec<StreamEvent> {
    let mut parser = SseParser::new();
    parser.push(bytes);
    let mut out = Vec::new();
    while let Some(ev) = parser.next_event() {
        decoder.decode(ev.event.as_deref(), &ev.data, &mut out);
    }
    if let Some(ev) = parser.finish() {
        decoder.decode(ev.event.as_deref(), &ev.data, &mut out);
    }
    decoder.finish(&mut out);
    out
}

fn encode(events: &[StreamEvent], encoder: &mut dyn StreamEncoder) -> Vec<u8> {
    let mut out = Vec::new();
    for ev in events {
        encoder.encode(ev, &mut out);
    }
    out
}

fn accumulate(events: &[StreamEvent]) -> Response {
    let mut acc = ResponseAccumulator::new();
    for ev in events {
        acc.push(ev);
    }
    assert!(acc.finished, "stream never finished: {events:#?}");
    assert!(acc.error.is_none());
    acc.into_response()
}

fn call(id: &str, name: &str, arguments: &str) -> ContentBlock {
    ContentBlock::ToolCall(ToolCall {
        id: id.into(),
        name: name.into(),
        arguments: arguments.into(),
    })
}

fn signature(sig: &str) -> ContentBlock {
    ContentBlock::Thinking {
        text: String::new(),
        signature: Some(sig.into()),
    }
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

#[test]
fn request_snapshots() {
    for path in cases("requests", ".json") {
        let req = gemini::parse_request(&read(&path), "gemini-2.5-flash")
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let out = gemini::request_to_json(&req).unwrap();
        snapshot(&path, &out);
        // What we send upstream must read back as the same request.
        let again = gemini::parse_request(out.to_string().as_bytes(), "gemini-2.5-flash").unwrap();
        assert_eq!(
            gemini::request_to_json(&again).unwrap(),
            out,
            "{}",
            path.display()
        );
    }
}

#[test]
fn multiturn_system_request_canonical() {
    let req = gemini::parse_request(
        &read(&dir("requests").join("multiturn_system.json")),
        "models/gemini-2.5-flash",
    )
    .unwrap();
    assert_eq!(req.model, "gemini-2.5-flash");
    assert_eq!(req.system.len(), 2);
    assert_eq!(req.messages.len(), 3);
    assert_eq!(req.messages[1].role, Role::Assistant);
    assert_eq!(req.messages[1].content, vec![ContentBlock::text("Paris.")]);
    assert_eq!(req.temperature, Some(0.4));
    assert_eq!(req.top_p, Some(0.9));
    assert_eq!(req.top_k, Some(40));
    assert_eq!(req.max_tokens, Some(256));
    assert_eq!(req.stop_sequences, vec!["END".to_string()]);
    let extra = req.extra.as_ref().unwrap();
    assert!(extra.fields.contains_key("safetySettings"));
    assert_eq!(extra.fields["generationConfig"], json!({"seed": 7}));
    let out = gemini::request_to_json(&req).unwrap();
    assert_eq!(out["generationConfig"]["seed"], 7);
    assert!(out.get("model").is_none() && out.get("stream").is_none());

    // A mid-conversation system message joins systemInstruction.
    let mut req = req;
    req.messages.insert(
        1,
        ekai_wire::canonical::Message {
            role: Role::System,
            content: vec![ContentBlock::text("Be brief.")],
            name: None,
        },
    );
    let out = gemini::request_to_json(&req).unwrap();
    assert_eq!(out["systemInstruction"]["parts"][2]["text"], "Be brief.");
    assert_eq!(out["contents"].as_array().unwrap().len(), 3);
}

#[test]
fn tools_request_canonical() {
    let req =
        gemini::parse_request(&read(&dir("requests").join("tools_roundtrip.json")), "g").unwrap();
    let model = &req.messages[1].content;
    // The signature rides on an empty thinking block right before its function call.
    assert_eq!(model[0], signature("CiQBjz1rX2Fbc2lnMQ=="));
    assert_eq!(
        model[1],
        call("call_get_weather_0", "get_weather", r#"{"city":"Paris"}"#)
    );
    assert_eq!(
        model[2],
        call("call_get_weather_1", "get_weather", r#"{"city":"Tokyo"}"#)
    );
    // Results match calls by name, in order.
    let results: Vec<(&str, &str)> = req.messages[2]
        .content
        .iter()
        .map(|b| match b {
            ContentBlock::ToolResult {
                tool_call_id,
                content,
                is_error: false,
                ..
            } => match &content[..] {
                [ContentBlock::Text(t)] => (tool_call_id.as_str(), t.text.as_str()),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        results,
        vec![
            ("call_get_weather_0", r#"{"sky":"cloudy","temp":18}"#),
            ("call_get_weather_1", "24C and clear"),
        ]
    );
    let Tool::Function(f) = &req.tools[0] else {
        panic!()
    };
    // OpenAPI-subset types are lowered to JSON Schema.
    assert_eq!(f.parameters["properties"]["city"]["type"], "string");
    assert_eq!(
        f.parameters["properties"]["unit"]["enum"],
        json!(["C", "F"])
    );
    assert!(
        matches!(&req.tools[2], Tool::Unknown { value, .. } if value.get("googleSearch").is_some())
    );
    assert_eq!(req.tool_choice, Some(ToolChoice::Tool("book_table".into())));

    let out = gemini::request_to_json(&req).unwrap();
    let parts = &out["contents"][1]["parts"];
    assert_eq!(parts[0]["thoughtSignature"], "CiQBjz1rX2Fbc2lnMQ==");
    assert!(parts[0]["functionCall"].get("id").is_none());
    assert!(parts[1].get("thoughtSignature").is_none());
    let decl = &out["tools"][0]["functionDeclarations"][1];
    assert_eq!(decl["parametersJsonSchema"]["additionalProperties"], false);
    assert_eq!(
        out["toolConfig"],
        json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["book_table"]}})
    );
    assert_eq!(
        out["contents"][2]["parts"][1]["functionResponse"]["response"],
        json!({"output": "24C and clear"})
    );
}

#[test]
fn image_request_canonical() {
    let req = gemini::parse_request(&read(&dir("requests").join("image.json")), "g").unwrap();
    let content = &req.messages[0].content;
    assert_eq!(req.messages[0].role, Role::User);
    assert!(
        matches!(&content[1], ContentBlock::Image { source: ImageSource::Base64 { media_type, .. }, .. } if media_type == "image/png")
    );
    assert!(
        matches!(&content[2], ContentBlock::Image { source: ImageSource::Url(u), .. } if u == "https://example.com/cat.jpg")
    );
    assert!(
        matches!(&content[3], ContentBlock::Unknown { value, .. } if value["fileData"]["mimeType"] == "application/pdf")
    );
}

#[test]
fn thinking_schema_request_canonical() {
    let req =
        gemini::parse_request(&read(&dir("requests").join("thinking_schema.json")), "g").unwrap();
    assert_eq!(
        req.reasoning,
        Some(Reasoning {
            budget_tokens: Some(2048),
            ..Reasoning::default()
        })
    );
    assert!(
        matches!(&req.response_format, Some(ResponseFormat::JsonSchema { schema, .. }) if schema["required"][0] == "primes")
    );
    let out = gemini::request_to_json(&req).unwrap();
    let schema = &out["generationConfig"]["responseJsonSchema"];
    assert!(schema.get("$schema").is_none());
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(
        out["generationConfig"]["thinkingConfig"],
        json!({"thinkingBudget": 2048, "includeThoughts": true})
    );
    assert_eq!(out["cachedContent"], "cachedContents/abc123");
}

#[test]
fn thinking_config_mappings() {
    let parse = |tc: Value| {
        let body = json!({"contents": [{"parts": [{"text": "hi"}]}], "generationConfig": {"thinkingConfig": tc}});
        gemini::parse_request(body.to_string().as_bytes(), "g").unwrap()
    };
    let req = parse(json!({"thinkingBudget": 0}));
    assert!(req.reasoning.as_ref().unwrap().disabled);
    assert_eq!(
        gemini::request_to_json(&req).unwrap()["generationConfig"]["thinkingConfig"],
        json!({"thinkingBudget": 0})
    );
    // Dynamic thinking is "medium" for other dialects and stays dynamic for Gemini.
    let req = parse(json!({"thinkingBudget": -1, "includeThoughts": true}));
    assert_eq!(
        req.reasoning.as_ref().unwrap().effort.as_deref(),
        Some("medium")
    );
    assert_eq!(
        gemini::request_to_json(&req).unwrap()["generationConfig"]["thinkingConfig"],
        json!({"thinkingBudget": -1, "includeThoughts": true})
    );
    let req = parse(json!({"thinkingLevel": "LOW"}));
    assert_eq!(
        req.reasoning.as_ref().unwrap().effort.as_deref(),
        Some("low")
    );
}

#[test]
fn request_errors_name_the_field() {
    let err =
        gemini::parse_request(br#"{"contents": [{"role": "bot", "parts": []}]}"#, "g").unwrap_err();
    assert_eq!(err.param.as_deref(), Some("contents[0].role"));
    let err = gemini::parse_request(
        br#"{"contents": [{"role": "model", "parts": [{"functionCall": {"args": {}}}]}]}"#,
        "g",
    )
    .unwrap_err();
    assert_eq!(
        err.param.as_deref(),
        Some("contents[0].parts[0].functionCall.name")
    );
    let err = gemini::parse_request(br#"{"generationConfig": {}}"#, "g").unwrap_err();
    assert_eq!(err.param.as_deref(), Some("contents"));
    let err = gemini::parse_request(
        br#"{"contents": [], "generationConfig": {"maxOutputTokens": "x"}}"#,
        "g",
    )
    .unwrap_err();
    assert_eq!(
        err.param.as_deref(),
        Some("generationConfig.maxOutputTokens")
    );
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

#[test]
fn response_snapshots() {
    for path in cases("responses", ".json") {
        let resp = gemini::parse_response(&read(&path))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let out = gemini::response_to_json(&resp);
        snapshot(&path, &out);
        let again = gemini::parse_response(out.to_string().as_bytes()).unwrap();
        assert_eq!(again, resp, "{}", path.display());
        assert_eq!(
            gemini::usage_from_response(&read(&path)),
            Some(resp.usage),
            "{}",
            path.display()
        );
    }
}

#[test]
fn responses_canonical() {
    let r = gemini::parse_response(&read(&dir("responses").join("text.json"))).unwrap();
    assert_eq!(r.id, "Yx7RaPWqB8ed1e8P0oCPiQk");
    assert_eq!(r.model, "gemini-2.5-flash");
    assert_eq!(r.content, vec![ContentBlock::text("Tokyo.")]);
    assert_eq!(r.finish_reason, Some(FinishReason::EndTurn));

    let r = gemini::parse_response(&read(&dir("responses").join("function_call.json"))).unwrap();
    assert_eq!(r.finish_reason, Some(FinishReason::ToolUse));
    assert_eq!(
        r.content,
        vec![
            signature("CiQBjz1rX2Fbc2lnMQ=="),
            call(
                "call_get_weather_0",
                "get_weather",
                r#"{"city":"Paris","unit":"C"}"#
            ),
            call(
                "call_get_weather_1",
                "get_weather",
                r#"{"city":"Tokyo","unit":"C"}"#
            ),
        ]
    );
    assert_eq!(
        r.usage,
        Usage {
            input_tokens: 80,
            output_tokens: 80,
            reasoning_tokens: 50,
            ..Usage::default()
        }
    );

    let r = gemini::parse_response(&read(&dir("responses").join("thinking.json"))).unwrap();
    assert!(
        matches!(&r.content[0], ContentBlock::Thinking { text, signature: None } if text.starts_with("**Considering"))
    );
    assert_eq!(r.content[1], signature("Cs0BAdHtim9zaWduYXR1cmU="));
    assert!(
        matches!(&r.content[2], ContentBlock::Text(t) if t.text.starts_with("The first three"))
    );
    assert_eq!(
        r.usage,
        Usage {
            input_tokens: 1200,
            output_tokens: 135,
            cache_read_tokens: 1024,
            cache_write_tokens: 0,
            reasoning_tokens: 120,
        }
    );
    let out = gemini::response_to_json(&r);
    assert_eq!(
        out["candidates"][0]["content"]["parts"][1]["thoughtSignature"],
        "Cs0BAdHtim9zaWduYXR1cmU="
    );
    assert_eq!(out["usageMetadata"]["candidatesTokenCount"], 15);
    assert_eq!(out["usageMetadata"]["totalTokenCount"], 1335);

    let r = gemini::parse_response(&read(&dir("responses").join("blocked.json"))).unwrap();
    assert!(r.content.is_empty());
    assert_eq!(r.finish_reason, Some(FinishReason::ContentFilter));
}

#[test]
fn errors_and_counts() {
    assert_eq!(
        gemini::error_json(ErrorKind::Overloaded, "busy"),
        json!({"error": {"code": 503, "message": "busy", "status": "UNAVAILABLE"}})
    );
    assert_eq!(
        gemini::error_json(ErrorKind::InvalidRequest, "bad")["error"]["status"],
        "INVALID_ARGUMENT"
    );
    let body = br#"{"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED"}}"#;
    assert_eq!(
        gemini::parse_error(body),
        Some((
            "RESOURCE_EXHAUSTED".into(),
            "Resource has been exhausted".into()
        ))
    );
    assert_eq!(
        gemini::parse_error(br#"[{"error":{"code":400,"message":"x"}}]"#),
        Some(("400".into(), "x".into()))
    );
    assert_eq!(gemini::parse_error(b"<html>"), None);
    assert_eq!(gemini::count_tokens_json(42), json!({"totalTokens": 42}));
    assert_eq!(gemini::usage_from_chunk(r#"{"candidates":[]}"#), None);
    assert_eq!(
        gemini::usage_from_chunk(
            r#"{"usageMetadata":{"promptTokenCount":5,"candidatesTokenCount":2,"thoughtsTokenCount":3}}"#
        ),
        Some(Usage {
            input_tokens: 5,
            output_tokens: 5,
            reasoning_tokens: 3,
            ..Usage::default()
        })
    );
}

// ---------------------------------------------------------------------------------------------
// Streams
// ---------------------------------------------------------------------------------------------

#[test]
fn stream_text_with_final_usage() {
    let events = decode_sse(
        &read(&dir("streams").join("text_usage.sse")),
        &mut Decoder::new(),
    );
    assert!(
        matches!(&events[0], StreamEvent::Start { id, model, usage } if id == "s1" && model == "gemini-2.5-flash" && usage.input_tokens == 12)
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, StreamEvent::Finish { .. }))
            .count(),
        1
    );
    assert_eq!(events.last(), Some(&StreamEvent::Stop));
    let r = accumulate(&events);
    assert_eq!(
        r.content,
        vec![ContentBlock::text("The capital of Japan is Tokyo.")]
    );
    assert_eq!(r.finish_reason, Some(FinishReason::EndTurn));
    assert_eq!(
        r.usage,
        Usage {
            input_tokens: 12,
            output_tokens: 8,
            ..Usage::default()
        }
    );
}

#[test]
fn stream_thinking_then_function_call() {
    let events = decode_sse(
        &read(&dir("streams").join("thinking_tool.sse")),
        &mut Decoder::new(),
    );
    let r = accumulate(&events);
    assert_eq!(
        r.content,
        vec![
            ContentBlock::Thinking {
                text: "**Planning**\nI need the weather. Calling the tool.".into(),
                signature: None
            },
            signature("CiQBjz1rX2Fbc2lnMQ=="),
            call("call_get_weather_0", "get_weather", r#"{"city":"Paris"}"#),
        ]
    );
    assert_eq!(r.finish_reason, Some(FinishReason::ToolUse));
    assert_eq!(
        r.usage,
        Usage {
            input_tokens: 95,
            output_tokens: 94,
            reasoning_tokens: 80,
            ..Usage::default()
        }
    );
}

#[test]
fn stream_without_final_usage_finishes_at_end() {
    let sse = b"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"hi\"}],\"role\":\"model\"},\"finishReason\":\"MAX_TOKENS\"}]}\n\n";
    let events = decode_sse(sse, &mut Decoder::new());
    let r = accumulate(&events);
    assert_eq!(r.finish_reason, Some(FinishReason::MaxTokens));
    assert_eq!(r.content, vec![ContentBlock::text("hi")]);
}

#[test]
fn stream_error_chunk() {
    let sse = b"data: {\"error\":{\"code\":503,\"message\":\"The model is overloaded.\",\"status\":\"UNAVAILABLE\"}}\n\n";
    let events = decode_sse(sse, &mut Decoder::new());
    assert_eq!(
        events,
        vec![StreamEvent::Error {
            kind: "overloaded_error".into(),
            message: "The model is overloaded.".into()
        }]
    );
    let out = encode(&events, &mut Encoder::new());
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "data: {\"error\":{\"code\":503,\"message\":\"The model is overloaded.\",\"status\":\"UNAVAILABLE\"}}\n\n"
    );
}

#[test]
fn encoder_decoder_round_trip() {
    for path in cases("streams", ".sse") {
        let events = decode_sse(&read(&path), &mut Decoder::new());
        let sse = encode(&events, &mut Encoder::new());
        let text = String::from_utf8(sse.clone()).unwrap();
        assert!(!text.contains("event:"), "{text}");
        let again = decode_sse(&sse, &mut Decoder::new());
        assert_eq!(again, events, "{}", path.display());
        // The non-streamed form of the same turn says the same.
        let resp = accumulate(&events);
        let reparsed =
            gemini::parse_response(gemini::response_to_json(&resp).to_string().as_bytes()).unwrap();
        assert_eq!(reparsed, resp, "{}", path.display());
    }
}

// ---------------------------------------------------------------------------------------------
// Cross-dialect
// ---------------------------------------------------------------------------------------------

#[test]
fn gemini_request_as_openai_and_anthropic() {
    let req = gemini::parse_request(
        &read(&dir("requests").join("tools_roundtrip.json")),
        "gemini-2.5-flash",
    )
    .unwrap();
    let openai = openai_chat::request_to_json(&req).unwrap();
    cross("gemini_to_others/tools_roundtrip.openai_chat.json", &openai);
    let msgs = openai["messages"].as_array().unwrap();
    let calls = msgs[1]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(calls[1]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "Tokyo"}));
    assert_eq!(msgs[2]["role"], "tool");
    assert_eq!(msgs[2]["tool_call_id"], calls[0]["id"]);
    assert_eq!(msgs[3]["tool_call_id"], calls[1]["id"]);
    assert_eq!(msgs[3]["content"], "24C and clear");

    let claude = anthropic::request_to_json(&req).unwrap();
    cross("gemini_to_others/tools_roundtrip.anthropic.json", &claude);
    let msgs = claude["messages"].as_array().unwrap();
    let uses: Vec<&Value> = msgs[1]["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "tool_use")
        .collect();
    assert_eq!(uses.len(), 2);
    assert_eq!(uses[0]["input"], json!({"city": "Paris"}));
    let results: Vec<&Value> = msgs[2]["content"].as_array().unwrap().iter().collect();
    assert_eq!(results[0]["tool_use_id"], uses[0]["id"]);
    assert_eq!(results[1]["tool_use_id"], uses[1]["id"]);
    // The Gemini signature travels as a signed (empty) thinking block: see the module doc.
    assert_eq!(msgs[1]["content"][0]["type"], "thinking");
    assert_eq!(
        claude["tool_choice"],
        json!({"type": "tool", "name": "book_table"})
    );

    let req = gemini::parse_request(
        &read(&dir("requests").join("multiturn_system.json")),
        "gemini-2.5-flash",
    )
    .unwrap();
    cross(
        "gemini_to_others/multiturn_system.openai_chat.json",
        &openai_chat::request_to_json(&req).unwrap(),
    );
    cross(
        "gemini_to_others/multiturn_system.anthropic.json",
        &anthropic::request_to_json(&req).unwrap(),
    );
}

#[test]
fn openai_tool_loop_as_gemini() {
    let req = openai_chat::parse_request(&read(
        &fixtures().join("openai_chat/req_tools_parallel.json"),
    ))
    .unwrap();
    let out = gemini::request_to_json(&req).unwrap();
    cross("gemini_from_openai/req_tools_parallel.request.json", &out);
    assert_eq!(
        out["systemInstruction"]["parts"][0]["text"],
        "You can look up the weather."
    );
    let contents = out["contents"].as_array().unwrap();
    let model = &contents[1];
    assert_eq!(model["role"], "model");
    let calls: Vec<&Value> = model["parts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.get("functionCall"))
        .collect();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls[0]["args"],
        json!({"city": "Paris", "unit": "celsius"})
    );
    assert_eq!(
        calls[1]["args"],
        json!({"city": "Tokyo", "unit": "celsius"})
    );
    // History from another dialect has no signature: Gemini 3's placeholder is sent instead.
    assert_eq!(
        model["parts"][0]["thoughtSignature"],
        "skip_thought_signature_validator"
    );
    let responses: Vec<&Value> = contents[2]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.get("functionResponse"))
        .collect();
    assert_eq!(responses.len(), 2);
    for (r, c) in responses.iter().zip(&calls) {
        assert_eq!(r["name"], c["name"]);
    }
    assert_eq!(
        responses[0]["response"],
        json!({"temp": 18, "sky": "cloudy"})
    );
    assert_eq!(
        responses[1]["response"],
        json!({"temp": 24, "sky": "clear"})
    );
    let decl = &out["tools"][0]["functionDeclarations"][0];
    assert_eq!(decl["parametersJsonSchema"]["additionalProperties"], false);
    assert_eq!(out["toolConfig"]["functionCallingConfig"]["mode"], "ANY");

    // Parsed back by Gemini, calls and results still pair up.
    let again = gemini::parse_request(out.to_string().as_bytes(), "g").unwrap();
    let ids: Vec<String> = again.messages[1]
        .content
        .iter()
        .filter_map(|b| match b {
            ContentBlock::ToolCall(c) => Some(c.id.clone()),
            _ => None,
        })
        .collect();
    let answered: Vec<String> = again.messages[2]
        .content
        .iter()
        .filter_map(|b| match b {
            ContentBlock::ToolResult { tool_call_id, .. } => Some(tool_call_id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(ids, answered);
}

#[test]
fn anthropic_stream_as_gemini_chunks() {
    for name in ["parallel_tools.sse", "thinking_text.sse"] {
        let bytes = read(&fixtures().join("anthropic/streams").join(name));
        let events = decode_sse(&bytes, &mut anthropic::Decoder::new());
        let sse = encode(&events, &mut Encoder::new());
        support::assert_text_snapshot(
            &fixtures().join("cross/gemini_from_anthropic").join(name),
            &String::from_utf8(sse.clone()).unwrap(),
        );
        let again = decode_sse(&sse, &mut Decoder::new());
        let original = accumulate(&events);
        let translated = accumulate(&again);
        let texts = |r: &Response| -> Vec<String> {
            r.content
                .iter()
                .filter_map(|b| match b {
                    ContentBlock::Text(t) => Some(t.text.clone()),
                    _ => None,
                })
                .collect()
        };
        let calls = |r: &Response| -> Vec<(String, String, Value)> {
            r.content
                .iter()
                .filter_map(|b| match b {
                    ContentBlock::ToolCall(c) => Some((
                        c.id.clone(),
                        c.name.clone(),
                        serde_json::from_str(&c.arguments).unwrap(),
                    )),
                    _ => None,
                })
                .collect()
        };
        let thinking = |r: &Response| -> Vec<(String, Option<String>)> {
            r.content
                .iter()
                .filter_map(|b| match b {
                    ContentBlock::Thinking { text, signature } => {
                        Some((text.clone(), signature.clone()))
                    }
                    _ => None,
                })
                .collect()
        };
        assert_eq!(texts(&translated), texts(&original), "{name}");
        assert_eq!(calls(&translated), calls(&original), "{name}");
        assert_eq!(thinking(&translated), thinking(&original), "{name}");
        // Gemini has no field for cache writes (they stay counted in the input tokens).
        let expected_usage = Usage {
            cache_write_tokens: 0,
            ..original.usage
        };
        assert_eq!(translated.usage, expected_usage, "{name}");
        assert_eq!(translated.finish_reason, original.finish_reason, "{name}");
        assert_eq!(translated.id, original.id, "{name}");
    }
}
