//! Upstream adapters: where each provider lives, how it authenticates and what quirks its API has.
//!
//! A provider sees only canonical requests rendered in ITS dialect (or a passthrough body in its
//! dialect); it never learns which dialect the client spoke. One file per adapter; dispatch is a
//! `match` on the closed [`ProviderKind`].

mod anthropic;
mod azure;
mod compatible;
mod gemini;
mod openai;
mod openrouter;
mod x402;
mod xai;

use crate::config::{Preset, ProviderConfig, ProviderKind};
use ekai_wire::canonical::Dialect;
use http::{HeaderName, HeaderValue};
use serde_json::{Map, Value};
use std::sync::OnceLock;

/// What the gateway asks an upstream to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Generate,
    CountTokens,
    /// `POST /v1/embeddings` and its equivalents.
    Embed,
}

/// Upstream headers as typed values.
pub type HeaderList = Vec<(HeaderName, HeaderValue)>;

#[derive(Debug)]
pub struct Provider {
    pub config: ProviderConfig,
    /// Models the config file declares for this provider (the catalog knows the rest).
    pub models: Vec<String>,
    /// Parsed once: parsing a URL (IDNA host processing included) and converting header names and
    /// values on every request cost more than the rest of building the upstream request.
    urls: [OnceLock<Option<reqwest::Url>>; URL_SLOTS],
    fixed_headers: OnceLock<Result<HeaderList, String>>,
}

const URL_SLOTS: usize = 4 * 3;

fn url_slot(dialect: Dialect, op: Operation) -> usize {
    let d = match dialect {
        Dialect::OpenAiChat => 0,
        Dialect::Anthropic => 1,
        Dialect::OpenAiResponses => 2,
        Dialect::Gemini => 3,
    };
    let o = match op {
        Operation::Generate => 0,
        Operation::CountTokens => 1,
        Operation::Embed => 2,
    };
    d * 3 + o
}

impl Provider {
    pub fn new(config: ProviderConfig) -> Self {
        let models = config.models.clone();
        Provider {
            config,
            models,
            urls: Default::default(),
            fixed_headers: OnceLock::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn dialect(&self) -> Dialect {
        self.config.dialect
    }

    /// The dialect to speak to this provider for a client speaking `client`: the client's own when
    /// the provider accepts it (passthrough), else the provider's primary one (translation).
    pub fn dialect_for(&self, client: Dialect) -> Dialect {
        let speaks_responses = self.config.kind == ProviderKind::OpenAi;
        let x402 = self.config.kind == ProviderKind::X402;
        match client {
            Dialect::OpenAiResponses if speaks_responses => Dialect::OpenAiResponses,
            Dialect::Anthropic if x402 => Dialect::Anthropic,
            _ => self.config.dialect,
        }
    }

    pub fn serves(&self, model: &str) -> bool {
        self.models.iter().any(|m| m == model)
    }

    /// Whether this provider can serve a catalog model at all (an Azure resource serves only the
    /// models it has deployments for).
    pub fn offers(&self, upstream_model: &str) -> bool {
        match self.config.kind {
            ProviderKind::Azure => azure::offers(self.config.azure.as_ref(), upstream_model),
            _ => true,
        }
    }

    /// Full URL for an operation in a dialect, or None when this upstream cannot do it.
    pub fn url(
        &self,
        dialect: Dialect,
        op: Operation,
        model: &str,
        stream: bool,
    ) -> Option<String> {
        let base = &self.config.base_url;
        if self.config.kind == ProviderKind::X402 {
            return x402::url(base, dialect, op);
        }
        if self.config.kind == ProviderKind::Azure && dialect == Dialect::OpenAiChat {
            return azure::url(base, self.config.azure.as_ref(), model, op);
        }
        match (dialect, op) {
            (Dialect::Gemini, Operation::Embed) => Some(gemini::embed_url(base, model)),
            (Dialect::OpenAiChat, Operation::Embed) => match self.config.kind {
                // No embeddings endpoint (their docs list none).
                ProviderKind::Xai
                | ProviderKind::Preset(Preset::Groq | Preset::DeepSeek | Preset::Perplexity) => {
                    None
                }
                _ => Some(format!("{base}/embeddings")),
            },
            (Dialect::Anthropic | Dialect::OpenAiResponses, Operation::Embed) => None,
            (Dialect::Anthropic, Operation::Generate) => Some(format!("{base}/v1/messages")),
            (Dialect::Anthropic, Operation::CountTokens) => {
                Some(format!("{base}/v1/messages/count_tokens"))
            }
            (Dialect::OpenAiChat, Operation::Generate) => Some(format!("{base}/chat/completions")),
            (Dialect::OpenAiResponses, Operation::Generate) => Some(format!("{base}/responses")),
            (Dialect::Gemini, op) => Some(gemini::url(base, model, op, stream)),
            (Dialect::OpenAiChat | Dialect::OpenAiResponses, Operation::CountTokens) => None,
        }
    }

    /// [`Provider::url`], parsed; cached when the URL does not name the model.
    pub fn request_url(
        &self,
        dialect: Dialect,
        op: Operation,
        model: &str,
        stream: bool,
    ) -> Result<Option<reqwest::Url>, String> {
        let parse = || -> Result<Option<reqwest::Url>, String> {
            self.url(dialect, op, model, stream)
                .map(|u| reqwest::Url::parse(&u))
                .transpose()
                .map_err(|e| format!("provider '{}' has an invalid base URL: {e}", self.name()))
        };
        let per_model = dialect == Dialect::Gemini
            || (self.config.kind == ProviderKind::Azure && dialect == Dialect::OpenAiChat);
        if per_model {
            return parse();
        }
        let slot = &self.urls[url_slot(dialect, op)];
        if let Some(u) = slot.get() {
            return Ok(u.clone());
        }
        let u = parse()?;
        Ok(slot.get_or_init(|| u).clone())
    }

    /// [`Provider::headers`] as typed header values (the key's marked sensitive); built once when
    /// they do not depend on the client's Anthropic version/beta headers.
    pub fn header_list(
        &self,
        anthropic_version: Option<&str>,
        anthropic_beta: Option<&str>,
    ) -> Result<HeaderList, String> {
        let convert = |list: Vec<(&'static str, String)>| -> Result<HeaderList, String> {
            list.into_iter()
                .map(|(k, v)| {
                    let mut value = HeaderValue::try_from(v).map_err(|_| {
                        format!(
                            "provider '{}': the '{k}' header (API key?) is not a valid header value",
                            self.name()
                        )
                    })?;
                    value.set_sensitive(true);
                    let name = HeaderName::from_bytes(k.as_bytes())
                        .map_err(|_| format!("invalid upstream header name '{k}'"))?;
                    Ok((name, value))
                })
                .collect()
        };
        let per_client = self.config.dialect == Dialect::Anthropic;
        if per_client {
            return convert(self.headers(anthropic_version, anthropic_beta));
        }
        self.fixed_headers
            .get_or_init(|| convert(self.headers(None, None)))
            .clone()
    }

    /// Authentication and protocol headers. `client_headers` are the Anthropic version/beta headers
    /// the client sent, forwarded only to Anthropic-dialect upstreams.
    pub fn headers(
        &self,
        anthropic_version: Option<&str>,
        anthropic_beta: Option<&str>,
    ) -> Vec<(&'static str, String)> {
        let key = self.config.api_key.as_ref().map(|k| k.expose());
        match self.config.kind {
            ProviderKind::Anthropic => anthropic::headers(key, anthropic_version, anthropic_beta),
            ProviderKind::OpenRouter => openrouter::headers(key),
            ProviderKind::Compatible if self.config.dialect == Dialect::Anthropic => {
                anthropic::headers(key, anthropic_version, anthropic_beta)
            }
            ProviderKind::Gemini => gemini::headers(key),
            ProviderKind::Azure => azure::headers(key),
            ProviderKind::Compatible if self.config.dialect == Dialect::Gemini => {
                gemini::headers(key)
            }
            ProviderKind::OpenAi
            | ProviderKind::Xai
            | ProviderKind::Preset(_)
            | ProviderKind::Compatible => bearer(key),
            // Paid per request: the payment header is added on the paid retry (`proxy::pay`).
            ProviderKind::X402 => Vec::new(),
        }
    }

    /// Adjusts a TRANSLATED request body for this upstream's quirks (passthrough bodies are the
    /// client's own and are left alone).
    pub fn adapt(&self, model: &str, body: &mut Map<String, Value>) {
        match self.config.kind {
            // Azure serves OpenAI's models with OpenAI's parameter rules.
            ProviderKind::OpenAi | ProviderKind::Azure => openai::adapt(model, body),
            ProviderKind::Xai => xai::adapt(model, body),
            ProviderKind::OpenRouter => openrouter::adapt(body),
            ProviderKind::Preset(p) => compatible::adapt(p, model, body),
            ProviderKind::Compatible
            | ProviderKind::Anthropic
            | ProviderKind::Gemini
            | ProviderKind::X402 => {}
        }
    }

    /// Adjusts an embeddings body in OpenAI's shape for this upstream.
    pub fn adapt_embed(&self, body: &mut Map<String, Value>) {
        if let ProviderKind::Preset(p) = self.config.kind {
            compatible::adapt_embed(p, body);
        }
    }

    /// Whether a PASSTHROUGH body (the client's own, already in this provider's dialect) must
    /// still go through [`Provider::adapt`]: the presets reject some of OpenAI's own fields.
    pub fn adapts_passthrough(&self) -> bool {
        match self.config.kind {
            ProviderKind::Preset(p) => {
                self.config.dialect == Dialect::OpenAiChat && compatible::has_quirks(p)
            }
            _ => false,
        }
    }
}

fn bearer(key: Option<&str>) -> Vec<(&'static str, String)> {
    key.map(|k| vec![("authorization", format!("Bearer {k}"))])
        .unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::collections::HashMap;

    fn provider(env: &[(&str, &str)], name: &str) -> Provider {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let c = Config::from_sources(&env, None, None).unwrap();
        let p = c.providers.into_iter().find(|p| p.name == name).unwrap();
        Provider::new(p)
    }

    #[test]
    fn cached_urls_and_headers_match_what_each_request_would_build() {
        let p = provider(&[("OPENAI_API_KEY", "sk-one")], "openai");
        for _ in 0..2 {
            let u = p
                .request_url(Dialect::OpenAiChat, Operation::Generate, "gpt-4o", true)
                .unwrap()
                .unwrap();
            assert_eq!(u.as_str(), "https://api.openai.com/v1/chat/completions");
            let h = p.header_list(None, None).unwrap();
            assert_eq!(h.len(), 1);
            assert_eq!(h[0].0, http::header::AUTHORIZATION);
            assert_eq!(h[0].1, "Bearer sk-one");
            // The key never shows in a header map's Debug output.
            assert!(h[0].1.is_sensitive());
        }
        // Not a URL this provider has: None, from the cache too.
        for _ in 0..2 {
            let u = p.request_url(Dialect::Anthropic, Operation::Embed, "m", false);
            assert_eq!(u, Ok(None));
        }

        // Gemini names the model in the URL: one per model, never a cached one.
        let g = provider(&[("GEMINI_API_KEY", "g-key")], "gemini");
        for m in ["gemini-2.5-flash", "gemini-2.5-pro"] {
            let u = g
                .request_url(Dialect::Gemini, Operation::Generate, m, true)
                .unwrap()
                .unwrap();
            assert!(u.as_str().contains(m), "{u}");
        }

        // Anthropic forwards the client's version and beta headers: built per request.
        let a = provider(&[("ANTHROPIC_API_KEY", "sk-ant")], "anthropic");
        let h = a.header_list(Some("2023-06-01"), Some("b1")).unwrap();
        let h2 = a.header_list(None, None).unwrap();
        let beta = |h: &HeaderList| h.iter().any(|(k, v)| k == "anthropic-beta" && v == "b1");
        assert!(beta(&h) && !beta(&h2));
    }
}
