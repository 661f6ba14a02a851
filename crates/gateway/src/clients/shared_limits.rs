//! Rate-limit windows in Redis (`REDIS_URL`), so that several gateway instances enforce ONE limit.
//!
//! The same fixed, clock-aligned windows as the in-process `limits::Counters`, one Redis key per
//! client, limit and window (`ekai:rl:{client}:{window}:{start}`, expiring with the window). Check
//! and count happen in one Lua script, which Redis runs atomically: with a limit of 100 per minute
//! and 200 concurrent requests spread over any number of instances, exactly 100 pass.
//!
//! When Redis cannot be reached the request is let through and a warning logged: a limiter outage
//! must not take the gateway down (the ledger still records every request).

use super::limits::{Admitted, Limits, Refusal, WINDOWS, refusal};
use crate::config::Secret;
use redis::aio::ConnectionManager;

/// Checks every configured window (KEYS in order, ARGV = limit, seconds-to-reset per key; the
/// first `ARGV[1]` keys count requests, the rest tokens); refuses with `{0, index, limit, reset}`,
/// else counts the request in each request window and answers `{1, limit, remaining, reset}` for
/// the tightest one (`{1}` when there is none).
const ADMIT: &str = r#"
local n = tonumber(ARGV[1])
for i = 1, #KEYS do
  local limit = tonumber(ARGV[2 * i])
  local used = tonumber(redis.call('GET', KEYS[i]) or '0')
  if used >= limit then return {0, i, limit, tonumber(ARGV[2 * i + 1])} end
end
local out = {1}
local best = nil
for i = 1, n do
  local limit = tonumber(ARGV[2 * i])
  local reset = tonumber(ARGV[2 * i + 1])
  local used = redis.call('INCR', KEYS[i])
  redis.call('EXPIRE', KEYS[i], reset + 1)
  local left = limit - used
  if left < 0 then left = 0 end
  if best == nil or left < best then
    best = left
    out = {1, limit, left, reset}
  end
end
return out
"#;

/// Reserves `ARGV[1]` tokens in every token window (KEYS; ARGV = limit, seconds-to-reset per key),
/// or refuses with `{0, index, limit, reset}` when they do not fit (same rule as
/// `Counters::reserve_tokens`).
const RESERVE: &str = r#"
local est = tonumber(ARGV[1])
for i = 1, #KEYS do
  local limit = tonumber(ARGV[2 * i])
  local used = tonumber(redis.call('GET', KEYS[i]) or '0')
  if used >= limit or (used > 0 and used + est > limit) then
    return {0, i, limit, tonumber(ARGV[2 * i + 1])}
  end
end
for i = 1, #KEYS do
  redis.call('INCRBY', KEYS[i], est)
  redis.call('EXPIRE', KEYS[i], tonumber(ARGV[2 * i + 1]) + 1)
end
return {1}
"#;

/// Budget reservations across instances. KEYS = one counter per cap (nano-USD reserved by running
/// requests); ARGV = amount, then (settled spend, cap, ttl) per key. Refuses with `{0, index}` when
/// settled + reserved by everyone has reached a cap, else adds the amount to every counter.
const RESERVE_USD: &str = r#"
local amount = tonumber(ARGV[1])
for i = 1, #KEYS do
  local settled = tonumber(ARGV[3 * i - 1])
  local cap = tonumber(ARGV[3 * i])
  local reserved = tonumber(redis.call('GET', KEYS[i]) or '0')
  if settled + reserved >= cap then return {0, i} end
end
for i = 1, #KEYS do
  redis.call('INCRBY', KEYS[i], amount)
  redis.call('EXPIRE', KEYS[i], tonumber(ARGV[3 * i + 1]))
end
return {1, 0}
"#;

pub struct RedisLimits {
    conn: ConnectionManager,
    admit: redis::Script,
    reserve: redis::Script,
    reserve_usd: redis::Script,
}

/// One budget cap checked in Redis: its counter key, the spend already settled (nano-USD) and the
/// cap (nano-USD).
pub struct UsdCap {
    pub key: String,
    pub settled: i64,
    pub cap: i64,
}

fn key(client: &str, window: &str, start: u64) -> String {
    format!("ekai:rl:{client}:{window}:{start}")
}

impl RedisLimits {
    /// Connects (and pings), so a wrong `REDIS_URL` stops the start with a clear message.
    pub async fn connect(url: &Secret) -> anyhow::Result<RedisLimits> {
        let client = redis::Client::open(url.expose())
            .map_err(|e| anyhow::anyhow!("REDIS_URL is not a valid Redis URL: {:?}", e.kind()))?;
        let mut conn = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            ConnectionManager::new(client),
        )
        .await
        .map_err(|_| anyhow::anyhow!("REDIS_URL: no answer from Redis within 5 s"))?
        .map_err(|e| anyhow::anyhow!("REDIS_URL: cannot connect to Redis: {:?}", e.kind()))?;
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(|e| anyhow::anyhow!("REDIS_URL: Redis did not answer PING: {:?}", e.kind()))?;
        Ok(RedisLimits {
            conn,
            admit: redis::Script::new(ADMIT),
            reserve: redis::Script::new(RESERVE),
            reserve_usd: redis::Script::new(RESERVE_USD),
        })
    }

    /// Checks and counts one request for `client` (None when it has no request limit).
    pub async fn admit(
        &self,
        client: &str,
        l: &Limits,
        now: u64,
    ) -> Result<Option<Admitted>, Refusal> {
        // (key, limit, seconds to reset, what, tokens?) — request windows first.
        let mut windows = Vec::with_capacity(5);
        for w in WINDOWS.iter().filter(|w| !w.tokens) {
            if let Some(limit) = (w.limit)(l) {
                let start = now - now % w.len;
                windows.push((key(client, w.name, start), limit, start + w.len - now, w));
            }
        }
        let requests = windows.len();
        for w in WINDOWS.iter().filter(|w| w.tokens) {
            if let Some(limit) = (w.limit)(l) {
                let start = now - now % w.len;
                windows.push((key(client, w.name, start), limit, start + w.len - now, w));
            }
        }
        if windows.is_empty() {
            return Ok(None);
        }
        let mut inv = self.admit.prepare_invoke();
        inv.arg(requests);
        for (k, limit, reset, _) in &windows {
            inv.key(k).arg(*limit).arg(*reset);
        }
        let mut conn = self.conn.clone();
        let out: Vec<u64> = match inv.invoke_async(&mut conn).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(
                    "rate limits: Redis failed ({:?}); letting the request through",
                    e.kind()
                );
                return Ok(None);
            }
        };
        match out.as_slice() {
            [0, index, limit, reset] => {
                let w = usize::try_from(*index)
                    .ok()
                    .and_then(|i| windows.get(i.wrapping_sub(1)))
                    .map(|(_, _, _, w)| *w);
                let (what, tokens) = w.map_or(("requests", false), |w| (w.what, w.tokens));
                Err(refusal(what, tokens, *limit, *reset))
            }
            [1, limit, remaining, reset] => Ok(Some(Admitted {
                limit: *limit,
                remaining: *remaining,
                reset: *reset,
            })),
            _ => Ok(None),
        }
    }

    /// Reserves `est` tokens in the client's token windows; Ok carries the keys to give back.
    pub async fn reserve_tokens(
        &self,
        client: &str,
        l: &Limits,
        est: u64,
        now: u64,
    ) -> Result<Vec<String>, Refusal> {
        let windows: Vec<_> = WINDOWS
            .iter()
            .filter(|w| w.tokens)
            .filter_map(|w| {
                let limit = (w.limit)(l)?;
                let start = now - now % w.len;
                Some((key(client, w.name, start), limit, start + w.len - now, w))
            })
            .collect();
        if windows.is_empty() {
            return Ok(Vec::new());
        }
        let mut inv = self.reserve.prepare_invoke();
        inv.arg(est);
        for (k, limit, reset, _) in &windows {
            inv.key(k).arg(*limit).arg(*reset);
        }
        let mut conn = self.conn.clone();
        match inv.invoke_async::<Vec<u64>>(&mut conn).await {
            Ok(out) => match out.as_slice() {
                [0, index, limit, reset] => {
                    let what = usize::try_from(*index)
                        .ok()
                        .and_then(|i| windows.get(i.wrapping_sub(1)))
                        .map_or("tokens", |(_, _, _, w)| w.what);
                    Err(refusal(what, true, *limit, *reset))
                }
                _ => Ok(windows.into_iter().map(|(k, ..)| k).collect()),
            },
            Err(e) => {
                tracing::warn!(
                    "rate limits: Redis failed ({:?}); letting the request through",
                    e.kind()
                );
                Ok(Vec::new())
            }
        }
    }

    /// Gives back a reservation made by `reserve_tokens`.
    pub async fn release_tokens(&self, keys: &[String], est: u64) {
        if keys.is_empty() || est == 0 {
            return;
        }
        let mut pipe = redis::pipe();
        for k in keys {
            pipe.decr(k, est).ignore();
        }
        let mut conn = self.conn.clone();
        if let Err(e) = pipe.query_async::<()>(&mut conn).await {
            tracing::warn!(
                "rate limits: Redis failed to release tokens ({:?})",
                e.kind()
            );
        }
    }

    /// The Redis counter of a client's reservations for a period (`m` month, `d` day) starting at
    /// `start_ms`.
    pub fn budget_key(client: &str, period: &str, start_ms: i64) -> String {
        format!("ekai:budget:{client}:{period}:{start_ms}")
    }

    /// The Redis counter of the gateway-wide monthly cap's reservations, for the instances over
    /// the database `deployment`, for the month starting at `start_ms`.
    pub fn gateway_budget_key(deployment: &str, start_ms: i64) -> String {
        format!("ekai:budget-gateway:{deployment}:m:{start_ms}")
    }

    /// Reserves `amount` nano-USD against every cap; Err(index) names the cap that is reached.
    /// A Redis failure admits (and reserves nothing), like the rate limits.
    pub async fn reserve_usd(&self, caps: &[UsdCap], amount: i64) -> Result<bool, usize> {
        if caps.is_empty() {
            return Ok(false);
        }
        let mut inv = self.reserve_usd.prepare_invoke();
        inv.arg(amount);
        for c in caps {
            // Counters outlive the longest period (a month) and a request's lifetime.
            inv.key(&c.key).arg(c.settled).arg(c.cap).arg(32 * 86_400);
        }
        let mut conn = self.conn.clone();
        match inv.invoke_async::<Vec<i64>>(&mut conn).await {
            Ok(v) if v.first() == Some(&0) => {
                Err(v.get(1).and_then(|i| usize::try_from(*i).ok()).unwrap_or(1) - 1)
            }
            Ok(_) => Ok(true),
            Err(e) => {
                tracing::warn!(
                    "budgets: Redis failed ({:?}); admitting on this instance's view",
                    e.kind()
                );
                Ok(false)
            }
        }
    }

    /// Gives back a reservation made by `reserve_usd`.
    pub async fn release_usd(&self, keys: &[String], amount: i64) {
        if keys.is_empty() || amount == 0 {
            return;
        }
        let mut pipe = redis::pipe();
        for k in keys {
            pipe.decr(k, amount).ignore();
        }
        let mut conn = self.conn.clone();
        if let Err(e) = pipe.query_async::<()>(&mut conn).await {
            tracing::warn!(
                "budgets: Redis failed to release a reservation ({:?})",
                e.kind()
            );
        }
    }

    /// Adds a finished request's tokens to the client's token windows.
    pub async fn add_tokens(&self, client: &str, n: u64, now: u64) {
        let mut pipe = redis::pipe();
        for w in WINDOWS.iter().filter(|w| w.tokens) {
            let start = now - now % w.len;
            let k = key(client, w.name, start);
            pipe.incr(&k, n)
                .ignore()
                .expire(&k, (start + w.len - now + 1) as i64)
                .ignore();
        }
        let mut conn = self.conn.clone();
        if let Err(e) = pipe.query_async::<()>(&mut conn).await {
            tracing::warn!("rate limits: Redis failed to count tokens ({:?})", e.kind());
        }
    }
}
