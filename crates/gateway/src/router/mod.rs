//! Model → ordered candidates (provider, upstream id, price), the gateway's routing brain.
//!
//! Candidates come from, in this order of precedence: the catalog (a model id or alias, expanded to
//! every provider that serves the same canonical model), models a provider declares in the config,
//! an explicit `provider/model` pin, a vendor's naming family (`claude-*`, `gpt-*`, …, also via
//! OpenRouter), and finally OpenRouter for any `vendor/model` id. Only providers with credentials
//! are candidates. They are then ordered by configured rules, availability (circuit, Retry-After),
//! the strategy (expected cost of THIS request, latency, or config order), error rate and latency.
//! The proxy tries them in that order (see `proxy::Proxy::generate`).

pub mod health;

use crate::catalog::{Catalog, Price};
use crate::config::{Preset, ProviderKind, Routing, Strategy};
use crate::error::GatewayError;
use crate::providers::Provider;
use health::{BreakerSettings, HealthView, ProviderHealth};
use rust_decimal::Decimal;
use std::cmp::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// What the router knows of a request's size before choosing (cheap estimates from its body).
#[derive(Debug, Clone, Copy, Default)]
pub struct Estimate {
    pub input_tokens: u64,
    /// Prompt tokens up to the last block marked for caching.
    pub cached_tokens: u64,
    /// The request's own output limit, if it set one.
    pub max_output: Option<u32>,
}

/// Why a candidate is on the list (for logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Catalog,
    Declared,
    Pinned,
    Family,
    OpenRouter,
    /// The x402 relay, paid per request (hybrid: nobody with a key serves the model; x402-only).
    X402,
}

#[derive(Debug, Clone)]
pub struct Candidate {
    pub provider: Arc<Provider>,
    pub health: Arc<ProviderHealth>,
    pub upstream_model: String,
    pub price: Option<Price>,
    /// The model's output limit on this provider, when the catalog knows it.
    pub max_output: Option<u32>,
    pub expected_cost: Option<Decimal>,
    pub source: Source,
    order: usize,
}

#[derive(Debug)]
pub struct Router {
    providers: Vec<Arc<Provider>>,
    health: Vec<Arc<ProviderHealth>>,
    catalog: Catalog,
    settings: Routing,
}

/// Which vendor a model id's naming points at (None: a vendor without a direct adapter yet), and
/// that vendor's prefix on OpenRouter.
fn family(model: &str) -> Option<(Option<ProviderKind>, &'static str)> {
    let m = model;
    if m.starts_with("claude-") {
        Some((Some(ProviderKind::Anthropic), "anthropic"))
    } else if m.starts_with("gpt-")
        || m.starts_with("chatgpt-")
        || m.starts_with("codex-")
        || ["o1", "o3", "o4"]
            .iter()
            .any(|p| m == *p || m.starts_with(&format!("{p}-")))
    {
        Some((Some(ProviderKind::OpenAi), "openai"))
    } else if m.starts_with("grok-") {
        Some((Some(ProviderKind::Xai), "x-ai"))
    } else if m.starts_with("gemini-") {
        Some((Some(ProviderKind::Gemini), "google"))
    } else if [
        "mistral-",
        "codestral-",
        "magistral-",
        "ministral-",
        "devstral-",
    ]
    .iter()
    .any(|p| m.starts_with(p))
    {
        Some((Some(ProviderKind::Preset(Preset::Mistral)), "mistralai"))
    } else if m.starts_with("deepseek-") {
        Some((Some(ProviderKind::Preset(Preset::DeepSeek)), "deepseek"))
    } else if m.starts_with("glm-") {
        Some((Some(ProviderKind::Preset(Preset::Zai)), "z-ai"))
    } else if m == "sonar" || m.starts_with("sonar-") {
        Some((Some(ProviderKind::Preset(Preset::Perplexity)), "perplexity"))
    } else if m.starts_with("command-") {
        Some((Some(ProviderKind::Preset(Preset::Cohere)), "cohere"))
    } else {
        None
    }
}

impl Router {
    pub fn new(
        providers: Vec<Arc<Provider>>,
        catalog: Catalog,
        settings: Routing,
        breaker: BreakerSettings,
    ) -> Self {
        let health = providers
            .iter()
            .map(|_| Arc::new(ProviderHealth::new(breaker.clone())))
            .collect();
        Router {
            providers,
            health,
            catalog,
            settings,
        }
    }

    pub fn providers(&self) -> &[Arc<Provider>] {
        &self.providers
    }

    pub fn settings(&self) -> &Routing {
        &self.settings
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Each provider with its health, for `/health`.
    pub fn health(&self) -> impl Iterator<Item = (&Arc<Provider>, HealthView)> {
        self.providers
            .iter()
            .zip(&self.health)
            .map(|(p, h)| (p, h.view()))
    }

    fn configured(&self) -> impl Iterator<Item = (usize, &Arc<Provider>)> {
        self.providers
            .iter()
            .enumerate()
            .filter(|(_, p)| self.usable(p))
    }

    /// Has credentials, and the x402 mode lets it serve (x402-only: the relay alone).
    pub fn usable(&self, p: &Provider) -> bool {
        p.config.is_configured()
            && (!self.settings.x402_only || p.config.kind == ProviderKind::X402)
    }

    /// The relay as a candidate for `model`, priced by the catalog when it knows the model (the
    /// spend controls compare the relay's ask with that estimate).
    fn x402_candidate(&self, model: &str) -> Option<Candidate> {
        let (i, _) = self.by_kind(ProviderKind::X402)?;
        let hits = self.catalog.resolve(model);
        let priced = hits.iter().find(|e| e.price.is_some());
        let mut c = self.candidate(i, model, priced.and_then(|e| e.price.clone()), Source::X402)?;
        c.max_output = priced.and_then(|e| e.max_output);
        Some(c)
    }

    fn by_name(&self, name: &str) -> Option<(usize, &Arc<Provider>)> {
        self.providers
            .iter()
            .enumerate()
            .find(|(_, p)| p.name() == name)
    }

    fn by_kind(&self, kind: ProviderKind) -> Option<(usize, &Arc<Provider>)> {
        self.providers
            .iter()
            .enumerate()
            .find(|(_, p)| p.config.kind == kind)
    }

    fn candidate(
        &self,
        i: usize,
        upstream: &str,
        price: Option<Price>,
        source: Source,
    ) -> Option<Candidate> {
        Some(Candidate {
            provider: Arc::clone(self.providers.get(i)?),
            health: Arc::clone(self.health.get(i)?),
            upstream_model: upstream.to_string(),
            price,
            max_output: None,
            expected_cost: None,
            source,
            order: i,
        })
    }

    /// The unordered candidates, or the error a client should see when there are none.
    fn candidates(&self, model: &str) -> Result<Vec<Candidate>, GatewayError> {
        if model.is_empty() {
            return Err(
                GatewayError::invalid("`model` must not be empty").with_param(Some("model".into()))
            );
        }
        if self.settings.x402_only {
            return self
                .x402_candidate(model)
                .map(|c| vec![c])
                .ok_or_else(|| GatewayError::model_not_found(model));
        }
        let mut out: Vec<Candidate> = Vec::new();
        let push = |out: &mut Vec<Candidate>, c: Option<Candidate>| {
            if let Some(c) = c {
                if !out
                    .iter()
                    .any(|o| o.order == c.order && o.upstream_model == c.upstream_model)
                {
                    out.push(c);
                }
            }
        };

        // 1. The catalog: every provider serving the same canonical model.
        let hits = self.catalog.resolve(model);
        let mut catalog_owner: Option<&str> = None;
        for hit in &hits {
            for entry in self.catalog.resolve(&hit.id) {
                if entry.id != hit.id {
                    continue;
                }
                catalog_owner.get_or_insert(&entry.provider);
                if let Some((i, p)) = self.by_name(&entry.provider) {
                    if self.usable(p) && p.offers(&entry.upstream) {
                        let c = self
                            .candidate(i, &entry.upstream, entry.price.clone(), Source::Catalog)
                            .map(|mut c| {
                                c.max_output = entry.max_output;
                                c
                            });
                        push(&mut out, c);
                    }
                }
            }
        }
        // 2. Models the config file declares for a provider the catalog did not already offer.
        for (i, p) in self.configured() {
            if p.serves(model) && !out.iter().any(|c| c.order == i) {
                push(&mut out, self.candidate(i, model, None, Source::Declared));
            }
        }
        if !out.is_empty() {
            return Ok(out);
        }
        // 3. `provider/model` naming a configured provider pins it.
        if let Some((prefix, rest)) = model.split_once('/') {
            if let Some((i, p)) = self.by_name(prefix).filter(|(_, p)| self.usable(p)) {
                let entry = self
                    .catalog
                    .resolve(rest)
                    .into_iter()
                    .find(|e| e.provider == p.name());
                let (upstream, price) = match entry {
                    Some(e) => (e.upstream.as_str(), e.price.clone()),
                    None => (rest, None),
                };
                push(&mut out, self.candidate(i, upstream, price, Source::Pinned));
                return Ok(out);
            }
        }
        // 4. A vendor's naming: its newest model works the day it ships, directly and via OpenRouter.
        let fam = family(model);
        let openrouter = self
            .by_kind(ProviderKind::OpenRouter)
            .filter(|(_, p)| self.usable(p));
        if let Some((kind, vendor)) = fam {
            if let Some((i, _)) = kind
                .and_then(|k| self.by_kind(k))
                .filter(|(_, p)| self.usable(p))
            {
                push(&mut out, self.candidate(i, model, None, Source::Family));
            }
            if let Some((i, _)) = openrouter {
                push(
                    &mut out,
                    self.candidate(i, &format!("{vendor}/{model}"), None, Source::Family),
                );
            }
        }
        // 5. OpenRouter serves any `vendor/model` id.
        if let Some((i, _)) = openrouter.filter(|_| model.contains('/')) {
            push(&mut out, self.candidate(i, model, None, Source::OpenRouter));
        }
        if !out.is_empty() {
            return Ok(out);
        }
        // Hybrid: nobody with a key serves it, so pay the relay for it.
        if let Some(c) = self.x402_candidate(model) {
            return Ok(vec![c]);
        }
        // Known, but nobody with a key serves it: say which key to set.
        let owner = catalog_owner
            .and_then(|name| self.by_name(name))
            .or_else(|| {
                self.providers
                    .iter()
                    .enumerate()
                    .find(|(_, p)| p.serves(model))
            })
            .or_else(|| fam.and_then(|(kind, _)| kind.and_then(|k| self.by_kind(k))))
            .or_else(|| fam.and_then(|_| self.by_kind(ProviderKind::OpenRouter)));
        match owner {
            Some((_, p)) => Err(GatewayError::provider_not_configured(
                model,
                p.name(),
                &p.config.key_env,
            )),
            None => Err(GatewayError::model_not_found(model)),
        }
    }

    /// The ordered candidates for this request.
    pub fn plan(
        &self,
        model: &str,
        est: &Estimate,
        strategy: Option<Strategy>,
    ) -> Result<Vec<Candidate>, GatewayError> {
        let mut cands = self.candidates(model)?;
        let strategy = strategy.unwrap_or(self.settings.strategy);
        let expected_output = u64::from(
            est.max_output
                .unwrap_or(self.settings.typical_output_tokens)
                .min(self.settings.typical_output_tokens),
        );
        for c in &mut cands {
            c.expected_cost = c
                .price
                .as_ref()
                .map(|p| expected_cost(p, est, expected_output));
        }
        let now = Instant::now();
        let rule_rank = |c: &Candidate| {
            self.settings
                .rules
                .iter()
                .position(|r| r.matches(model) && r.provider == c.provider.name())
                .unwrap_or(usize::MAX)
        };
        // Each candidate with what it is ranked by, sorted in place (no candidate is copied).
        let mut ranked: Vec<((usize, bool, HealthView), Candidate)> = cands
            .into_iter()
            .map(|c| ((rule_rank(&c), c.health.available(now), c.health.view()), c))
            .collect();
        ranked.sort_by(|(va, ca), (vb, cb)| {
            va.0.cmp(&vb.0)
                .then(vb.1.cmp(&va.1))
                .then_with(|| match strategy {
                    Strategy::Cost => cmp_option(ca.expected_cost, cb.expected_cost),
                    Strategy::Latency => cmp_f64(va.2.latency_ms, vb.2.latency_ms),
                    Strategy::Priority => ca.order.cmp(&cb.order),
                })
                .then_with(|| {
                    va.2.error_rate
                        .partial_cmp(&vb.2.error_rate)
                        .unwrap_or(Ordering::Equal)
                })
                .then_with(|| cmp_f64(va.2.latency_ms, vb.2.latency_ms))
                .then(ca.order.cmp(&cb.order))
        });
        let ordered: Vec<Candidate> = ranked.into_iter().map(|(_, c)| c).collect();
        tracing::debug!(
            model,
            strategy = ?strategy,
            input_tokens = est.input_tokens,
            cached_tokens = est.cached_tokens,
            expected_output,
            candidates = %ordered
                .iter()
                .map(|c| format!(
                    "{}:{} ({:?}, cost {}, {}, latency {})",
                    c.provider.name(),
                    c.upstream_model,
                    c.source,
                    c.expected_cost.map(|d| format!("${}", d.round_dp(6))).unwrap_or_else(|| "unpriced".into()),
                    c.health.view().circuit.as_str(),
                    c.health.view().latency_ms.map(|l| format!("{l:.1}ms")).unwrap_or_else(|| "n/a".into()),
                ))
                .collect::<Vec<_>>()
                .join(", "),
            "route"
        );
        Ok(ordered)
    }

    /// Every model some configured provider can serve, with that provider's name.
    pub fn models(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut add = |id: &str, p: &str| {
            if !out.iter().any(|(m, _)| m == id) {
                out.push((id.to_string(), p.to_string()));
            }
        };
        for (_, p) in self.configured() {
            for e in self.catalog.for_provider(p.name()) {
                if p.offers(&e.upstream) {
                    add(&e.id, p.name());
                }
            }
            for m in &p.models {
                add(m, p.name());
            }
        }
        // The relay serves (for a payment) every catalog model no keyed provider serves.
        if let Some((_, p)) = self
            .by_kind(ProviderKind::X402)
            .filter(|(_, p)| self.usable(p))
        {
            for e in self.catalog.entries() {
                add(&e.id, p.name());
            }
        }
        out
    }
}

/// Cost of this request if served here: uncached input, cached prefix at the cache-read price
/// (when the provider has one), and the expected output.
pub fn expected_cost(price: &Price, est: &Estimate, expected_output: u64) -> Decimal {
    let million = Decimal::from(1_000_000u32);
    let (cached, cache_price) = match price.cache_read {
        Some(p) => (est.cached_tokens.min(est.input_tokens), p),
        None => (0, price.input),
    };
    let uncached = est.input_tokens - cached;
    (Decimal::from(uncached) * price.input
        + Decimal::from(cached) * cache_price
        + Decimal::from(expected_output) * price.output)
        / million
}

/// Known values first, ascending.
fn cmp_option(a: Option<Decimal>, b: Option<Decimal>) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

fn cmp_f64(a: Option<f64>, b: Option<f64>) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
