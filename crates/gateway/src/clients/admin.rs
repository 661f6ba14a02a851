//! Client administration shared by the admin API (`api/admin_clients.rs`) and the CLI
//! (`ekai-gateway keys …`): creating a client (the key is returned once), applying changes,
//! revoking and rotating. Works on the store; the caller reloads its registry afterwards.

use super::limits::Limits;
use super::{Client, OnDisallowed, Policy, key};
use crate::config::Secret;
use crate::ledger::store::{ClientRow, Store};
use crate::ledger::time::{now_ms, parse_rfc3339};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no client with that id")]
    NotFound,
    /// The caller's mistake (a 400 in the API).
    #[error("{0}")]
    Invalid(String),
    /// Something the gateway lacks (a 503 in the API).
    #[error("{0}")]
    Unavailable(&'static str),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

/// Fields of POST and PATCH (PATCH: every field optional; `null` clears an optional one).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Changes {
    pub name: Option<String>,
    pub model_preferences: Option<Vec<String>>,
    pub on_disallowed_model: Option<OnDisallowed>,
    #[serde(default, deserialize_with = "present")]
    pub default_model: Option<Option<String>>,
    pub limits: Option<Limits>,
    pub providers: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    pub system_prompt_prefix: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub budget_usd: Option<Option<serde_json::Number>>,
    /// RFC 3339 time, or null for never.
    #[serde(default, deserialize_with = "present")]
    pub expires_at: Option<Option<String>>,
    pub tags: Option<Value>,
    /// Provider → the client's own upstream key (null removes it); stored encrypted, never shown.
    pub upstream_keys: Option<std::collections::BTreeMap<String, Option<String>>>,
}

/// Distinguishes an absent field (None) from an explicit null (Some(None)).
fn present<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Applies the body's fields onto `c`; Err is the client's mistake.
pub fn apply(c: &mut Client, b: Changes, master: Option<&Secret>) -> Result<(), String> {
    if let Some(keys) = b.upstream_keys {
        for (provider, key) in keys {
            match key {
                None => {
                    c.upstream_sealed.remove(&provider);
                }
                Some(k) if !k.trim().is_empty() => {
                    let m = master.ok_or("upstream_keys need EKAI_MASTER_KEY")?;
                    c.upstream_sealed
                        .insert(provider, crate::clients::seal::seal(m, &c.id, k.trim())?);
                }
                Some(_) => return Err(format!("upstream_keys.{provider} must not be empty")),
            }
        }
    }
    if let Some(n) = b.name {
        let n = n.trim().to_string();
        if n.is_empty() || n.len() > 200 {
            return Err("name must be 1 to 200 characters".into());
        }
        c.name = n;
    }
    if let Some(m) = b.model_preferences {
        c.policy.model_preferences = m;
    }
    if let Some(o) = b.on_disallowed_model {
        c.policy.on_disallowed_model = o;
    }
    if let Some(d) = b.default_model {
        c.policy.default_model = d;
    }
    if let Some(l) = b.limits {
        c.policy.limits = l;
    }
    if let Some(p) = b.providers {
        if p.iter().any(|n| n.trim().is_empty()) {
            return Err(
                "providers must be provider names, e.g. [\"openai\", \"anthropic\"]".into(),
            );
        }
        c.policy.providers = p;
    }
    if let Some(p) = b.system_prompt_prefix {
        c.policy.system_prompt_prefix = match p {
            Some(t) if t.len() > 32 * 1024 => {
                return Err("system_prompt_prefix must be at most 32 KiB".into());
            }
            Some(t) if t.trim().is_empty() => None,
            other => other,
        };
    }
    if let Some(b) = b.budget_usd {
        c.policy.budget_usd = match b {
            None => None,
            Some(n) => match n.to_string().parse::<Decimal>() {
                Ok(d) if !d.is_sign_negative() && d < Decimal::from(1_000_000_000i64) => Some(d),
                _ => {
                    return Err(
                        "budget_usd must be a non-negative number below 1e9, or null".into(),
                    );
                }
            },
        };
    }
    if let Some(e) = b.expires_at {
        c.expires_at = match e {
            None => None,
            Some(t) => Some(parse_rfc3339(&t).ok_or_else(|| {
                "expires_at must be an RFC 3339 time (2026-12-31T00:00:00Z) or null".to_string()
            })?),
        };
    }
    if let Some(t) = b.tags {
        c.tags = t;
    }
    Ok(())
}

/// Creates a client from `changes` (a name is required); returns it with its key, shown once.
pub async fn create(
    store: &Store,
    master: &Secret,
    changes: Changes,
) -> Result<(Client, String), AdminError> {
    if changes.name.is_none() {
        return Err(AdminError::Invalid("name is required".into()));
    }
    let (Ok(secret), Ok(id)) = (key::generate_key(), key::new_client_id()) else {
        return Err(AdminError::Unavailable(
            "the system random number generator failed",
        ));
    };
    let mut c = Client::from_row(
        ClientRow {
            id,
            name: String::new(),
            key_prefix: key::shown_prefix(&secret),
            key_hash: key::hash_key(master, &secret),
            created_at: now_ms(),
            expires_at: None,
            revoked_at: None,
            tags: "{}".into(),
            policy: serde_json::to_string(&Policy::default()).unwrap_or_else(|_| "{}".into()),
            upstream_keys: "{}".into(),
        },
        None,
    );
    apply(&mut c, changes, Some(master)).map_err(AdminError::Invalid)?;
    store.insert_client(&c.to_row()).await?;
    Ok((c, secret))
}

/// Every client, oldest first (revoked included).
pub async fn list(store: &Store, master: Option<&Secret>) -> Result<Vec<Client>, AdminError> {
    let mut v: Vec<Client> = store
        .clients()
        .await?
        .into_iter()
        .map(|r| Client::from_row(r, master))
        .collect();
    v.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(v)
}

async fn find(store: &Store, master: Option<&Secret>, id: &str) -> Result<Client, AdminError> {
    list(store, master)
        .await?
        .into_iter()
        .find(|c| c.id == id)
        .ok_or(AdminError::NotFound)
}

/// Applies `changes` to client `id`.
pub async fn update(
    store: &Store,
    master: Option<&Secret>,
    id: &str,
    changes: Changes,
) -> Result<Client, AdminError> {
    let mut c = find(store, master, id).await?;
    apply(&mut c, changes, master).map_err(AdminError::Invalid)?;
    if !store.update_client(&c.to_row()).await? {
        return Err(AdminError::NotFound);
    }
    Ok(c)
}

/// Revokes client `id` (its key stops working at once; the row stays for the ledger).
pub async fn revoke(
    store: &Store,
    master: Option<&Secret>,
    id: &str,
) -> Result<Client, AdminError> {
    let mut c = find(store, master, id).await?;
    if c.revoked_at.is_none() {
        c.revoked_at = Some(now_ms());
    }
    if !store.update_client(&c.to_row()).await? {
        return Err(AdminError::NotFound);
    }
    Ok(c)
}

/// Gives client `id` a new key (returned once); the old key stops working.
pub async fn rotate(
    store: &Store,
    master: &Secret,
    id: &str,
) -> Result<(Client, String), AdminError> {
    let Ok(secret) = key::generate_key() else {
        return Err(AdminError::Unavailable(
            "the system random number generator failed",
        ));
    };
    let prefix = key::shown_prefix(&secret);
    if !store
        .set_client_key(id, &prefix, &key::hash_key(master, &secret))
        .await?
    {
        return Err(AdminError::NotFound);
    }
    Ok((find(store, Some(master), id).await?, secret))
}
