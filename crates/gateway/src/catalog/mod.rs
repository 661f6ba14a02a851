//! The model catalog: which provider serves which model under which id, at what price, with what
//! limits and capabilities. The data lives in `catalog/*.toml` at the repository root and is compiled
//! into the binary, so a release always carries the prices it was tested with; the user's config can
//! override or add entries (`[[models]]`, see `config`).

mod price;

pub use price::{Cost, Price};

use serde::Deserialize;
use std::collections::HashMap;

/// The embedded data files, in the order their entries are listed (vendors before aggregators, so
/// `resolve` offers the vendor first when prices tie).
const EMBEDDED: &[(&str, &str)] = &[
    (
        "openai.toml",
        include_str!("../../../../catalog/openai.toml"),
    ),
    (
        "anthropic.toml",
        include_str!("../../../../catalog/anthropic.toml"),
    ),
    (
        "gemini.toml",
        include_str!("../../../../catalog/gemini.toml"),
    ),
    ("xai.toml", include_str!("../../../../catalog/xai.toml")),
    ("azure.toml", include_str!("../../../../catalog/azure.toml")),
    (
        "mistral.toml",
        include_str!("../../../../catalog/mistral.toml"),
    ),
    (
        "deepseek.toml",
        include_str!("../../../../catalog/deepseek.toml"),
    ),
    ("groq.toml", include_str!("../../../../catalog/groq.toml")),
    (
        "together.toml",
        include_str!("../../../../catalog/together.toml"),
    ),
    (
        "perplexity.toml",
        include_str!("../../../../catalog/perplexity.toml"),
    ),
    ("zai.toml", include_str!("../../../../catalog/zai.toml")),
    (
        "cohere.toml",
        include_str!("../../../../catalog/cohere.toml"),
    ),
    (
        "openrouter.toml",
        include_str!("../../../../catalog/openrouter.toml"),
    ),
];

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Capabilities {
    pub tools: bool,
    pub vision: bool,
    pub reasoning: bool,
    pub json_schema: bool,
}

/// One model as one provider serves it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelEntry {
    /// The name clients use, shared by every provider serving the same model.
    pub id: String,
    pub provider: String,
    /// The id sent to this provider.
    pub upstream: String,
    /// Other names clients use for the same model on this provider.
    pub aliases: Vec<String>,
    /// None = routed but recorded unpriced (never a silent $0).
    pub price: Option<Price>,
    pub context_window: Option<u32>,
    pub max_output: Option<u32>,
    pub capabilities: Capabilities,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog file {file}: {message}")]
    Parse { file: String, message: String },
    #[error("catalog file {file}: model {id:?}: {message}")]
    Invalid {
        file: String,
        id: String,
        message: String,
    },
}

/// A capability name as written in the data files; unknown names are rejected by serde.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Capability {
    Tools,
    Vision,
    Reasoning,
    JsonSchema,
}

impl Capabilities {
    pub(crate) fn from_list(list: &[Capability]) -> Capabilities {
        let mut c = Capabilities::default();
        for cap in list {
            match cap {
                Capability::Tools => c.tools = true,
                Capability::Vision => c.vision = true,
                Capability::Reasoning => c.reasoning = true,
                Capability::JsonSchema => c.json_schema = true,
            }
        }
        c
    }

    /// Names in the order the data files use, for display.
    pub fn names(&self) -> Vec<&'static str> {
        [
            (self.tools, "tools"),
            (self.vision, "vision"),
            (self.reasoning, "reasoning"),
            (self.json_schema, "json_schema"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }
}

/// Models stay untyped tables here so a bad field is reported with the model's id, which the
/// key path alone (`model[7].price.input`) would not give.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    provider: String,
    #[serde(default)]
    model: Vec<toml::Table>,
}

/// One `[[model]]` table; shared with the config file's `[[models]]`, which adds `provider`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawModel {
    pub id: String,
    pub upstream: Option<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub price: Option<Price>,
    pub context_window: Option<u32>,
    pub max_output: Option<u32>,
    #[serde(default)]
    pub capabilities: Vec<Capability>,
}

impl RawModel {
    /// Checks that need more than types: the messages are returned bare and the caller says where.
    pub(crate) fn into_entry(self, provider: &str) -> Result<ModelEntry, String> {
        if self.id.trim().is_empty() {
            return Err("id must not be empty".into());
        }
        if let Some(p) = &self.price {
            let parts = [
                ("input", Some(p.input)),
                ("output", Some(p.output)),
                ("cache_read", p.cache_read),
                ("cache_write", p.cache_write),
            ];
            for (name, value) in parts {
                if value.is_some_and(|v| v.is_sign_negative()) {
                    return Err(format!("price.{name} must not be negative"));
                }
            }
        }
        if self.aliases.iter().any(|a| a.trim().is_empty()) {
            return Err("aliases must not contain an empty name".into());
        }
        let upstream = match self.upstream {
            Some(u) if u.trim().is_empty() => return Err("upstream must not be empty".into()),
            Some(u) => u,
            None => self.id.clone(),
        };
        Ok(ModelEntry {
            capabilities: Capabilities::from_list(&self.capabilities),
            id: self.id,
            provider: provider.to_string(),
            upstream,
            aliases: self.aliases,
            price: self.price,
            context_window: self.context_window,
            max_output: self.max_output,
        })
    }
}

/// Every provider's models, indexed by every name a client may use.
#[derive(Debug, Clone)]
pub struct Catalog {
    entries: Vec<ModelEntry>,
    /// Exact name → entry indices, ascending (file order).
    exact: HashMap<String, Vec<usize>>,
    /// Lower-cased name → entry indices, for clients that capitalise differently.
    folded: HashMap<String, Vec<usize>>,
}

impl Catalog {
    /// The catalog compiled into the binary.
    pub fn embedded() -> Result<Catalog, CatalogError> {
        Self::from_sources(EMBEDDED)
    }

    /// Parses `(file name, TOML text)` pairs; the file name only labels errors.
    pub fn from_sources(files: &[(&str, &str)]) -> Result<Catalog, CatalogError> {
        let mut entries = Vec::new();
        for (file, text) in files {
            let raw = parse_file(text).map_err(|message| CatalogError::Parse {
                file: file.to_string(),
                message,
            })?;
            if raw.provider.trim().is_empty() {
                return Err(CatalogError::Parse {
                    file: file.to_string(),
                    message: "provider must not be empty".into(),
                });
            }
            for (n, table) in raw.model.into_iter().enumerate() {
                let id = match table.get("id").and_then(toml::Value::as_str) {
                    Some(id) => id.to_string(),
                    None => format!("#{}", n + 1),
                };
                let invalid = |message: String| CatalogError::Invalid {
                    file: file.to_string(),
                    id: id.clone(),
                    message,
                };
                let model: RawModel =
                    deserialize_path(toml::Value::Table(table)).map_err(invalid)?;
                entries.push(model.into_entry(&raw.provider).map_err(invalid)?);
            }
        }
        Ok(Self::index(entries))
    }

    /// An override replaces the entry with the same (provider, id) in place, else is appended.
    pub fn with_overrides(mut self, overrides: Vec<ModelEntry>) -> Catalog {
        for o in overrides {
            match self
                .entries
                .iter_mut()
                .find(|e| e.provider == o.provider && e.id == o.id)
            {
                Some(slot) => *slot = o,
                None => self.entries.push(o),
            }
        }
        Self::index(self.entries)
    }

    /// Every provider's entry named `name` (id or alias): exact matches if there are any, otherwise
    /// case-insensitive ones; in catalog order.
    pub fn resolve(&self, name: &str) -> Vec<&ModelEntry> {
        let hits = match self.exact.get(name) {
            Some(ix) => Some(ix),
            None => self.folded.get(&name.to_lowercase()),
        };
        hits.map(|ix| ix.iter().filter_map(|&i| self.entries.get(i)).collect())
            .unwrap_or_default()
    }

    pub fn entries(&self) -> &[ModelEntry] {
        &self.entries
    }

    pub fn for_provider<'a>(
        &'a self,
        provider: &'a str,
    ) -> impl Iterator<Item = &'a ModelEntry> + 'a {
        self.entries.iter().filter(move |e| e.provider == provider)
    }

    fn index(entries: Vec<ModelEntry>) -> Catalog {
        let mut exact: HashMap<String, Vec<usize>> = HashMap::new();
        let mut folded: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            for name in std::iter::once(&e.id).chain(&e.aliases) {
                push_once(exact.entry(name.clone()).or_default(), i);
                push_once(folded.entry(name.to_lowercase()).or_default(), i);
            }
        }
        Catalog {
            entries,
            exact,
            folded,
        }
    }
}

/// An entry whose alias repeats its id must still be listed once.
fn push_once(v: &mut Vec<usize>, i: usize) {
    if v.last() != Some(&i) {
        v.push(i);
    }
}

fn parse_file(text: &str) -> Result<RawFile, String> {
    let de = toml::Deserializer::parse(text).map_err(|e| e.to_string())?;
    serde_path_to_error::deserialize(de).map_err(path_message)
}

fn deserialize_path<T: serde::de::DeserializeOwned>(value: toml::Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(path_message)
}

fn path_message(e: serde_path_to_error::Error<toml::de::Error>) -> String {
    let path = e.path().to_string();
    let reason = e.into_inner().message().trim().to_string();
    if path == "." || path.is_empty() {
        reason
    } else {
        format!("{path}: {reason}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
