//! What the gateway knows about each request once it is over: the seam the usage ledger plugs into.
//!
//! Today a finished record goes to the log (target `ekai::usage`); the ledger will replace `Record::write`
//! with a non-blocking hand-off to its batching writer. A record is written exactly once: by
//! `finish`/`fail`, or by `Drop` when the request's future was dropped because the client hung up
//! (then it is marked `client_disconnected`).

use ekai_wire::canonical::{Dialect, Usage};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Record {
    pub request_id: String,
    pub client_dialect: Dialect,
    pub requested_model: String,
    pub provider: String,
    pub upstream_model: String,
    pub status: u16,
    pub error: Option<String>,
    pub usage: Usage,
    /// The provider reported no usage.
    pub usage_missing: bool,
    pub streamed: bool,
    pub client_disconnected: bool,
    pub first_byte: Option<Duration>,
    pub total: Duration,
    started: Instant,
    written: bool,
}

impl Record {
    pub fn new(
        request_id: &str,
        client_dialect: Dialect,
        requested_model: &str,
        provider: &str,
        upstream_model: &str,
        streamed: bool,
        started: Instant,
    ) -> Self {
        Record {
            request_id: request_id.to_string(),
            client_dialect,
            requested_model: requested_model.to_string(),
            provider: provider.to_string(),
            upstream_model: upstream_model.to_string(),
            status: 200,
            error: None,
            usage: Usage::default(),
            usage_missing: true,
            streamed,
            client_disconnected: false,
            first_byte: None,
            total: Duration::ZERO,
            started,
            written: false,
        }
    }

    pub fn set_usage(&mut self, usage: Usage) {
        self.usage = usage;
        self.usage_missing = usage.is_empty();
    }

    /// The request ended normally (whatever its status).
    pub fn finish(mut self) {
        self.write();
    }

    /// The request ended with an error before any response body reached the client.
    pub fn fail(mut self, status: u16, message: &str) {
        self.status = status;
        self.error = Some(message.to_string());
        self.write();
    }

    fn write(&mut self) {
        if self.written {
            return;
        }
        self.written = true;
        self.total = self.started.elapsed();
        tracing::info!(
            target: "ekai::usage",
            request_id = %self.request_id,
            dialect = self.client_dialect.as_str(),
            model = %self.requested_model,
            provider = %self.provider,
            upstream_model = %self.upstream_model,
            status = self.status,
            error = self.error.as_deref().unwrap_or(""),
            input_tokens = self.usage.input_tokens,
            output_tokens = self.usage.output_tokens,
            cache_read_tokens = self.usage.cache_read_tokens,
            cache_write_tokens = self.usage.cache_write_tokens,
            reasoning_tokens = self.usage.reasoning_tokens,
            usage_missing = self.usage_missing,
            streamed = self.streamed,
            client_disconnected = self.client_disconnected,
            first_byte_ms = self.first_byte.map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0),
            total_ms = self.total.as_secs_f64() * 1000.0,
            "request finished"
        );
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        if !self.written {
            self.client_disconnected = true;
            self.write();
        }
    }
}
