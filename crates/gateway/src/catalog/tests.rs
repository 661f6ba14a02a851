use super::*;
use rust_decimal::Decimal;
use std::collections::HashSet;
use std::str::FromStr;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn embedded() -> Catalog {
    Catalog::embedded().unwrap_or_else(|e| panic!("embedded catalog: {e}"))
}

/// Known premium models with their own ceiling; everything else must sit in [0.01, 200] USD/1M.
const EXPENSIVE: &[(&str, &str)] = &[("o1-pro", "700"), ("gpt-4.5", "200")];

#[test]
fn embedded_catalog_loads_every_provider() {
    let c = embedded();
    for p in ["openai", "anthropic", "gemini", "xai", "openrouter"] {
        assert!(c.for_provider(p).count() >= 5, "{p} has too few models");
    }
}

#[test]
fn prices_are_per_million_and_consistent() {
    let c = embedded();
    let lo = d("0.01");
    for e in c.entries() {
        let Some(p) = &e.price else { continue };
        let who = format!("{}/{}", e.provider, e.id);
        let hi = EXPENSIVE
            .iter()
            .find(|(id, _)| *id == e.id)
            .map_or(d("200"), |(_, b)| d(b));
        // Embedding models bill input only: their output price is exactly zero.
        let embedding = p.output.is_zero();
        for (name, v) in [("input", p.input), ("output", p.output)] {
            if name == "output" && embedding {
                continue;
            }
            assert!(v >= lo && v <= hi, "{who}: {name} {v} outside [{lo}, {hi}]");
        }
        assert!(
            embedding || p.output >= p.input,
            "{who}: output below input"
        );
        if let Some(r) = p.cache_read {
            assert!(r > Decimal::ZERO, "{who}: cache_read must be > 0");
            assert!(r < p.input, "{who}: cache_read {r} not below input");
        }
        if let Some(w) = p.cache_write {
            assert!(w >= p.input, "{who}: cache_write {w} below input");
        }
    }
}

#[test]
fn every_alias_resolves_to_its_model() {
    let c = embedded();
    for e in c.entries() {
        for name in std::iter::once(&e.id).chain(&e.aliases) {
            let hits = c.resolve(name);
            assert!(
                hits.iter()
                    .any(|h| h.provider == e.provider && h.id == e.id),
                "{name} does not resolve to {}/{}",
                e.provider,
                e.id
            );
            let upper = c.resolve(&name.to_uppercase());
            assert!(upper.iter().any(|h| h.id == e.id), "{name} upper-cased");
        }
    }
}

#[test]
fn no_name_maps_to_two_ids_within_a_provider() {
    let c = embedded();
    let mut seen: HashMap<(String, String), String> = HashMap::new();
    for e in c.entries() {
        for name in std::iter::once(&e.id).chain(&e.aliases) {
            let key = (e.provider.clone(), name.to_lowercase());
            if let Some(prev) = seen.insert(key, e.id.clone()) {
                assert_eq!(
                    prev, e.id,
                    "{}: {name} names {prev} and {}",
                    e.provider, e.id
                );
            }
        }
    }
}

#[test]
fn openrouter_entries_match_a_vendor_entry_within_ten_percent() {
    let c = embedded();
    let vendors = ["openai", "anthropic", "gemini", "xai"];
    for e in c.for_provider("openrouter") {
        assert!(
            e.aliases.contains(&e.upstream),
            "{}: slug not an alias",
            e.id
        );
        let vendor = c
            .resolve(&e.id)
            .into_iter()
            .find(|v| vendors.contains(&v.provider.as_str()) && v.id == e.id)
            .unwrap_or_else(|| panic!("openrouter {} has no vendor entry", e.id));
        if let (Some(a), Some(b)) = (&e.price, &vendor.price) {
            for (name, x, y) in [("input", a.input, b.input), ("output", a.output, b.output)] {
                let diff = (x - y).abs();
                assert!(diff * d("10") <= y, "{}: {name} {x} vs vendor {y}", e.id);
            }
        }
    }
}

/// Model names clients commonly send and the gateway must price.
#[test]
fn common_client_defaults_resolve() {
    let c = embedded();
    for (provider, m) in [
        ("openai", "gpt-4o"),
        ("openai", "gpt-5"),
        ("openai", "o4-mini"),
        ("anthropic", "claude-sonnet-4-5"),
        ("anthropic", "claude-opus-4-1"),
        ("anthropic", "claude-3-5-haiku-latest"),
        ("xai", "grok-4"),
        ("xai", "grok-code-fast-1"),
        ("gemini", "gemini-2.5-pro"),
    ] {
        assert!(
            c.resolve(m)
                .iter()
                .any(|e| e.provider == provider && e.price.is_some()),
            "{provider} should serve {m} with a price"
        );
    }
}

#[test]
fn one_model_resolves_to_every_provider_in_file_order() {
    let c = embedded();
    let hits: Vec<_> = c
        .resolve("claude-sonnet-4-5")
        .into_iter()
        .map(|e| (e.provider.as_str(), e.upstream.as_str()))
        .collect();
    assert_eq!(
        hits,
        [
            ("anthropic", "claude-sonnet-4-5-20250929"),
            ("openrouter", "anthropic/claude-sonnet-4.5")
        ]
    );
    let by_slug = c.resolve("anthropic/claude-sonnet-4.5");
    assert_eq!(by_slug.len(), 1);
    assert_eq!(by_slug[0].id, "claude-sonnet-4-5");
    assert!(c.resolve("no-such-model").is_empty());
}

const GOOD: &str = r#"
provider = "acme"
[[model]]
id = "m1"
aliases = ["M-One"]
price = { input = "1", output = 2.5, cache_read = "0.1" }
capabilities = ["tools", "json_schema"]
[[model]]
id = "m2"
upstream = "acme/m2"
"#;

#[test]
fn from_sources_reads_strings_and_numbers_and_defaults_upstream() {
    let c = Catalog::from_sources(&[("acme.toml", GOOD)]).unwrap();
    let m1 = &c.resolve("m1")[0];
    assert_eq!(m1.upstream, "m1");
    let p = m1.price.as_ref().unwrap();
    assert_eq!(
        (p.input, p.output, p.cache_read),
        (d("1"), d("2.5"), Some(d("0.1")))
    );
    assert!(m1.capabilities.tools && m1.capabilities.json_schema && !m1.capabilities.vision);
    assert_eq!(c.resolve("m-one")[0].id, "m1");
    let m2 = &c.resolve("m2")[0];
    assert_eq!(
        (m2.upstream.as_str(), m2.price.is_none()),
        ("acme/m2", true)
    );
}

#[test]
fn exact_match_wins_over_case_insensitive() {
    let text = "provider = \"p\"\n[[model]]\nid = \"Big\"\n[[model]]\nid = \"big\"\n";
    let c = Catalog::from_sources(&[("p.toml", text)]).unwrap();
    assert_eq!(c.resolve("big").len(), 1);
    assert_eq!(c.resolve("Big")[0].id, "Big");
    assert_eq!(c.resolve("BIG").len(), 2);
}

fn load_err(text: &str) -> String {
    Catalog::from_sources(&[("acme.toml", text)])
        .unwrap_err()
        .to_string()
}

#[test]
fn bad_price_names_file_model_and_field() {
    let e = load_err(
        "provider = \"acme\"\n[[model]]\nid = \"m1\"\n[[model]]\nid = \"m9\"\nprice = { input = \"3 USD\", output = \"1\" }\n",
    );
    assert!(
        e.contains("acme.toml") && e.contains("\"m9\"") && e.contains("price.input"),
        "{e}"
    );
}

#[test]
fn unknown_field_names_file_model_and_field() {
    let e = load_err("provider = \"acme\"\n[[model]]\nid = \"m1\"\ncontext = 5\n");
    assert!(
        e.contains("acme.toml") && e.contains("\"m1\"") && e.contains("context"),
        "{e}"
    );
    let e = load_err("provider = \"acme\"\nvendor = \"x\"\n");
    assert!(e.contains("acme.toml") && e.contains("vendor"), "{e}");
}

#[test]
fn unknown_capability_names_file_and_model() {
    let e =
        load_err("provider = \"acme\"\n[[model]]\nid = \"m1\"\ncapabilities = [\"telepathy\"]\n");
    assert!(
        e.contains("acme.toml") && e.contains("\"m1\"") && e.contains("telepathy"),
        "{e}"
    );
}

#[test]
fn negative_price_is_rejected() {
    let e = load_err(
        "provider = \"acme\"\n[[model]]\nid = \"m1\"\nprice = { input = \"-1\", output = \"1\" }\n",
    );
    assert!(e.contains("\"m1\"") && e.contains("price.input"), "{e}");
}

#[test]
fn overrides_replace_by_provider_and_id_or_append() {
    let c = Catalog::from_sources(&[("acme.toml", GOOD)]).unwrap();
    let mut m1 = c.resolve("m1")[0].clone();
    m1.price = None;
    m1.aliases = vec!["one".into()];
    let mut other = m1.clone();
    other.provider = "elsewhere".into();
    let c = c.with_overrides(vec![m1, other]);
    assert_eq!(c.entries().len(), 3);
    assert_eq!(c.entries()[0].provider, "acme");
    assert!(c.entries()[0].price.is_none());
    // The replaced entry's old alias is gone from the index.
    assert!(c.resolve("M-One").is_empty());
    let ones: HashSet<_> = c
        .resolve("one")
        .iter()
        .map(|e| e.provider.as_str())
        .collect();
    assert_eq!(ones, HashSet::from(["acme", "elsewhere"]));
}
