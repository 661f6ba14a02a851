//! End-to-end tests with the OFFICIAL client SDKs (Python `openai` / `anthropic`, Node `openai` /
//! `@anthropic-ai/sdk`) talking to the real gateway binary in front of the in-repo mock provider.
//!
//! The client scripts live in `tests/sdk/{python,node}`; they assert on their own and print a
//! JSON summary on their last stdout line, which these tests check again (which upstream served
//! the reply, tool-call round trips, error classes). The SDKs are installed once into
//! `$CARGO_TARGET_TMPDIR/sdk/{venv,node}` and re-installed only when `requirements.txt` /
//! `package.json` change. This needs `python3` (with `venv`), `node` and `npm` on PATH and access
//! to the package registries for the first run; a failing setup fails the tests with the
//! installer's output.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{
    DirLock, Gateway, MockHandle, installer_command, mock_and_gateway, npm_install_cached,
    run_install_step,
};
use serde_json::Value;
use tokio::process::Command;
use tokio::sync::OnceCell;

const GPT: &str = "gpt-4o-mini";
const CLAUDE: &str = "claude-sonnet-4-5";
const PROMPT: &str = "Say hello to the gateway";
const TOOL_ANSWER: &str = "Tool result received: 18C and sunny";
/// Longest a single client script may run.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

fn sdk_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk")
}

fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("sdk")
}

// ---------------------------------------------------------------------------------------------
// Toolchain setup (cached, serialised)
// ---------------------------------------------------------------------------------------------

struct Toolchains {
    python: PathBuf,
    node_dir: PathBuf,
}

static TOOLCHAINS: OnceCell<Result<Toolchains, String>> = OnceCell::const_new();

/// The installed SDKs; panics (failing the test) with the installer output if setup failed.
async fn toolchains() -> &'static Toolchains {
    let r = TOOLCHAINS
        .get_or_init(|| async {
            let cache = cache_dir();
            std::fs::create_dir_all(&cache).map_err(|e| format!("create {cache:?}: {e}"))?;
            // Other test processes (another `cargo test`, nextest) may set up concurrently.
            let lock = DirLock::acquire(cache.join("setup.lock")).await?;
            let python = setup_python(&cache).await?;
            let node_dir = setup_node(&cache).await?;
            drop(lock);
            Ok(Toolchains { python, node_dir })
        })
        .await;
    match r {
        Ok(t) => t,
        Err(e) => panic!("SDK toolchain setup failed:\n{e}"),
    }
}

/// `python3 -m venv` + `pip install -r requirements.txt`, redone only when the requirements
/// differ from the copy stored after the last successful install.
async fn setup_python(cache: &Path) -> Result<PathBuf, String> {
    let req_src = sdk_src().join("python/requirements.txt");
    let req = std::fs::read_to_string(&req_src).map_err(|e| format!("read {req_src:?}: {e}"))?;
    let venv = cache.join("venv");
    let python = venv.join("bin/python");
    let stamp = venv.join("ekai-requirements.txt");
    if python.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(req.as_str()) {
        return Ok(python);
    }
    if venv.exists() {
        std::fs::remove_dir_all(&venv).map_err(|e| format!("remove {venv:?}: {e}"))?;
    }
    let mut cmd = installer_command("python3");
    cmd.arg("-m").arg("venv").arg(&venv);
    run_install_step("python3 -m venv", cmd).await?;
    let mut cmd = installer_command(&python);
    cmd.args([
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
        "-r",
    ])
    .arg(&req_src);
    run_install_step("pip install -r requirements.txt", cmd).await?;
    std::fs::write(&stamp, &req).map_err(|e| format!("write {stamp:?}: {e}"))?;
    Ok(python)
}

/// The Node SDKs, installed by `npm_install_cached`; the scripts are copied next to
/// `node_modules` on every run (ES modules resolve packages relative to the script file).
async fn setup_node(cache: &Path) -> Result<PathBuf, String> {
    let src = sdk_src().join("node");
    let dir = npm_install_cached(&src, &cache.join("node")).await?;
    for entry in std::fs::read_dir(&src).map_err(|e| format!("read {src:?}: {e}"))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.extension().is_some_and(|e| e == "mjs") {
            let to = dir.join(path.file_name().unwrap());
            std::fs::copy(&path, &to).map_err(|e| format!("copy {path:?}: {e}"))?;
        }
    }
    Ok(dir)
}

// ---------------------------------------------------------------------------------------------
// Running the client scripts
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Sdk {
    OpenAi,
    Anthropic,
    Gemini,
    /// The openai SDK's `AzureOpenAI` client, with the gateway as its Azure endpoint.
    Azure,
}

impl Sdk {
    /// Base URL + dummy key, the way a user points the SDK at the gateway.
    fn env(self, gw: &Gateway) -> Vec<(&'static str, String)> {
        match self {
            Sdk::OpenAi => vec![
                ("OPENAI_BASE_URL", format!("{}/v1", gw.url)),
                ("OPENAI_API_KEY", "sk-dummy-client-key".to_string()),
            ],
            Sdk::Anthropic => vec![
                ("ANTHROPIC_BASE_URL", gw.url.clone()),
                ("ANTHROPIC_API_KEY", "sk-ant-dummy-client-key".to_string()),
            ],
            Sdk::Gemini => vec![
                ("GEMINI_GATEWAY_URL", gw.url.clone()),
                ("GEMINI_API_KEY", "dummy-gemini-client-key".to_string()),
            ],
            // The variables AzureOpenAI reads by itself.
            Sdk::Azure => vec![
                ("AZURE_OPENAI_ENDPOINT", gw.url.clone()),
                ("AZURE_OPENAI_API_KEY", "dummy-azure-client-key".to_string()),
                ("OPENAI_API_VERSION", "2024-10-21".to_string()),
            ],
        }
    }
}

/// Runs a client script with a minimal environment (PATH, HOME, the SDK's base URL and a dummy
/// key); panics with its output and the gateway log unless it exits 0. Returns the JSON summary.
async fn run_client(
    gw: &Gateway,
    sdk: Sdk,
    program: &Path,
    script: &Path,
    args: &[&str],
    cwd: &Path,
) -> Value {
    let mut cmd = Command::new(program);
    cmd.arg(script)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "HOME",
            std::env::var("HOME").unwrap_or_else(|_| "/tmp".into()),
        )
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .envs(sdk.env(gw))
        .current_dir(cwd)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let what = format!("{} {}", script.display(), args.join(" "));
    let out = tokio::time::timeout(SCRIPT_TIMEOUT, cmd.output())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{what}: timed out after {SCRIPT_TIMEOUT:?}\n--- gateway log ---\n{}",
                gw.log()
            )
        })
        .unwrap_or_else(|e| panic!("{what}: could not start {program:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    if !out.status.success() {
        panic!(
            "{what}: {}\n--- stderr ---\n{stderr}\n--- stdout ---\n{stdout}\n--- gateway log ---\n{}",
            out.status,
            gw.log()
        );
    }
    let last = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    serde_json::from_str(last).unwrap_or_else(|e| {
        panic!("{what}: last stdout line is not a JSON summary ({e}):\n{stdout}\n{stderr}")
    })
}

/// Runs `tests/sdk/python/<sdk>_client.py MODEL SCENARIOS`.
async fn run_python(gw: &Gateway, sdk: Sdk, model: &str, scenarios: &str) -> Value {
    let tc = toolchains().await;
    let script = match sdk {
        Sdk::OpenAi => "openai_client.py",
        Sdk::Anthropic => "anthropic_client.py",
        Sdk::Gemini => "gemini_client.py",
        Sdk::Azure => "azure_client.py",
    };
    let dir = sdk_src().join("python");
    run_client(
        gw,
        sdk,
        &tc.python,
        &dir.join(script),
        &[model, scenarios],
        &gw.dir,
    )
    .await
}

/// Runs another `tests/sdk/python/<script>` with these arguments.
async fn run_python_script(gw: &Gateway, sdk: Sdk, script: &str, args: &[&str]) -> Value {
    let tc = toolchains().await;
    let dir = sdk_src().join("python");
    run_client(gw, sdk, &tc.python, &dir.join(script), args, &gw.dir).await
}

/// Runs a Node script (copied into the cached node dir) with the model as its argument.
async fn run_node(gw: &Gateway, sdk: Sdk, script: &str, model: &str) -> Value {
    let tc = toolchains().await;
    run_client(
        gw,
        sdk,
        Path::new("node"),
        &tc.node_dir.join(script),
        &[model],
        &tc.node_dir,
    )
    .await
}

// ---------------------------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------------------------

/// The mock route ("openai" / "anthropic") that serves a model, and the other one.
fn routes_for(model: &str) -> (&'static str, &'static str) {
    if model.starts_with("claude-") {
        ("anthropic", "openai")
    } else {
        ("openai", "anthropic")
    }
}

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("summary has no string at {ptr}: {v}"))
}

/// The reply text came from the expected upstream (the mock names itself).
fn assert_served_by(text: &str, route: &str, what: &str) {
    let expected = format!("Hello from mock-{route}: {PROMPT}");
    assert_eq!(text, expected, "{what}: wrong reply text / wrong upstream");
}

/// Exactly `n` upstream requests went to `route` and none to the other, all on the right path with
/// the requested model.
fn assert_hits(mock: &MockHandle, model: &str, n: usize) {
    let (route, other) = routes_for(model);
    let reqs = mock.requests();
    let summary: Vec<String> = reqs
        .iter()
        .map(|r| format!("{} {} model={}", r.route, r.path, r.body["model"]))
        .collect();
    assert_eq!(
        mock.hits(route),
        n,
        "upstream hits on {route}: {summary:#?}"
    );
    assert_eq!(
        mock.hits(other),
        0,
        "unexpected hits on {other}: {summary:#?}"
    );
    let path = if route == "openai" {
        "/v1/chat/completions"
    } else {
        "/v1/messages"
    };
    // The catalog maps Claude aliases to their dated ids; OpenAI ids go as they are.
    let upstream = match model {
        "claude-sonnet-4-5" => "claude-sonnet-4-5-20250929",
        m => m,
    };
    for r in &reqs {
        assert_eq!(r.path, path, "upstream path: {summary:#?}");
        assert_eq!(r.body["model"], upstream, "upstream model: {summary:#?}");
    }
}

/// The upstream saw the tool result in its own dialect's shape, answering the id it issued.
fn assert_tool_result_forwarded(mock: &MockHandle, model: &str) {
    let (route, _) = routes_for(model);
    let reqs: Vec<_> = mock
        .requests()
        .into_iter()
        .filter(|r| r.route == route)
        .collect();
    let carrying: Vec<&Value> = reqs
        .iter()
        .map(|r| &r.body)
        .filter(|b| b.to_string().contains("18C and sunny"))
        .collect();
    assert_eq!(
        carrying.len(),
        2,
        "two upstream requests (non-streaming + streaming) should carry the tool result: {reqs:#?}"
    );
    for body in carrying {
        let msgs = body["messages"].as_array().expect("messages array");
        if route == "openai" {
            let tool = msgs
                .iter()
                .find(|m| m["role"] == "tool")
                .unwrap_or_else(|| panic!("no role=tool message upstream: {body}"));
            assert_eq!(tool["tool_call_id"], "call_mock_1", "{body}");
            let assistant = msgs
                .iter()
                .find(|m| m["role"] == "assistant")
                .unwrap_or_else(|| panic!("no assistant message upstream: {body}"));
            assert_eq!(
                assistant["tool_calls"][0]["id"], "call_mock_1",
                "assistant tool call id upstream: {body}"
            );
            assert_eq!(
                assistant["tool_calls"][0]["function"]["name"], "get_weather",
                "{body}"
            );
        } else {
            let last = msgs.last().expect("a message");
            assert_eq!(last["role"], "user", "{body}");
            let block = last["content"]
                .as_array()
                .and_then(|c| c.iter().find(|b| b["type"] == "tool_result"))
                .unwrap_or_else(|| panic!("no tool_result block upstream: {body}"));
            assert_eq!(block["tool_use_id"], "toolu_mock_1", "{body}");
            let prev = &msgs[msgs.len() - 2];
            let use_block = prev["content"]
                .as_array()
                .and_then(|c| c.iter().find(|b| b["type"] == "tool_use"))
                .unwrap_or_else(|| panic!("no tool_use block upstream: {body}"));
            assert_eq!(use_block["id"], "toolu_mock_1", "{body}");
            assert_eq!(use_block["name"], "get_weather", "{body}");
        }
    }
}

/// plain + stream + tools through one SDK for one model; checks the summary and the upstream.
async fn sdk_roundtrips(sdk: Sdk, model: &str) {
    let (mock, gw) = mock_and_gateway().await;
    let sum = run_python(&gw, sdk, model, "plain,stream,tools").await;
    let (route, _) = routes_for(model);
    let what = format!("{sdk:?} SDK -> {model}");

    for name in ["plain", "stream", "tools"] {
        assert_eq!(
            sum["results"][name]["ok"], true,
            "{what}: {name} failed: {sum}"
        );
    }
    assert_served_by(
        s(&sum, "/results/plain/text"),
        route,
        &format!("{what} plain"),
    );
    assert_served_by(
        s(&sum, "/results/stream/text"),
        route,
        &format!("{what} stream"),
    );
    if let Sdk::OpenAi = sdk {
        // Both variants (with and without include_usage).
        assert_served_by(
            s(&sum, "/results/stream/without_usage/text"),
            route,
            &format!("{what} stream without usage"),
        );
        let usage = &sum["results"]["stream"]["with_usage"]["usage"];
        assert!(
            usage["completion_tokens"].as_u64().unwrap_or(0) > 0,
            "{what}: include_usage chunk: {sum}"
        );
    } else {
        let out = sum["results"]["stream"]["usage"]["output_tokens"]
            .as_u64()
            .unwrap_or(0);
        assert!(out > 0, "{what}: final message usage: {sum}");
    }

    // Tool round trips: the call, the ids the upstream issued, and the final answer.
    let tool_id = if route == "openai" {
        "call_mock_1"
    } else {
        "toolu_mock_1"
    };
    for (call, text) in [("call", "text"), ("stream_call", "stream_text")] {
        let c = &sum["results"]["tools"][call];
        assert_eq!(c["name"], "get_weather", "{what} {call}: {sum}");
        assert_eq!(
            c["arguments"],
            serde_json::json!({"location": "Paris"}),
            "{what} {call}: {sum}"
        );
        assert_eq!(c["id"], tool_id, "{what} {call}: tool call id: {sum}");
        assert_eq!(
            s(&sum, &format!("/results/tools/{text}")),
            TOOL_ANSWER,
            "{what} {text}"
        );
    }

    // plain 1, stream 2 (openai: two variants) or 1, tools 4 (2 rounds x 2 modes).
    let expected = match sdk {
        Sdk::OpenAi => 1 + 2 + 4,
        Sdk::Anthropic | Sdk::Gemini | Sdk::Azure => 1 + 1 + 4,
    };
    assert_hits(&mock, model, expected);
    assert_tool_result_forwarded(&mock, model);
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_openai_sdk_to_openai_passthrough() {
    sdk_roundtrips(Sdk::OpenAi, GPT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_openai_sdk_to_anthropic_translated() {
    sdk_roundtrips(Sdk::OpenAi, CLAUDE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_anthropic_sdk_to_anthropic_passthrough() {
    sdk_roundtrips(Sdk::Anthropic, CLAUDE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_anthropic_sdk_to_openai_translated() {
    sdk_roundtrips(Sdk::Anthropic, GPT).await;
}

/// Unknown model -> NotFoundError 404 naming /v1/models; no model -> BadRequestError 400;
/// `messages` as a string on a translated route -> BadRequestError 400. None of these may reach
/// an upstream.
async fn sdk_errors(sdk: Sdk, cross_model: &str) {
    let (mock, gw) = mock_and_gateway().await;
    let sum = run_python(&gw, sdk, cross_model, "errors").await;
    let what = format!("{sdk:?} SDK errors");
    let r = &sum["results"]["errors"];
    assert_eq!(r["ok"], true, "{what}: {sum}");
    assert_eq!(r["not_found"]["status"], 404, "{what}: {sum}");
    assert!(
        s(&sum, "/results/errors/not_found/message").contains("/v1/models"),
        "{what}: {sum}"
    );
    assert_eq!(r["missing_model"]["status"], 400, "{what}: {sum}");
    assert_eq!(r["bad_messages"]["status"], 400, "{what}: {sum}");
    assert_eq!(
        mock.hits("openai") + mock.hits("anthropic"),
        0,
        "{what}: rejected requests reached an upstream: {:#?}",
        mock.requests()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_openai_sdk_errors() {
    sdk_errors(Sdk::OpenAi, CLAUDE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_anthropic_sdk_errors() {
    sdk_errors(Sdk::Anthropic, GPT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_openai_sdk_stream_to_anthropic() {
    let (mock, gw) = mock_and_gateway().await;
    let sum = run_node(&gw, Sdk::OpenAi, "openai_stream.mjs", CLAUDE).await;
    assert_served_by(s(&sum, "/text"), "anthropic", "node openai SDK -> claude");
    assert_eq!(sum["finish_reason"], "stop", "{sum}");
    assert!(
        sum["usage"]["completion_tokens"].as_u64().unwrap_or(0) > 0,
        "{sum}"
    );
    assert_hits(&mock, CLAUDE, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_anthropic_sdk_stream_to_openai() {
    let (mock, gw) = mock_and_gateway().await;
    let sum = run_node(&gw, Sdk::Anthropic, "anthropic_stream.mjs", GPT).await;
    assert_served_by(s(&sum, "/text"), "openai", "node anthropic SDK -> gpt");
    assert_eq!(sum["stop_reason"], "end_turn", "{sum}");
    assert!(
        sum["usage"]["output_tokens"].as_u64().unwrap_or(0) > 0,
        "{sum}"
    );
    assert_hits(&mock, GPT, 1);
}

// ---------------------------------------------------------------------------------------------
// The Responses API (openai SDK) and the Gemini API (google-genai SDK) as client dialects
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_openai_responses_api_to_anthropic_translated() {
    let (mock, gw) = mock_and_gateway().await;
    let out = run_python_script(
        &gw,
        Sdk::OpenAi,
        "responses_client.py",
        &[
            "claude-sonnet-4-5",
            "mock-anthropic",
            "plain,stream,tools,stream_tools",
        ],
    )
    .await;
    assert_eq!(
        s(&out, "/tools/final"),
        "Tool result received: 18C and sunny"
    );
    assert_eq!(mock.hits("anthropic"), 6);
    assert_eq!(mock.hits("openai"), 0);
    // The tool result reached Anthropic as a tool_result answering the id Anthropic issued.
    let last = mock.requests().last().cloned().unwrap();
    let blocks = last.body["messages"][2]["content"].to_string();
    assert!(
        blocks.contains("tool_result") && blocks.contains("toolu_mock_1"),
        "{blocks}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_openai_responses_api_to_gemini_translated() {
    let (mock, gw) = mock_and_gateway().await;
    let out = run_python_script(
        &gw,
        Sdk::OpenAi,
        "responses_client.py",
        &[
            "gemini-2.5-flash",
            "mock-gemini",
            "plain,stream,tools,stream_tools",
        ],
    )
    .await;
    assert_eq!(
        s(&out, "/tools/final"),
        "Tool result received: 18C and sunny"
    );
    assert_eq!(mock.hits("gemini"), 6);
    assert_eq!(
        mock.hits("openai") + mock.hits("anthropic") + mock.hits("responses"),
        0
    );
    // The tool result reached Gemini as a functionResponse.
    let last = mock.requests().last().cloned().unwrap();
    assert!(
        last.body["contents"]
            .to_string()
            .contains("functionResponse"),
        "{}",
        last.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_openai_responses_api_to_openai_passthrough() {
    let (mock, gw) = mock_and_gateway().await;
    let out = run_python_script(
        &gw,
        Sdk::OpenAi,
        "responses_client.py",
        &[
            "gpt-4o-mini",
            "mock-responses",
            "plain,stream,tools,stream_tools",
        ],
    )
    .await;
    assert_eq!(
        s(&out, "/tools/final"),
        "Tool result received: 18C and sunny"
    );
    assert_eq!(mock.hits("responses"), 6);
    assert_eq!(mock.hits("openai") + mock.hits("anthropic"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_google_genai_sdk_to_gemini_passthrough() {
    gemini_sdk("gemini-2.5-flash", "mock-gemini", "gemini").await;
}

async fn gemini_sdk(model: &str, mock_name: &str, route: &str) {
    let (mock, gw) = mock_and_gateway().await;
    let out = run_python_script(
        &gw,
        Sdk::Gemini,
        "gemini_client.py",
        &[model, mock_name, "plain,stream,count,tools"],
    )
    .await;
    assert_eq!(
        s(&out, "/tools/final"),
        "Tool result received: 18C and sunny"
    );
    // plain, stream and the two tool turns reach the upstream; countTokens goes to Gemini itself
    // when Gemini serves the model, and is estimated locally otherwise.
    assert_eq!(mock.hits(route), 4, "{:?}", mock.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_google_genai_sdk_to_openai_translated() {
    gemini_sdk("gpt-4o-mini", "mock-openai", "openai").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_google_genai_sdk_to_anthropic_translated() {
    gemini_sdk("claude-sonnet-4-5", "mock-anthropic", "anthropic").await;
}

/// google-genai's `embed_content` (it calls `:batchEmbedContents`) for a model served by OpenAI and
/// by Gemini: the same vectors either way, in Gemini's shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_google_genai_sdk_embeddings_through_openai_and_gemini() {
    let (mock, gw) = mock_and_gateway().await;
    for (model, route) in [
        ("text-embedding-3-small", "embeddings"),
        ("gemini-embedding-001", "gemini_embed"),
    ] {
        let out =
            run_python_script(&gw, Sdk::Gemini, "gemini_client.py", &[model, "-", "embed"]).await;
        assert_eq!(out["embed"]["count"], 2, "{out}");
        assert_eq!(mock.hits(route), 1, "{:?}", mock.requests());
    }
}

// ---------------------------------------------------------------------------------------------
// Embeddings and Azure
// ---------------------------------------------------------------------------------------------

/// The openai SDK's embeddings (its default base64, explicit float, explicit base64, a 400) with
/// `model` served by the mock through `route`.
async fn embeddings_sdk(model: &str, provider: &str, route: &str, prompt_tokens: u64) {
    let (mock, gw) = mock_and_gateway().await;
    let out = run_python_script(&gw, Sdk::OpenAi, "embeddings_client.py", &[model]).await;
    assert_eq!(s(&out, "/default_wire_format"), "base64", "{out}");
    assert_eq!(s(&out, "/provider"), provider, "{out}");
    assert_eq!(out["prompt_tokens"], prompt_tokens, "{out}");
    assert_eq!(out["float_ok"], true);
    assert_eq!(out["base64_ok"], true);
    assert_eq!(s(&out, "/error/class"), "BadRequestError", "{out}");
    assert_eq!(s(&out, "/error/param"), "dimensions", "{out}");
    // The 400 was the gateway's: three requests reached the upstream.
    assert_eq!(mock.hits(route), 3, "{:?}", mock.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_openai_embeddings_float_and_base64_to_openai() {
    embeddings_sdk("text-embedding-3-small", "openai", "embeddings", 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_openai_embeddings_float_and_base64_to_gemini() {
    // Gemini reports no token count: the gateway's estimate (about four bytes a token per input).
    embeddings_sdk("gemini-embedding-001", "gemini", "gemini_embed", 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_azure_openai_client_to_azure_upstream() {
    const KEY: &str = "azure-upstream-key-0123";
    let mock = ekai_mock_provider::spawn(common::MockConfig {
        expected_key: Some(KEY.into()),
        ..common::MockConfig::default()
    })
    .await
    .unwrap();
    let base = mock.base_url();
    // Only Azure is configured: every answer below went gateway → Azure-style mock.
    let gw = Gateway::start(&[
        ("AZURE_OPENAI_API_KEY", KEY),
        ("AZURE_OPENAI_ENDPOINT", &base),
    ]);
    let out = run_python_script(
        &gw,
        Sdk::Azure,
        "azure_client.py",
        &["gpt-4o-mini", "text-embedding-3-small"],
    )
    .await;
    assert!(
        s(&out, "/request_url")
            .contains("/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21"),
        "{out}"
    );
    assert_eq!(out["sent_api_key"], true);
    assert_eq!(s(&out, "/provider"), "azure");
    assert_eq!(out["embedding_tokens"], 3);
    assert_eq!(mock.hits("azure"), 2);
    assert_eq!(mock.hits("azure_embeddings"), 1);
    let reqs = mock.requests();
    assert!(reqs.iter().all(|r| r.header("api-key") == Some(KEY)));
    assert!(
        reqs.iter()
            .all(|r| r.query.as_deref() == Some("api-version=2024-10-21"))
    );
}
