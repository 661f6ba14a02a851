//! Shared end-to-end harness: the real `ekai-gateway` binary on a real socket, in front of the
//! in-repo mock provider.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

pub mod chain;

pub use ekai_mock_provider::{MockConfig, MockHandle};

pub const OPENAI_KEY: &str = "sk-test-openai-0123456789";
pub const ANTHROPIC_KEY: &str = "sk-ant-test-0123456789";
pub const GOOGLE_KEY: &str = "google-test-0123456789";

pub struct Gateway {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    log: Arc<Mutex<String>>,
    pub dir: PathBuf,
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A fresh empty working directory (so no developer `.env` is read).
pub fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "ekai-e2e-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Gateway {
    /// Starts the binary with ONLY these variables (plus PATH), on a free port.
    pub fn start(env: &[(&str, &str)]) -> Gateway {
        Self::start_with_args(env, &[])
    }

    pub fn start_with_args(env: &[(&str, &str)], args: &[&str]) -> Gateway {
        let dir = scratch_dir();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ekai-gateway"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PORT", "0")
            // The dashboard listener on an ephemeral port too (tests run in parallel).
            .env("UI_PORT", "0")
            // The tests read the per-request usage lines, which are debug when the ledger is on.
            .env("RUST_LOG", "info,ekai::usage=debug")
            .envs(env.iter().copied())
            .args(args)
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn ekai-gateway");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let log2 = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(i) = line.find("listening on http://") {
                    let _ = tx.send(line[i + "listening on ".len()..].trim().to_string());
                }
                let mut l = log2.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(15)) {
            Ok(u) => u,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "gateway did not start; log:\n{}",
                    log.lock().unwrap().as_str()
                );
            }
        };
        Gateway {
            child,
            url,
            log,
            dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `timeout` for the process to exit on its own.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let until = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < until {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Everything the gateway wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log contains `needle` (records are written when a request ends, which for a
    /// stream may be just after the client saw the last byte).
    pub async fn wait_log(&self, needle: &str) -> String {
        for _ in 0..100 {
            let l = self.log();
            if l.contains(needle) {
                return l;
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        panic!("log never contained {needle:?}:\n{}", self.log());
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// True (after saying so) when the tests that need Redis on 127.0.0.1:6379 are switched off with
/// EKAI_SKIP_REDIS=1; without it they FAIL when Redis is unreachable.
pub fn redis_skipped() -> bool {
    if std::env::var("EKAI_SKIP_REDIS").as_deref() == Ok("1") {
        eprintln!("REDIS TEST SKIPPED (EKAI_SKIP_REDIS=1)");
        return true;
    }
    false
}

/// Waits, when needed, until at least 15 s remain of the current clock minute: for tests of
/// per-minute limits, which must not see their window end midway.
pub async fn early_in_a_minute() {
    let second = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() % 60)
        .unwrap_or(0);
    if second > 45 {
        tokio::time::sleep(Duration::from_secs(61 - second)).await;
    }
}

/// A mock whose every answer takes 300 ms, so a burst of requests is in flight at once.
pub async fn slow_mock() -> MockHandle {
    ekai_mock_provider::spawn(MockConfig {
        default_scenario: Some("delay=300".into()),
        ..MockConfig::default()
    })
    .await
    .expect("mock")
}

/// The mock (requiring the test keys) plus a gateway whose OpenAI and Anthropic providers point at it.
pub async fn mock_and_gateway() -> (MockHandle, Gateway) {
    let mock = ekai_mock_provider::spawn(MockConfig::default())
        .await
        .expect("mock");
    let gw = gateway_for(&mock, &[]);
    (mock, gw)
}

pub fn gateway_for(mock: &MockHandle, extra: &[(&str, &str)]) -> Gateway {
    let openai = format!("{}/v1", mock.base_url());
    let base = mock.base_url();
    let mut env: Vec<(&str, &str)> = vec![
        ("OPENAI_API_KEY", OPENAI_KEY),
        ("ANTHROPIC_API_KEY", ANTHROPIC_KEY),
        ("GOOGLE_API_KEY", GOOGLE_KEY),
        ("EKAI_OPENAI_BASE_URL", &openai),
        ("EKAI_ANTHROPIC_BASE_URL", &base),
        ("EKAI_GEMINI_BASE_URL", &base),
    ];
    env.extend_from_slice(extra);
    Gateway::start(&env)
}

/// One pooled client per test thread (each test has its own thread and runtime, and a pooled
/// connection belongs to the runtime that opened it), so load loops reuse keep-alive connections.
pub fn client() -> reqwest::Client {
    thread_local! {
        static CLIENT: reqwest::Client = {
            let _ = rustls::crypto::ring::default_provider().install_default();
            reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap()
        };
    }
    CLIENT.with(Clone::clone)
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
    /// SSE `data:` payloads, in order.
    pub fn sse_data(&self) -> Vec<String> {
        self.text
            .lines()
            .filter_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:")))
            .map(|s| s.trim().to_string())
            .collect()
    }
    /// SSE `event:` names, in order.
    pub fn sse_events(&self) -> Vec<String> {
        self.text
            .lines()
            .filter_map(|l| l.strip_prefix("event: "))
            .map(|s| s.trim().to_string())
            .collect()
    }
}

pub async fn post(url: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let rb = client()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string());
    send(rb, headers).await
}

pub async fn get(url: &str, headers: &[(&str, &str)]) -> Reply {
    send(client().get(url), headers).await
}

async fn send(mut rb: reqwest::RequestBuilder, headers: &[(&str, &str)]) -> Reply {
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let resp = rb.send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    Reply {
        status,
        headers,
        text,
    }
}

// ---------------------------------------------------------------------------------------------
// External tools installed into a cache under the target directory (npm packages), and the
// environment for running them offline.
// ---------------------------------------------------------------------------------------------

/// Longest an installer step (npm install, pip install) may run.
pub const INSTALL_TIMEOUT: Duration = Duration::from_secs(900);

/// A cross-process lock: a directory created atomically, holding the owner's pid; removed on drop.
/// A lock left by a dead process (or older than the install timeout) is taken over.
pub struct DirLock(PathBuf);

impl DirLock {
    pub async fn acquire(path: PathBuf) -> Result<DirLock, String> {
        let start = std::time::Instant::now();
        loop {
            match std::fs::create_dir(&path) {
                Ok(()) => {
                    let _ = std::fs::write(path.join("pid"), std::process::id().to_string());
                    return Ok(DirLock(path));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if Self::stale(&path) {
                        let _ = std::fs::remove_dir_all(&path);
                        continue;
                    }
                    if start.elapsed() > INSTALL_TIMEOUT {
                        return Err(format!(
                            "setup lock {path:?} still held after {INSTALL_TIMEOUT:?}"
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(format!("create lock {path:?}: {e}")),
            }
        }
    }

    fn stale(path: &std::path::Path) -> bool {
        let old = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > INSTALL_TIMEOUT);
        let dead_owner = cfg!(target_os = "linux")
            && std::fs::read_to_string(path.join("pid"))
                .ok()
                .and_then(|p| p.trim().parse::<u32>().ok())
                .is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists());
        old || dead_owner
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A command for an installer: the developer's environment (proxies, registry config) minus
/// API keys, stdin closed, killed if the test gives up on it.
pub fn installer_command(program: impl AsRef<std::ffi::OsStr>) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(program);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().to_string();
        if k.starts_with("OPENAI_") || k.starts_with("ANTHROPIC_") || k.starts_with("EKAI_") {
            cmd.env_remove(k);
        }
    }
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    cmd
}

/// Runs an installer step; Err carries the command and its full output.
pub async fn run_install_step(what: &str, mut cmd: tokio::process::Command) -> Result<(), String> {
    let out = tokio::time::timeout(INSTALL_TIMEOUT, cmd.output())
        .await
        .map_err(|_| format!("{what}: timed out after {INSTALL_TIMEOUT:?}"))?
        .map_err(|e| format!("{what}: could not start: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what}: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// `npm install` of `src/package.json` (+ `src/package-lock.json`, if committed) into `dir`
/// (under a cross-process lock), redone only when either file changed since the last
/// successful install. Returns `dir` (which then holds `node_modules`).
pub async fn npm_install_cached(
    src: &std::path::Path,
    dir: &std::path::Path,
) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("create {dir:?}: {e}"))?;
    let _lock = DirLock::acquire(dir.join("setup.lock")).await?;
    let pkg_src = src.join("package.json");
    let pkg = std::fs::read_to_string(&pkg_src).map_err(|e| format!("read {pkg_src:?}: {e}"))?;
    let lock = std::fs::read_to_string(src.join("package-lock.json")).ok();
    let wanted = format!("{pkg}\n{}", lock.as_deref().unwrap_or(""));
    let stamp = dir.join("ekai-package.stamp");
    let modules = dir.join("node_modules");
    if modules.is_dir() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str())
    {
        return Ok(dir.to_path_buf());
    }
    let _ = std::fs::remove_file(&stamp);
    let _ = std::fs::remove_file(dir.join("package-lock.json"));
    if modules.exists() {
        std::fs::remove_dir_all(&modules).map_err(|e| format!("remove {modules:?}: {e}"))?;
    }
    std::fs::write(dir.join("package.json"), &pkg)
        .map_err(|e| format!("write package.json: {e}"))?;
    if let Some(lock) = &lock {
        std::fs::write(dir.join("package-lock.json"), lock)
            .map_err(|e| format!("write package-lock.json: {e}"))?;
    }
    let mut cmd = installer_command("npm");
    // `npm ci` installs exactly the lock file; without one, `npm install` resolves package.json.
    let verb = if lock.is_some() { "ci" } else { "install" };
    cmd.args([verb, "--no-audit", "--no-fund"]).current_dir(dir);
    run_install_step(&format!("npm {verb} in {dir:?}"), cmd).await?;
    std::fs::write(&stamp, &wanted).map_err(|e| format!("write {stamp:?}: {e}"))?;
    Ok(dir.to_path_buf())
}

/// A local HTTP proxy that refuses everything and remembers what was asked of it. Pointing a
/// subprocess's `HTTP(S)_PROXY` / `ALL_PROXY` at it (with `NO_PROXY` for loopback) keeps the
/// process off the network while showing which hosts it tried to reach.
pub struct DenyProxy {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    seen: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl DenyProxy {
    pub async fn start() -> DenyProxy {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind deny proxy");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let seen = Arc::clone(&seen2);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let n = tokio::time::timeout(Duration::from_secs(5), sock.read(&mut buf))
                        .await
                        .ok()
                        .and_then(Result::ok)
                        .unwrap_or(0);
                    let head = String::from_utf8_lossy(&buf[..n]);
                    let line = head.lines().next().unwrap_or("").to_string();
                    seen.lock().unwrap().push(line);
                    let _ = sock
                        .write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .await;
                });
            }
        });
        DenyProxy { url, seen, task }
    }

    /// Request lines received so far (`CONNECT host:443 HTTP/1.1`, `GET http://… HTTP/1.1`).
    pub fn attempts(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    /// Variables that route every non-loopback connection of a child process through the proxy.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let no_proxy = "127.0.0.1,localhost,::1".to_string();
        vec![
            ("HTTP_PROXY", self.url.clone()),
            ("HTTPS_PROXY", self.url.clone()),
            ("ALL_PROXY", self.url.clone()),
            ("http_proxy", self.url.clone()),
            ("https_proxy", self.url.clone()),
            ("all_proxy", self.url.clone()),
            ("NO_PROXY", no_proxy.clone()),
            ("no_proxy", no_proxy),
        ]
    }
}

impl Drop for DenyProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
