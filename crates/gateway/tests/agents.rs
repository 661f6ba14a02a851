//! End-to-end tests with the REAL coding agents — Claude Code (`@anthropic-ai/claude-code`) and
//! OpenAI Codex CLI (`@openai/codex`) — run non-interactively against the real gateway binary in
//! front of the in-repo mock provider, same-vendor and cross-vendor.
//!
//! Both agents send their tool definitions, so the mock answers the first turn with a call of the
//! agent's first tool (with `{}` arguments, which the agent rejects as invalid); the agent sends
//! that error back as a tool result and the mock answers `Tool result received: <result>`, which
//! must be the agent's final output, with exit code 0.
//!
//! The agents are installed with npm (versions pinned by `tests/agents/package.json` and its lock
//! file) into `$CARGO_TARGET_TMPDIR/agents` on first run and re-installed only when those files
//! change; this needs `node` and `npm` on PATH and access to the npm registry once. At run time
//! they get a fresh temporary HOME, their telemetry / auto-update switches turned off, and every
//! non-loopback connection routed to a local proxy that refuses it (see [`common::DenyProxy`]),
//! so they cannot reach the network; each run is killed after [`AGENT_TIMEOUT`].
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

use common::{DenyProxy, Gateway, MockHandle, mock_and_gateway, npm_install_cached, scratch_dir};
use ekai_mock_provider::RecordedRequest;
use serde_json::Value;
use tokio::process::Command;
use tokio::sync::OnceCell;

const GPT: &str = "gpt-4o-mini";
const CLAUDE: &str = "claude-sonnet-4-5";
const PROMPT: &str = "say hi";
/// How the mock starts its answer to a tool result.
const TOOL_ANSWER_PREFIX: &str = "Tool result received: ";
/// Longest a single agent run may take (a hang fails the test with the agent's output).
const AGENT_TIMEOUT: Duration = Duration::from_secs(120);

const OPENAI_CHAT_PATH: &str = "/v1/chat/completions";
const OPENAI_RESPONSES_PATH: &str = "/v1/responses";
const ANTHROPIC_PATH: &str = "/v1/messages";

// ---------------------------------------------------------------------------------------------
// Installation (cached, serialised across test processes)
// ---------------------------------------------------------------------------------------------

fn agents_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/agents")
}

struct Agents {
    claude: PathBuf,
    codex: PathBuf,
}

static AGENTS: OnceCell<Result<Agents, String>> = OnceCell::const_new();

/// The installed agents; panics (failing the test) with the installer output if setup failed.
async fn agents() -> &'static Agents {
    let r = AGENTS
        .get_or_init(|| async {
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("agents");
            let dir = npm_install_cached(&agents_src(), &dir).await?;
            let modules = dir.join("node_modules");
            Ok(Agents {
                claude: claude_executable(&modules)?,
                codex: existing(modules.join(".bin/codex"))?,
            })
        })
        .await;
    match r {
        Ok(a) => a,
        Err(e) => panic!("coding agent setup failed:\n{e}"),
    }
}

fn existing(path: PathBuf) -> Result<PathBuf, String> {
    if path.exists() {
        Ok(path)
    } else {
        Err(format!("{path:?} missing after npm install"))
    }
}

/// Claude Code's native binary. Its npm postinstall copies the platform package's binary over
/// the `bin/claude.exe` placeholder; when install scripts are not run, the binary is taken from
/// the platform package (`@anthropic-ai/claude-code-<os>-<arch>[-musl]/claude`) directly.
fn claude_executable(modules: &Path) -> Result<PathBuf, String> {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        other => other,
    };
    for suffix in ["", "-musl"] {
        let bin = modules.join(format!(
            "@anthropic-ai/claude-code-{os}-{arch}{suffix}/claude"
        ));
        if bin.is_file() {
            return Ok(bin);
        }
    }
    existing(modules.join(".bin/claude"))
}

// ---------------------------------------------------------------------------------------------
// Running an agent
// ---------------------------------------------------------------------------------------------

struct Run {
    stdout: String,
    stderr: String,
}

/// Runs an agent with ONLY PATH, a temporary HOME, the proxy variables of `deny` and `env`, in
/// `cwd`; panics with its output, the gateway log and what reached the mock unless it exits 0
/// within [`AGENT_TIMEOUT`].
#[allow(clippy::too_many_arguments)]
async fn run_agent(
    what: &str,
    program: &Path,
    args: &[&str],
    env: &[(&str, String)],
    home: &Path,
    cwd: &Path,
    gw: &Gateway,
    mock: &MockHandle,
    deny: &DenyProxy,
) -> Run {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("TMPDIR", std::env::temp_dir())
        .env("TERM", "dumb")
        .env("NO_COLOR", "1")
        .envs(deny.env())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let started = std::time::Instant::now();
    let out = tokio::time::timeout(AGENT_TIMEOUT, cmd.output()).await;
    let context = || {
        format!(
            "--- gateway log ---\n{}\n--- upstream requests ---\n{}\n--- refused network attempts ---\n{:#?}",
            gw.log(),
            summarize(&mock.requests()),
            deny.attempts()
        )
    };
    let out = match out {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => panic!("{what}: could not start {program:?}: {e}"),
        Err(_) => panic!(
            "{what}: no exit after {AGENT_TIMEOUT:?} (killed)\n{}",
            context()
        ),
    };
    let run = Run {
        stdout: String::from_utf8_lossy(&out.stdout).to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    };
    if !out.status.success() {
        panic!(
            "{what}: {}\n--- stdout ---\n{}\n--- stderr ---\n{}\n{}",
            out.status,
            run.stdout,
            run.stderr,
            context()
        );
    }
    // Pointed at the gateway, an agent needs no other host (the Codex config turns off the
    // features that would fetch catalogs).
    assert_eq!(
        deny.attempts(),
        Vec::<String>::new(),
        "{what}: tried to reach the network beyond the gateway\n--- stderr ---\n{}",
        run.stderr
    );
    eprintln!("{what}: exit 0 after {:?}", started.elapsed());
    run
}

/// A fresh empty directory for an agent's HOME / working directory.
fn fresh_dir(name: &str) -> PathBuf {
    let dir = scratch_dir().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `claude -p PROMPT --model MODEL` against the gateway; returns the `--output-format json`
/// result object.
async fn run_claude_code(model: &str, gw: &Gateway, mock: &MockHandle) -> Value {
    let agents = agents().await;
    let deny = DenyProxy::start().await;
    let home = fresh_dir("home");
    let cwd = fresh_dir("work");
    let env = [
        ("ANTHROPIC_BASE_URL", gw.url.clone()),
        ("ANTHROPIC_API_KEY", "sk-ant-test-client-key".to_string()),
        ("DISABLE_AUTOUPDATER", "1".to_string()),
        ("DISABLE_TELEMETRY", "1".to_string()),
        ("DISABLE_ERROR_REPORTING", "1".to_string()),
        ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1".to_string()),
    ];
    let what = format!("claude -p --model {model}");
    let run = run_agent(
        &what,
        &agents.claude,
        &[
            "-p",
            PROMPT,
            "--model",
            model,
            "--output-format",
            "json",
            // Nothing may prompt; a tool the session does not allow is denied, not run.
            "--permission-mode",
            "dontAsk",
            "--no-session-persistence",
        ],
        &env,
        &home,
        &cwd,
        gw,
        mock,
        &deny,
    )
    .await;
    let _ = std::fs::remove_dir_all(home.parent().unwrap());
    let _ = std::fs::remove_dir_all(cwd.parent().unwrap());
    let last = run
        .stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    serde_json::from_str(last).unwrap_or_else(|e| {
        panic!(
            "{what}: last stdout line is not JSON ({e}):\n{}\n--- stderr ---\n{}",
            run.stdout, run.stderr
        )
    })
}

/// The `CODEX_HOME/config.toml` for a gateway: a custom provider speaking the Responses API.
fn codex_config(gw: &Gateway, model: &str) -> String {
    std::fs::read_to_string(agents_src().join("codex-config.toml"))
        .expect("tests/agents/codex-config.toml")
        .replace("{MODEL}", model)
        .replace("{BASE_URL}", &format!("{}/v1", gw.url))
}

/// `codex exec PROMPT` with the model on a custom provider pointing at the gateway; returns the
/// agent's last message.
async fn run_codex(model: &str, gw: &Gateway, mock: &MockHandle) -> String {
    let agents = agents().await;
    let deny = DenyProxy::start().await;
    let home = fresh_dir("home");
    let codex_home = home.join(".codex");
    std::fs::create_dir_all(&codex_home).unwrap();
    std::fs::write(codex_home.join("config.toml"), codex_config(gw, model)).unwrap();
    let cwd = fresh_dir("work");
    let last_message = cwd.parent().unwrap().join("last-message.txt");
    let env = [
        ("CODEX_HOME", codex_home.display().to_string()),
        ("EKAI_TEST_KEY", "sk-test-client-key".to_string()),
    ];
    let what = format!("codex exec --model {model}");
    let run = run_agent(
        &what,
        &agents.codex,
        &[
            "exec",
            "--skip-git-repo-check",
            "--ephemeral",
            "--sandbox",
            "read-only",
            "--color",
            "never",
            "--output-last-message",
            &last_message.display().to_string(),
            PROMPT,
        ],
        &env,
        &home,
        &cwd,
        gw,
        mock,
        &deny,
    )
    .await;
    let text = std::fs::read_to_string(&last_message).unwrap_or_else(|e| {
        panic!(
            "{what}: no last message ({e})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            run.stdout, run.stderr
        )
    });
    assert!(
        run.stdout.contains(text.trim()),
        "{what}: stdout lacks the last message {text:?}:\n{}",
        run.stdout
    );
    let _ = std::fs::remove_dir_all(home.parent().unwrap());
    let _ = std::fs::remove_dir_all(cwd.parent().unwrap());
    text.trim().to_string()
}

// ---------------------------------------------------------------------------------------------
// What the upstream saw
// ---------------------------------------------------------------------------------------------

fn summarize(reqs: &[RecordedRequest]) -> String {
    reqs.iter()
        .map(|r| {
            let body = r.body.to_string();
            let cut: String = body.chars().take(600).collect();
            format!(
                "{} {} model={} body={cut}…\n",
                r.route, r.path, r.body["model"]
            )
        })
        .collect()
}

/// The upstream API a request was served through.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Upstream {
    OpenAiChat,
    OpenAiResponses,
    Anthropic,
}

impl Upstream {
    fn path(self) -> &'static str {
        match self {
            Upstream::OpenAiChat => OPENAI_CHAT_PATH,
            Upstream::OpenAiResponses => OPENAI_RESPONSES_PATH,
            Upstream::Anthropic => ANTHROPIC_PATH,
        }
    }

    /// The model id the upstream gets (the catalog maps Claude aliases to dated ids).
    fn model(self, model: &str) -> &str {
        match model {
            "claude-sonnet-4-5" => "claude-sonnet-4-5-20250929",
            m => m,
        }
    }

    /// Texts of the tool results a request body carries, in this upstream's dialect.
    fn tool_results(self, body: &Value) -> Vec<String> {
        let text = |v: &Value| match v {
            Value::String(s) => s.clone(),
            Value::Array(parts) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(" "),
            _ => String::new(),
        };
        let items = |key: &str| body[key].as_array().cloned().unwrap_or_default();
        match self {
            Upstream::OpenAiChat => items("messages")
                .iter()
                .filter(|m| m["role"] == "tool")
                .map(|m| text(&m["content"]))
                .collect(),
            Upstream::OpenAiResponses => items("input")
                .iter()
                .filter(|i| i["type"] == "function_call_output")
                .map(|i| text(&i["output"]))
                .collect(),
            Upstream::Anthropic => items("messages")
                .iter()
                .filter_map(|m| m["content"].as_array().cloned())
                .flatten()
                .filter(|b| b["type"] == "tool_result")
                .map(|b| text(&b["content"]))
                .collect(),
        }
    }
}

/// Every model request went to `expected` (right path, right upstream model) and none to any
/// other upstream API; at least one carried tools and at least one carried a tool result, and
/// the agent's final text is the mock's answer to that tool result.
fn assert_upstream(
    mock: &MockHandle,
    expected: Upstream,
    model: &str,
    final_text: &str,
    what: &str,
) {
    let reqs = mock.requests();
    let all = summarize(&reqs);
    let model_reqs: Vec<&RecordedRequest> = reqs
        .iter()
        .filter(|r| {
            [OPENAI_CHAT_PATH, OPENAI_RESPONSES_PATH, ANTHROPIC_PATH].contains(&r.path.as_str())
        })
        .collect();
    assert!(
        model_reqs.len() >= 2,
        "{what}: expected a tool call turn and a final turn upstream:\n{all}"
    );
    for r in &model_reqs {
        assert_eq!(
            r.path,
            expected.path(),
            "{what}: wrong upstream API:\n{all}"
        );
        assert_eq!(
            r.body["model"],
            expected.model(model),
            "{what}: upstream model:\n{all}"
        );
    }
    if expected != Upstream::Anthropic {
        // Nothing at all (count_tokens included) may reach the other vendor.
        assert!(
            reqs.iter().all(|r| !r.path.starts_with(ANTHROPIC_PATH)),
            "{what}: the Anthropic upstream was used:\n{all}"
        );
    }
    let with_tools = model_reqs
        .iter()
        .filter(|r| r.body["tools"].as_array().is_some_and(|t| !t.is_empty()))
        .count();
    assert!(
        with_tools >= 1,
        "{what}: no upstream request carried tools:\n{all}"
    );
    let results: Vec<String> = model_reqs
        .iter()
        .flat_map(|r| expected.tool_results(&r.body))
        .collect();
    assert!(
        !results.is_empty(),
        "{what}: no upstream request carried a tool result:\n{all}"
    );
    assert!(
        final_text.starts_with(TOOL_ANSWER_PREFIX),
        "{what}: final text is not the mock's answer to the tool result: {final_text:?}"
    );
    // The mock quotes the tool result; the agent may trim or append to what it shows.
    let quoted = final_text[TOOL_ANSWER_PREFIX.len()..].trim();
    let head: String = quoted.chars().take(40).collect();
    assert!(
        !head.is_empty() && results.iter().any(|r| r.trim().starts_with(&head)),
        "{what}: final text {final_text:?} does not quote a tool result the upstream saw: {results:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Claude Code
// ---------------------------------------------------------------------------------------------

async fn claude_code_case(model: &str, expected: Upstream) {
    let (mock, gw) = mock_and_gateway().await;
    let result = run_claude_code(model, &gw, &mock).await;
    let what = format!("Claude Code -> {model}");
    assert_eq!(result["type"], "result", "{what}: {result}");
    assert_eq!(result["subtype"], "success", "{what}: {result}");
    assert_eq!(result["is_error"], false, "{what}: {result}");
    let text = result["result"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: no result text: {result}"));
    assert_upstream(&mock, expected, model, text, &what);
    // Claude Code always streams, on the beta Messages endpoint.
    let log = gw.log();
    assert!(
        log.contains(&format!("dialect=\"anthropic\" model={model}")),
        "{what}: gateway log lacks the Messages requests:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_to_anthropic_passthrough() {
    claude_code_case(CLAUDE, Upstream::Anthropic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_to_openai_translated() {
    claude_code_case(GPT, Upstream::OpenAiChat).await;
}

// ---------------------------------------------------------------------------------------------
// Codex
// ---------------------------------------------------------------------------------------------

async fn codex_case(model: &str, expected: Upstream) {
    let (mock, gw) = mock_and_gateway().await;
    let text = run_codex(model, &gw, &mock).await;
    let what = format!("Codex -> {model}");
    assert_upstream(&mock, expected, model, &text, &what);
    let log = gw.log();
    assert!(
        log.contains(&format!("dialect=\"openai_responses\" model={model}")),
        "{what}: gateway log lacks the Responses requests:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_to_anthropic_translated() {
    codex_case(CLAUDE, Upstream::Anthropic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_to_openai_passthrough() {
    codex_case(GPT, Upstream::OpenAiResponses).await;
}
