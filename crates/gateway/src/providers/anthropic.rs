//! Anthropic (api.anthropic.com).

/// The API version the gateway speaks when the client named none.
pub const DEFAULT_VERSION: &str = "2023-06-01";

pub fn headers(
    key: Option<&str>,
    version: Option<&str>,
    beta: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut h = Vec::with_capacity(3);
    if let Some(k) = key {
        h.push(("x-api-key", k.to_string()));
    }
    h.push((
        "anthropic-version",
        version.unwrap_or(DEFAULT_VERSION).to_string(),
    ));
    if let Some(b) = beta {
        h.push(("anthropic-beta", b.to_string()));
    }
    h
}
