#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use ekai_mock_provider::{MockConfig, MockHandle, spawn};
use serde_json::{Value, json};

/// reqwest is built without its `json` feature; these stand in for it. (In the workspace build,
/// alloy-provider turns that feature on and reqwest's own methods win, leaving these unused.)
#[allow(dead_code)]
trait JsonReq {
    fn json(self, v: &Value) -> Self;
}

impl JsonReq for reqwest::RequestBuilder {
    fn json(self, v: &Value) -> Self {
        self.header("content-type", "application/json")
            .body(serde_json::to_vec(v).unwrap())
    }
}

#[allow(dead_code)]
trait JsonResp {
    fn json(self) -> impl std::future::Future<Output = Result<Value, reqwest::Error>>;
}

impl JsonResp for reqwest::Response {
    async fn json(self) -> Result<Value, reqwest::Error> {
        let bytes = self.bytes().await?;
        Ok(serde_json::from_slice(&bytes).unwrap())
    }
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn mock() -> MockHandle {
    spawn(MockConfig::default()).await.unwrap()
}

async fn post(m: &MockHandle, path: &str, body: Value) -> reqwest::Response {
    client()
        .post(format!("{}{}", m.base_url(), path))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Parses an SSE body into (event name, data) pairs.
fn sse_events(text: &str) -> Vec<(Option<String>, String)> {
    text.split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|block| {
            let mut name = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    name = Some(v.to_string());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push_str(v);
                }
            }
            (name, data)
        })
        .collect()
}

fn weather_tool_openai() -> Value {
    json!([{
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather",
            "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}
        }
    }])
}

fn weather_tool_anthropic() -> Value {
    json!([{
        "name": "get_weather",
        "description": "Weather",
        "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}}
    }])
}

#[tokio::test]
async fn openai_non_streaming() {
    let m = mock().await;
    let resp = post(
        &m,
        "/v1/chat/completions",
        json!({
            "model": "gpt-4o",
            "messages": [
                {"role": "system", "content": "Be brief"},
                {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "text", "text": "there"}]}
            ]
        }),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-mock"));
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "gpt-4o");
    let choice = &v["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(
        choice["message"]["content"],
        "Hello from mock-openai: hi there"
    );
    assert_eq!(choice["message"]["refusal"], Value::Null);
    assert!(choice["message"].get("tool_calls").is_none());
    assert_eq!(choice["finish_reason"], "stop");
    // input: "Be brief" + "hi there" = 4 words + 10; output: 5 words.
    assert_eq!(v["usage"]["prompt_tokens"], 14);
    assert_eq!(v["usage"]["completion_tokens"], 5);
    assert_eq!(v["usage"]["total_tokens"], 19);
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
    m.shutdown().await;
}

#[tokio::test]
async fn openai_reasoning_cache_and_nousage() {
    let m = mock().await;
    let v: Value = post(
        &m,
        "/v1/chat/completions",
        json!({"model": "o3@cache", "reasoning_effort": "low", "messages": [{"role": "user", "content": "x"}]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        v["choices"][0]["message"]["reasoning_content"],
        "Let me think about this."
    );
    assert_eq!(v["usage"]["prompt_tokens"], 11);
    assert_eq!(v["usage"]["completion_tokens"], 4 + 5);
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 4);
    assert_eq!(
        v["usage"]["completion_tokens_details"]["reasoning_tokens"],
        5
    );
    let v: Value = post(
        &m,
        "/v1/chat/completions",
        json!({"model": "gpt-4o@nousage,long=3", "messages": [{"role": "user", "content": "x"}]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(v.get("usage").is_none());
    assert_eq!(v["choices"][0]["message"]["content"], "word1 word2 word3");
    m.shutdown().await;
}

#[tokio::test]
async fn openai_streaming_with_usage() {
    let m = mock().await;
    let resp = post(
        &m,
        "/v1/chat/completions",
        json!({
            "model": "gpt-4o-mini",
            "stream": true,
            "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "hello world"}]
        }),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events = sse_events(&resp.text().await.unwrap());
    assert_eq!(events.last().unwrap().1, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(chunks[0]["object"], "chat.completion.chunk");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Hello from mock-openai: hello world");
    // role chunk + 5 words + finish + usage
    assert_eq!(chunks.len(), 8);
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let usage = &chunks[chunks.len() - 1];
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["prompt_tokens"], 12);
    assert_eq!(usage["usage"]["completion_tokens"], 5);
    m.shutdown().await;
}

#[tokio::test]
async fn anthropic_streaming_event_order() {
    let m = mock().await;
    let resp = post(
        &m,
        "/v1/messages?beta=true",
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 100,
            "stream": true,
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "system": "Be nice",
            "messages": [{"role": "user", "content": "hi there"}]
        }),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let events = sse_events(&resp.text().await.unwrap());
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_deref().unwrap()).collect();
    let mut expected = vec!["message_start", "content_block_start", "ping"];
    expected.extend(["content_block_delta"; 5 + 1]); // 5 thinking words + signature
    expected.push("content_block_stop");
    expected.push("content_block_start");
    expected.extend(["content_block_delta"; 5]); // "Hello from mock-anthropic: hi there"
    expected.extend(["content_block_stop", "message_delta", "message_stop"]);
    assert_eq!(names, expected);
    let data: Vec<Value> = events
        .iter()
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect();
    for ((name, _), d) in events.iter().zip(&data) {
        assert_eq!(d["type"], name.as_deref().unwrap());
    }
    let start = &data[0]["message"];
    assert!(start["id"].as_str().unwrap().starts_with("msg_mock"));
    assert_eq!(start["model"], "claude-sonnet-4-5");
    assert_eq!(start["usage"]["input_tokens"], 14);
    assert_eq!(start["usage"]["output_tokens"], 1);
    assert_eq!(data[1]["content_block"]["type"], "thinking");
    let thinking: String = data
        .iter()
        .filter_map(|d| d["delta"]["thinking"].as_str())
        .collect();
    assert_eq!(thinking, "Let me think about this.");
    assert!(
        data.iter()
            .any(|d| d["delta"]["signature"] == "sig_mock_123")
    );
    let text: String = data
        .iter()
        .filter(|d| d["index"] == 1)
        .filter_map(|d| d["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, "Hello from mock-anthropic: hi there");
    let md = &data[data.len() - 2];
    assert_eq!(md["delta"]["stop_reason"], "end_turn");
    assert_eq!(md["usage"]["output_tokens"], 10);
    assert_eq!(m.requests()[0].query.as_deref(), Some("beta=true"));
    m.shutdown().await;
}

#[tokio::test]
async fn anthropic_non_streaming_cache() {
    let m = mock().await;
    let v: Value = post(
        &m,
        "/v1/messages",
        json!({"model": "claude-x@cache", "max_tokens": 10, "messages": [{"role": "user", "content": [{"type": "text", "text": "a b c"}]}]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["content"][0]["text"], "Hello from mock-anthropic: a b c");
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["stop_sequence"], Value::Null);
    assert_eq!(v["usage"]["input_tokens"], 13);
    assert_eq!(v["usage"]["output_tokens"], 6);
    assert_eq!(v["usage"]["cache_read_input_tokens"], 4);
    assert_eq!(v["usage"]["cache_creation_input_tokens"], 2);
    let v: Value = post(
        &m,
        "/v1/messages/count_tokens",
        json!({"model": "claude-x", "messages": [{"role": "user", "content": "a b c"}]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v, json!({"input_tokens": 13}));
    m.shutdown().await;
}

#[tokio::test]
async fn tool_call_scenarios() {
    let m = mock().await;
    // OpenAI non-streaming tool call.
    let v: Value = post(
        &m,
        "/v1/chat/completions",
        json!({"model": "gpt-4o", "tools": weather_tool_openai(), "messages": [{"role": "user", "content": "weather?"}]}),
    )
    .await
    .json()
    .await
    .unwrap();
    let msg = &v["choices"][0]["message"];
    assert_eq!(msg["content"], Value::Null);
    assert_eq!(msg["tool_calls"][0]["id"], "call_mock_1");
    assert_eq!(msg["tool_calls"][0]["type"], "function");
    assert_eq!(msg["tool_calls"][0]["function"]["name"], "get_weather");
    assert_eq!(
        msg["tool_calls"][0]["function"]["arguments"],
        r#"{"location":"Paris"}"#
    );
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(v["usage"]["completion_tokens"], 5);

    // OpenAI streaming, parallel: reassemble the arguments.
    let text = post(
        &m,
        "/v1/chat/completions",
        json!({"model": "gpt-4o@parallel", "stream": true, "tools": weather_tool_openai(), "messages": [{"role": "user", "content": "weather?"}]}),
    )
    .await
    .text()
    .await
    .unwrap();
    let events = sse_events(&text);
    let mut args = [String::new(), String::new()];
    let mut ids = vec![];
    let mut finish = None;
    for (_, d) in &events[..events.len() - 1] {
        let c: Value = serde_json::from_str(d).unwrap();
        if let Some(f) = c["choices"][0]["finish_reason"].as_str() {
            finish = Some(f.to_string());
        }
        if let Some(calls) = c["choices"][0]["delta"]["tool_calls"].as_array() {
            for call in calls {
                let i = call["index"].as_u64().unwrap() as usize;
                if let Some(id) = call["id"].as_str() {
                    ids.push(id.to_string());
                }
                args[i].push_str(call["function"]["arguments"].as_str().unwrap());
            }
        }
    }
    assert_eq!(ids, ["call_mock_1", "call_mock_2"]);
    assert_eq!(args[0], r#"{"location":"Paris"}"#);
    assert_eq!(args[1], r#"{"location":"Tokyo"}"#);
    assert_eq!(finish.as_deref(), Some("tool_calls"));

    // Anthropic parallel, non-streaming.
    let v: Value = post(
        &m,
        "/v1/messages",
        json!({"model": "claude-x@parallel", "max_tokens": 10, "tools": weather_tool_anthropic(), "messages": [{"role": "user", "content": "weather?"}]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v["stop_reason"], "tool_use");
    assert_eq!(
        v["content"],
        json!([
            {"type": "tool_use", "id": "toolu_mock_1", "name": "get_weather", "input": {"location": "Paris"}},
            {"type": "tool_use", "id": "toolu_mock_2", "name": "get_weather", "input": {"location": "Tokyo"}}
        ])
    );
    assert_eq!(v["usage"]["output_tokens"], 10);

    // Anthropic streaming tool_use: input_json_delta fragments.
    let text = post(
        &m,
        "/v1/messages",
        json!({"model": "claude-x", "max_tokens": 10, "stream": true, "tools": weather_tool_anthropic(), "messages": [{"role": "user", "content": "weather?"}]}),
    )
    .await
    .text()
    .await
    .unwrap();
    let data: Vec<Value> = sse_events(&text)
        .iter()
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(data[1]["content_block"]["type"], "tool_use");
    assert_eq!(data[1]["content_block"]["input"], json!({}));
    let partial: Vec<&str> = data
        .iter()
        .filter_map(|d| d["delta"]["partial_json"].as_str())
        .collect();
    assert_eq!(partial.len(), 3);
    assert_eq!(partial.concat(), r#"{"location":"Paris"}"#);

    // Tool results -> text.
    let v: Value = post(
        &m,
        "/v1/messages",
        json!({"model": "claude-x", "max_tokens": 10, "tools": weather_tool_anthropic(), "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_mock_1", "name": "get_weather", "input": {"location": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_mock_1", "content": "Sunny 20C"}]}
        ]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v["content"][0]["text"], "Tool result received: Sunny 20C");
    let v: Value = post(
        &m,
        "/v1/chat/completions",
        json!({"model": "gpt-4o", "tools": weather_tool_openai(), "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_mock_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_mock_1", "content": "Sunny 20C"}
        ]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Tool result received: Sunny 20C"
    );
    m.shutdown().await;
}

#[tokio::test]
async fn status_429_with_retry_after() {
    let m = mock().await;
    let resp = post(
        &m,
        "/v1/chat/completions",
        json!({"model": "gpt-4o@status=429,retry-after=7", "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "7");
    let v: Value = resp.json().await.unwrap();
    assert!(v["error"]["message"].is_string());
    assert!(v["error"]["type"].is_string());
    assert_eq!(v["error"]["param"], Value::Null);
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");

    let resp = client()
        .post(format!("{}/v1/messages", m.base_url()))
        .header("x-mock-scenario", "status=429,retry-after=3")
        .json(&json!({"model": "claude-x", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "3");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "rate_limit_error");

    let resp = post(
        &m,
        "/v1/messages",
        json!({"model": "claude-x@status=529", "max_tokens": 1, "messages": []}),
    )
    .await;
    assert_eq!(resp.status(), 529);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["type"], "overloaded_error");
    m.shutdown().await;
}

#[tokio::test]
async fn cut_drops_connection_mid_stream() {
    let m = mock().await;
    for (path, model) in [
        ("/v1/chat/completions", "gpt-4o@cut=2"),
        ("/v1/messages", "claude-x@cut=2"),
    ] {
        let mut resp = post(
            &m,
            path,
            json!({"model": model, "max_tokens": 5, "stream": true, "messages": [{"role": "user", "content": "one two three"}]}),
        )
        .await;
        assert_eq!(resp.status(), 200);
        let mut got = Vec::new();
        let err = loop {
            match resp.chunk().await {
                Ok(Some(c)) => got.extend_from_slice(&c),
                Ok(None) => panic!("stream ended cleanly; expected a cut"),
                Err(e) => break e,
            }
        };
        let _ = err;
        let text = String::from_utf8(got).unwrap();
        let events = sse_events(&text);
        assert_eq!(events.len(), 2, "{text}");
        assert!(!text.contains("[DONE]"));
        assert!(!text.contains("message_stop"));
    }
    m.shutdown().await;
}

#[tokio::test]
async fn malformed_and_chunk_delay() {
    let m = mock().await;
    let text = post(
        &m,
        "/v1/chat/completions",
        json!({"model": "gpt-4o@malformed", "stream": true, "messages": [{"role": "user", "content": "x"}]}),
    )
    .await
    .text()
    .await
    .unwrap();
    let events = sse_events(&text);
    assert_eq!(events[1].1, "{not json");
    assert_eq!(events.last().unwrap().1, "[DONE]");

    let start = Instant::now();
    let mut resp = post(
        &m,
        "/v1/messages",
        json!({"model": "claude-x@chunk-delay=60", "max_tokens": 5, "stream": true, "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    let headers_at = start.elapsed();
    let mut arrivals = 0;
    while let Some(_c) = resp.chunk().await.unwrap() {
        arrivals += 1;
    }
    // 10 events, 9 gaps of 60 ms; the body must trickle in.
    assert!(start.elapsed() >= Duration::from_millis(9 * 60));
    assert!(headers_at < Duration::from_millis(300));
    assert!(arrivals >= 5, "events should arrive spaced out: {arrivals}");

    let start = Instant::now();
    let resp = post(
        &m,
        "/v1/chat/completions",
        json!({"model": "gpt-4o@delay=200", "stream": true, "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert_eq!(resp.status(), 200);
    m.shutdown().await;
}

#[tokio::test]
async fn hit_counting_and_recording() {
    let m = mock().await;
    let c = client();
    for _ in 0..2 {
        post(
            &m,
            "/v1/chat/completions",
            json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    }
    c.post(format!("{}/v1/messages", m.base_url()))
        .header("x-ekai-hop", "1")
        .header("X-Custom", "Yes")
        .json(&json!({"model": "claude-x@status=500", "max_tokens": 1, "messages": []}))
        .send()
        .await
        .unwrap();
    let models: Value = c
        .get(format!("{}/v1/models", m.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["object"], "model");
    assert_eq!(m.hits("openai"), 2);
    assert_eq!(m.hits("anthropic"), 1);
    assert_eq!(m.hits("models"), 1);
    assert_eq!(m.hits_for_model("gpt-4o"), 2);
    assert_eq!(m.hits_for_model("claude-x@status=500"), 1);
    assert_eq!(m.hits_for_model("claude-x"), 0);
    let reqs = m.requests();
    assert_eq!(reqs.len(), 4);
    assert_eq!(reqs[0].route, "openai");
    assert_eq!(reqs[0].path, "/v1/chat/completions");
    assert_eq!(reqs[0].body["model"], "gpt-4o");
    assert_eq!(reqs[2].header("x-ekai-hop"), Some("1"));
    assert!(
        reqs[2]
            .headers
            .contains(&("x-custom".to_string(), "Yes".to_string()))
    );
    let hits: Value = c
        .get(format!("{}/_mock/hits", m.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(hits["routes"]["openai"], 2);
    assert_eq!(hits["by_model"]["gpt-4o"], 2);
    assert_eq!(hits["total"], 4);
    m.reset();
    assert_eq!(m.hits("openai"), 0);
    assert!(m.requests().is_empty());
    m.shutdown().await;
}

#[tokio::test]
async fn auth_and_invalid_json() {
    let m = spawn(MockConfig {
        expected_key: Some("sk-test".into()),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let c = client();
    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]});
    let r = c
        .post(format!("{}/v1/chat/completions", m.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "invalid_api_key");
    let r = c
        .post(format!("{}/v1/messages", m.base_url()))
        .header("x-api-key", "wrong")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "authentication_error");
    let r = c
        .post(format!("{}/v1/chat/completions", m.base_url()))
        .bearer_auth("sk-test")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .post(format!("{}/v1/messages", m.base_url()))
        .header("x-api-key", "sk-test")
        .header("content-type", "application/json")
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert_eq!(m.requests().last().unwrap().body, json!("{oops"));
    m.shutdown().await;
}

#[tokio::test]
async fn binary_prints_address_and_serves() {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ekai-mock-provider"))
        .args(["--port", "0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    })
    .await
    .unwrap()
    .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();
    let got = client().get(format!("{url}/v1/models")).send().await;
    child.kill().unwrap();
    let _ = child.wait();
    let v: Value = got.unwrap().json().await.unwrap();
    assert_eq!(v["object"], "list");
}

// ---------------------------------------------------------------------------------------------
// OpenAI Responses
// ---------------------------------------------------------------------------------------------

fn weather_tool_responses() -> Value {
    json!([{
        "type": "function",
        "name": "get_weather",
        "description": "Weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}
    }])
}

/// Parses a Responses stream: every event has a name equal to its data's `type`.
fn responses_events(text: &str) -> Vec<Value> {
    sse_events(text)
        .into_iter()
        .map(|(name, data)| {
            let v: Value = serde_json::from_str(&data).unwrap();
            assert_eq!(name.as_deref(), v["type"].as_str(), "{data}");
            v
        })
        .collect()
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn responses_non_streaming() {
    let m = mock().await;
    let resp = post(
        &m,
        "/v1/responses",
        json!({
            "model": "gpt-5",
            "instructions": "Be brief",
            "input": [
                {"role": "user", "content": "earlier"},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ok"}]},
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}, {"type": "input_text", "text": "there"}]}
            ]
        }),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert!(v["id"].as_str().unwrap().starts_with("resp_mock_"));
    assert_eq!(v["object"], "response");
    assert_eq!(v["status"], "completed");
    assert_eq!(v["model"], "gpt-5");
    assert!(v["created_at"].is_u64());
    assert_eq!(v["error"], Value::Null);
    assert_eq!(v["incomplete_details"], Value::Null);
    let output = v["output"].as_array().unwrap();
    assert_eq!(output.len(), 1);
    assert_eq!(output[0]["type"], "message");
    assert_eq!(output[0]["id"], "msg_mock_1");
    assert_eq!(output[0]["status"], "completed");
    assert_eq!(output[0]["role"], "assistant");
    assert_eq!(
        output[0]["content"],
        json!([{"type": "output_text", "text": "Hello from mock-responses: hi there", "annotations": []}])
    );
    // input: "Be brief" + "earlier" + "ok" + "hi there" = 6 words + 10; output: 5 words.
    let u = &v["usage"];
    assert_eq!(u["input_tokens"], 16);
    assert_eq!(u["input_tokens_details"]["cached_tokens"], 0);
    assert_eq!(u["output_tokens"], 5);
    assert_eq!(u["output_tokens_details"]["reasoning_tokens"], 0);
    assert_eq!(u["total_tokens"], 21);

    // A plain string input; reasoning + cache.
    let v: Value = post(
        &m,
        "/v1/responses",
        json!({"model": "o3@cache", "input": "x y", "reasoning": {"effort": "low"}}),
    )
    .await
    .json()
    .await
    .unwrap();
    let output = v["output"].as_array().unwrap();
    assert_eq!(output.len(), 2);
    assert_eq!(
        output[0],
        json!({"type": "reasoning", "id": "rs_mock_1", "summary": [{"type": "summary_text", "text": "Let me think about this."}]})
    );
    assert_eq!(
        output[1]["content"][0]["text"],
        "Hello from mock-responses: x y"
    );
    assert_eq!(v["usage"]["input_tokens"], 12);
    assert_eq!(v["usage"]["input_tokens_details"]["cached_tokens"], 4);
    assert_eq!(v["usage"]["output_tokens"], 5 + 5);
    assert_eq!(v["usage"]["output_tokens_details"]["reasoning_tokens"], 5);

    let v: Value = post(
        &m,
        "/v1/responses",
        json!({"model": "gpt-5@nousage", "input": "x"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(v.get("usage").is_none());
    assert_eq!(m.hits("responses"), 3);
    assert_eq!(m.hits_for_model("gpt-5"), 1);
    assert_eq!(m.hits_for_model("o3@cache"), 1);
    assert_eq!(m.requests()[0].route, "responses");
    assert_eq!(m.requests()[0].path, "/v1/responses");
    m.shutdown().await;
}

#[tokio::test]
async fn responses_streaming_event_order() {
    let m = mock().await;
    let resp = post(
        &m,
        "/v1/responses",
        json!({"model": "gpt-5@think", "stream": true, "input": "hello world"}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text = resp.text().await.unwrap();
    assert!(!text.contains("[DONE]"));
    let events = responses_events(&text);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["sequence_number"], i as u64, "{e}");
    }
    let words = ["Hello", " from", " mock-responses:", " hello", " world"];
    let mut expected = vec![
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
    ];
    expected.extend(["response.reasoning_summary_text.delta"; 5]);
    expected.extend([
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
    ]);
    expected.extend(["response.output_text.delta"; 5]);
    expected.extend([
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]);
    assert_eq!(types(&events), expected);

    assert_eq!(events[0]["response"]["status"], "in_progress");
    assert_eq!(events[0]["response"]["output"], json!([]));
    assert_eq!(events[2]["output_index"], 0);
    assert_eq!(events[2]["item"]["type"], "reasoning");
    let thinking: String = events
        .iter()
        .filter(|e| e["type"] == "response.reasoning_summary_text.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(thinking, "Let me think about this.");
    let added = &events[12];
    assert_eq!(added["output_index"], 1);
    assert_eq!(added["item"]["type"], "message");
    assert_eq!(added["item"]["status"], "in_progress");
    assert_eq!(added["item"]["content"], json!([]));
    let deltas: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .collect();
    for (d, w) in deltas.iter().zip(words) {
        assert_eq!(d["delta"], w);
        assert_eq!(d["item_id"], "msg_mock_1");
        assert_eq!(d["output_index"], 1);
        assert_eq!(d["content_index"], 0);
    }
    let done = events
        .iter()
        .find(|e| e["type"] == "response.output_text.done")
        .unwrap();
    assert_eq!(done["text"], "Hello from mock-responses: hello world");
    let last = events.last().unwrap();
    let r = &last["response"];
    assert_eq!(r["status"], "completed");
    assert_eq!(r["output"].as_array().unwrap().len(), 2);
    assert_eq!(
        r["output"][1]["content"][0]["text"],
        "Hello from mock-responses: hello world"
    );
    assert_eq!(r["usage"]["input_tokens"], 12);
    assert_eq!(r["usage"]["output_tokens"], 10);
    assert_eq!(r["usage"]["output_tokens_details"]["reasoning_tokens"], 5);
    assert_eq!(r["usage"]["total_tokens"], 22);
    m.shutdown().await;
}

#[tokio::test]
async fn responses_tool_call_and_result() {
    let m = mock().await;
    let body = json!({
        "model": "gpt-5",
        "input": [{"role": "user", "content": "weather?"}],
        "tools": weather_tool_responses(),
        "tool_choice": "auto"
    });
    let v: Value = post(&m, "/v1/responses", body.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["output"],
        json!([{
            "type": "function_call", "id": "fc_mock_1", "call_id": "call_mock_1",
            "name": "get_weather", "arguments": "{\"location\":\"Paris\"}", "status": "completed"
        }])
    );
    assert_eq!(v["usage"]["output_tokens"], 5);

    // Streamed: output_item.added, 3 argument fragments, arguments.done, output_item.done.
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let text = post(&m, "/v1/responses", streamed)
        .await
        .text()
        .await
        .unwrap();
    let events = responses_events(&text);
    assert_eq!(
        types(&events),
        vec![
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    assert_eq!(events[2]["item"]["arguments"], "");
    assert_eq!(events[2]["item"]["status"], "in_progress");
    assert_eq!(events[2]["item"]["call_id"], "call_mock_1");
    let args: String = events[3..6]
        .iter()
        .map(|e| {
            assert_eq!(e["item_id"], "fc_mock_1");
            e["delta"].as_str().unwrap()
        })
        .collect();
    assert_eq!(args, r#"{"location":"Paris"}"#);
    assert_eq!(events[6]["arguments"], r#"{"location":"Paris"}"#);
    assert_eq!(events[8]["response"]["output"][0]["type"], "function_call");

    // Follow-up with the function_call_output: a text answer quoting it.
    let mut follow = body.clone();
    follow["input"] = json!([
        {"role": "user", "content": "weather?"},
        {"type": "function_call", "call_id": "call_mock_1", "name": "get_weather", "arguments": "{\"location\":\"Paris\"}"},
        {"type": "function_call_output", "call_id": "call_mock_1", "output": "Sunny 20C"}
    ]);
    let v: Value = post(&m, "/v1/responses", follow)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["output"][0]["type"], "message");
    assert_eq!(
        v["output"][0]["content"][0]["text"],
        "Tool result received: Sunny 20C"
    );
    // "weather?" + "Sunny 20C" = 3 words + 10.
    assert_eq!(v["usage"]["input_tokens"], 13);

    // parallel: two calls, two output items.
    let mut par = body.clone();
    par["model"] = json!("gpt-5@parallel");
    let v: Value = post(&m, "/v1/responses", par).await.json().await.unwrap();
    assert_eq!(v["output"][1]["call_id"], "call_mock_2");
    assert_eq!(v["output"][1]["arguments"], r#"{"location":"Tokyo"}"#);
    m.shutdown().await;
}

#[tokio::test]
async fn responses_errors_auth_and_cut() {
    let m = spawn(MockConfig {
        expected_key: Some("sk-test".into()),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let c = client();
    let url = format!("{}/v1/responses", m.base_url());
    let r = c
        .post(&url)
        .json(&json!({"model": "gpt-5", "input": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "invalid_api_key");
    let r = c
        .post(&url)
        .bearer_auth("sk-test")
        .json(&json!({"model": "gpt-5@status=429,retry-after=4", "input": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "4");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "requests");
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");
    assert_eq!(v["error"]["param"], Value::Null);
    let r = c
        .post(&url)
        .bearer_auth("sk-test")
        .header("x-mock-scenario", "status=500")
        .json(&json!({"model": "gpt-5", "input": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "server_error");

    let mut resp = c
        .post(&url)
        .bearer_auth("sk-test")
        .json(&json!({"model": "gpt-5@cut=3", "stream": true, "input": "one two three"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut got = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => got.extend_from_slice(&c),
            Ok(None) => panic!("stream ended cleanly; expected a cut"),
            Err(_) => break,
        }
    }
    let text = String::from_utf8(got).unwrap();
    assert_eq!(sse_events(&text).len(), 3, "{text}");
    assert!(!text.contains("response.completed"));
    assert_eq!(m.hits("responses"), 4);
    m.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Gemini
// ---------------------------------------------------------------------------------------------

fn weather_tool_gemini() -> Value {
    json!([{
        "functionDeclarations": [{
            "name": "get_weather",
            "description": "Weather",
            "parameters": {"type": "OBJECT", "properties": {"location": {"type": "STRING"}}, "required": ["location"]}
        }, {
            "name": "get_time",
            "description": "Time",
            "parametersJsonSchema": {"type": "object", "properties": {}}
        }]
    }])
}

fn gemini_path(model: &str, action: &str) -> String {
    format!("/v1beta/models/{model}:{action}")
}

#[tokio::test]
async fn gemini_non_streaming() {
    let m = mock().await;
    let resp = post(
        &m,
        &gemini_path("gemini-2.5-flash", "generateContent"),
        json!({
            "systemInstruction": {"parts": [{"text": "Be brief"}]},
            "contents": [
                {"role": "user", "parts": [{"text": "earlier"}]},
                {"role": "model", "parts": [{"text": "ok"}]},
                {"role": "user", "parts": [{"text": "hi"}, {"text": "there"}]}
            ]
        }),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    let cand = &v["candidates"][0];
    assert_eq!(cand["content"]["role"], "model");
    assert_eq!(
        cand["content"]["parts"],
        json!([{"text": "Hello from mock-gemini: hi there"}])
    );
    assert_eq!(cand["finishReason"], "STOP");
    assert_eq!(cand["index"], 0);
    assert_eq!(v["modelVersion"], "gemini-2.5-flash");
    assert!(v["responseId"].is_string());
    // input: "Be brief" + "earlier" + "ok" + "hi there" = 6 words + 10; output 5 words.
    let u = &v["usageMetadata"];
    assert_eq!(u["promptTokenCount"], 16);
    assert_eq!(u["candidatesTokenCount"], 5);
    assert_eq!(u["totalTokenCount"], 21);
    assert!(u.get("thoughtsTokenCount").is_none());
    assert!(u.get("cachedContentTokenCount").is_none());

    // Thinking via thinkingConfig.includeThoughts, cache via the model-segment scenario.
    let v: Value = post(
        &m,
        &gemini_path("gemini-2.5-pro@cache", "generateContent"),
        json!({
            "contents": [{"role": "user", "parts": [{"text": "x"}]}],
            "generationConfig": {"thinkingConfig": {"includeThoughts": true, "thinkingBudget": 128}}
        }),
    )
    .await
    .json()
    .await
    .unwrap();
    let parts = &v["candidates"][0]["content"]["parts"];
    assert_eq!(
        parts[0],
        json!({"text": "Let me think about this.", "thought": true})
    );
    assert_eq!(parts[1]["text"], "Hello from mock-gemini: x");
    let u = &v["usageMetadata"];
    assert_eq!(u["promptTokenCount"], 11);
    assert_eq!(u["candidatesTokenCount"], 4);
    assert_eq!(u["thoughtsTokenCount"], 5);
    assert_eq!(u["cachedContentTokenCount"], 4);
    assert_eq!(u["totalTokenCount"], 11 + 4 + 5);

    assert_eq!(m.hits("gemini"), 2);
    assert_eq!(m.hits_for_model("gemini-2.5-flash"), 1);
    assert_eq!(m.hits_for_model("gemini-2.5-pro@cache"), 1);
    let reqs = m.requests();
    assert_eq!(reqs[0].route, "gemini");
    assert_eq!(
        reqs[0].path,
        "/v1beta/models/gemini-2.5-flash:generateContent"
    );
    m.shutdown().await;
}

#[tokio::test]
async fn gemini_streaming_chunks() {
    let m = mock().await;
    let resp = post(
        &m,
        &format!(
            "{}?alt=sse",
            gemini_path("gemini-2.5-flash", "streamGenerateContent")
        ),
        json!({"contents": [{"role": "user", "parts": [{"text": "hello world"}]}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text = resp.text().await.unwrap();
    assert!(!text.contains("event:"));
    assert!(!text.contains("[DONE]"));
    let events = sse_events(&text);
    assert!(events.iter().all(|(name, _)| name.is_none()));
    let chunks: Vec<Value> = events
        .iter()
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect();
    // One chunk per word.
    assert_eq!(chunks.len(), 5);
    let mut text = String::new();
    for (i, c) in chunks.iter().enumerate() {
        let cand = &c["candidates"][0];
        let parts = cand["content"]["parts"].as_array().unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(cand["content"]["role"], "model");
        text.push_str(parts[0]["text"].as_str().unwrap());
        let last = i + 1 == chunks.len();
        assert_eq!(cand.get("finishReason").is_some(), last, "{c}");
        assert_eq!(c.get("usageMetadata").is_some(), last, "{c}");
    }
    assert_eq!(text, "Hello from mock-gemini: hello world");
    let last = chunks.last().unwrap();
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(last["usageMetadata"]["promptTokenCount"], 12);
    assert_eq!(last["usageMetadata"]["candidatesTokenCount"], 5);
    assert_eq!(last["usageMetadata"]["totalTokenCount"], 17);

    // cut=2: two chunks, then the connection drops.
    let mut resp = post(
        &m,
        &format!(
            "{}?alt=sse",
            gemini_path("gemini-2.5-flash@cut=2", "streamGenerateContent")
        ),
        json!({"contents": [{"role": "user", "parts": [{"text": "one two three"}]}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let mut got = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => got.extend_from_slice(&c),
            Ok(None) => panic!("stream ended cleanly; expected a cut"),
            Err(_) => break,
        }
    }
    let text = String::from_utf8(got).unwrap();
    assert_eq!(sse_events(&text).len(), 2, "{text}");
    assert!(!text.contains("finishReason"));

    // Without alt=sse: a JSON array of the same chunks.
    let v: Value = post(
        &m,
        &gemini_path("gemini-2.5-flash", "streamGenerateContent"),
        json!({"contents": [{"role": "user", "parts": [{"text": "hello world"}]}]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v.as_array().unwrap().len(), 5);
    m.shutdown().await;
}

#[tokio::test]
async fn gemini_tool_call_and_result() {
    let m = mock().await;
    let body = json!({
        "contents": [{"role": "user", "parts": [{"text": "weather?"}]}],
        "tools": weather_tool_gemini(),
        "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}}
    });
    let v: Value = post(
        &m,
        &gemini_path("gemini-2.5-flash", "generateContent"),
        body.clone(),
    )
    .await
    .json()
    .await
    .unwrap();
    let cand = &v["candidates"][0];
    assert_eq!(
        cand["content"]["parts"],
        json!([{"functionCall": {"name": "get_weather", "args": {"location": "Paris"}}}])
    );
    assert_eq!(cand["finishReason"], "STOP");
    assert_eq!(v["usageMetadata"]["candidatesTokenCount"], 5);

    // Thinking: thought part first, thoughtSignature on the functionCall; streamed, the call
    // arrives whole in the last chunk.
    let text = post(
        &m,
        &format!(
            "{}?alt=sse",
            gemini_path("gemini-2.5-flash@think", "streamGenerateContent")
        ),
        body.clone(),
    )
    .await
    .text()
    .await
    .unwrap();
    let chunks: Vec<Value> = sse_events(&text)
        .iter()
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(chunks.len(), 2);
    assert_eq!(
        chunks[0]["candidates"][0]["content"]["parts"][0]["thought"],
        true
    );
    let last = &chunks[1];
    let part = &last["candidates"][0]["content"]["parts"][0];
    assert_eq!(part["functionCall"]["name"], "get_weather");
    assert_eq!(part["functionCall"]["args"], json!({"location": "Paris"}));
    assert_eq!(part["thoughtSignature"], "c2lnX21vY2tfMTIz");
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(last["usageMetadata"]["thoughtsTokenCount"], 5);
    assert_eq!(last["usageMetadata"]["candidatesTokenCount"], 5);

    // Follow-up with the functionResponse: a text answer quoting its output field.
    let mut follow = body.clone();
    follow["contents"] = json!([
        {"role": "user", "parts": [{"text": "weather?"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"location": "Paris"}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"output": "Sunny 20C"}}}]}
    ]);
    let v: Value = post(
        &m,
        &gemini_path("gemini-2.5-flash", "generateContent"),
        follow.clone(),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        v["candidates"][0]["content"]["parts"][0]["text"],
        "Tool result received: Sunny 20C"
    );
    assert_eq!(v["usageMetadata"]["promptTokenCount"], 13);
    // Without output/result: the response as compact JSON.
    follow["contents"][2]["parts"][0]["functionResponse"]["response"] = json!({"temp": 20});
    let v: Value = post(
        &m,
        &gemini_path("gemini-2.5-flash", "generateContent"),
        follow,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        v["candidates"][0]["content"]["parts"][0]["text"],
        r#"Tool result received: {"temp":20}"#
    );

    // mode NONE: text.
    let mut none = body.clone();
    none["toolConfig"]["functionCallingConfig"]["mode"] = json!("NONE");
    let v: Value = post(
        &m,
        &gemini_path("gemini-2.5-flash", "generateContent"),
        none,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        v["candidates"][0]["content"]["parts"][0]["text"],
        "Hello from mock-gemini: weather?"
    );
    m.shutdown().await;
}

#[tokio::test]
async fn gemini_errors_and_auth() {
    let m = spawn(MockConfig {
        expected_key: Some("g-key".into()),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let c = client();
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "x"}]}]});
    let url = |model: &str| format!("{}{}", m.base_url(), gemini_path(model, "generateContent"));
    // No key, and a Bearer key: both refused.
    for req in [
        c.post(url("gemini-2.5-flash")),
        c.post(url("gemini-2.5-flash")).bearer_auth("g-key"),
    ] {
        let r = req.json(&body).send().await.unwrap();
        assert_eq!(r.status(), 401);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], 401);
        assert_eq!(v["error"]["status"], "UNAUTHENTICATED");
        assert!(v["error"]["message"].is_string());
    }
    let r = c
        .post(url("gemini-2.5-flash"))
        .header("x-goog-api-key", "g-key")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .post(format!("{}?key=g-key", url("gemini-2.5-flash")))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    for (status, name) in [
        (400, "INVALID_ARGUMENT"),
        (403, "PERMISSION_DENIED"),
        (404, "NOT_FOUND"),
        (429, "RESOURCE_EXHAUSTED"),
        (500, "INTERNAL"),
        (503, "UNAVAILABLE"),
    ] {
        let r = c
            .post(url(&format!(
                "gemini-2.5-flash@status={status},retry-after=2"
            )))
            .header("x-goog-api-key", "g-key")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status);
        assert_eq!(r.headers()["retry-after"], "2");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], status);
        assert_eq!(v["error"]["status"], name);
    }
    // The header scenario works too, and the model still counts as sent.
    let r = c
        .post(url("gemini-2.5-flash"))
        .header("x-goog-api-key", "g-key")
        .header("x-mock-scenario", "status=429")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(
        m.hits_for_model("gemini-2.5-flash@status=500,retry-after=2"),
        1
    );

    // Invalid JSON and an unknown method.
    let r = c
        .post(url("gemini-2.5-flash"))
        .header("x-goog-api-key", "g-key")
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["status"], "INVALID_ARGUMENT");
    let r = c
        .post(format!(
            "{}/v1beta/models/gemini-2.5-flash:predict",
            m.base_url()
        ))
        .header("x-goog-api-key", "g-key")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["status"], "NOT_FOUND");
    assert_eq!(m.hits("unknown"), 1);
    assert_eq!(m.hits("gemini"), 2 + 2 + 6 + 1 + 1);
    m.shutdown().await;
}

#[tokio::test]
async fn new_streams_malformed_and_encoded_model() {
    let m = mock().await;
    let text = post(
        &m,
        "/v1/responses",
        json!({"model": "gpt-5@malformed", "stream": true, "input": "x"}),
    )
    .await
    .text()
    .await
    .unwrap();
    let events = sse_events(&text);
    assert_eq!(events[1].1, "{not json");
    assert!(events.last().unwrap().1.contains("response.completed"));

    // '@' percent-encoded in the model segment still selects the scenario and counts the
    // decoded model.
    let text = post(
        &m,
        "/v1beta/models/gemini-2.5-flash%40malformed:streamGenerateContent?alt=sse",
        json!({"contents": [{"role": "user", "parts": [{"text": "x"}]}]}),
    )
    .await
    .text()
    .await
    .unwrap();
    let events = sse_events(&text);
    assert_eq!(events[1].1, "{not json");
    assert!(events.last().unwrap().1.contains("finishReason"));
    assert_eq!(m.hits_for_model("gemini-2.5-flash@malformed"), 1);
    m.shutdown().await;
}

#[tokio::test]
async fn embeddings_openai_azure_and_gemini_agree() {
    use ekai_mock_provider::embeddings::vector;
    let m = spawn(MockConfig {
        expected_key: Some("k".into()),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let c = client();
    let r = c
        .post(format!("{}/v1/embeddings", m.base_url()))
        .header("authorization", "Bearer k")
        .json(&json!({"model": "text-embedding-3-small", "input": ["a b", "c"], "dimensions": 4}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["usage"]["prompt_tokens"], 3);
    assert_eq!(v["data"][1]["embedding"], json!(vector("c", 4)));
    let r = c
        .post(format!("{}/v1/embeddings", m.base_url()))
        .header("authorization", "Bearer k")
        .json(&json!({"model": "m", "input": "a b", "encoding_format": "base64"}))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert!(v["data"][0]["embedding"].as_str().unwrap().len() > 40);
    let r = c
        .post(format!("{}/v1/embeddings", m.base_url()))
        .header("authorization", "Bearer k")
        .json(&json!({"model": "m", "input": {"x": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Azure: api-key header and api-version required.
    let az = format!(
        "{}/openai/deployments/emb/embeddings?api-version=2024-10-21",
        m.base_url()
    );
    let r = c
        .post(&az)
        .header("authorization", "Bearer k")
        .json(&json!({"input": "a b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .post(&az)
        .header("api-key", "k")
        .json(&json!({"input": "a b"}))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["model"], "emb");
    assert_eq!(v["data"][0]["embedding"], json!(vector("a b", 8)));
    let r = c
        .post(format!(
            "{}/openai/deployments/emb/embeddings",
            m.base_url()
        ))
        .header("api-key", "k")
        .json(&json!({"input": "a b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Gemini: the same vector for the same text.
    let r = c
        .post(format!(
            "{}/v1beta/models/gemini-embedding-001:batchEmbedContents",
            m.base_url()
        ))
        .header("x-goog-api-key", "k")
        .json(&json!({"requests": [
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "a b"}]}},
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "c"}]}, "outputDimensionality": 4}
        ]}))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["embeddings"][0]["values"], json!(vector("a b", 8)));
    assert_eq!(v["embeddings"][1]["values"], json!(vector("c", 4)));
    let r = c
        .post(format!(
            "{}/v1beta/models/gemini-embedding-001:embedContent",
            m.base_url()
        ))
        .header("x-goog-api-key", "k")
        .json(&json!({"content": {"parts": [{"text": "a b"}]}}))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["embedding"]["values"], json!(vector("a b", 8)));
    assert_eq!(m.hits("embeddings"), 3);
    assert_eq!(m.hits("azure_embeddings"), 3);
    assert_eq!(m.hits("gemini_embed"), 2);
    m.shutdown().await;
}

#[tokio::test]
async fn azure_chat_deployment_route() {
    let m = spawn(MockConfig {
        expected_key: Some("k".into()),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let c = client();
    let url = format!(
        "{}/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21",
        m.base_url()
    );
    let body = json!({"messages": [{"role": "user", "content": "hi"}]});
    let r = c
        .post(&url)
        .header("authorization", "Bearer k")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .post(&url)
        .header("api-key", "k")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(m.hits("azure"), 2);
    assert_eq!(m.hits_for_model("prod-4o"), 2);
    m.shutdown().await;
}
