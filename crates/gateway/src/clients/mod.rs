//! Clients: gateway API keys with a policy each (allowed models, default model, rate limits, monthly
//! budget), stored in the ledger database (`clients` table) and cached in memory by [`Registry`].
//!
//! The registry re-reads the table after every admin change made through this process, and at most
//! [`RELOAD_EVERY`] after the last read when a request arrives (so another instance's changes are
//! picked up within seconds, without a background task). Rate-limit counters (`limits`) live beside
//! the cache, per client id, and survive reloads.

pub mod admin;
pub mod key;
pub mod limits;
pub mod seal;
pub mod shared_limits;
pub mod wallet;

use crate::accounting::{
    Budget as BudgetTrait, Hold, SharedBudget, Sink, TokenLimits, UsageRecord,
};
use crate::config::{AuthConfig, AuthMode, Secret};
use crate::error::GatewayError;
use crate::ledger::Ledger;
use crate::ledger::store::{ClientRow, Store};
use crate::ledger::time::now_ms;
use bytes::Bytes;
use ekai_wire::canonical::{Dialect, ErrorKind};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// How stale the cache may get before a request triggers a reload.
pub const RELOAD_EVERY: Duration = Duration::from_secs(3);

/// What a request outside `model_preferences` gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnDisallowed {
    /// 403 in the client's dialect.
    #[default]
    Reject,
    /// The first listed model is used instead.
    Substitute,
}

/// A client's policy, stored as JSON in `clients.policy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Models this client may use (exact names, or a prefix ending in `*`); empty = any.
    #[serde(default)]
    pub model_preferences: Vec<String>,
    #[serde(default)]
    pub on_disallowed_model: OnDisallowed,
    /// Used when a request names no model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_model: Option<String>,
    #[serde(default)]
    pub limits: limits::Limits,
    /// Monthly cap in USD; None = no cap of its own (the gateway's cap still applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_usd: Option<Decimal>,
    /// Daily cap in USD (UTC days); None = none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_usd_day: Option<Decimal>,
    /// Providers this client's requests may be routed to (config names); empty = any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<String>,
    /// Text put before the request's own system prompt (as its first part), whatever API the
    /// client speaks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt_prefix: Option<String>,
    /// `PUT /user/preferences`: in Sapphire mode, the owner address whose on-chain keys and
    /// permissions a wallet client uses (delegation); informational otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_address: Option<String>,
}

impl Policy {
    pub fn allows(&self, model: &str) -> bool {
        self.model_preferences.is_empty()
            || self
                .model_preferences
                .iter()
                .any(|p| match p.strip_suffix('*') {
                    Some(prefix) => model.starts_with(prefix),
                    None => p == model,
                })
    }
}

#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub key_prefix: String,
    key_hash: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub tags: serde_json::Value,
    pub policy: Policy,
    /// Provider → the client's own upstream key, sealed (what the database holds).
    pub upstream_sealed: BTreeMap<String, String>,
    /// The same keys opened with the master key (memory only; never returned by any API).
    pub upstream_keys: Arc<HashMap<String, Secret>>,
}

impl Client {
    /// `master` opens the sealed upstream keys (a key that does not open is logged and ignored).
    pub fn from_row(r: ClientRow, master: Option<&Secret>) -> Client {
        let policy = serde_json::from_str(&r.policy).unwrap_or_else(|e| {
            // Refusing every model is safer than allowing any when the stored policy is unreadable.
            tracing::error!(client = %r.id, "unreadable client policy ({e}); the client may use no model");
            Policy {
                model_preferences: vec!["(unreadable policy)".into()],
                ..Policy::default()
            }
        });
        let upstream_sealed: BTreeMap<String, String> =
            serde_json::from_str(&r.upstream_keys).unwrap_or_default();
        let mut opened = HashMap::new();
        for (provider, sealed) in &upstream_sealed {
            match master.and_then(|m| seal::open(m, &r.id, sealed)) {
                Some(k) => {
                    opened.insert(provider.clone(), k);
                }
                None => tracing::error!(
                    client = %r.id,
                    provider = %provider,
                    "cannot decrypt this client's upstream key (another EKAI_MASTER_KEY?); the gateway's key is used"
                ),
            }
        }
        Client {
            upstream_sealed,
            upstream_keys: Arc::new(opened),
            id: r.id,
            name: r.name,
            key_prefix: r.key_prefix,
            key_hash: r.key_hash,
            created_at: r.created_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
            tags: serde_json::from_str(&r.tags).unwrap_or(serde_json::Value::Null),
            policy,
        }
    }

    pub fn to_row(&self) -> ClientRow {
        ClientRow {
            id: self.id.clone(),
            name: self.name.clone(),
            key_prefix: self.key_prefix.clone(),
            key_hash: self.key_hash.clone(),
            created_at: self.created_at,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
            tags: self.tags.to_string(),
            policy: serde_json::to_string(&self.policy).unwrap_or_else(|_| "{}".into()),
            upstream_keys: serde_json::to_string(&self.upstream_sealed)
                .unwrap_or_else(|_| "{}".into()),
        }
    }
}

/// Why a presented key was refused (the message never contains the key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    Missing,
    Unknown,
    Revoked,
    Expired,
}

#[derive(Default)]
struct Snapshot {
    by_id: HashMap<String, Arc<Client>>,
    /// Shown prefix → clients (a prefix may be shared; each is then verified).
    by_prefix: HashMap<String, Vec<Arc<Client>>>,
}

pub struct Registry {
    mode: AuthMode,
    master: Option<Secret>,
    pub admin_token: Option<Secret>,
    ledger: Option<Ledger>,
    snapshot: RwLock<Arc<Snapshot>>,
    loaded_at: AtomicI64,
    reloading: tokio::sync::Mutex<()>,
    counters: Mutex<HashMap<String, limits::Counters>>,
    /// Wallet sessions already looked up (Sapphire mode).
    wallets: wallet::Sessions,
    /// Set with `REDIS_URL`: the windows live in Redis instead of `counters`.
    shared: Option<shared_limits::RedisLimits>,
    /// The ledger database's id (with Redis): scopes the gateway budget's Redis counter to the
    /// instances sharing that database.
    deployment: Option<String>,
}

fn now_secs() -> u64 {
    u64::try_from(now_ms() / 1000).unwrap_or(0)
}

impl Registry {
    /// A registry over the ledger's database (None: no database, so no clients: open mode only).
    pub async fn open(auth: &AuthConfig, ledger: Option<Ledger>) -> anyhow::Result<Registry> {
        let r = Registry {
            mode: auth.mode,
            master: auth.master_key.clone(),
            admin_token: auth.admin_token.clone(),
            ledger,
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            loaded_at: AtomicI64::new(0),
            reloading: tokio::sync::Mutex::new(()),
            counters: Mutex::new(HashMap::new()),
            wallets: wallet::Sessions::default(),
            shared: match &auth.redis_url {
                Some(url) => Some(shared_limits::RedisLimits::connect(url).await?),
                None => None,
            },
            deployment: None,
        };
        let mut r = r;
        if let (Some(_), Some(l)) = (&r.shared, &r.ledger) {
            let proposed = key::random_base62(16)
                .map_err(|e| anyhow::anyhow!("the system random number generator failed: {e}"))?;
            r.deployment = Some(l.store().deployment_id(&proposed).await?);
        }
        if r.shared.is_some() {
            tracing::info!("clients: rate-limit windows are shared through Redis");
        }
        r.reload().await?;
        Ok(r)
    }

    /// No database, no clients: every request is let through (tests and tools).
    pub fn disabled() -> Registry {
        Registry {
            mode: AuthMode::Open,
            master: None,
            admin_token: None,
            ledger: None,
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            loaded_at: AtomicI64::new(0),
            reloading: tokio::sync::Mutex::new(()),
            counters: Mutex::new(HashMap::new()),
            wallets: wallet::Sessions::default(),
            shared: None,
            deployment: None,
        }
    }

    pub fn store(&self) -> Option<&Store> {
        self.ledger.as_ref().map(Ledger::store)
    }

    pub fn ledger(&self) -> Option<&Ledger> {
        self.ledger.as_ref()
    }

    pub fn master_key(&self) -> Option<&Secret> {
        self.master.as_ref()
    }

    fn snap(&self) -> Arc<Snapshot> {
        match self.snapshot.read() {
            Ok(s) => Arc::clone(&s),
            Err(e) => Arc::clone(&e.into_inner()),
        }
    }

    /// Number of clients (revoked included).
    pub fn len(&self) -> usize {
        self.snap().by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether API requests need a key right now.
    pub fn keys_required(&self) -> bool {
        match self.mode {
            AuthMode::Open => false,
            AuthMode::Keys => true,
            AuthMode::Auto => !self.is_empty(),
        }
    }

    pub fn get(&self, id: &str) -> Option<Arc<Client>> {
        self.snap().by_id.get(id).cloned()
    }

    pub fn all(&self) -> Vec<Arc<Client>> {
        let mut v: Vec<_> = self.snap().by_id.values().cloned().collect();
        v.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        v
    }

    /// Re-reads every client from the database.
    pub async fn reload(&self) -> anyhow::Result<()> {
        let Some(store) = self.store() else {
            return Ok(());
        };
        let _guard = self.reloading.lock().await;
        let rows = store.clients().await?;
        let mut snap = Snapshot::default();
        for row in rows {
            let c = Arc::new(Client::from_row(row, self.master.as_ref()));
            snap.by_prefix
                .entry(c.key_prefix.clone())
                .or_default()
                .push(Arc::clone(&c));
            snap.by_id.insert(c.id.clone(), c);
        }
        match self.snapshot.write() {
            Ok(mut s) => *s = Arc::new(snap),
            Err(e) => *e.into_inner() = Arc::new(snap),
        }
        self.loaded_at.store(now_ms(), Ordering::Relaxed);
        Ok(())
    }

    /// Reloads when the cache is older than [`RELOAD_EVERY`] (one caller reloads; the others go on
    /// with the current cache).
    pub async fn maybe_reload(&self) {
        let age = now_ms() - self.loaded_at.load(Ordering::Relaxed);
        if self.store().is_none() || age < RELOAD_EVERY.as_millis() as i64 {
            return;
        }
        if self.reloading.try_lock().is_err() {
            return;
        }
        if let Err(e) = self.reload().await {
            tracing::warn!("clients: reloading from the database failed: {e}");
            // Try again after another interval rather than on every request.
            self.loaded_at.store(now_ms(), Ordering::Relaxed);
        }
    }

    /// The client owning `key`: its shown prefix selects candidates, each verified by its HMAC in
    /// constant time.
    pub fn authenticate(&self, presented: Option<&str>) -> Result<Arc<Client>, AuthFailure> {
        let Some(presented) = presented else {
            return Err(AuthFailure::Missing);
        };
        let Some(master) = &self.master else {
            return Err(AuthFailure::Unknown);
        };
        if !key::looks_like_key(presented) {
            return Err(AuthFailure::Unknown);
        }
        let snap = self.snap();
        let found = snap
            .by_prefix
            .get(&key::shown_prefix(presented))
            .and_then(|cands| {
                cands
                    .iter()
                    .find(|c| key::verify(master, presented, &c.key_hash))
            })
            .cloned()
            .ok_or(AuthFailure::Unknown)?;
        if found.revoked_at.is_some() {
            return Err(AuthFailure::Revoked);
        }
        if found.expires_at.is_some_and(|t| t <= now_ms()) {
            return Err(AuthFailure::Expired);
        }
        Ok(found)
    }

    /// Rate limits: checks and counts the request for `client` in one step (in Redis when
    /// configured, so that every instance sees the same windows).
    pub async fn admit(
        &self,
        client: &Client,
    ) -> Result<Option<limits::Admitted>, limits::Refusal> {
        if let Some(shared) = &self.shared {
            return shared
                .admit(&client.id, &client.policy.limits, now_secs())
                .await;
        }
        let mut map = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(client.id.clone())
            .or_default()
            .admit(&client.policy.limits, now_secs())
    }

    fn add_tokens(self: &Arc<Self>, client_id: &str, n: u64) {
        if self.shared.is_some() {
            let me = Arc::clone(self);
            let id = client_id.to_string();
            // Sinks are synchronous (called where a request ends, possibly in a Drop); the Redis
            // round trip runs beside it and never delays the response.
            #[allow(clippy::disallowed_methods)]
            tokio::spawn(async move {
                if let Some(shared) = &me.shared {
                    shared.add_tokens(&id, n, now_secs()).await;
                }
            });
            return;
        }
        let mut map = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(client_id.to_string())
            .or_default()
            .add_tokens(n, now_secs());
    }

    /// The client's token limits as the proxy sees them (None when it has none).
    pub fn tokens_for(self: &Arc<Self>, client: &Client) -> Option<Arc<dyn TokenLimits>> {
        let l = &client.policy.limits;
        (l.tokens_per_minute.is_some() || l.tokens_per_day.is_some()).then(|| {
            Arc::new(ClientTokens {
                registry: Arc::clone(self),
                id: client.id.clone(),
                limits: *l,
            }) as Arc<dyn TokenLimits>
        })
    }

    /// The client's monthly and daily budgets as the proxy sees them (None when it has no cap or
    /// there is no ledger).
    pub fn budget_for(&self, client: &Client) -> Option<Arc<dyn BudgetTrait>> {
        let (month, day) = (client.policy.budget_usd, client.policy.budget_usd_day);
        if month.is_none() && day.is_none() {
            return None;
        }
        let ledger = self.ledger.as_ref()?;
        Some(Arc::new(ClientBudget {
            budget: ledger.budget().clone(),
            id: client.id.clone(),
            month,
            day,
        }))
    }

    /// With `REDIS_URL`: the client's caps as every instance sees them (None without Redis, a
    /// ledger or a cap).
    pub fn shared_budget_for(self: &Arc<Self>, client: &Client) -> Option<Arc<dyn SharedBudget>> {
        let (month, day) = (client.policy.budget_usd, client.policy.budget_usd_day);
        if self.shared.is_none() || self.ledger.is_none() || (month.is_none() && day.is_none()) {
            return None;
        }
        Some(Arc::new(ClientSharedBudget {
            registry: Arc::clone(self),
            id: client.id.clone(),
            month,
            day,
        }))
    }

    /// With `REDIS_URL` and a ledger: the gateway's own monthly cap as every instance sees it.
    pub fn gateway_shared_budget(self: &Arc<Self>) -> Option<Arc<dyn SharedBudget>> {
        self.shared.as_ref()?;
        self.ledger.as_ref()?;
        Some(Arc::new(GatewaySharedBudget {
            registry: Arc::clone(self),
            deployment: self.deployment.clone()?,
        }))
    }

    /// A client's spend today (UTC).
    pub fn spent_today(&self, client_id: &str) -> Option<Decimal> {
        self.ledger
            .as_ref()
            .map(|l| l.budget().client_spent_today(client_id))
    }

    /// A client's month-to-date spend (written, in transit and reserved).
    pub fn spent(&self, client_id: &str) -> Option<Decimal> {
        self.ledger
            .as_ref()
            .map(|l| l.budget().client_spent(client_id))
    }
}

struct ClientTokens {
    registry: Arc<Registry>,
    id: String,
    limits: limits::Limits,
}

impl TokenLimits for ClientTokens {
    fn reserve(&self, est: u64) -> crate::accounting::Reserving<'_> {
        Box::pin(async move {
            let refused =
                |r: limits::Refusal| GatewayError::token_limit(r.what, r.limit, est, r.retry_after);
            let reservation = match &self.registry.shared {
                Some(shared) => Reservation::Shared(
                    shared
                        .reserve_tokens(&self.id, &self.limits, est, now_secs())
                        .await
                        .map_err(refused)?,
                ),
                None => {
                    let mut map = self
                        .registry
                        .counters
                        .lock()
                        .unwrap_or_else(|e| e.into_inner());
                    Reservation::Local(
                        map.entry(self.id.clone())
                            .or_default()
                            .reserve_tokens(&self.limits, est, now_secs())
                            .map_err(refused)?,
                    )
                }
            };
            Ok(Box::new(TokenHold {
                registry: Arc::clone(&self.registry),
                id: self.id.clone(),
                tokens: est,
                reservation: Some(reservation),
            }) as Box<dyn Hold>)
        })
    }
}

enum Reservation {
    Local(limits::Reserved),
    /// The Redis keys the tokens were added to.
    Shared(Vec<String>),
}

/// Reserved tokens, given back when the request's record is settled (or the request is dropped);
/// `TokenSink` adds the real tokens at the same moment.
struct TokenHold {
    registry: Arc<Registry>,
    id: String,
    tokens: u64,
    reservation: Option<Reservation>,
}

impl Hold for TokenHold {
    fn settle(self: Box<Self>, _actual: Option<Decimal>) {}
}

impl Drop for TokenHold {
    fn drop(&mut self) {
        match self.reservation.take() {
            Some(Reservation::Local(r)) => {
                let mut map = self
                    .registry
                    .counters
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                if let Some(c) = map.get_mut(&self.id) {
                    c.release_tokens(&r);
                }
            }
            Some(Reservation::Shared(keys)) => {
                let registry = Arc::clone(&self.registry);
                let tokens = self.tokens;
                // Drop cannot wait for Redis; the release runs beside the response.
                #[allow(clippy::disallowed_methods)]
                tokio::spawn(async move {
                    if let Some(shared) = &registry.shared {
                        shared.release_tokens(&keys, tokens).await;
                    }
                });
            }
            None => {}
        }
    }
}

struct ClientSharedBudget {
    registry: Arc<Registry>,
    id: String,
    month: Option<Decimal>,
    day: Option<Decimal>,
}

impl SharedBudget for ClientSharedBudget {
    fn reserve(&self, expected: Decimal) -> crate::accounting::Reserving<'_> {
        use crate::ledger::money::{from_nano, to_nano};
        use crate::ledger::time::{day_start, month_start};
        use shared_limits::{RedisLimits, UsdCap};
        Box::pin(async move {
            let (Some(shared), Some(ledger)) = (&self.registry.shared, &self.registry.ledger)
            else {
                return Ok(Box::new(UsdHold::default()) as Box<dyn Hold>);
            };
            let (month_settled, day_settled) = ledger.budget().client_settled_nano(&self.id);
            let now = now_ms();
            let mut caps = Vec::with_capacity(2);
            let mut periods = Vec::with_capacity(2);
            if let Some(cap) = self.day {
                caps.push(UsdCap {
                    key: RedisLimits::budget_key(&self.id, "d", day_start(now)),
                    settled: day_settled,
                    cap: to_nano(cap),
                });
                periods.push(("daily", "today (UTC)", cap, day_settled));
            }
            if let Some(cap) = self.month {
                caps.push(UsdCap {
                    key: RedisLimits::budget_key(&self.id, "m", month_start(now)),
                    settled: month_settled,
                    cap: to_nano(cap),
                });
                periods.push(("monthly", "this month", cap, month_settled));
            }
            match reserve_usd(&self.registry, shared, caps, to_nano(expected)).await {
                Ok(hold) => Ok(hold),
                Err(i) => {
                    let (period, when, cap, settled) = periods.get(i).copied().unwrap_or((
                        "monthly",
                        "this month",
                        Decimal::ZERO,
                        0,
                    ));
                    Err(GatewayError::client_budget_exceeded(&format!(
                        "this key's {period} budget of ${cap} is reached (spent ${} {when}, with the requests still running on every instance); ask the gateway's administrator to raise it",
                        from_nano(settled)
                    )))
                }
            }
        })
    }
}

/// The gateway's monthly cap (`PUT /budget`) across instances: as a client's, its spend comes from
/// this instance's ledger view (refreshed from the database) and every instance's running
/// requests are reserved in Redis. The cap is read at each request, so a change applies at once.
struct GatewaySharedBudget {
    registry: Arc<Registry>,
    deployment: String,
}

impl SharedBudget for GatewaySharedBudget {
    fn reserve(&self, expected: Decimal) -> crate::accounting::Reserving<'_> {
        use crate::ledger::money::{from_nano, to_nano};
        use crate::ledger::time::month_start;
        use shared_limits::{RedisLimits, UsdCap};
        Box::pin(async move {
            let (Some(shared), Some(ledger)) = (&self.registry.shared, &self.registry.ledger)
            else {
                return Ok(Box::new(UsdHold::default()) as Box<dyn Hold>);
            };
            let (Some(cap), settled) = ledger.budget().settled_nano() else {
                return Ok(Box::new(UsdHold::default()) as Box<dyn Hold>);
            };
            let caps = [UsdCap {
                key: RedisLimits::gateway_budget_key(&self.deployment, month_start(now_ms())),
                settled,
                cap,
            }];
            match reserve_usd(&self.registry, shared, caps.into(), to_nano(expected)).await {
                Ok(hold) => Ok(hold),
                Err(_) => Err(GatewayError::budget_exceeded(&format!(
                    "the gateway's monthly budget of ${} is reached (spent ${} this month, with the requests still running on every instance)",
                    from_nano(cap),
                    from_nano(settled)
                ))),
            }
        })
    }
}

/// Reserves `amount` nano-USD in Redis against every cap (Err: the index of the cap reached); the
/// hold gives the reservation back when dropped.
async fn reserve_usd(
    registry: &Arc<Registry>,
    shared: &shared_limits::RedisLimits,
    caps: Vec<shared_limits::UsdCap>,
    amount: i64,
) -> Result<Box<dyn Hold>, usize> {
    let amount = amount.max(0);
    let reserved = shared.reserve_usd(&caps, amount).await?;
    Ok(Box::new(UsdHold {
        registry: reserved.then(|| Arc::clone(registry)),
        keys: caps.into_iter().map(|c| c.key).collect(),
        amount,
    }))
}

/// A reservation in Redis, given back when the request's record is settled (its real cost then
/// counts through the ledger).
#[derive(Default)]
struct UsdHold {
    /// None: nothing was reserved (Redis was down).
    registry: Option<Arc<Registry>>,
    keys: Vec<String>,
    amount: i64,
}

impl Hold for UsdHold {
    fn settle(self: Box<Self>, _actual: Option<Decimal>) {}
}

impl Drop for UsdHold {
    fn drop(&mut self) {
        let Some(registry) = self.registry.take() else {
            return;
        };
        let (keys, amount) = (std::mem::take(&mut self.keys), self.amount);
        // Drop cannot wait for Redis; the release runs beside the response.
        #[allow(clippy::disallowed_methods)]
        tokio::spawn(async move {
            if let Some(shared) = &registry.shared {
                shared.release_usd(&keys, amount).await;
            }
        });
    }
}

struct ClientBudget {
    budget: crate::ledger::Budget,
    id: String,
    month: Option<Decimal>,
    day: Option<Decimal>,
}

impl BudgetTrait for ClientBudget {
    fn admit(&self, expected: Decimal) -> Result<Box<dyn Hold>, String> {
        self.budget
            .try_reserve_client(&self.id, self.month, self.day, expected)
            .map(|r| Box::new(r) as Box<dyn Hold>)
            .map_err(|e| {
                let when = if e.period == "daily" { "today (UTC)" } else { "this month" };
                format!(
                    "this key's {} budget of ${} is reached (spent ${} {when}); ask the gateway's administrator to raise it",
                    e.period, e.cap, e.spent
                )
            })
    }
}

/// Wraps the proxy's sink: a finished record's tokens count against its client's token limits.
pub struct TokenSink {
    pub inner: Arc<dyn Sink>,
    pub registry: Arc<Registry>,
}

impl Sink for TokenSink {
    fn submit(&self, record: UsageRecord) {
        if let Some(id) = &record.client_key_id {
            let n = record.usage.input_tokens + record.usage.output_tokens;
            if n > 0 {
                self.registry.add_tokens(id, n);
            }
        }
        self.inner.submit(record);
    }
}

/// Applies a client's model policy to a request body: fills in `default_model` when the body names
/// no model, and rejects (403) or substitutes a model outside `model_preferences`. Gemini names the
/// model in the URL (`url_model`), which is then what is checked and replaced.
pub fn apply_model_policy(
    policy: &Policy,
    body: Bytes,
    url_model: &mut Option<String>,
) -> Result<Bytes, GatewayError> {
    if let Some(m) = url_model.as_mut() {
        if let Some(replacement) = check(policy, m)? {
            *m = replacement;
        }
        return Ok(body);
    }
    let requested = crate::proxy::body::peek(&body).and_then(|p| p.model.map(|m| m.into_owned()));
    let (model, rewrite) = match (requested, &policy.default_model) {
        (Some(m), _) => (m, false),
        (None, Some(d)) => (d.clone(), true),
        // The proxy answers the missing model in the dialect's words.
        (None, None) => return Ok(body),
    };
    let target = match check(policy, &model)? {
        Some(r) => r,
        None if rewrite => model,
        None => return Ok(body),
    };
    set_model(&body, &target)
}

/// Some(substitute) when the model must change, Err when refused.
fn check(policy: &Policy, model: &str) -> Result<Option<String>, GatewayError> {
    if policy.allows(model) {
        return Ok(None);
    }
    match (policy.on_disallowed_model, policy.model_preferences.first()) {
        (OnDisallowed::Substitute, Some(first)) if !first.ends_with('*') => Ok(Some(first.clone())),
        _ => {
            let mut e = GatewayError::invalid(format!(
                "model '{model}' is not allowed for this API key; allowed: {}",
                policy.model_preferences.join(", ")
            ))
            .with_param(Some("model".into()))
            .with_code("model_not_allowed");
            e.status = http::StatusCode::FORBIDDEN;
            e.kind = ErrorKind::PermissionDenied;
            Err(e)
        }
    }
}

fn set_model(body: &[u8], model: &str) -> Result<Bytes, GatewayError> {
    let mut v: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(body)
        .map_err(|e| GatewayError::invalid(format!("invalid request body: {e}")))?;
    v.insert("model".into(), serde_json::Value::String(model.to_string()));
    serde_json::to_vec(&v)
        .map(Bytes::from)
        .map_err(|e| GatewayError::internal(format!("re-encoding the request body: {e}")))
}

/// The dialect an API path speaks (for errors raised before any handler runs).
pub fn dialect_for_path(path: &str) -> Dialect {
    if path.starts_with("/v1/messages") {
        Dialect::Anthropic
    } else if path.starts_with("/v1beta/")
        || (path.starts_with("/v1/models/") && path.contains(':'))
    {
        Dialect::Gemini
    } else if path == "/v1/responses" || path == "/responses" {
        Dialect::OpenAiResponses
    } else {
        Dialect::OpenAiChat
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn policy(models: &[&str], on: OnDisallowed) -> Policy {
        Policy {
            model_preferences: models.iter().map(|s| s.to_string()).collect(),
            on_disallowed_model: on,
            ..Policy::default()
        }
    }

    #[test]
    fn model_policy_rejects_substitutes_and_defaults() {
        let body = Bytes::from_static(br#"{"model":"gpt-4o","messages":[]}"#);
        let p = policy(&["gpt-4o-mini", "claude-*"], OnDisallowed::Reject);
        let e = apply_model_policy(&p, body.clone(), &mut None).unwrap_err();
        assert_eq!(e.status, 403);
        let ok = Bytes::from_static(br#"{"model":"claude-3-5-haiku","messages":[]}"#);
        assert_eq!(apply_model_policy(&p, ok.clone(), &mut None).unwrap(), ok);

        let p = policy(&["gpt-4o-mini"], OnDisallowed::Substitute);
        let out = apply_model_policy(&p, body, &mut None).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["model"], "gpt-4o-mini");

        let mut url = Some("gemini-2.5-pro".to_string());
        apply_model_policy(&p, Bytes::new(), &mut url).unwrap();
        assert_eq!(url.as_deref(), Some("gpt-4o-mini"));

        let p = Policy {
            default_model: Some("gpt-4o-mini".into()),
            ..Policy::default()
        };
        let out =
            apply_model_policy(&p, Bytes::from_static(br#"{"messages":[]}"#), &mut None).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["model"], "gpt-4o-mini");
    }

    #[test]
    fn dialect_from_path() {
        assert_eq!(dialect_for_path("/v1/messages"), Dialect::Anthropic);
        assert_eq!(
            dialect_for_path("/v1/messages/count_tokens"),
            Dialect::Anthropic
        );
        assert_eq!(
            dialect_for_path("/v1beta/models/g:generateContent"),
            Dialect::Gemini
        );
        assert_eq!(
            dialect_for_path("/v1/models/g:generateContent"),
            Dialect::Gemini
        );
        assert_eq!(dialect_for_path("/v1/models"), Dialect::OpenAiChat);
        assert_eq!(dialect_for_path("/v1/responses"), Dialect::OpenAiResponses);
        assert_eq!(dialect_for_path("/chat/completions"), Dialect::OpenAiChat);
    }

    #[test]
    fn policy_json_round_trips_and_rejects_unknown_fields() {
        let p: Policy = serde_json::from_str(
            r#"{"model_preferences":["a"],"on_disallowed_model":"substitute","limits":{"requests_per_minute":5},"budget_usd":"1.5"}"#,
        )
        .unwrap();
        assert_eq!(p.limits.requests_per_minute, Some(5));
        let back: Policy = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);
        assert!(serde_json::from_str::<Policy>(r#"{"modelz":[]}"#).is_err());
    }
}
