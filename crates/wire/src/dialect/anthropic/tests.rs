use super::*;
use crate::canonical::{
    BlockStart, Delta, ResponseAccumulator, StreamDecoder, StreamEncoder, StreamEvent,
};
use crate::sse::SseParser;

fn user(content: Vec<ContentBlock>) -> Message {
    Message {
        role: Role::User,
        content,
        name: None,
    }
}

fn assistant(content: Vec<ContentBlock>) -> Message {
    Message {
        role: Role::Assistant,
        content,
        name: None,
    }
}

fn call(args: &str) -> ContentBlock {
    ContentBlock::ToolCall(ToolCall {
        id: "call_1".into(),
        name: "f".into(),
        arguments: args.into(),
    })
}

fn err_param(body: Value) -> Option<String> {
    parse_request(body.to_string().as_bytes())
        .unwrap_err()
        .param
}

#[test]
fn wrong_types_name_the_field() {
    let base = |messages: Value| json!({"model": "m", "max_tokens": 10, "messages": messages});
    assert_eq!(
        err_param(json!({"max_tokens": 1, "messages": []})).as_deref(),
        Some("model")
    );
    assert_eq!(
        err_param(json!({"model": "m", "max_tokens": "10", "messages": []})).as_deref(),
        Some("max_tokens")
    );
    assert_eq!(
        err_param(json!({"model": "m", "max_tokens": 10})).as_deref(),
        Some("messages")
    );
    assert_eq!(
        err_param(base(
            json!([{"role": "user", "content": "a"}, {"role": "tool", "content": "b"}])
        ))
        .as_deref(),
        Some("messages[1].role")
    );
    assert_eq!(
        err_param(base(
            json!([{"role": "user", "content": [{"text": "no type"}]}])
        ))
        .as_deref(),
        Some("messages[0].content[0].type")
    );
    assert_eq!(
        err_param(base(
            json!([{"role": "user", "content": [{"type": "text", "text": 5}]}])
        ))
        .as_deref(),
        Some("messages[0].content[0].text")
    );
    assert_eq!(
        err_param(base(json!([{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text"}]}
        ]}])))
        .as_deref(),
        Some("messages[0].content[0].content[0].text")
    );
    let mut body = base(json!([]));
    body["tool_choice"] = json!({"type": "tool"});
    assert_eq!(err_param(body).as_deref(), Some("tool_choice.name"));
    let mut body = base(json!([]));
    body["thinking"] = json!({"type": "enabled"});
    assert_eq!(err_param(body).as_deref(), Some("thinking.budget_tokens"));
    assert_eq!(parse_request(b"[1]").unwrap_err().param, None);
}

#[test]
fn system_role_message_and_tool_choice_none() {
    let req = parse_request(
        json!({
            "model": "m", "max_tokens": 10,
            "system": "base",
            "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
            "tools": [{"name": "f", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "none"},
            "thinking": {"type": "disabled"},
            "metadata": {"user_id": "u1"}
        })
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(req.messages[0].role, Role::System);
    assert_eq!(req.tool_choice, Some(ToolChoice::None));
    assert!(req.reasoning.as_ref().unwrap().disabled);
    assert_eq!(req.user.as_deref(), Some("u1"));
    assert!(req.extra.is_none());
    let out = request_to_json(&req).unwrap();
    assert_eq!(
        out["system"],
        json!([{"type": "text", "text": "base"}, {"type": "text", "text": "be brief"}])
    );
    assert!(out.get("thinking").is_none());
    assert_eq!(out["tool_choice"], json!({"type": "none"}));
}

#[test]
fn foreign_request_converts_to_what_anthropic_accepts() {
    let req = Request {
        model: "claude".into(),
        messages: vec![
            user(vec![ContentBlock::text("q")]),
            assistant(vec![
                ContentBlock::Thinking {
                    text: "unsigned".into(),
                    signature: None,
                },
                ContentBlock::text(""),
                call(""),
            ]),
            user(vec![ContentBlock::ToolResult {
                tool_call_id: "call_1".into(),
                content: vec![ContentBlock::text("42")],
                is_error: true,
                cache_control: None,
            }]),
            user(vec![
                ContentBlock::Unknown {
                    dialect: Dialect::OpenAiChat,
                    value: json!({"type": "input_audio"}),
                },
                ContentBlock::text("more"),
            ]),
            // Nothing left after dropping: the message disappears instead of being empty.
            assistant(vec![ContentBlock::Unknown {
                dialect: Dialect::OpenAiChat,
                value: json!({}),
            }]),
        ],
        temperature: Some(0.5),
        tool_choice: Some(ToolChoice::Required),
        reasoning: Some(Reasoning {
            effort: Some("high".into()),
            ..Reasoning::default()
        }),
        response_format: Some(ResponseFormat::JsonObject),
        parallel_tool_calls: Some(false),
        extra: Some(Extra {
            dialect: Dialect::OpenAiChat,
            fields: Map::from_iter([("logprobs".to_string(), Value::Bool(true))]),
        }),
        ..Request::default()
    };
    let out = request_to_json(&req).unwrap();
    assert_eq!(
        out,
        json!({
            "model": "claude",
            // No thinking: the assistant's tool-use turn has no signed thinking to continue from,
            // which Anthropic would reject; so sampling parameters are allowed again.
            "max_tokens": 4096,
            "temperature": 0.5,
            "messages": [
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "call_1", "name": "f", "input": {}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "42", "is_error": true},
                    {"type": "text", "text": "more"}
                ]}
            ]
        })
    );
}

#[test]
fn invalid_tool_arguments_name_the_block() {
    let req = Request {
        model: "m".into(),
        messages: vec![
            user(vec![ContentBlock::text("q")]),
            assistant(vec![call("{\"a\":")]),
        ],
        ..Request::default()
    };
    let err = request_to_json(&req).unwrap_err();
    assert_eq!(err.param.as_deref(), Some("messages[1].content[0]"));
}

#[test]
fn parallel_flag_and_tool_choice_need_tools() {
    let tool = Tool::Function(FunctionTool {
        name: "f".into(),
        description: None,
        parameters: json!({"type": "object"}),
        strict: None,
        cache_control: None,
    });
    let mut req = Request {
        model: "m".into(),
        messages: vec![user(vec![ContentBlock::text("q")])],
        tool_choice: Some(ToolChoice::Tool("f".into())),
        parallel_tool_calls: Some(false),
        reasoning: Some(Reasoning {
            budget_tokens: Some(100),
            ..Reasoning::default()
        }),
        max_tokens: Some(8000),
        ..Request::default()
    };
    let out = request_to_json(&req).unwrap();
    assert!(out.get("tool_choice").is_none() && out.get("tools").is_none());
    // Budgets below Anthropic's minimum are raised to it, and max_tokens already leaves room.
    assert_eq!(out["thinking"]["budget_tokens"], 1024);
    assert_eq!(out["max_tokens"], 8000);
    req.tools.push(tool);
    req.tool_choice = None;
    let out = request_to_json(&req).unwrap();
    assert_eq!(
        out["tool_choice"],
        json!({"type": "auto", "disable_parallel_tool_use": true})
    );
}

#[test]
fn stop_reasons_map_both_ways() {
    for s in [
        "end_turn",
        "max_tokens",
        "stop_sequence",
        "tool_use",
        "pause_turn",
        "refusal",
        "model_context_window_exceeded",
    ] {
        assert_eq!(finish_reason_str(&finish_reason_from_str(s)), s);
    }
    assert_eq!(finish_reason_str(&FinishReason::ContentFilter), "refusal");
}

#[test]
fn response_to_json_repairs_foreign_content() {
    let resp = Response {
        id: "chatcmpl-1".into(),
        model: "gpt".into(),
        content: vec![
            ContentBlock::Thinking {
                text: "t".into(),
                signature: None,
            },
            call("not json"),
        ],
        finish_reason: Some(FinishReason::ContentFilter),
        usage: Usage {
            input_tokens: 10,
            cache_read_tokens: 4,
            cache_write_tokens: 8,
            output_tokens: 3,
            reasoning_tokens: 1,
        },
        ..Response::default()
    };
    let out = response_to_json(&resp);
    assert_eq!(out["id"], "chatcmpl-1");
    assert_eq!(out["content"][0]["signature"], "");
    assert_eq!(out["content"][1]["input"], json!({}));
    assert_eq!(out["stop_reason"], "refusal");
    // 10 - 4 - 8 saturates instead of wrapping.
    assert_eq!(out["usage"]["input_tokens"], 0);
    // The empty signature reads back as unsigned, so it is never sent to Anthropic.
    let again = parse_response(out.to_string().as_bytes()).unwrap();
    assert!(matches!(
        again.content[0],
        ContentBlock::Thinking {
            signature: None,
            ..
        }
    ));
}

#[test]
fn errors_render_and_parse() {
    let body = error_json(ErrorKind::Overloaded, "Overloaded");
    assert_eq!(
        body,
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    );
    assert_eq!(
        parse_error(body.to_string().as_bytes()),
        Some(("overloaded_error".into(), "Overloaded".into()))
    );
    assert_eq!(error_type(ErrorKind::Timeout), "timeout_error");
    assert_eq!(error_type(ErrorKind::PermissionDenied), "permission_error");
    assert_eq!(parse_error(b"<html>bad gateway</html>"), None);
}

#[test]
fn estimate_counts_text_tools_and_images() {
    let req = Request {
        system: vec![TextPart {
            text: "a".repeat(40),
            cache_control: None,
        }],
        messages: vec![user(vec![
            ContentBlock::text("b".repeat(40)),
            ContentBlock::Image {
                source: ImageSource::Url("https://x/y.png".into()),
                cache_control: None,
            },
        ])],
        ..Request::default()
    };
    assert_eq!(estimate_input_tokens(&req), 20 + IMAGE_TOKENS);
}

fn decode_all(events: &[(&str, &str)], finish: bool) -> Vec<StreamEvent> {
    let mut d = Decoder::new();
    let mut out = Vec::new();
    for (name, data) in events {
        d.decode(Some(name), data, &mut out);
    }
    if finish {
        d.finish(&mut out);
        d.finish(&mut out);
    }
    out
}

#[test]
fn decoder_closes_a_truncated_stream_once() {
    let out = decode_all(
        &[
            (
                "message_start",
                r#"{"type":"message_start","message":{"id":"m","model":"c","usage":{"input_tokens":3}}}"#,
            ),
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"par"}}"#,
            ),
        ],
        true,
    );
    let tail: Vec<_> = out[3..].to_vec();
    assert_eq!(
        tail,
        vec![
            StreamEvent::BlockStop { index: 0 },
            StreamEvent::Finish {
                reason: None,
                stop_sequence: None,
                usage: Usage {
                    input_tokens: 3,
                    ..Usage::default()
                }
            },
            StreamEvent::Stop,
        ]
    );
}

#[test]
fn decoder_reports_errors_and_malformed_data() {
    let out = decode_all(
        &[
            ("content_block_delta", "{not json"),
            (
                "error",
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            ),
        ],
        true,
    );
    assert!(matches!(&out[0], StreamEvent::Error { kind, .. } if kind == "api_error"));
    assert_eq!(
        out[1],
        StreamEvent::Error {
            kind: "overloaded_error".into(),
            message: "Overloaded".into()
        }
    );
    // An errored stream is not dressed up as a finished one.
    assert_eq!(out.len(), 2);
    // Unnamed events fall back to the data's type.
    let mut d = Decoder::new();
    let mut out = Vec::new();
    d.decode(None, r#"{"type":"ping"}"#, &mut out);
    assert_eq!(out, vec![StreamEvent::Ping]);
}

fn encode(events: &[StreamEvent]) -> Vec<u8> {
    let mut e = Encoder::new();
    let mut out = Vec::new();
    for ev in events {
        e.encode(ev, &mut out);
    }
    out
}

fn event_names(bytes: &[u8]) -> Vec<String> {
    let mut p = SseParser::new();
    p.push(bytes);
    std::iter::from_fn(|| p.next_event())
        .map(|e| e.event.unwrap_or_default())
        .collect()
}

#[test]
fn encoder_repairs_incomplete_canonical_streams() {
    // A delta for a block never started, no Start, no BlockStop, no Finish.
    let bytes = encode(&[
        StreamEvent::BlockDelta {
            index: 0,
            delta: Delta::Text("hi".into()),
        },
        StreamEvent::Stop,
    ]);
    assert_eq!(
        event_names(&bytes),
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    // Open blocks close before message_delta, and usage is rendered uncached.
    let bytes = encode(&[
        StreamEvent::Start {
            id: "msg_1".into(),
            model: "c".into(),
            usage: Usage {
                input_tokens: 100,
                cache_read_tokens: 90,
                ..Usage::default()
            },
        },
        StreamEvent::BlockStart {
            index: 0,
            block: BlockStart::ToolCall {
                id: "t".into(),
                name: "f".into(),
            },
        },
        StreamEvent::BlockStart {
            index: 1,
            block: BlockStart::Text,
        },
        StreamEvent::Finish {
            reason: Some(FinishReason::ToolUse),
            stop_sequence: None,
            usage: Usage {
                output_tokens: 7,
                ..Usage::default()
            },
        },
        StreamEvent::Stop,
    ]);
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.contains(r#""input_tokens":10,"output_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":90"#));
    assert!(text.contains(r#""content_block":{"type":"tool_use","id":"t","name":"f","input":{}}"#));
    assert_eq!(
        event_names(&bytes)[3..],
        [
            "content_block_stop",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let mut d = Decoder::new();
    let mut p = SseParser::new();
    p.push(&bytes);
    let mut acc = ResponseAccumulator::new();
    let mut evs = Vec::new();
    while let Some(ev) = p.next_event() {
        d.decode(ev.event.as_deref(), &ev.data, &mut evs);
    }
    for ev in &evs {
        acc.push(ev);
    }
    let usage = acc.usage();
    assert_eq!(
        (
            usage.input_tokens,
            usage.cache_read_tokens,
            usage.output_tokens
        ),
        (100, 90, 7)
    );
}

#[test]
fn encoder_renders_errors_and_pings() {
    let bytes = encode(&[
        StreamEvent::Ping,
        StreamEvent::Error {
            kind: "rate_limit_error".into(),
            message: "slow down".into(),
        },
    ]);
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        "event: ping\ndata: {\"type\":\"ping\"}\n\nevent: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"slow down\"}}\n\n"
    );
}
