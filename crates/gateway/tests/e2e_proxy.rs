//! End-to-end: the real gateway binary on a real socket in front of the mock provider, spoken to
//! with plain HTTP. Covers passthrough and translation in both directions, streaming, the error
//! matrix (each bad input and upstream failure → documented status and dialect-shaped body), loop
//! protection and secrecy of provider keys.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

mod common;

use common::*;
use serde_json::{Value, json};

const ANTHROPIC_HEADERS: &[(&str, &str)] = &[("anthropic-version", "2023-06-01")];

fn chat(model: &str, stream: bool) -> String {
    json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi there"}]})
        .to_string()
}

fn msgs(model: &str, stream: bool) -> String {
    json!({"model": model, "max_tokens": 64, "stream": stream,
           "messages": [{"role": "user", "content": "hi there"}]})
    .to_string()
}

fn weather_tool_openai() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}])
}

/// Asserts an OpenAI-shaped error body and returns its message.
fn openai_error(r: &Reply, status: u16, typ: &str) -> String {
    assert_eq!(r.status, status, "{}", r.text);
    let v = r.json();
    assert_eq!(v["error"]["type"], typ, "{}", r.text);
    assert!(
        v["error"].get("param").is_some() && v["error"].get("code").is_some(),
        "OpenAI errors carry param and code: {}",
        r.text
    );
    v["error"]["message"].as_str().unwrap().to_string()
}

/// Asserts an Anthropic-shaped error body and returns its message.
fn anthropic_error(r: &Reply, status: u16, typ: &str) -> String {
    assert_eq!(r.status, status, "{}", r.text);
    let v = r.json();
    assert_eq!(v["type"], "error", "{}", r.text);
    assert_eq!(v["error"]["type"], typ, "{}", r.text);
    v["error"]["message"].as_str().unwrap().to_string()
}

// ------------------------------------------------------------------------------------------------
// Passthrough
// ------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_passthrough_relays_the_body_and_keeps_unknown_fields() {
    let (mock, gw) = mock_and_gateway().await;
    let body =
        json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi there"}],
                      "x_vendor_knob": {"keep": [1, 2]}, "seed": 7})
        .to_string();
    let r = post(&format!("{}/v1/chat/completions", gw.url), &[], &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Hello from mock-openai: hi there"
    );
    assert_eq!(r.header("x-ekai-provider"), "openai");
    assert_eq!(r.header("x-ekai-model"), "gpt-4o-mini");
    assert!(r.header("x-request-id").starts_with("req_"));
    assert_eq!(r.header("x-content-type-options"), "nosniff");
    assert_eq!(r.header("x-frame-options"), "DENY");
    assert_eq!(r.header("referrer-policy"), "no-referrer");
    assert_eq!(mock.hits("openai"), 1);
    assert_eq!(mock.hits("anthropic"), 0);

    let seen = &mock.requests()[0];
    assert_eq!(seen.body["x_vendor_knob"], json!({"keep": [1, 2]}));
    assert_eq!(seen.body["seed"], 7);
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {OPENAI_KEY}").as_str())
    );
    assert!(
        seen.header("x-ekai-hop").is_some(),
        "upstream requests are marked"
    );
    let log = gw.wait_log("input_tokens=12").await;
    assert!(log.contains("output_tokens=5"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_passthrough_stream_accounts_usage_but_strips_it_when_not_asked() {
    let (mock, gw) = mock_and_gateway().await;
    let r = post(
        &format!("{}/v1/chat/completions", gw.url),
        &[],
        &chat("gpt-4o-mini", true),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").starts_with("text/event-stream"));
    let data = r.sse_data();
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(
        chunks
            .iter()
            .all(|c| !c["choices"].as_array().unwrap().is_empty()),
        "the usage-only chunk the gateway asked for is not shown to a client that did not ask"
    );
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Hello from mock-openai: hi there");
    // Upstream was asked for usage, and the ledger record has it.
    assert_eq!(
        mock.requests()[0].body["stream_options"]["include_usage"],
        true
    );
    let log = gw.wait_log("streamed=true").await;
    assert!(log.contains("input_tokens=12"), "{log}");
    assert!(log.contains("usage_estimated=false"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_passthrough_stream_keeps_usage_when_the_client_asks() {
    let (_mock, gw) = mock_and_gateway().await;
    let body =
        json!({"model": "gpt-4o-mini", "stream": true, "stream_options": {"include_usage": true},
                      "messages": [{"role": "user", "content": "hi there"}]})
        .to_string();
    let r = post(&format!("{}/v1/chat/completions", gw.url), &[], &body).await;
    let data = r.sse_data();
    let usage_chunk: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"]["prompt_tokens"], 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_passthrough_stream_forwards_version_beta_and_key() {
    let (mock, gw) = mock_and_gateway().await;
    let r = post(
        &format!("{}/v1/messages?beta=true", gw.url),
        &[
            ("anthropic-version", "2023-06-01"),
            ("anthropic-beta", "interleaved-thinking-2025-05-14"),
            ("x-api-key", "client-key-ignored-in-open-mode"),
        ],
        &msgs("claude-sonnet-4-5", true),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let events = r.sse_events();
    assert_eq!(events.first().map(String::as_str), Some("message_start"));
    assert_eq!(events.last().map(String::as_str), Some("message_stop"));
    let text: String = r
        .sse_data()
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| v["delta"]["text"].as_str().map(str::to_string))
        .collect();
    assert_eq!(text, "Hello from mock-anthropic: hi there");
    let seen = &mock.requests()[0];
    assert_eq!(seen.header("x-api-key"), Some(ANTHROPIC_KEY));
    assert_eq!(seen.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(
        seen.header("anthropic-beta"),
        Some("interleaved-thinking-2025-05-14")
    );
    assert_eq!(mock.hits("openai"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_system_role_message_is_hoisted_before_reaching_anthropic() {
    let (mock, gw) = mock_and_gateway().await;
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 64,
        "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "hi there"},
                     {"role": "system", "content": "Reminder: be brief."},
                     {"role": "user", "content": "again"}]})
    .to_string();
    let r = post(&format!("{}/v1/messages", gw.url), ANTHROPIC_HEADERS, &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sent = &mock.requests()[0].body;
    let roles: Vec<&str> = sent["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert!(!roles.contains(&"system"), "{sent}");
    assert_eq!(sent["system"][0]["cache_control"]["type"], "ephemeral");
    assert!(
        sent["system"].to_string().contains("Reminder: be brief."),
        "{sent}"
    );
}

// ------------------------------------------------------------------------------------------------
// Translation
// ------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_client_reaches_claude_with_system_and_tools() {
    let (mock, gw) = mock_and_gateway().await;
    let body = json!({"model": "claude-sonnet-4-5",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "weather?"}],
        "tools": weather_tool_openai(), "max_tokens": 100})
    .to_string();
    let r = post(&format!("{}/v1/chat/completions", gw.url), &[], &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    let call = &v["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"location": "Paris"}));
    assert_eq!(r.header("x-ekai-provider"), "anthropic");

    // What Anthropic received is a valid Messages request.
    let sent = &mock.requests()[0].body;
    assert_eq!(sent["system"], "Be brief.");
    assert_eq!(sent["max_tokens"], 100);
    assert_eq!(sent["tools"][0]["name"], "get_weather");
    assert_eq!(
        sent["tools"][0]["input_schema"]["required"],
        json!(["location"])
    );

    // Round trip: the tool result goes back as an Anthropic tool_result.
    let body2 = json!({"model": "claude-sonnet-4-5", "tools": weather_tool_openai(), "messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": null, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "18C and sunny"}]})
    .to_string();
    let r2 = post(&format!("{}/v1/chat/completions", gw.url), &[], &body2).await;
    assert_eq!(
        r2.json()["choices"][0]["message"]["content"],
        "Tool result received: 18C and sunny"
    );
    let sent2 = &mock.requests()[1].body;
    assert_eq!(sent2["messages"][2]["content"][0]["type"], "tool_result");
    assert_eq!(
        sent2["messages"][2]["content"][0]["tool_use_id"],
        call["id"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_client_reaches_gpt_streaming_with_usage() {
    let (mock, gw) = mock_and_gateway().await;
    let r = post(
        &format!("{}/v1/messages", gw.url),
        ANTHROPIC_HEADERS,
        &msgs("gpt-4o-mini", true),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let events = r.sse_events();
    assert_eq!(
        events.iter().filter(|e| *e == "message_start").count(),
        1,
        "{events:?}"
    );
    assert_eq!(events.last().map(String::as_str), Some("message_stop"));
    let text: String = r
        .sse_data()
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter(|v| v["type"] == "content_block_delta")
        .map(|v| v["delta"]["text"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(text, "Hello from mock-openai: hi there");
    let delta: Value = r
        .sse_data()
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find(|v| v["type"] == "message_delta")
        .unwrap();
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], 5);
    // OpenAI got a Chat request with the modern token field and a usage request.
    let sent = &mock.requests()[0].body;
    assert_eq!(sent["max_completion_tokens"], 64);
    assert!(sent.get("max_tokens").is_none());
    assert_eq!(sent["stream_options"]["include_usage"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_client_gets_thinking_from_an_openai_reasoning_model() {
    let (_mock, gw) = mock_and_gateway().await;
    let body = json!({"model": "o4-mini", "max_tokens": 4000, "thinking": {"type": "enabled", "budget_tokens": 2048},
                      "messages": [{"role": "user", "content": "think"}]})
    .to_string();
    let r = post(&format!("{}/v1/messages", gw.url), ANTHROPIC_HEADERS, &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["type"], "message");
    assert_eq!(v["content"][0]["type"], "thinking");
    assert_eq!(v["content"][1]["type"], "text");
}

// ------------------------------------------------------------------------------------------------
// Other adapters: xAI, OpenRouter, config-declared OpenAI-compatible endpoints
// ------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xai_openrouter_and_declared_providers_are_reached_with_their_own_keys() {
    let mock = ekai_mock_provider::spawn(MockConfig::default())
        .await
        .unwrap();
    let base = format!("{}/v1", mock.base_url());
    let dir = scratch_dir();
    let cfg = dir.join("gw.toml");
    std::fs::write(
        &cfg,
        format!("[providers.local]\nbase_url = \"{base}\"\nmodels = [\"llama-mock\"]\n"),
    )
    .unwrap();
    let gw = Gateway::start(&[
        ("XAI_API_KEY", "xai-key"),
        ("EKAI_XAI_BASE_URL", &base),
        ("OPENROUTER_API_KEY", "or-key"),
        ("EKAI_OPENROUTER_BASE_URL", &base),
        ("LOCAL_API_KEY", "local-key"),
        ("EKAI_CONFIG", cfg.to_str().unwrap()),
    ]);
    let url = format!("{}/v1/chat/completions", gw.url);

    let r = post(&url, &[], &chat("grok-4", false)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-ekai-provider"), "xai");
    assert_eq!(
        mock.requests()[0].header("authorization"),
        Some("Bearer xai-key")
    );

    // A vendor/model id goes to OpenRouter unchanged; so does a family with no direct key.
    let r = post(&url, &[], &chat("anthropic/claude-sonnet-4.5", false)).await;
    assert_eq!(r.header("x-ekai-provider"), "openrouter");
    let seen = &mock.requests()[1];
    assert_eq!(seen.body["model"], "anthropic/claude-sonnet-4.5");
    assert_eq!(seen.header("authorization"), Some("Bearer or-key"));
    let r = post(&url, &[], &chat("claude-sonnet-4-5", false)).await;
    assert_eq!(r.header("x-ekai-provider"), "openrouter");
    // The catalog knows OpenRouter's own id for the model.
    assert_eq!(
        mock.requests()[2].body["model"],
        "anthropic/claude-sonnet-4.5"
    );

    // A declared endpoint, by listed model and by `name/model`; an Anthropic client is translated.
    let r = post(&url, &[], &chat("llama-mock", false)).await;
    assert_eq!(r.header("x-ekai-provider"), "local");
    assert_eq!(
        mock.requests()[3].header("authorization"),
        Some("Bearer local-key")
    );
    let r = post(
        &format!("{}/v1/messages", gw.url),
        ANTHROPIC_HEADERS,
        &msgs("local/other-model", false),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json()["content"][0]["text"],
        "Hello from mock-openai: hi there"
    );
    assert_eq!(mock.requests()[4].body["model"], "other-model");
    assert_eq!(mock.hits("anthropic"), 0);
}

// ------------------------------------------------------------------------------------------------
// Error matrix: client input
// ------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_400_in_the_clients_dialect_naming_the_field() {
    let (mock, gw) = mock_and_gateway().await;
    let oa = format!("{}/v1/chat/completions", gw.url);
    let an = format!("{}/v1/messages", gw.url);

    let r = post(&oa, &[], "{not json").await;
    openai_error(&r, 400, "invalid_request_error");
    let r = post(&an, ANTHROPIC_HEADERS, "{not json").await;
    anthropic_error(&r, 400, "invalid_request_error");

    let r = post(&oa, &[], r#"{"model":"gpt-4o","messages":"hello"}"#).await;
    let m = openai_error(&r, 400, "invalid_request_error");
    assert!(
        m.contains("messages") || r.json()["error"]["param"] == "messages",
        "{m}"
    );

    let r = post(&oa, &[], r#"{"messages":[{"role":"user","content":"x"}]}"#).await;
    let m = openai_error(&r, 400, "invalid_request_error");
    assert!(m.contains("model"), "{m}");

    let r = post(
        &an,
        ANTHROPIC_HEADERS,
        r#"{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}"#,
    )
    .await;
    let m = anthropic_error(&r, 400, "invalid_request_error");
    assert!(m.contains("max_tokens"), "{m}");

    let r = post(
        &an,
        ANTHROPIC_HEADERS,
        r#"{"model":7,"max_tokens":1,"messages":[]}"#,
    )
    .await;
    anthropic_error(&r, 400, "invalid_request_error");

    assert_eq!(
        mock.hits("openai") + mock.hits("anthropic"),
        0,
        "nothing bad reaches upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_model_is_404_and_says_how_to_list_models() {
    let (_mock, gw) = mock_and_gateway().await;
    let r = post(
        &format!("{}/v1/chat/completions", gw.url),
        &[],
        &chat("nonexistent-model-x", false),
    )
    .await;
    let m = openai_error(&r, 404, "invalid_request_error");
    assert!(m.contains("/v1/models"), "{m}");
    assert_eq!(r.json()["error"]["code"], "model_not_found");
    let r = post(
        &format!("{}/v1/messages", gw.url),
        ANTHROPIC_HEADERS,
        &msgs("nonexistent-model-x", false),
    )
    .await;
    let m = anthropic_error(&r, 404, "not_found_error");
    assert!(m.contains("/v1/models"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_whose_provider_has_no_key_names_the_variable() {
    let gw = Gateway::start(&[("OPENAI_API_KEY", "sk-x")]);
    let r = post(
        &format!("{}/v1/chat/completions", gw.url),
        &[],
        &chat("claude-sonnet-4-5", false),
    )
    .await;
    let m = openai_error(&r, 400, "invalid_request_error");
    assert!(m.contains("ANTHROPIC_API_KEY"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_body_is_413() {
    let mock = ekai_mock_provider::spawn(MockConfig::default())
        .await
        .unwrap();
    let dir = scratch_dir();
    let cfg = dir.join("gw.toml");
    std::fs::write(&cfg, "[server]\nbody_limit_mb = 1\n").unwrap();
    let openai = format!("{}/v1", mock.base_url());
    let gw = Gateway::start(&[
        ("OPENAI_API_KEY", OPENAI_KEY),
        ("EKAI_OPENAI_BASE_URL", &openai),
        ("EKAI_CONFIG", cfg.to_str().unwrap()),
    ]);
    let big = "x".repeat(1_200_000);
    let body =
        json!({"model": "gpt-4o", "messages": [{"role": "user", "content": big}]}).to_string();
    let r = post(&format!("{}/v1/chat/completions", gw.url), &[], &body).await;
    openai_error(&r, 413, "invalid_request_error");
    let r = post(&format!("{}/v1/messages", gw.url), ANTHROPIC_HEADERS, &body).await;
    anthropic_error(&r, 413, "request_too_large");
    assert_eq!(mock.hits("openai"), 0);
    // A body under the limit still works.
    let r = post(
        &format!("{}/v1/chat/completions", gw.url),
        &[],
        &chat("gpt-4o", false),
    )
    .await;
    assert_eq!(r.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_pointed_at_the_gateway_itself_gets_508_not_a_hang() {
    // Reserve a port, then point the OpenAI provider at the gateway's own address.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let self_url = format!("http://127.0.0.1:{port}/v1");
    let gw = Gateway::start(&[
        ("OPENAI_API_KEY", "sk-x"),
        ("EKAI_OPENAI_BASE_URL", &self_url),
        ("PORT", &port.to_string()),
    ]);
    let r = post(
        &format!("{}/v1/chat/completions", gw.url),
        &[],
        &chat("gpt-4o", false),
    )
    .await;
    // The inner hop is refused with 508; the outer hop relays that status and message.
    assert_eq!(r.status, 508, "{}", r.text);
    let m = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(m.contains("loop detected"), "{m}");
}

// ------------------------------------------------------------------------------------------------
// Error matrix: upstream failures
// ------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_rate_limit_is_relayed_with_retry_after_in_each_dialect() {
    let (mock, gw) = mock_and_gateway().await;
    // Same dialect: the upstream's 429 and Retry-After are relayed.
    let r = post(
        &format!("{}/v1/chat/completions", gw.url),
        &[],
        &chat("gpt-4o@status=429,retry-after=7", false),
    )
    .await;
    openai_error(&r, 429, "rate_limit_error");
    assert_eq!(r.header("retry-after"), "7");
    assert_eq!(mock.hits("openai"), 1);
    // Retry-After is honoured: while it runs, OpenAI is not asked again, and an Anthropic client
    // gets an Anthropic-shaped 429 saying when to come back.
    let r = post(
        &format!("{}/v1/messages", gw.url),
        ANTHROPIC_HEADERS,
        &msgs("gpt-4o", false),
    )
    .await;
    anthropic_error(&r, 429, "rate_limit_error");
    let wait: u64 = r.header("retry-after").parse().unwrap();
    assert!((1..=7).contains(&wait), "{wait}");
    assert_eq!(r.header("x-ekai-attempts"), "0");
    assert_eq!(mock.hits("openai"), 1, "held provider not called");
    // An OpenAI client sees Anthropic's overload with its status.
    let r = post(
        &format!("{}/v1/chat/completions", gw.url),
        &[],
        &chat("claude-sonnet-4-5@status=529", false),
    )
    .await;
    assert_eq!(r.status, 529, "{}", r.text);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("anthropic")
    );
    // Cross dialect: Anthropic's 429 reaches an OpenAI client in OpenAI's shape.
    let r = post(
        &format!("{}/v1/chat/completions", gw.url),
        &[],
        &chat("claude-sonnet-4-5@status=429,retry-after=3", false),
    )
    .await;
    openai_error(&r, 429, "rate_limit_error");
    assert_eq!(r.header("retry-after"), "3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_server_error_and_bad_request_keep_their_status() {
    let (_mock, gw) = mock_and_gateway().await;
    let r = post(
        &format!("{}/v1/messages", gw.url),
        ANTHROPIC_HEADERS,
        &msgs("claude-sonnet-4-5@status=500", false),
    )
    .await;
    anthropic_error(&r, 500, "api_error");
    let r = post(
        &format!("{}/v1/messages", gw.url),
        ANTHROPIC_HEADERS,
        &msgs("claude-sonnet-4-5@status=400", false),
    )
    .await;
    anthropic_error(&r, 400, "invalid_request_error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_auth_failure_never_shows_the_key() {
    let mock = ekai_mock_provider::spawn(MockConfig {
        expected_key: Some("the-real-key".into()),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let gw = gateway_for(&mock, &[]);
    let r = post(
        &format!("{}/v1/chat/completions", gw.url),
        &[],
        &chat("gpt-4o", false),
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert!(!r.text.contains(OPENAI_KEY));
    let log = gw.wait_log("status=401").await;
    assert!(
        !log.contains(OPENAI_KEY) && !log.contains(ANTHROPIC_KEY),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_upstream_is_504_and_unreachable_upstream_is_502() {
    let mock = ekai_mock_provider::spawn(MockConfig::default())
        .await
        .unwrap();
    let dir = scratch_dir();
    let cfg = dir.join("gw.toml");
    std::fs::write(&cfg, "[timeouts]\nfirst_byte_ms = 200\n").unwrap();
    let openai = format!("{}/v1", mock.base_url());
    let gw = Gateway::start(&[
        ("OPENAI_API_KEY", OPENAI_KEY),
        ("EKAI_OPENAI_BASE_URL", &openai),
        ("ANTHROPIC_API_KEY", ANTHROPIC_KEY),
        // Nothing listens on port 9 of loopback.
        ("EKAI_ANTHROPIC_BASE_URL", "http://127.0.0.1:9"),
        ("EKAI_CONFIG", cfg.to_str().unwrap()),
    ]);
    let r = post(
        &format!("{}/v1/chat/completions", gw.url),
        &[],
        &chat("gpt-4o@delay=2000", false),
    )
    .await;
    openai_error(&r, 504, "timeout_error");
    let r = post(
        &format!("{}/v1/messages", gw.url),
        ANTHROPIC_HEADERS,
        &msgs("claude-sonnet-4-5", false),
    )
    .await;
    let m = anthropic_error(&r, 502, "api_error");
    assert!(m.contains("anthropic"), "{m}");
    assert!(!m.contains(ANTHROPIC_KEY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_cut_mid_way_ends_with_an_error_event_in_the_clients_dialect() {
    let (_mock, gw) = mock_and_gateway().await;
    // Anthropic client, Anthropic upstream (passthrough).
    let r = post(
        &format!("{}/v1/messages", gw.url),
        ANTHROPIC_HEADERS,
        &msgs("claude-sonnet-4-5@cut=3", true),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.sse_events().last().map(String::as_str), Some("error"));
    assert!(!r.sse_events().contains(&"message_stop".to_string()));
    // OpenAI client, Anthropic upstream (translated).
    let r = post(
        &format!("{}/v1/chat/completions", gw.url),
        &[],
        &chat("claude-sonnet-4-5@cut=3", true),
    )
    .await;
    let last: Value = serde_json::from_str(r.sse_data().last().unwrap()).unwrap();
    assert!(last.get("error").is_some(), "{}", r.text);
    assert!(!r.text.contains("[DONE]"));
    // OpenAI client, OpenAI upstream (passthrough).
    let r = post(
        &format!("{}/v1/chat/completions", gw.url),
        &[],
        &chat("gpt-4o@cut=3", true),
    )
    .await;
    let last: Value = serde_json::from_str(r.sse_data().last().unwrap()).unwrap();
    assert!(last.get("error").is_some(), "{}", r.text);
    let log = gw.wait_log("closed the stream early").await;
    assert!(log.contains("status=502"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_upstream_chunk_in_translation_becomes_an_error_event() {
    let (_mock, gw) = mock_and_gateway().await;
    let r = post(
        &format!("{}/v1/messages", gw.url),
        ANTHROPIC_HEADERS,
        &msgs("gpt-4o@malformed", true),
    )
    .await;
    assert_eq!(
        r.sse_events().last().map(String::as_str),
        Some("error"),
        "{}",
        r.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_streams_get_keepalives_and_disconnects_are_accounted() {
    let mock = ekai_mock_provider::spawn(MockConfig::default())
        .await
        .unwrap();
    let dir = scratch_dir();
    let cfg = dir.join("gw.toml");
    std::fs::write(&cfg, "[timeouts]\nkeepalive_ms = 40\n").unwrap();
    let gw = gateway_for(&mock, &[("EKAI_CONFIG", cfg.to_str().unwrap())]);
    let r = post(
        &format!("{}/v1/messages", gw.url),
        ANTHROPIC_HEADERS,
        &msgs("claude-sonnet-4-5@chunk-delay=150", true),
    )
    .await;
    assert!(
        r.sse_events().iter().filter(|e| *e == "ping").count() >= 2,
        "{}",
        r.text
    );
    let r = post(
        &format!("{}/v1/chat/completions", gw.url),
        &[],
        &chat("gpt-4o@chunk-delay=150", true),
    )
    .await;
    assert!(r.text.contains(": keep-alive"), "{}", r.text);

    // A client that hangs up mid-stream: the record is still written, marked disconnected.
    let resp = client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .header("content-type", "application/json")
        .body(chat("gpt-4o@chunk-delay=200,long=40", true))
        .send()
        .await
        .unwrap();
    let mut resp = resp;
    let first = resp.chunk().await.unwrap();
    assert!(first.is_some());
    drop(resp);
    let log = gw.wait_log("client_disconnected=true").await;
    assert!(
        log.contains("model=gpt-4o@chunk-delay=200,long=40"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_goes_silent_mid_stream_gets_an_idle_timeout() {
    let mock = ekai_mock_provider::spawn(MockConfig::default())
        .await
        .unwrap();
    let dir = scratch_dir();
    let cfg = dir.join("gw.toml");
    std::fs::write(&cfg, "[timeouts]\nkeepalive_ms = 40\nidle_ms = 250\n").unwrap();
    let gw = gateway_for(&mock, &[("EKAI_CONFIG", cfg.to_str().unwrap())]);
    let started = std::time::Instant::now();
    let r = post(
        &format!("{}/v1/chat/completions", gw.url),
        &[],
        &chat("gpt-4o@chunk-delay=5000", true),
    )
    .await;
    // Keep-alives while it is quiet, then an error event instead of waiting for the next event.
    assert!(r.text.contains(": keep-alive"), "{}", r.text);
    assert!(r.text.contains("stopped sending data"), "{}", r.text);
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
    let log = gw.wait_log("stopped sending data").await;
    assert!(log.contains("model=gpt-4o@chunk-delay=5000"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_events_reach_the_client_as_the_provider_sends_them() {
    // The relay gathers what the provider sent in one burst into one write, but never holds an
    // event back waiting for the next one.
    let (_mock, gw) = mock_and_gateway().await;
    for (path, headers, body) in [
        (
            "/v1/chat/completions",
            &[][..],
            chat("gpt-4o@chunk-delay=150,long=4", true),
        ),
        (
            "/v1/messages",
            ANTHROPIC_HEADERS,
            msgs("gpt-4o@chunk-delay=150,long=4", true),
        ),
    ] {
        let mut req = client()
            .post(format!("{}{path}", gw.url))
            .header("content-type", "application/json")
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let mut resp = req.send().await.unwrap();
        let started = std::time::Instant::now();
        let mut arrivals = Vec::new();
        let mut text = String::new();
        while let Some(chunk) = resp.chunk().await.unwrap() {
            let s = String::from_utf8_lossy(&chunk).to_string();
            if s.contains("word") {
                arrivals.push(started.elapsed());
            }
            text.push_str(&s);
        }
        for w in ["word1", "word2", "word3", "word4"] {
            assert!(text.contains(w), "{path}: {text}");
        }
        // Four words 150 ms apart arrive as four separate writes spread over ~450 ms.
        assert!(arrivals.len() >= 4, "{path}: {arrivals:?}");
        let spread = arrivals[arrivals.len() - 1] - arrivals[0];
        assert!(
            spread >= std::time::Duration::from_millis(300),
            "{path}: {arrivals:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_gives_up_on_a_slow_json_request_is_still_accounted() {
    let (mock, gw) = mock_and_gateway().await;
    let res = client()
        .post(format!("{}/v1/messages", gw.url))
        .header("content-type", "application/json")
        .timeout(std::time::Duration::from_millis(300))
        .body(msgs("claude-sonnet-4-5@delay=1500", false))
        .send()
        .await;
    assert!(res.is_err(), "the client timed out");
    let log = gw.wait_log("client_disconnected=true").await;
    assert!(log.contains("model=claude-sonnet-4-5@delay=1500"), "{log}");
    assert_eq!(mock.hits("anthropic"), 1);
}

// ------------------------------------------------------------------------------------------------
// Other endpoints
// ------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_tokens_asks_anthropic_or_estimates() {
    let (mock, gw) = mock_and_gateway().await;
    let body = json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "count these words please"}]})
        .to_string();
    let r = post(
        &format!("{}/v1/messages/count_tokens", gw.url),
        ANTHROPIC_HEADERS,
        &body,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json()["input_tokens"].as_u64().unwrap() > 0);
    assert_eq!(mock.hits("count_tokens"), 1);
    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "count these words please"}]})
        .to_string();
    let r = post(
        &format!("{}/v1/messages/count_tokens", gw.url),
        ANTHROPIC_HEADERS,
        &body,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // o200k_base: 4 tokens of text, 3 for the message, 3 to prime the reply.
    assert_eq!(r.json()["input_tokens"], 10, "{}", r.text);
    assert_eq!(r.header("x-ekai-token-count"), "tiktoken/o200k_base");
    assert_eq!(mock.hits("count_tokens"), 1, "counted locally");
    // No public tokenizer (a Gemini model, asked on the Messages API): the documented estimate.
    let body = json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "count these words please"}]})
        .to_string();
    let r = post(
        &format!("{}/v1/messages/count_tokens", gw.url),
        ANTHROPIC_HEADERS,
        &body,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-ekai-token-count"), "estimated");
    // Claude Code sends bursts of ~14 at once.
    let big = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "lorem ipsum ".repeat(5_000)}]})
        .to_string();
    let url = format!("{}/v1/messages/count_tokens", gw.url);
    let burst: Vec<_> = (0..14)
        .map(|_| {
            let (u, b) = (url.clone(), big.clone());
            tokio::spawn(async move { post(&u, ANTHROPIC_HEADERS, &b).await })
        })
        .collect();
    let mut counts = std::collections::BTreeSet::new();
    for t in burst {
        let r = t.await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text);
        counts.insert(r.json()["input_tokens"].as_u64().unwrap());
    }
    assert_eq!(counts.len(), 1, "the same body counts the same: {counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_health_and_root() {
    let (_mock, gw) = mock_and_gateway().await;
    let r = get(&format!("{}/v1/models", gw.url), &[]).await;
    let v = r.json();
    assert_eq!(v["object"], "list");
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"gpt-4o") && ids.contains(&"claude-sonnet-4-5"),
        "{ids:?}"
    );
    assert!(
        !ids.iter().any(|i| i.starts_with("grok")),
        "xAI has no key: {ids:?}"
    );

    let r = get(&format!("{}/v1/models", gw.url), ANTHROPIC_HEADERS).await;
    let v = r.json();
    assert_eq!(v["has_more"], false);
    assert_eq!(v["data"][0]["type"], "model");

    let r = get(&format!("{}/health", gw.url), &[]).await;
    let v = r.json();
    assert_eq!(v["status"], "ok");
    let names: Vec<&str> = v["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["openai", "anthropic", "gemini"]);
    assert_eq!(v["providers"][0]["circuit"], "closed");
    assert!(v["version"].is_string());

    assert_eq!(get(&format!("{}/", gw.url), &[]).await.status, 200);
    let head = client().head(format!("{}/", gw.url)).send().await.unwrap();
    assert_eq!(head.status().as_u16(), 200);

    let r = get(&format!("{}/v1/nope", gw.url), &[]).await;
    openai_error(&r, 404, "invalid_request_error");
    assert_eq!(r.header("x-content-type-options"), "nosniff", "errors too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_config_starts_and_says_how_to_add_a_provider() {
    let gw = Gateway::start(&[]);
    let log = gw.log();
    assert!(log.contains("no provider is configured"), "{log}");
    assert!(
        log.contains("OPENAI_API_KEY") && log.contains("ANTHROPIC_API_KEY"),
        "{log}"
    );
    let r = get(&format!("{}/health", gw.url), &[]).await;
    assert_eq!(r.json()["providers"], json!([]));
}

#[test]
fn check_validates_config_and_rejects_unknown_keys_by_path() {
    let dir = scratch_dir();
    let good = dir.join("good.toml");
    std::fs::write(
        &good,
        "[providers.together]\nbase_url = \"https://api.together.xyz/v1\"\nmodels = [\"llama\"]\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ekai-gateway"))
        .env_clear()
        .env("OPENAI_API_KEY", "sk-secret-check")
        .args(["--config", good.to_str().unwrap(), "check"])
        .current_dir(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("together") && stdout.contains("key set (OPENAI_API_KEY)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("not configured: set ANTHROPIC_API_KEY"),
        "{stdout}"
    );
    assert!(!stdout.contains("sk-secret-check"));

    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[providers.together]\nbase_ur = \"x\"\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ekai-gateway"))
        .env_clear()
        .args(["--config", bad.to_str().unwrap(), "check"])
        .current_dir(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("providers.together") && stderr.contains("base_ur"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_api_refuses_websockets_and_foreign_previous_response_ids() {
    let (mock, gw) = mock_and_gateway().await;
    let r = get(&format!("{}/v1/responses", gw.url), &[]).await;
    assert_eq!(r.status, 404);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("POST")
    );
    let body =
        json!({"model": "claude-sonnet-4-5", "input": "again", "previous_response_id": "resp_123"})
            .to_string();
    let r = post(&format!("{}/v1/responses", gw.url), &[], &body).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.json()["error"]["param"], "previous_response_id");
    assert_eq!(mock.hits("anthropic"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_tokens_is_clamped_to_the_target_models_limit_when_translating() {
    let (mock, gw) = mock_and_gateway().await;
    // Claude Code asks for up to 128k output tokens; gpt-4o allows 16,384.
    let body = json!({"model": "gpt-4o", "max_tokens": 128000,
                      "messages": [{"role": "user", "content": "hi there"}]})
    .to_string();
    let r = post(&format!("{}/v1/messages", gw.url), ANTHROPIC_HEADERS, &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(mock.requests()[0].body["max_completion_tokens"], 16384);
}

// ------------------------------------------------------------------------------------------------
// The Responses and Gemini APIs as upstreams
// ------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_requests_to_openai_are_relayed_to_its_responses_api() {
    let (mock, gw) = mock_and_gateway().await;
    let body = json!({"model": "gpt-4o-mini", "input": "hi there", "store": false,
                      "x_unknown": {"kept": true}})
    .to_string();
    let r = post(&format!("{}/v1/responses", gw.url), &[], &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["object"], "response");
    assert!(
        r.text.contains("Hello from mock-responses: hi there"),
        "{}",
        r.text
    );
    assert_eq!(mock.hits("responses"), 1);
    assert_eq!(mock.hits("openai"), 0, "not through Chat");
    let seen = &mock.requests()[0];
    assert_eq!(seen.body["x_unknown"], json!({"kept": true}), "passthrough");
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {OPENAI_KEY}").as_str())
    );
    let body = json!({"model": "gpt-4o-mini", "input": "hi there", "stream": true}).to_string();
    let r = post(&format!("{}/v1/responses", gw.url), &[], &body).await;
    let events = r.sse_events();
    assert_eq!(events.first().map(String::as_str), Some("response.created"));
    assert_eq!(
        events.last().map(String::as_str),
        Some("response.completed")
    );
    let log = gw.wait_log("dialect=\"openai_responses\"").await;
    assert!(
        log.contains("streamed=true") && log.contains("usage_estimated=false"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_and_messages_clients_reach_gemini_models_natively() {
    let (mock, gw) = mock_and_gateway().await;
    let r = post(
        &format!("{}/v1/chat/completions", gw.url),
        &[],
        &chat("gemini-2.5-flash", false),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "Hello from mock-gemini: hi there"
    );
    assert_eq!(r.header("x-ekai-provider"), "gemini");
    let seen = &mock.requests()[0];
    assert_eq!(seen.route, "gemini");
    assert!(
        seen.path.ends_with("/gemini-2.5-flash:generateContent"),
        "{}",
        seen.path
    );
    assert_eq!(seen.header("x-goog-api-key"), Some(GOOGLE_KEY));
    // Streaming from an Anthropic client: Gemini's stream has no end marker, yet the client
    // gets a complete Anthropic stream.
    let r = post(
        &format!("{}/v1/messages", gw.url),
        ANTHROPIC_HEADERS,
        &msgs("gemini-2.5-flash", true),
    )
    .await;
    let events = r.sse_events();
    assert_eq!(
        events.last().map(String::as_str),
        Some("message_stop"),
        "{}",
        r.text
    );
    assert!(
        mock.requests()[1]
            .query
            .as_deref()
            .unwrap_or("")
            .contains("alt=sse")
    );
    let text: String = r
        .sse_data()
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| v["delta"]["text"].as_str().map(str::to_string))
        .collect();
    assert_eq!(text, "Hello from mock-gemini: hi there");
    let log = gw.wait_log("streamed=true").await;
    assert!(
        log.contains("provider=gemini") && log.contains("input_tokens=12"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_clients_reach_gemini_by_passthrough() {
    let (mock, gw) = mock_and_gateway().await;
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "hi there"}]}],
                      "safetySettings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_NONE"}]})
    .to_string();
    let r = post(
        &format!(
            "{}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
            gw.url
        ),
        &[("x-goog-api-key", "client-key")],
        &body,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("mock-gemini"), "{}", r.text);
    let seen = &mock.requests()[0];
    assert_eq!(
        seen.body["safetySettings"][0]["threshold"], "BLOCK_NONE",
        "relayed untouched"
    );
    assert_eq!(
        seen.header("x-goog-api-key"),
        Some(GOOGLE_KEY),
        "the gateway's key, not the client's"
    );
    let log = gw.wait_log("dialect=\"gemini\"").await;
    assert!(log.contains("output_tokens=5"), "{log}");
}
