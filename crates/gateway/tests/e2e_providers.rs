//! End-to-end: Azure OpenAI, the OpenAI-compatible presets and embeddings, through the real binary
//! against the in-repo mock (which serves Azure's deployment paths with `api-key`, OpenAI's
//! `/v1/embeddings` and Gemini's `batchEmbedContents`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

mod common;

use common::{GOOGLE_KEY, Gateway, MockConfig, MockHandle, OPENAI_KEY, get, post, scratch_dir};
use ekai_mock_provider::embeddings::vector;
use serde_json::{Value, json};
use std::time::Duration;

const AZURE_KEY: &str = "azure-test-key-0123456789";
const MISTRAL_KEY: &str = "mistral-test-key-0123";
const GROQ_KEY: &str = "groq-test-key-0123";

async fn keyless_mock() -> MockHandle {
    ekai_mock_provider::spawn(MockConfig::default())
        .await
        .unwrap()
}

async fn mock_with_key(key: &str) -> MockHandle {
    ekai_mock_provider::spawn(MockConfig {
        expected_key: Some(key.into()),
        ..MockConfig::default()
    })
    .await
    .unwrap()
}

/// A gateway with ONLY Azure configured (deployment `prod-mini` serves gpt-4o-mini,
/// `emb-small` serves text-embedding-3-small).
fn azure_gateway(mock: &MockHandle, extra: &[(&str, &str)]) -> Gateway {
    let dir = scratch_dir();
    let cfg = dir.join("gateway.toml");
    std::fs::write(
        &cfg,
        r#"
[providers.azure]
deployments = { "gpt-4o-mini" = "prod-mini", "text-embedding-3-small" = "emb-small" }
"#,
    )
    .unwrap();
    let cfg = cfg.display().to_string();
    let base = mock.base_url();
    let mut env = vec![
        ("AZURE_OPENAI_API_KEY", AZURE_KEY),
        ("AZURE_OPENAI_ENDPOINT", base.as_str()),
        ("EKAI_CONFIG", cfg.as_str()),
    ];
    env.extend_from_slice(extra);
    Gateway::start(&env)
}

async fn usage_records(gw: &Gateway, n: usize) -> Vec<Value> {
    for _ in 0..100 {
        let r = get(&format!("{}/usage", gw.url), &[]).await;
        let v = r.json();
        if let Some(recs) = v["records"].as_array().filter(|r| r.len() >= n) {
            return recs.clone();
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    panic!("/usage never reached {n} records:\n{}", gw.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_deployments_api_key_and_api_version() {
    let mock = mock_with_key(AZURE_KEY).await;
    let gw = azure_gateway(&mock, &[]);
    let chat = json!({"model": "gpt-4o-mini", "max_tokens": 20,
        "messages": [{"role": "user", "content": "hello azure"}]});
    let r = post(
        &format!("{}/v1/chat/completions", gw.url),
        &[],
        &chat.to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}\n{}", r.text, gw.log());
    assert_eq!(r.header("x-ekai-provider"), "azure");
    assert_eq!(r.json()["object"], "chat.completion");
    let reqs = mock.requests();
    let last = reqs.last().unwrap();
    assert_eq!(last.route, "azure");
    assert_eq!(last.path, "/openai/deployments/prod-mini/chat/completions");
    assert_eq!(last.query.as_deref(), Some("api-version=2024-10-21"));
    assert_eq!(last.header("api-key"), Some(AZURE_KEY));
    assert!(last.header("authorization").is_none(), "no bearer to Azure");

    // Streaming, and an Anthropic client translated to Azure's OpenAI dialect (max_tokens becomes
    // max_completion_tokens, as for OpenAI itself).
    let stream = json!({"model": "gpt-4o-mini", "stream": true,
        "messages": [{"role": "user", "content": "stream please"}]});
    let r = post(
        &format!("{}/v1/chat/completions", gw.url),
        &[],
        &stream.to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.sse_data().last().map(String::as_str), Some("[DONE]"));
    let msg = json!({"model": "gpt-4o-mini", "max_tokens": 30,
        "messages": [{"role": "user", "content": "from anthropic"}]});
    let r = post(&format!("{}/v1/messages", gw.url), &[], &msg.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["type"], "message");
    let body = mock.requests().last().unwrap().body.clone();
    assert_eq!(body["max_completion_tokens"], 30, "{body}");
    assert_eq!(mock.hits("azure"), 3);
    assert_eq!(mock.hits_for_model("prod-mini"), 3);

    // A model with no deployment is not offered to this Azure resource.
    let other = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]});
    let r = post(
        &format!("{}/v1/chat/completions", gw.url),
        &[],
        &other.to_string(),
    )
    .await;
    assert_ne!(r.status, 200, "{}", r.text);
    assert_eq!(mock.hits("azure"), 3);

    // Azure-style ingress: an AzureOpenAI client pointed at the gateway (deployment = model).
    let r = post(
        &format!(
            "{}/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21",
            gw.url
        ),
        &[("api-key", "anything")],
        &json!({"messages": [{"role": "user", "content": "ingress"}]}).to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-ekai-model"), "gpt-4o-mini");
    assert_eq!(mock.hits("azure"), 4);

    // A wrong key: Azure's 401 comes back as an OpenAI-shaped error naming the provider.
    let gw_bad = azure_gateway(&mock, &[("AZURE_OPENAI_API_KEY", "bad-key-XYZ987")]);
    let r = post(
        &format!("{}/v1/chat/completions", gw_bad.url),
        &[],
        &chat.to_string(),
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("azure"),
        "{}",
        r.text
    );
    assert!(
        !r.text.contains("XYZ987"),
        "the key never appears in errors"
    );
    mock.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presets_apply_their_quirks_to_passthrough_and_translated_bodies() {
    let mock = keyless_mock().await;
    let v1 = format!("{}/v1", mock.base_url());
    let base = mock.base_url();
    let gw = Gateway::start(&[
        ("MISTRAL_API_KEY", MISTRAL_KEY),
        ("EKAI_MISTRAL_BASE_URL", &v1),
        ("GROQ_API_KEY", GROQ_KEY),
        ("EKAI_GROQ_BASE_URL", &v1),
        // The original gateway's variable: the server root, no /v1.
        ("OLLAMA_BASE_URL", &base),
    ]);
    let url = format!("{}/v1/chat/completions", gw.url);

    // Mistral, OpenAI client (passthrough): max_completion_tokens → max_tokens, tool-call ids →
    // 9 alphanumerics, the same on the call and on its result.
    let body = json!({
        "model": "mistral-large-latest",
        "max_completion_tokens": 40,
        "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_Abc_123456789xyz", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_Abc_123456789xyz", "content": "18C"}
        ]
    });
    let r = post(&url, &[], &body.to_string()).await;
    assert_eq!(r.status, 200, "{}\n{}", r.text, gw.log());
    assert_eq!(r.header("x-ekai-provider"), "mistral");
    let sent = mock.requests().last().unwrap().clone();
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {MISTRAL_KEY}").as_str())
    );
    assert_eq!(sent.body["max_tokens"], 40, "{}", sent.body);
    assert!(sent.body.get("max_completion_tokens").is_none());
    let id = sent.body["messages"][1]["tool_calls"][0]["id"]
        .as_str()
        .unwrap();
    assert_eq!(id.len(), 9);
    assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
    assert_eq!(sent.body["messages"][2]["tool_call_id"], json!(id));

    // Mistral, Anthropic client (translated): Anthropic's toolu_ ids fixed the same way.
    let msg = json!({"model": "mistral-large-latest", "max_tokens": 50, "messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_01XYZ", "name": "get_weather", "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01XYZ", "content": "18C"}]}
    ], "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}]});
    let r = post(&format!("{}/v1/messages", gw.url), &[], &msg.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sent = mock.requests().last().unwrap().body.clone();
    let calls: Vec<&Value> = sent["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m.get("tool_calls"))
        .collect();
    let id = calls[0][0]["id"].as_str().unwrap();
    assert!(
        id.len() == 9 && id.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{sent}"
    );
    assert!(
        sent.to_string()
            .contains(&format!("\"tool_call_id\":\"{id}\"")),
        "{sent}"
    );

    // Groq: fields it answers with a 400 are dropped.
    let body = json!({"model": "llama-3.3-70b-versatile", "logprobs": true, "top_logprobs": 2, "n": 1,
        "messages": [{"role": "user", "name": "ann", "content": "hi"}]});
    let r = post(&url, &[], &body.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-ekai-provider"), "groq");
    let sent = mock.requests().last().unwrap().body.clone();
    for f in ["logprobs", "top_logprobs", "n"] {
        assert!(sent.get(f).is_none(), "{f} still sent: {sent}");
    }
    assert!(sent["messages"][0].get("name").is_none(), "{sent}");

    // Ollama: keyless, reached by its provider prefix, no Authorization header.
    let body = json!({"model": "ollama/llama3.2", "stream": true,
        "messages": [{"role": "user", "content": "local"}]});
    let r = post(&url, &[], &body.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-ekai-provider"), "ollama");
    let sent = mock.requests().last().unwrap().clone();
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.body["model"], "llama3.2");
    assert!(sent.header("authorization").is_none());

    // Embeddings through the presets: Mistral names the length `output_dimension` and has no
    // `user`; Ollama (pinned, no catalog entry) takes OpenAI's body as it is.
    let emb = format!("{}/v1/embeddings", gw.url);
    let r = post(
        &emb,
        &[],
        &json!({"model": "mistral-embed", "input": ["a b"], "dimensions": 4, "user": "u1"})
            .to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-ekai-provider"), "mistral");
    let sent = mock.requests().last().unwrap().body.clone();
    assert_eq!(sent["output_dimension"], 4, "{sent}");
    assert!(
        sent.get("dimensions").is_none() && sent.get("user").is_none(),
        "{sent}"
    );
    let r = post(
        &emb,
        &[],
        &json!({"model": "ollama/nomic-embed-text", "input": "a b", "dimensions": 4}).to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["data"][0]["embedding"], json!(vector("a b", 4)));
    // Groq has no embeddings API: a clear 400, nothing sent.
    let before = mock.requests().len();
    let r = post(
        &emb,
        &[],
        &json!({"model": "groq/some-embedder", "input": "a"}).to_string(),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("no embeddings API"), "{}", r.text);
    assert_eq!(mock.requests().len(), before);
    mock.shutdown().await;
}

/// A keyless mock, and a gateway with OpenAI and Gemini pointing at it.
async fn openai_and_gemini() -> (MockHandle, Gateway) {
    let mock = keyless_mock().await;
    let openai = format!("{}/v1", mock.base_url());
    let base = mock.base_url();
    let gw = Gateway::start(&[
        ("OPENAI_API_KEY", OPENAI_KEY),
        ("EKAI_OPENAI_BASE_URL", &openai),
        ("GOOGLE_API_KEY", GOOGLE_KEY),
        ("EKAI_GEMINI_BASE_URL", &base),
    ]);
    (mock, gw)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeddings_through_openai_gemini_and_azure_are_accounted() {
    let (mock, gw) = openai_and_gemini().await;
    let url = format!("{}/v1/embeddings", gw.url);

    // OpenAI, floats.
    let r = post(
        &url,
        &[],
        &json!({"model": "text-embedding-3-small", "input": ["one two three", "four"], "dimensions": 6})
            .to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}\n{}", r.text, gw.log());
    assert_eq!(r.header("x-ekai-provider"), "openai");
    let v = r.json();
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][0]["embedding"], json!(vector("one two three", 6)));
    assert_eq!(v["data"][1]["index"], 1);
    assert_eq!(v["usage"]["prompt_tokens"], 4);
    let sent = mock.requests().last().unwrap().clone();
    assert_eq!(sent.path, "/v1/embeddings");
    assert_eq!(sent.body["encoding_format"], "float");
    assert_eq!(sent.body["dimensions"], 6);

    // OpenAI, base64 (what the SDKs ask for): little-endian f32s.
    let r = post(
        &url,
        &[],
        &json!({"model": "text-embedding-3-small", "input": "one two three", "encoding_format": "base64"})
            .to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let b64 = r.json()["data"][0]["embedding"]
        .as_str()
        .unwrap()
        .to_string();
    let expected: Vec<u8> = vector("one two three", 8)
        .iter()
        .flat_map(|f| f.to_le_bytes())
        .collect();
    assert_eq!(
        b64,
        ekai_wire::canonical::embedding::f32_base64(&vector("one two three", 8))
    );
    assert_eq!(expected.len(), 32);

    // Gemini: batchEmbedContents behind the same OpenAI-shaped API; the same text, the same vector.
    let r = post(
        &url,
        &[],
        &json!({"model": "gemini-embedding-001", "input": ["one two three", "four"]}).to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}\n{}", r.text, gw.log());
    assert_eq!(r.header("x-ekai-provider"), "gemini");
    let v = r.json();
    assert_eq!(v["data"][1]["embedding"], json!(vector("four", 8)));
    let sent = mock.requests().last().unwrap().clone();
    assert_eq!(
        sent.path,
        "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    );
    assert_eq!(sent.header("x-goog-api-key"), Some(GOOGLE_KEY));
    assert_eq!(
        sent.body["requests"][0]["model"],
        "models/gemini-embedding-001"
    );

    // Bad input: a 400 naming the field, in OpenAI's error shape, nothing sent upstream.
    let before = mock.requests().len();
    for (body, param) in [
        (
            json!({"model": "text-embedding-3-small", "input": []}),
            "input",
        ),
        (
            json!({"model": "text-embedding-3-small", "input": "x", "encoding_format": "int8"}),
            "encoding_format",
        ),
        (json!({"input": "x"}), "model"),
    ] {
        let r = post(&url, &[], &body.to_string()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        assert_eq!(r.json()["error"]["param"], param, "{}", r.text);
    }
    let r = post(
        &url,
        &[],
        &json!({"model": "gemini-embedding-001", "input": [1, 2, 3]}).to_string(),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("token-id"), "{}", r.text);
    let r = post(&url, &[], "{not json").await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(mock.requests().len(), before);
    let r = post(
        &url,
        &[],
        &json!({"model": "no-such-embedder", "input": "x"}).to_string(),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text);

    // Each request is a ledger row, priced from the catalog's embedding prices.
    let recs = usage_records(&gw, 3).await;
    let emb: Vec<&Value> = recs
        .iter()
        .filter(|r| {
            r["model"] == "text-embedding-3-small"
                || r["requested_model"] == "text-embedding-3-small"
        })
        .collect();
    assert_eq!(emb.len(), 2, "{recs:?}");
    // 4 input tokens at $0.02 per 1M = $0.00000008.
    assert!(
        emb.iter()
            .any(|r| r["input_tokens"] == 4 && r["total_cost"].as_f64() == Some(0.00000008)),
        "{emb:?}"
    );
    let gem: Vec<&Value> = recs.iter().filter(|r| r["provider"] == "gemini").collect();
    assert_eq!(gem.len(), 1, "{recs:?}");
    assert_eq!(gem[0]["priced"], true, "{:?}", gem[0]);
    mock.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_clients_embed_through_any_provider_in_their_own_shape() {
    let (mock, gw) = openai_and_gemini().await;
    let models = format!("{}/v1beta/models", gw.url);
    let key = [("x-goog-api-key", "client-key")];

    // :embedContent, served by OpenAI: one text, `{"embedding": {"values"}}` back.
    let r = post(
        &format!("{models}/text-embedding-3-small:embedContent"),
        &key,
        &json!({"content": {"parts": [{"text": "one two "}, {"text": "three"}]}, "outputDimensionality": 6})
            .to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}\n{}", r.text, gw.log());
    assert_eq!(r.header("x-ekai-provider"), "openai");
    assert_eq!(
        r.json(),
        json!({"embedding": {"values": vector("one two three", 6)}})
    );
    let sent = mock.requests().last().unwrap().clone();
    assert_eq!(sent.path, "/v1/embeddings");
    assert_eq!(sent.body["input"], json!(["one two three"]));
    assert_eq!(sent.body["dimensions"], 6);

    // :batchEmbedContents, served by Gemini: the task type and title reach it.
    let r = post(
        &format!("{models}/gemini-embedding-001:batchEmbedContents"),
        &key,
        &json!({"requests": [
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "one two three"}]},
             "taskType": "RETRIEVAL_DOCUMENT", "title": "Notes"},
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "four"}]},
             "taskType": "RETRIEVAL_DOCUMENT", "title": "Notes"}
        ]})
        .to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}\n{}", r.text, gw.log());
    assert_eq!(r.header("x-ekai-provider"), "gemini");
    assert_eq!(
        r.json(),
        json!({"embeddings": [{"values": vector("one two three", 8)}, {"values": vector("four", 8)}]})
    );
    let sent = mock.requests().last().unwrap().clone();
    assert_eq!(
        sent.path,
        "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    );
    assert_eq!(sent.body["requests"][1]["taskType"], "RETRIEVAL_DOCUMENT");
    assert_eq!(sent.body["requests"][1]["title"], "Notes");

    // Bad input: a 400 in Gemini's error shape naming the field; nothing sent upstream.
    let before = mock.requests().len();
    let r = post(
        &format!("{models}/gemini-embedding-001:embedContent"),
        &key,
        &json!({"content": {"parts": [{"inlineData": {"mimeType": "image/png", "data": ""}}]}})
            .to_string(),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text);
    let e = r.json();
    assert_eq!(e["error"]["status"], "INVALID_ARGUMENT", "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("content.parts[0]"),
        "{e}"
    );
    assert_eq!(mock.requests().len(), before);

    // Both are ledger rows of a Gemini client.
    let recs = usage_records(&gw, 2).await;
    assert!(
        recs.iter().all(|r| r["client_dialect"] == "gemini"),
        "{recs:?}"
    );
    mock.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeddings_via_azure_deployment_and_azure_ingress() {
    let mock = mock_with_key(AZURE_KEY).await;
    let gw = azure_gateway(&mock, &[]);
    let r = post(
        &format!("{}/v1/embeddings", gw.url),
        &[],
        &json!({"model": "text-embedding-3-small", "input": "a b c", "encoding_format": "base64"})
            .to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}\n{}", r.text, gw.log());
    assert_eq!(r.header("x-ekai-provider"), "azure");
    let sent = mock.requests().last().unwrap().clone();
    assert_eq!(sent.path, "/openai/deployments/emb-small/embeddings");
    assert_eq!(sent.header("api-key"), Some(AZURE_KEY));
    let b64 = r.json()["data"][0]["embedding"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        b64,
        ekai_wire::canonical::embedding::f32_base64(&vector("a b c", 8))
    );
    let r = post(
        &format!(
            "{}/openai/deployments/text-embedding-3-small/embeddings?api-version=2024-10-21",
            gw.url
        ),
        &[],
        &json!({"input": ["x y"]}).to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["data"][0]["embedding"], json!(vector("x y", 8)));
    assert_eq!(mock.hits("azure_embeddings"), 2);
    mock.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_embeddings_upstream_falls_back_to_the_next_provider() {
    let failing = ekai_mock_provider::spawn(MockConfig {
        default_scenario: Some("status=500".into()),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let azure = mock_with_key(AZURE_KEY).await;
    let openai = format!("{}/v1", failing.base_url());
    let gw = azure_gateway(
        &azure,
        &[
            ("OPENAI_API_KEY", OPENAI_KEY),
            ("EKAI_OPENAI_BASE_URL", &openai),
        ],
    );
    let r = post(
        &format!("{}/v1/embeddings", gw.url),
        &[("x-ekai-route", "priority")],
        &json!({"model": "text-embedding-3-small", "input": "fall back"}).to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}\n{}", r.text, gw.log());
    assert_eq!(r.header("x-ekai-attempts"), "2");
    assert_eq!(r.header("x-ekai-provider"), "azure");
    assert_eq!(failing.hits("embeddings"), 1);
    assert_eq!(azure.hits("azure_embeddings"), 1);
    let recs = usage_records(&gw, 2).await;
    assert!(
        recs.iter()
            .any(|r| r["provider"] == "openai" && r["status"] == 500),
        "{recs:?}"
    );
    assert!(
        recs.iter()
            .any(|r| r["provider"] == "azure" && r["status"] == 200),
        "{recs:?}"
    );
    failing.shutdown().await;
    azure.shutdown().await;
}
