//! The model catalog: which provider serves which model under which id, at what price, with what
//! limits and capabilities. (Interim: the data files and loader arrive with the catalog work; this
//! keeps the API the router is written against.)

mod price;

pub use price::{Cost, Price};

use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Capabilities {
    pub tools: bool,
    pub vision: bool,
    pub reasoning: bool,
    pub json_schema: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelEntry {
    pub id: String,
    pub provider: String,
    pub upstream: String,
    pub aliases: Vec<String>,
    pub price: Option<Price>,
    pub context_window: Option<u32>,
    pub max_output: Option<u32>,
    pub capabilities: Capabilities,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CatalogError(String);

#[derive(Debug, Clone, Default)]
pub struct Catalog {
    entries: Vec<ModelEntry>,
    index: HashMap<String, Vec<usize>>,
}

#[derive(serde::Deserialize)]
struct RawFile {
    provider: String,
    #[serde(default)]
    model: Vec<RawModel>,
}

#[derive(serde::Deserialize)]
struct RawModel {
    id: String,
    upstream: Option<String>,
    #[serde(default)]
    aliases: Vec<String>,
    price: Option<Price>,
}

impl Catalog {
    pub fn embedded() -> Result<Catalog, CatalogError> {
        Ok(Catalog::default())
    }

    pub fn from_sources(files: &[(&str, &str)]) -> Result<Catalog, CatalogError> {
        let mut entries = Vec::new();
        for (name, text) in files {
            let f: RawFile =
                toml::from_str(text).map_err(|e| CatalogError(format!("{name}: {e}")))?;
            for m in f.model {
                entries.push(ModelEntry {
                    upstream: m.upstream.unwrap_or_else(|| m.id.clone()),
                    id: m.id,
                    provider: f.provider.clone(),
                    aliases: m.aliases,
                    price: m.price,
                    context_window: None,
                    max_output: None,
                    capabilities: Capabilities::default(),
                });
            }
        }
        Ok(Catalog::index(entries))
    }

    fn index(entries: Vec<ModelEntry>) -> Catalog {
        let mut index: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            for name in std::iter::once(&e.id).chain(&e.aliases) {
                index.entry(name.clone()).or_default().push(i);
            }
        }
        Catalog { entries, index }
    }

    pub fn with_overrides(self, overrides: Vec<ModelEntry>) -> Catalog {
        let mut entries = self.entries;
        for o in overrides {
            match entries
                .iter_mut()
                .find(|e| e.provider == o.provider && e.id == o.id)
            {
                Some(e) => *e = o,
                None => entries.push(o),
            }
        }
        Catalog::index(entries)
    }

    pub fn resolve(&self, name: &str) -> Vec<&ModelEntry> {
        self.index
            .get(name)
            .map(|ix| ix.iter().filter_map(|&i| self.entries.get(i)).collect())
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
}
