//! Azure OpenAI: the OpenAI Chat and Embeddings APIs under per-deployment URLs
//! (`{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=…`), the key in the
//! `api-key` header (Azure OpenAI REST reference). The body's `model` is ignored by Azure: the
//! deployment in the path chooses the model.

use super::Operation;
use crate::config::AzureSettings;

/// The deployment serving `model`: the configured one, else a deployment named after the model.
pub fn deployment<'a>(settings: Option<&'a AzureSettings>, model: &'a str) -> &'a str {
    settings
        .and_then(|s| s.deployments.get(model))
        .map(String::as_str)
        .unwrap_or(model)
}

/// Whether this Azure resource has a deployment for `model` (every model when none are listed).
pub fn offers(settings: Option<&AzureSettings>, model: &str) -> bool {
    settings.is_none_or(|s| s.deployments.is_empty() || s.deployments.contains_key(model))
}

pub fn url(
    base: &str,
    settings: Option<&AzureSettings>,
    model: &str,
    op: Operation,
) -> Option<String> {
    let path = match op {
        Operation::Generate => "chat/completions",
        Operation::Embed => "embeddings",
        Operation::CountTokens => return None,
    };
    let version = settings
        .map(|s| s.api_version.as_str())
        .unwrap_or(crate::config::AZURE_DEFAULT_API_VERSION);
    Some(format!(
        "{base}/openai/deployments/{}/{path}?api-version={}",
        encode(deployment(settings, model)),
        encode(version)
    ))
}

pub fn headers(key: Option<&str>) -> Vec<(&'static str, String)> {
    key.map(|k| vec![("api-key", k.to_string())])
        .unwrap_or_default()
}

/// Percent-encodes everything but RFC 3986 unreserved characters (deployment names are
/// user-chosen; a '/' or '?' in one must not change the URL's shape).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn deployment_urls_carry_the_api_version() {
        let s = AzureSettings {
            api_version: "2024-10-21".into(),
            deployments: BTreeMap::from([("gpt-4o".into(), "prod gpt4o".into())]),
        };
        let b = "https://r.openai.azure.com";
        assert_eq!(
            url(b, Some(&s), "gpt-4o", Operation::Generate).as_deref(),
            Some(
                "https://r.openai.azure.com/openai/deployments/prod%20gpt4o/chat/completions?api-version=2024-10-21"
            )
        );
        assert_eq!(
            url(b, Some(&s), "gpt-4o", Operation::Embed).as_deref(),
            Some(
                "https://r.openai.azure.com/openai/deployments/prod%20gpt4o/embeddings?api-version=2024-10-21"
            )
        );
        assert!(url(b, Some(&s), "gpt-4o", Operation::CountTokens).is_none());
        assert!(offers(Some(&s), "gpt-4o") && !offers(Some(&s), "gpt-4o-mini"));
        assert_eq!(headers(Some("k")), vec![("api-key", "k".to_string())]);
    }
}
