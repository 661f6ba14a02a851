use super::*;
use crate::config::Config;
use std::collections::HashMap;
use std::time::Duration;

/// A model both OpenAI and OpenRouter serve, priced so that the cheaper one depends on the request:
/// OpenAI is cheap on input and dear on output with no cache discount; OpenRouter the reverse.
const CATALOG: &str = r#"
provider = "openai"
[[model]]
id = "m-1"
upstream = "m-1-2025"
price = { input = "1", output = "10" }
"#;
const CATALOG_OR: &str = r#"
provider = "openrouter"
[[model]]
id = "m-1"
upstream = "vendor/m-1"
aliases = ["vendor/m-1"]
price = { input = "2", output = "5", cache_read = "0.2" }
"#;

fn router_with(env: &[(&str, &str)], file: Option<&str>) -> Router {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let c = Config::from_sources(&env, None, file).unwrap();
    let catalog =
        Catalog::from_sources(&[("openai.toml", CATALOG), ("openrouter.toml", CATALOG_OR)])
            .unwrap();
    Router::new(
        c.providers
            .into_iter()
            .map(|p| Arc::new(Provider::new(p)))
            .collect(),
        catalog,
        c.routing,
        c.breaker,
    )
}

fn router(env: &[(&str, &str)]) -> Router {
    router_with(env, None)
}

fn first(r: &Router, model: &str, est: Estimate) -> (String, String) {
    let plan = r.plan(model, &est, None).unwrap();
    (
        plan[0].provider.name().to_string(),
        plan[0].upstream_model.clone(),
    )
}

fn est(input: u64, cached: u64, max_output: Option<u32>) -> Estimate {
    Estimate {
        input_tokens: input,
        cached_tokens: cached,
        max_output,
    }
}

const BOTH: &[(&str, &str)] = &[("OPENAI_API_KEY", "k"), ("OPENROUTER_API_KEY", "k")];

#[test]
fn cheapest_provider_depends_on_input_size() {
    let r = router(BOTH);
    // Big prompt, short answer: input price dominates.
    assert_eq!(first(&r, "m-1", est(100_000, 0, Some(10))).0, "openai");
    // Small prompt, long answer: output price dominates.
    assert_eq!(first(&r, "m-1", est(10, 0, Some(1000))).0, "openrouter");
}

#[test]
fn expected_output_is_capped_by_the_typical_value() {
    let r = router(BOTH);
    // max_tokens 100k would favour the cheap-output provider, but the typical cap (1024) makes a
    // 20k prompt the dominant term.
    assert_eq!(first(&r, "m-1", est(20_000, 0, Some(100_000))).0, "openai");
}

#[test]
fn cached_prompt_favours_the_provider_with_a_cache_price() {
    let r = router(BOTH);
    assert_eq!(first(&r, "m-1", est(100_000, 0, Some(10))).0, "openai");
    assert_eq!(
        first(&r, "m-1", est(100_000, 90_000, Some(10))).0,
        "openrouter"
    );
}

#[test]
fn plan_carries_upstream_ids_prices_and_costs() {
    let r = router(BOTH);
    let plan = r.plan("m-1", &est(1_000_000, 0, Some(0)), None).unwrap();
    assert_eq!(plan.len(), 2);
    assert_eq!(plan[0].upstream_model, "m-1-2025");
    assert_eq!(plan[0].expected_cost, Some(Decimal::from(1)));
    assert_eq!(plan[1].upstream_model, "vendor/m-1");
    assert_eq!(plan[1].expected_cost, Some(Decimal::from(2)));
}

#[test]
fn an_openrouter_alias_reaches_every_provider_of_that_model() {
    let r = router(BOTH);
    let plan = r
        .plan("vendor/m-1", &est(100_000, 0, Some(10)), None)
        .unwrap();
    assert_eq!(plan.len(), 2);
    assert_eq!(plan[0].provider.name(), "openai");
}

#[test]
fn only_providers_with_keys_are_candidates() {
    let r = router(&[("OPENROUTER_API_KEY", "k")]);
    let plan = r.plan("m-1", &est(100_000, 0, Some(10)), None).unwrap();
    assert_eq!(plan.len(), 1);
    assert_eq!(plan[0].provider.name(), "openrouter");
    let r = router(&[]);
    let e = r.plan("m-1", &Estimate::default(), None).unwrap_err();
    assert!(e.message.contains("OPENAI_API_KEY"), "{}", e.message);
}

#[test]
fn priority_and_latency_strategies() {
    let r = router(BOTH);
    let plan = r
        .plan("m-1", &est(10, 0, Some(1000)), Some(Strategy::Priority))
        .unwrap();
    assert_eq!(plan[0].provider.name(), "openai", "config order");
    // Latency: OpenRouter measured faster.
    let now = Instant::now();
    plan[0].health.success(now, Duration::from_millis(300));
    plan[1].health.success(now, Duration::from_millis(30));
    let plan = r
        .plan("m-1", &est(100_000, 0, Some(10)), Some(Strategy::Latency))
        .unwrap();
    assert_eq!(plan[0].provider.name(), "openrouter");
    // Measured latency does not override configuration order under `priority`.
    let plan = r
        .plan("m-1", &est(10, 0, Some(1000)), Some(Strategy::Priority))
        .unwrap();
    assert_eq!(plan[0].provider.name(), "openai");
}

#[test]
fn an_open_circuit_moves_a_provider_last() {
    let r = router(BOTH);
    let plan = r.plan("m-1", &est(100_000, 0, Some(10)), None).unwrap();
    assert_eq!(plan[0].provider.name(), "openai");
    let now = Instant::now();
    for _ in 0..5 {
        plan[0].health.failure(now);
    }
    let plan = r.plan("m-1", &est(100_000, 0, Some(10)), None).unwrap();
    assert_eq!(plan[0].provider.name(), "openrouter");
    assert_eq!(plan[1].provider.name(), "openai");
}

#[test]
fn rules_rank_before_cost() {
    // Default rule: grok-* → xAI first, even though OpenRouter also serves the family.
    let r = router(&[("XAI_API_KEY", "k"), ("OPENROUTER_API_KEY", "k")]);
    let plan = r.plan("grok-9", &Estimate::default(), None).unwrap();
    assert_eq!(plan[0].provider.name(), "xai");
    assert_eq!(plan[1].upstream_model, "x-ai/grok-9");
    // A configured rule puts OpenRouter first for m-1 although OpenAI is cheaper here.
    let r = router_with(
        BOTH,
        Some("[routing]\nrules = [{ model = \"m-*\", provider = \"openrouter\" }]\n"),
    );
    assert_eq!(first(&r, "m-1", est(100_000, 0, Some(10))).0, "openrouter");
}

#[test]
fn unreleased_family_member_is_forwarded_directly_then_via_openrouter() {
    let r = router(&[
        ("ANTHROPIC_API_KEY", "k"),
        ("OPENAI_API_KEY", "k"),
        ("OPENROUTER_API_KEY", "k"),
    ]);
    let plan = r
        .plan("claude-opus-9-9", &Estimate::default(), None)
        .unwrap();
    assert_eq!(plan[0].provider.name(), "anthropic");
    assert_eq!(plan[1].upstream_model, "anthropic/claude-opus-9-9");
    assert!(plan.iter().all(|c| c.price.is_none()), "unpriced");
    assert_eq!(
        first(&r, "o4-pro", Estimate::default()).0,
        "openai".to_string()
    );
    assert_eq!(
        first(&r, "gemini-3-pro", Estimate::default()),
        ("openrouter".to_string(), "google/gemini-3-pro".to_string())
    );
}

#[test]
fn missing_key_names_the_variable() {
    let r = router(&[]);
    let e = r
        .plan("claude-sonnet-4-5", &Estimate::default(), None)
        .unwrap_err();
    assert_eq!(e.status, 400);
    assert!(e.message.contains("ANTHROPIC_API_KEY"), "{}", e.message);
    let e = r.plan("grok-9", &Estimate::default(), None).unwrap_err();
    assert!(e.message.contains("XAI_API_KEY"), "{}", e.message);
    let e = r
        .plan("gemini-3-pro", &Estimate::default(), None)
        .unwrap_err();
    assert!(e.message.contains("GOOGLE_API_KEY"), "{}", e.message);
}

#[test]
fn unknown_model_is_404() {
    let r = router(&[("OPENAI_API_KEY", "k")]);
    let e = r
        .plan("llama-nonexistent", &Estimate::default(), None)
        .unwrap_err();
    assert_eq!(e.status, 404);
    assert!(e.message.contains("/v1/models"));
}

#[test]
fn provider_prefix_pins_that_provider() {
    let r = router(&[
        ("OPENAI_API_KEY", "k"),
        ("XAI_API_KEY", "k"),
        ("OPENROUTER_API_KEY", "k"),
    ]);
    let plan = r.plan("xai/grok-4", &Estimate::default(), None).unwrap();
    assert_eq!(plan.len(), 1);
    assert_eq!(plan[0].provider.name(), "xai");
    assert_eq!(plan[0].upstream_model, "grok-4");
    // A pinned catalog model uses that provider's upstream id and price.
    let plan = r
        .plan("openai/m-1", &est(1_000_000, 0, Some(0)), None)
        .unwrap();
    assert_eq!(plan.len(), 1);
    assert_eq!(plan[0].upstream_model, "m-1-2025");
    assert_eq!(plan[0].expected_cost, Some(Decimal::from(1)));
    // A vendor id that is not a provider name goes to OpenRouter unchanged.
    let plan = r
        .plan("mistralai/mistral-large", &Estimate::default(), None)
        .unwrap();
    assert_eq!(plan[0].provider.name(), "openrouter");
    assert_eq!(plan[0].upstream_model, "mistralai/mistral-large");
}

#[test]
fn models_lists_only_what_configured_providers_serve() {
    let r = router(&[("OPENROUTER_API_KEY", "k")]);
    let models = r.models();
    assert!(models.iter().any(|(m, p)| m == "m-1" && p == "openrouter"));
    assert!(!models.iter().any(|(_, p)| p == "openai"));
}

#[test]
fn preset_families_route_directly_then_via_openrouter() {
    let r = router(&[("MISTRAL_API_KEY", "k"), ("OPENROUTER_API_KEY", "k")]);
    let plan = r
        .plan("mistral-large-2612", &Estimate::default(), None)
        .unwrap();
    assert_eq!(plan[0].provider.name(), "mistral");
    assert_eq!(plan[1].upstream_model, "mistralai/mistral-large-2612");
    let e = router(&[])
        .plan("glm-9", &Estimate::default(), None)
        .unwrap_err();
    assert!(e.message.contains("ZAI_API_KEY"), "{}", e.message);
    let e = router(&[])
        .plan("deepseek-v9", &Estimate::default(), None)
        .unwrap_err();
    assert!(e.message.contains("DEEPSEEK_API_KEY"), "{}", e.message);
}

#[test]
fn azure_is_offered_only_its_deployed_models() {
    let file = "[providers.azure]\nbase_url = \"https://r.openai.azure.com\"\ndeployments = { \"m-1\" = \"dep\" }\n";
    let azure_catalog = "provider = \"azure\"\n[[model]]\nid = \"m-1\"\nprice = { input = \"1\", output = \"1\" }\n[[model]]\nid = \"m-2\"\nprice = { input = \"1\", output = \"1\" }\n";
    let env: HashMap<String, String> =
        HashMap::from([("AZURE_OPENAI_API_KEY".to_string(), "k".to_string())]);
    let c = Config::from_sources(&env, None, Some(file)).unwrap();
    let catalog = Catalog::from_sources(&[("azure.toml", azure_catalog)]).unwrap();
    let r = Router::new(
        c.providers
            .into_iter()
            .map(|p| Arc::new(Provider::new(p)))
            .collect(),
        catalog,
        c.routing,
        c.breaker,
    );
    let plan = r.plan("m-1", &Estimate::default(), None).unwrap();
    assert_eq!(plan[0].provider.name(), "azure");
    assert!(r.plan("m-2", &Estimate::default(), None).is_err());
    let listed: Vec<String> = r.models().into_iter().map(|(m, _)| m).collect();
    assert_eq!(listed, vec!["m-1".to_string()]);
}
