//! Model → provider resolution.
//!
//! Today a model goes to the first configured provider that serves it (issue: cost routing and
//! fallback will return an ordered candidate list from here; callers already take a `Route`).

use crate::config::ProviderKind;
use crate::error::GatewayError;
use crate::providers::Provider;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Route {
    pub provider: Arc<Provider>,
    /// The model id to send upstream.
    pub upstream_model: String,
}

#[derive(Debug)]
pub struct Router {
    providers: Vec<Arc<Provider>>,
}

/// Which vendor a model id's naming points at, and that vendor's prefix on OpenRouter.
fn family(model: &str) -> Option<(ProviderKind, &'static str)> {
    let m = model;
    if m.starts_with("claude-") {
        Some((ProviderKind::Anthropic, "anthropic"))
    } else if m.starts_with("gpt-")
        || m.starts_with("chatgpt-")
        || m.starts_with("codex-")
        || ["o1", "o3", "o4"]
            .iter()
            .any(|p| m == *p || m.starts_with(&format!("{p}-")))
    {
        Some((ProviderKind::OpenAi, "openai"))
    } else if m.starts_with("grok-") {
        Some((ProviderKind::Xai, "x-ai"))
    } else {
        None
    }
}

impl Router {
    pub fn new(providers: Vec<Arc<Provider>>) -> Self {
        Router { providers }
    }

    pub fn providers(&self) -> &[Arc<Provider>] {
        &self.providers
    }

    fn configured(&self) -> impl Iterator<Item = &Arc<Provider>> {
        self.providers.iter().filter(|p| p.config.is_configured())
    }

    fn by_kind(&self, kind: ProviderKind) -> Option<&Arc<Provider>> {
        self.providers.iter().find(|p| p.config.kind == kind)
    }

    fn route(p: &Arc<Provider>, model: &str) -> Route {
        Route {
            provider: Arc::clone(p),
            upstream_model: model.to_string(),
        }
    }

    pub fn resolve(&self, model: &str) -> Result<Route, GatewayError> {
        if model.is_empty() {
            return Err(
                GatewayError::invalid("`model` must not be empty").with_param(Some("model".into()))
            );
        }
        // 1. A configured provider lists it.
        if let Some(p) = self.configured().find(|p| p.serves(model)) {
            return Ok(Self::route(p, model));
        }
        // 2. `provider/model` naming a configured provider explicitly.
        if let Some((prefix, rest)) = model.split_once('/') {
            if let Some(p) = self.configured().find(|p| p.name() == prefix) {
                return Ok(Self::route(p, rest));
            }
        }
        // 3. A vendor's naming: its newest model works the day it ships.
        let fam = family(model);
        if let Some((kind, _)) = fam {
            if let Some(p) = self.by_kind(kind).filter(|p| p.config.is_configured()) {
                return Ok(Self::route(p, model));
            }
        }
        // 4. OpenRouter serves `vendor/model` ids and every family.
        if let Some(or) = self
            .by_kind(ProviderKind::OpenRouter)
            .filter(|p| p.config.is_configured())
        {
            if model.contains('/') {
                return Ok(Self::route(or, model));
            }
            if let Some((_, vendor)) = fam {
                return Ok(Self::route(or, &format!("{vendor}/{model}")));
            }
        }
        // 5. Known, but nobody with a key serves it: say which key to set.
        let owner = self
            .providers
            .iter()
            .find(|p| p.serves(model))
            .or_else(|| fam.and_then(|(kind, _)| self.by_kind(kind)));
        match owner {
            Some(p) => Err(GatewayError::provider_not_configured(
                model,
                p.name(),
                &p.config.key_env,
            )),
            None => Err(GatewayError::model_not_found(model)),
        }
    }

    /// Every model some configured provider can serve, with that provider's name.
    pub fn models(&self) -> Vec<(&str, &str)> {
        let mut out: Vec<(&str, &str)> = Vec::new();
        for p in self.configured() {
            for m in &p.models {
                if !out.iter().any(|(id, _)| id == m) {
                    out.push((m.as_str(), p.name()));
                }
            }
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::collections::HashMap;

    fn router(env: &[(&str, &str)]) -> Router {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let c = Config::from_sources(&env, None, None).unwrap();
        Router::new(
            c.providers
                .into_iter()
                .map(|p| Arc::new(Provider::new(p)))
                .collect(),
        )
    }

    #[test]
    fn listed_model_goes_to_its_provider() {
        let r = router(&[("OPENAI_API_KEY", "k"), ("ANTHROPIC_API_KEY", "k")]);
        assert_eq!(r.resolve("gpt-4o").unwrap().provider.name(), "openai");
        assert_eq!(
            r.resolve("claude-sonnet-4-5").unwrap().provider.name(),
            "anthropic"
        );
    }

    #[test]
    fn unreleased_family_member_is_forwarded() {
        let r = router(&[("ANTHROPIC_API_KEY", "k"), ("OPENAI_API_KEY", "k")]);
        assert_eq!(
            r.resolve("claude-opus-9-9").unwrap().provider.name(),
            "anthropic"
        );
        assert_eq!(r.resolve("o4-pro").unwrap().provider.name(), "openai");
        assert_eq!(r.resolve("gpt-7").unwrap().provider.name(), "openai");
    }

    #[test]
    fn missing_key_names_the_variable() {
        let r = router(&[]);
        let e = r.resolve("claude-sonnet-4-5").unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.message.contains("ANTHROPIC_API_KEY"), "{}", e.message);
        let e = r.resolve("grok-9").unwrap_err();
        assert!(e.message.contains("XAI_API_KEY"), "{}", e.message);
    }

    #[test]
    fn unknown_model_is_404() {
        let r = router(&[("OPENAI_API_KEY", "k")]);
        let e = r.resolve("llama-nonexistent").unwrap_err();
        assert_eq!(e.status, 404);
        assert!(e.message.contains("/v1/models"));
    }

    #[test]
    fn openrouter_takes_vendor_ids_and_families_without_direct_keys() {
        let r = router(&[("OPENROUTER_API_KEY", "k")]);
        let route = r.resolve("anthropic/claude-sonnet-4.5").unwrap();
        assert_eq!(route.provider.name(), "openrouter");
        assert_eq!(route.upstream_model, "anthropic/claude-sonnet-4.5");
        let route = r.resolve("gpt-4o").unwrap();
        assert_eq!(route.upstream_model, "openai/gpt-4o");
    }

    #[test]
    fn provider_prefix_selects_that_provider() {
        let r = router(&[("OPENAI_API_KEY", "k"), ("XAI_API_KEY", "k")]);
        let route = r.resolve("xai/grok-4").unwrap();
        assert_eq!(route.provider.name(), "xai");
        assert_eq!(route.upstream_model, "grok-4");
    }
}
