//! The invariants of ARCHITECTURE.md, checked against the source so they stay true.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out
}

fn crate_src(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join(name)
        .join("src")
}

/// Source lines outside `#[cfg(test)]` modules (tests may use anything).
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    match text.find("#[cfg(test)]") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

fn assert_absent(dir: &Path, needles: &[&str], why: &str) {
    for f in rust_files(dir) {
        let code = code_of(&f);
        for n in needles {
            assert!(!code.contains(n), "{} contains `{n}`: {why}", f.display());
        }
    }
}

#[test]
fn wire_does_no_io() {
    assert_absent(
        &crate_src("wire"),
        &[
            "tokio",
            "std::fs",
            "std::net",
            "reqwest",
            "axum",
            "SystemTime",
            "Instant::now",
            "std::env",
        ],
        "the wire crate is pure: no IO, no clock, no environment",
    );
}

#[test]
fn a_dialect_never_imports_another() {
    let dir = crate_src("wire").join("dialect");
    let dialects = [
        "openai_chat",
        "openai_responses",
        "openai_embeddings",
        "anthropic",
        "gemini",
    ];
    for d in dialects {
        let mut files = vec![dir.join(format!("{d}.rs"))];
        let sub = dir.join(d);
        if sub.is_dir() {
            files.extend(rust_files(&sub));
        }
        for f in files {
            let code = code_of(&f);
            for other in dialects.iter().filter(|o| **o != d) {
                assert!(
                    !code.contains(&format!("dialect::{other}"))
                        && !code.contains(&format!("super::{other}")),
                    "{} imports the {other} dialect",
                    f.display()
                );
            }
        }
    }
}

#[test]
fn api_never_imports_providers_and_providers_never_import_upper_layers() {
    let src = crate_src("gateway");
    assert_absent(
        &src.join("api"),
        &["crate::providers"],
        "api talks to the proxy, not to providers",
    );
    assert_absent(
        &src.join("providers"),
        &["crate::api", "crate::router", "crate::proxy", "axum"],
        "providers know nothing of the HTTP layer or routing",
    );
}

#[test]
fn the_router_decides_and_never_acts() {
    assert_absent(
        &crate_src("gateway").join("router"),
        &["crate::proxy", "crate::api", "axum", "reqwest"],
        "the router orders candidates; the proxy talks to upstreams",
    );
}

#[test]
fn only_api_renders_http_errors() {
    let src = crate_src("gateway");
    for f in rust_files(&src) {
        if f.starts_with(src.join("api")) {
            continue;
        }
        let code = code_of(&f);
        assert!(
            !code.contains("error_json("),
            "{} renders an error body; only api::error does",
            f.display()
        );
    }
}

#[test]
fn only_config_reads_the_environment() {
    let src = crate_src("gateway");
    for f in rust_files(&src) {
        if f.starts_with(src.join("config")) {
            continue;
        }
        let code = code_of(&f);
        assert!(
            !code.contains("env::var") && !code.contains("dotenvy"),
            "{} reads the environment; only config does",
            f.display()
        );
    }
}

#[test]
fn sapphire_never_imports_the_http_layer() {
    assert_absent(
        &crate_src("gateway").join("sapphire"),
        &["crate::api", "axum"],
        "sapphire returns GatewayErrors; only api speaks HTTP to clients",
    );
}
