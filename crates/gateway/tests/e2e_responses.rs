//! End-to-end: Responses API clients (Codex's shapes) on models whose provider has no Responses
//! API, through the real gateway binary in front of the mock provider.
//!
//! - Codex's `custom` tools (`apply_patch`) reach Claude / Gemini as functions of one string and
//!   the model's call comes back as a `custom_tool_call` whose `input` is the text the model wrote
//!   (JSON and stream); hosted tools are left out and named in `x-ekai-dropped-tools`.
//! - Any client: hosted / server tools of another API are named in `x-ekai-dropped-tools`.
//! - `previous_response_id` works on those models: the gateway keeps the conversation (JSON or
//!   streamed answers) and puts it back on the follow-up; `store: false` keeps nothing, and an
//!   unknown id gets OpenAI's `previous_response_not_found`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

mod common;

use common::{Reply, mock_and_gateway, post};
use ekai_mock_provider::TOOL_INPUT_TEXT;
use serde_json::{Value, json};

const CLAUDE: &str = "claude-sonnet-4-5";
const GEMINI: &str = "gemini-2.5-flash";
const GPT: &str = "gpt-4o-mini";

fn tools() -> Value {
    json!([
        {"type": "function", "name": "exec_command", "description": "Runs a command.",
         "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}},
        {"type": "custom", "name": "apply_patch", "description": "Use the `apply_patch` tool to edit files.",
         "format": {"type": "grammar", "syntax": "lark", "definition": "start: begin_patch hunk+ end_patch"}},
        {"type": "web_search", "external_web_access": false},
        {"type": "local_shell"}
    ])
}

fn apply_patch_request(model: &str, stream: bool) -> String {
    json!({
        "model": model,
        "instructions": "You are Codex.",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "add a greeting file"}]}],
        "tools": tools(),
        "tool_choice": {"type": "custom", "name": "apply_patch"},
        "store": false,
        "stream": stream
    })
    .to_string()
}

async fn responses(gw: &common::Gateway, body: &str) -> Reply {
    post(&format!("{}/v1/responses", gw.url), &[], body).await
}

/// `(event name, data)` of an SSE body.
fn events(r: &Reply) -> Vec<(String, Value)> {
    r.sse_events()
        .into_iter()
        .zip(r.sse_data())
        .map(|(e, d)| (e, serde_json::from_str(&d).unwrap()))
        .collect()
}

fn custom_calls(output: &Value) -> Vec<Value> {
    output
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "custom_tool_call")
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_custom_tool_on_claude_comes_back_as_custom_tool_call() {
    let (mock, gw) = mock_and_gateway().await;

    // JSON.
    let r = responses(&gw, &apply_patch_request(CLAUDE, false)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-ekai-dropped-tools"), "web_search,local_shell");
    let body = r.json();
    let calls = custom_calls(&body["output"]);
    assert_eq!(calls.len(), 1, "{body}");
    assert_eq!(calls[0]["name"], "apply_patch");
    assert_eq!(calls[0]["input"], TOOL_INPUT_TEXT);
    let call_id = calls[0]["call_id"].as_str().unwrap().to_string();
    assert!(calls[0]["id"].as_str().unwrap().starts_with("ctc_"));
    // What Claude saw: two functions, apply_patch taking one string, forced; no hosted tools.
    let seen = &mock.requests()[0].body;
    let names: Vec<&str> = seen["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["exec_command", "apply_patch"]);
    assert_eq!(
        seen["tools"][1]["input_schema"]["properties"]["input"]["type"],
        "string"
    );
    assert!(
        seen["tools"][1]["description"]
            .as_str()
            .unwrap()
            .contains("start: begin_patch hunk+ end_patch")
    );
    assert_eq!(
        seen["tool_choice"],
        json!({"type": "tool", "name": "apply_patch"})
    );
    assert!(!seen.to_string().contains("web_search"));

    // Stream: the patch text arrives in custom_tool_call_input deltas, then whole.
    let r = responses(&gw, &apply_patch_request(CLAUDE, true)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-ekai-dropped-tools"), "web_search,local_shell");
    let evs = events(&r);
    for (i, (name, data)) in evs.iter().enumerate() {
        assert_eq!(data["type"], name.as_str());
        assert_eq!(data["sequence_number"], i, "{name}");
    }
    let deltas: Vec<&str> = evs
        .iter()
        .filter(|(n, _)| n == "response.custom_tool_call_input.delta")
        .map(|(_, d)| d["delta"].as_str().unwrap())
        .collect();
    assert!(deltas.len() >= 2, "input not streamed: {deltas:?}");
    assert_eq!(deltas.concat(), TOOL_INPUT_TEXT);
    let done: Vec<&Value> = evs
        .iter()
        .filter(|(n, _)| n == "response.custom_tool_call_input.done")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["input"], TOOL_INPUT_TEXT);
    assert!(
        !evs.iter()
            .any(|(n, _)| n == "response.function_call_arguments.delta")
    );
    let (last, completed) = evs.last().unwrap();
    assert_eq!(last, "response.completed");
    let calls = custom_calls(&completed["response"]["output"]);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["input"], TOOL_INPUT_TEXT);

    // Codex sends the call and its output back: Claude gets them as tool_use / tool_result.
    let follow = json!({
        "model": CLAUDE,
        "input": [
            {"role": "user", "content": "add a greeting file"},
            {"type": "custom_tool_call", "call_id": call_id, "name": "apply_patch", "input": TOOL_INPUT_TEXT},
            {"type": "custom_tool_call_output", "call_id": call_id, "output": "Success. A hello.txt"}
        ],
        "tools": tools(),
        "store": false
    });
    let r = responses(&gw, &follow.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let text = r.json()["output"][0]["content"][0]["text"].clone();
    assert_eq!(text, "Tool result received: Success. A hello.txt");
    let seen = &mock.requests()[2].body;
    let msgs = seen["messages"].as_array().unwrap();
    assert_eq!(
        msgs[1]["content"][0],
        json!({"type": "tool_use", "id": call_id, "name": "apply_patch",
               "input": {"input": TOOL_INPUT_TEXT}})
    );
    assert_eq!(msgs[2]["content"][0]["type"], "tool_result");
    assert_eq!(msgs[2]["content"][0]["tool_use_id"], call_id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_custom_tool_on_gemini_comes_back_as_custom_tool_call() {
    let (mock, gw) = mock_and_gateway().await;
    for stream in [false, true] {
        let r = responses(&gw, &apply_patch_request(GEMINI, stream)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.header("x-ekai-dropped-tools"), "web_search,local_shell");
        let output = if stream {
            let evs = events(&r);
            let (last, completed) = evs.last().unwrap();
            assert_eq!(last, "response.completed");
            let input: String = evs
                .iter()
                .filter(|(n, _)| n == "response.custom_tool_call_input.delta")
                .map(|(_, d)| d["delta"].as_str().unwrap().to_string())
                .collect();
            assert_eq!(input, TOOL_INPUT_TEXT);
            completed["response"]["output"].clone()
        } else {
            r.json()["output"].clone()
        };
        let calls = custom_calls(&output);
        assert_eq!(calls.len(), 1, "{output}");
        assert_eq!(calls[0]["input"], TOOL_INPUT_TEXT);
    }
    let seen = &mock.requests()[0];
    assert_eq!(seen.route, "gemini");
    let decls = seen.body["tools"][0]["functionDeclarations"]
        .as_array()
        .unwrap();
    assert_eq!(decls.len(), 2);
    assert_eq!(decls[1]["name"], "apply_patch");
    assert!(!seen.body.to_string().contains("web_search"));
}

// ------------------------------------------------------------------------------------------------
// previous_response_id
// ------------------------------------------------------------------------------------------------

/// The (role, text) of each message Claude received.
fn claude_turns(body: &Value) -> Vec<(String, String)> {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let text = match &m["content"] {
                Value::String(s) => s.clone(),
                Value::Array(blocks) => blocks
                    .iter()
                    .map(|b| match b["type"].as_str().unwrap() {
                        "text" => b["text"].as_str().unwrap().to_string(),
                        other => format!("<{other}>"),
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
                _ => String::new(),
            };
            (m["role"].as_str().unwrap().to_string(), text)
        })
        .collect()
}

fn turn(role: &str, text: &str) -> (String, String) {
    (role.to_string(), text.to_string())
}

/// The response object of a JSON or streamed answer.
fn response_of(r: &Reply, stream: bool) -> Value {
    assert_eq!(r.status, 200, "{}", r.text);
    if stream {
        let evs = events(r);
        let (last, data) = evs.last().unwrap();
        assert_eq!(last, "response.completed", "{}", r.text);
        // The id is the same from the first event to the last.
        assert_eq!(evs[0].1["response"]["id"], data["response"]["id"]);
        data["response"].clone()
    } else {
        r.json()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn previous_response_id_continues_a_conversation_on_claude() {
    let (mock, gw) = mock_and_gateway().await;
    let first = json!({"model": CLAUDE, "instructions": "Be brief.",
                       "input": [{"role": "developer", "content": "Answer in English."},
                                 {"role": "user", "content": "My name is Ada."}]});
    let r1 = response_of(&responses(&gw, &first.to_string()).await, false);
    let id1 = r1["id"].as_str().unwrap().to_string();
    assert!(id1.starts_with("resp_") && id1.len() == 53, "{id1}");
    assert_eq!(r1["store"], true);
    assert_eq!(r1["previous_response_id"], Value::Null);
    let answer1 = "Hello from mock-anthropic: My name is Ada.";

    // Turn 2 (streamed) refers to turn 1 and brings new instructions.
    let second = json!({"model": CLAUDE, "previous_response_id": id1, "instructions": "Be kind.",
                        "input": "What is my name?", "stream": true});
    let r2 = response_of(&responses(&gw, &second.to_string()).await, true);
    let id2 = r2["id"].as_str().unwrap().to_string();
    assert_ne!(id2, id1);
    assert_eq!(r2["previous_response_id"], id1.as_str());
    let seen = mock.requests()[1].body.clone();
    assert_eq!(
        claude_turns(&seen),
        [
            turn("user", "My name is Ada."),
            turn("assistant", answer1),
            turn("user", "What is my name?")
        ]
    );
    // The earlier developer message is part of the conversation; the earlier instructions
    // are not.
    let system = seen["system"].to_string();
    assert!(
        system.contains("Be kind.") && system.contains("Answer in English."),
        "{system}"
    );
    assert!(!system.contains("Be brief."), "{system}");
    assert!(!seen.to_string().contains("previous_response_id"));

    // Turn 3 (JSON) refers to the streamed turn 2: the whole chain comes back.
    let third = json!({"model": CLAUDE, "previous_response_id": id2, "input": "Thanks."});
    let r3 = response_of(&responses(&gw, &third.to_string()).await, false);
    assert_eq!(r3["previous_response_id"], id2.as_str());
    let seen = &mock.requests()[2].body;
    assert_eq!(
        claude_turns(seen),
        [
            turn("user", "My name is Ada."),
            turn("assistant", answer1),
            turn("user", "What is my name?"),
            turn("assistant", "Hello from mock-anthropic: What is my name?"),
            turn("user", "Thanks.")
        ]
    );
    // A branch from turn 1 is possible too (ids stay valid after being continued).
    let branch = json!({"model": CLAUDE, "previous_response_id": id1, "input": "Other branch."});
    response_of(&responses(&gw, &branch.to_string()).await, false);
    assert_eq!(claude_turns(&mock.requests()[3].body).len(), 3);

    // A kept conversation continued on an OpenAI model: sent whole, without the gateway's id.
    let on_gpt = json!({"model": GPT, "previous_response_id": id1, "input": "And on GPT?"});
    let r = responses(&gw, &on_gpt.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let seen = &mock.requests()[4];
    assert_eq!(seen.route, "responses");
    assert!(
        seen.body.get("previous_response_id").is_none(),
        "{}",
        seen.body
    );
    let texts = seen.body["input"].to_string();
    assert!(
        texts.contains("My name is Ada.")
            && texts.contains(answer1)
            && texts.contains("And on GPT?"),
        "{texts}"
    );
    assert_eq!(mock.hits("anthropic"), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn previous_response_id_carries_a_pending_tool_call() {
    let (mock, gw) = mock_and_gateway().await;
    // Turn 1 (streamed) ends with Claude calling apply_patch.
    let first = json!({"model": CLAUDE, "input": "add a greeting file", "tools": tools(),
                       "tool_choice": {"type": "custom", "name": "apply_patch"}, "stream": true});
    let r1 = response_of(&responses(&gw, &first.to_string()).await, true);
    let call = custom_calls(&r1["output"]).pop().unwrap();
    // Turn 2 sends only the tool's output.
    let second = json!({"model": CLAUDE, "previous_response_id": r1["id"], "tools": tools(),
                        "input": [{"type": "custom_tool_call_output", "call_id": call["call_id"],
                                   "output": "Success. A hello.txt"}]});
    let r2 = response_of(&responses(&gw, &second.to_string()).await, false);
    assert_eq!(
        r2["output"][0]["content"][0]["text"],
        "Tool result received: Success. A hello.txt"
    );
    let seen = &mock.requests()[1].body;
    let msgs = seen["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 3, "{seen}");
    assert_eq!(msgs[1]["content"][0]["type"], "tool_use");
    assert_eq!(
        msgs[1]["content"][0]["input"],
        json!({"input": TOOL_INPUT_TEXT})
    );
    assert_eq!(msgs[2]["content"][0]["tool_use_id"], call["call_id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_or_unstored_previous_response_ids_are_refused() {
    let (mock, gw) = mock_and_gateway().await;
    for stream in [false, true] {
        let off = json!({"model": CLAUDE, "input": "forget me", "store": false, "stream": stream});
        let r = response_of(&responses(&gw, &off.to_string()).await, stream);
        assert_eq!(r["store"], false);
        let id = r["id"].as_str().unwrap().to_string();
        for unknown in [id.as_str(), "resp_0123456789abcdef"] {
            let body = json!({"model": CLAUDE, "previous_response_id": unknown, "input": "again",
                              "stream": stream});
            let before = mock.hits("anthropic");
            let r = responses(&gw, &body.to_string()).await;
            assert_eq!(r.status, 400, "{}", r.text);
            let e = &r.json()["error"];
            assert_eq!(e["code"], "previous_response_not_found", "{e}");
            assert_eq!(e["param"], "previous_response_id");
            assert_eq!(e["type"], "invalid_request_error");
            assert_eq!(
                e["message"],
                format!("Previous response with id '{unknown}' not found.")
            );
            assert_eq!(mock.hits("anthropic"), before, "nothing sent upstream");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_server_tools_on_an_openai_model_are_named_as_dropped() {
    let (mock, gw) = mock_and_gateway().await;
    let body = json!({"model": GPT, "max_tokens": 100,
    "messages": [{"role": "user", "content": "hi there"}],
    "tools": [
        {"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}}},
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}
    ]});
    let r = post(
        &format!("{}/v1/messages", gw.url),
        &[("anthropic-version", "2023-06-01")],
        &body.to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-ekai-dropped-tools"), "web_search_20250305");
    let seen = &mock.requests()[0].body;
    assert_eq!(seen["tools"].as_array().unwrap().len(), 1);
    // The same tools to Claude itself: nothing dropped, nothing said.
    let body = json!({"model": CLAUDE, "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi there"}],
        "tools": body["tools"]});
    let r = post(
        &format!("{}/v1/messages", gw.url),
        &[("anthropic-version", "2023-06-01")],
        &body.to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.headers.get("x-ekai-dropped-tools").is_none());
}
