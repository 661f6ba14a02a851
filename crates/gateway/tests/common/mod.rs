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
            .env("RUST_LOG", "info")
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
