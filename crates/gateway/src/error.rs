//! The gateway's one error type. It knows its kind, status and where it came from; it does not know
//! how to render itself: `api::error` renders it in the client's dialect.

use ekai_wire::canonical::{ErrorKind, WireError};
use http::StatusCode;

/// Where a failure originated: decides retryability (fallback, a later issue) and log level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The client sent something we refuse.
    Client,
    /// The upstream answered with an error or failed to answer.
    Upstream,
    /// Our own fault.
    Internal,
}

#[derive(Debug, Clone)]
pub struct GatewayError {
    pub kind: ErrorKind,
    pub status: StatusCode,
    pub message: String,
    pub param: Option<String>,
    /// Machine-readable code for OpenAI-shaped errors (`model_not_found`, …).
    pub code: Option<&'static str>,
    /// Relayed from an upstream 429/503, or our own limit's reset.
    pub retry_after: Option<String>,
    /// A client's token limit refused the request: (limit, seconds to reset) for the
    /// `x-ratelimit-*-tokens` headers.
    pub token_limit: Option<(u64, u64)>,
    pub origin: Origin,
}

impl GatewayError {
    fn new(
        kind: ErrorKind,
        status: StatusCode,
        message: impl Into<String>,
        origin: Origin,
    ) -> Self {
        GatewayError {
            kind,
            status,
            message: message.into(),
            param: None,
            code: None,
            retry_after: None,
            token_limit: None,
            origin,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(
            ErrorKind::InvalidRequest,
            StatusCode::BAD_REQUEST,
            message,
            Origin::Client,
        )
    }

    pub fn with_param(mut self, param: Option<String>) -> Self {
        self.param = param;
        self
    }

    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    pub fn model_not_found(model: &str) -> Self {
        Self::new(
            ErrorKind::NotFound,
            StatusCode::NOT_FOUND,
            format!(
                "model '{model}' is not served by this gateway; GET /v1/models lists the models it serves"
            ),
            Origin::Client,
        )
        .with_param(Some("model".into()))
        .with_code("model_not_found")
    }

    pub fn provider_not_configured(model: &str, provider: &str, env: &str) -> Self {
        Self::invalid(format!(
            "model '{model}' is served by provider '{provider}', which has no API key: set {env} in the environment or .env and restart the gateway"
        ))
        .with_param(Some("model".into()))
        .with_code("provider_not_configured")
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            ErrorKind::RequestTooLarge,
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than the gateway's limit of {limit} bytes"),
            Origin::Client,
        )
    }

    pub fn loop_detected() -> Self {
        Self::new(
            ErrorKind::InvalidRequest,
            StatusCode::LOOP_DETECTED,
            "request loop detected: this request was sent by this gateway to itself. A provider base URL (EKAI_*_BASE_URL) points at the gateway; point it at the real provider",
            Origin::Client,
        )
        .with_code("loop_detected")
    }

    pub fn upstream_timeout(provider: &str, what: &str) -> Self {
        Self::new(
            ErrorKind::Timeout,
            StatusCode::GATEWAY_TIMEOUT,
            format!("provider '{provider}' timed out {what}"),
            Origin::Upstream,
        )
    }

    pub fn upstream_unreachable(provider: &str, detail: &str) -> Self {
        Self::new(
            ErrorKind::Api,
            StatusCode::BAD_GATEWAY,
            format!("could not reach provider '{provider}': {detail}"),
            Origin::Upstream,
        )
    }

    pub fn upstream_invalid(provider: &str, detail: &str) -> Self {
        Self::new(
            ErrorKind::Api,
            StatusCode::BAD_GATEWAY,
            format!("provider '{provider}' sent a response the gateway cannot read: {detail}"),
            Origin::Upstream,
        )
    }

    /// An upstream error response, relayed with its status and message.
    pub fn upstream(status: u16, provider: &str, message: &str) -> Self {
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
        Self::new(
            ErrorKind::from_status(status),
            code,
            format!("{provider}: {message}"),
            Origin::Upstream,
        )
    }

    /// The caller may not do this (403), e.g. a key pinned to providers that do not serve the model.
    pub fn permission_denied(message: impl Into<String>) -> Self {
        Self::new(
            ErrorKind::PermissionDenied,
            StatusCode::FORBIDDEN,
            message,
            Origin::Client,
        )
    }

    /// The monthly budget is spent (and not alert-only).
    pub fn budget_exceeded(message: &str) -> Self {
        Self::new(
            ErrorKind::PermissionDenied,
            StatusCode::PAYMENT_REQUIRED,
            format!("{message}; raise or clear the cap with PUT /budget"),
            Origin::Client,
        )
        .with_code("BUDGET_EXCEEDED")
    }

    /// The gateway would not pay the x402 relay (spend controls): nothing was signed.
    pub fn payment_refused(message: &str) -> Self {
        Self::new(
            ErrorKind::PermissionDenied,
            StatusCode::PAYMENT_REQUIRED,
            message,
            Origin::Client,
        )
        .with_code("x402_payment_refused")
    }

    /// The x402 relay did not accept a signed payment (rejected or not settled).
    pub fn payment_failed(message: &str) -> Self {
        Self::new(
            ErrorKind::PermissionDenied,
            StatusCode::PAYMENT_REQUIRED,
            message,
            Origin::Upstream,
        )
        .with_code("x402_payment_failed")
    }

    /// The calling client's own monthly budget is spent.
    pub fn client_budget_exceeded(message: &str) -> Self {
        Self::new(
            ErrorKind::PermissionDenied,
            StatusCode::PAYMENT_REQUIRED,
            message,
            Origin::Client,
        )
        .with_code("BUDGET_EXCEEDED")
    }

    /// The request's estimated tokens do not fit in the client's token window.
    pub fn token_limit(what: &str, limit: u64, needed: u64, reset: u64) -> Self {
        let mut e = Self::new(
            ErrorKind::RateLimit,
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "this key's limit of {limit} {what} would be exceeded by this request (about {needed} tokens); retry in {reset} s"
            ),
            Origin::Client,
        );
        e.retry_after = Some(reset.to_string());
        e.token_limit = Some((limit, reset));
        e
    }

    /// No usable client key (the message names the header to send; it never contains the key).
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(
            ErrorKind::Authentication,
            StatusCode::UNAUTHORIZED,
            message,
            Origin::Client,
        )
        .with_code("invalid_api_key")
    }

    /// A client's rate limit: 429 with `Retry-After`.
    pub fn client_rate_limited(message: impl Into<String>, retry_after: u64) -> Self {
        let mut e = Self::new(
            ErrorKind::RateLimit,
            StatusCode::TOO_MANY_REQUESTS,
            message,
            Origin::Client,
        )
        .with_code("rate_limit_exceeded");
        e.retry_after = Some(retry_after.max(1).to_string());
        e
    }

    /// A Sapphire-mode refusal or failure. The code also leads the message, so dialects without a
    /// code field (Anthropic, Gemini) carry it too.
    pub fn sapphire(
        status: StatusCode,
        code: &'static str,
        message: impl std::fmt::Display,
    ) -> Self {
        let (kind, origin) = match status.as_u16() {
            401 => (ErrorKind::Authentication, Origin::Client),
            403 => (ErrorKind::PermissionDenied, Origin::Client),
            404 => (ErrorKind::NotFound, Origin::Client),
            400..=499 => (ErrorKind::InvalidRequest, Origin::Client),
            503 => (ErrorKind::Api, Origin::Upstream),
            _ => (ErrorKind::Api, Origin::Internal),
        };
        Self::new(kind, status, format!("{code}: {message}"), origin).with_code(code)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            ErrorKind::Api,
            StatusCode::INTERNAL_SERVER_ERROR,
            message,
            Origin::Internal,
        )
    }
}

impl From<WireError> for GatewayError {
    fn from(e: WireError) -> Self {
        // Anthropic's error shape has no `param`, so the message itself names the field.
        let message = match &e.param {
            Some(p) if !e.message.contains(p.as_str()) => format!("{p}: {}", e.message),
            _ => e.message,
        };
        GatewayError::invalid(message).with_param(e.param)
    }
}
