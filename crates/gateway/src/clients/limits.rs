//! Per-client rate limits: fixed windows aligned to the clock (minute, hour, day, UTC), checked and
//! counted in one step under the caller's lock, so they are exact under concurrency: with 5/min and
//! 20 concurrent requests exactly 5 pass. Fixed windows (not sliding) keep the state to one counter
//! per window; the price is that a client may use up to twice a limit across a window boundary.
//!
//! Requests count at admission. Tokens count when a request's usage record is written (what the
//! provider reported), so a token limit refuses new requests once the window's tokens reached it;
//! requests already running may carry it past the limit.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_hour: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_day: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_day: Option<u64>,
}

const MINUTE: u64 = 60;
const HOUR: u64 = 3600;
const DAY: u64 = 86_400;

/// One kind of window, for stores that address windows by name (`shared_limits`).
pub struct WindowSpec {
    pub name: &'static str,
    pub what: &'static str,
    pub len: u64,
    pub tokens: bool,
    pub limit: fn(&Limits) -> Option<u64>,
}

pub const WINDOWS: [WindowSpec; 5] = [
    WindowSpec {
        name: "rpm",
        what: "requests per minute",
        len: MINUTE,
        tokens: false,
        limit: |l| l.requests_per_minute,
    },
    WindowSpec {
        name: "rph",
        what: "requests per hour",
        len: HOUR,
        tokens: false,
        limit: |l| l.requests_per_hour,
    },
    WindowSpec {
        name: "rpd",
        what: "requests per day",
        len: DAY,
        tokens: false,
        limit: |l| l.requests_per_day,
    },
    WindowSpec {
        name: "tpm",
        what: "tokens per minute",
        len: MINUTE,
        tokens: true,
        limit: |l| l.tokens_per_minute,
    },
    WindowSpec {
        name: "tpd",
        what: "tokens per day",
        len: DAY,
        tokens: true,
        limit: |l| l.tokens_per_day,
    },
];

#[derive(Debug, Clone, Copy, Default)]
struct Window {
    /// Start of the window (unix seconds, a multiple of its length).
    start: u64,
    count: u64,
}

impl Window {
    fn at(&mut self, len: u64, now: u64) -> &mut Self {
        let start = now - now % len;
        if self.start != start {
            self.start = start;
            self.count = 0;
        }
        self
    }
}

/// One client's counters.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    req: [Window; 3],
    tok: [Window; 2],
}

/// Why a request was refused, for the 429 and its headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `requests per minute`, `tokens per day`, …
    pub what: &'static str,
    pub tokens: bool,
    pub limit: u64,
    /// Seconds until the window resets (≥ 1).
    pub retry_after: u64,
}

/// Tokens reserved for one request, and in which windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reserved {
    pub tokens: u64,
    starts: [Option<u64>; 2],
}

/// What a passing request may put in `x-ratelimit-*` headers (the tightest request window).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admitted {
    pub limit: u64,
    pub remaining: u64,
    pub reset: u64,
}

impl Counters {
    /// Checks every limit and, when all pass, counts the request in each request window.
    pub fn admit(&mut self, l: &Limits, now: u64) -> Result<Option<Admitted>, Refusal> {
        let reqs = [
            (l.requests_per_minute, MINUTE, "requests per minute"),
            (l.requests_per_hour, HOUR, "requests per hour"),
            (l.requests_per_day, DAY, "requests per day"),
        ];
        let toks = [
            (l.tokens_per_minute, MINUTE, "tokens per minute"),
            (l.tokens_per_day, DAY, "tokens per day"),
        ];
        for (i, (limit, len, what)) in reqs.iter().enumerate() {
            if let Some(limit) = *limit {
                let w = self.req[i].at(*len, now);
                if w.count >= limit {
                    return Err(refusal(what, false, limit, w.start + len - now));
                }
            }
        }
        for (i, (limit, len, what)) in toks.iter().enumerate() {
            if let Some(limit) = *limit {
                let w = self.tok[i].at(*len, now);
                if w.count >= limit {
                    return Err(refusal(what, true, limit, w.start + len - now));
                }
            }
        }
        let mut tightest: Option<Admitted> = None;
        for (i, (limit, len, _)) in reqs.iter().enumerate() {
            if let Some(limit) = *limit {
                let w = self.req[i].at(*len, now);
                w.count += 1;
                let a = Admitted {
                    limit,
                    remaining: limit.saturating_sub(w.count),
                    reset: w.start + len - now,
                };
                if tightest.is_none_or(|t| a.remaining < t.remaining) {
                    tightest = Some(a);
                }
            }
        }
        Ok(tightest)
    }

    /// Reserves a request's estimated tokens in the token windows, refusing when they do not fit.
    /// A request estimated above the whole limit still passes into an EMPTY window (the estimate
    /// is rough, and refusing it would lock the client out for good).
    pub fn reserve_tokens(&mut self, l: &Limits, est: u64, now: u64) -> Result<Reserved, Refusal> {
        let toks = [
            (l.tokens_per_minute, MINUTE, "tokens per minute"),
            (l.tokens_per_day, DAY, "tokens per day"),
        ];
        for (i, (limit, len, what)) in toks.iter().enumerate() {
            if let Some(limit) = *limit {
                let w = self.tok[i].at(*len, now);
                if w.count >= limit || (w.count > 0 && w.count + est > limit) {
                    return Err(refusal(what, true, limit, w.start + len - now));
                }
            }
        }
        let mut starts = [None; 2];
        for (i, (limit, len, _)) in toks.iter().enumerate() {
            if limit.is_some() {
                let w = self.tok[i].at(*len, now);
                w.count += est;
                starts[i] = Some(w.start);
            }
        }
        Ok(Reserved {
            tokens: est,
            starts,
        })
    }

    /// Gives a reservation back (the real tokens are added by `add_tokens`); a window that has
    /// rolled over since is left alone.
    pub fn release_tokens(&mut self, r: &Reserved) {
        for (i, start) in r.starts.iter().enumerate() {
            if let Some(start) = start
                && self.tok[i].start == *start
            {
                self.tok[i].count = self.tok[i].count.saturating_sub(r.tokens);
            }
        }
    }

    /// Adds a finished request's tokens to the token windows.
    pub fn add_tokens(&mut self, n: u64, now: u64) {
        self.tok[0].at(MINUTE, now).count += n;
        self.tok[1].at(DAY, now).count += n;
    }
}

pub fn refusal(what: &'static str, tokens: bool, limit: u64, retry_after: u64) -> Refusal {
    Refusal {
        what,
        tokens,
        limit,
        retry_after: retry_after.max(1),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fixed_minute_window_counts_exactly_and_resets_on_the_boundary() {
        let l = Limits {
            requests_per_minute: Some(3),
            ..Limits::default()
        };
        let mut c = Counters::default();
        let t0 = 1_700_000_020; // 40 s into a minute
        assert_eq!(c.admit(&l, t0).unwrap().unwrap().remaining, 2);
        c.admit(&l, t0).unwrap();
        c.admit(&l, t0 + 5).unwrap();
        let r = c.admit(&l, t0 + 10).unwrap_err();
        assert_eq!(r.retry_after, 10);
        assert_eq!(r.what, "requests per minute");
        // A refused request is not counted; the next minute starts from zero.
        assert!(c.admit(&l, t0 + 20).is_ok());
        assert_eq!(c.admit(&l, t0 + 20).unwrap().unwrap().remaining, 1);
    }

    #[test]
    fn token_limits_refuse_once_reached_and_a_refusal_counts_no_request() {
        let l = Limits {
            requests_per_day: Some(100),
            tokens_per_minute: Some(50),
            ..Limits::default()
        };
        let mut c = Counters::default();
        let t = 1_700_000_000;
        c.admit(&l, t).unwrap();
        c.add_tokens(49, t);
        c.admit(&l, t).unwrap();
        c.add_tokens(1, t);
        let r = c.admit(&l, t).unwrap_err();
        assert!(r.tokens);
        assert_eq!(c.admit(&l, t + 60 - t % 60).unwrap().unwrap().remaining, 97);
    }

    #[test]
    fn token_reservations_refuse_what_does_not_fit_and_are_given_back() {
        let l = Limits {
            tokens_per_minute: Some(1_000),
            ..Limits::default()
        };
        let mut c = Counters::default();
        let a = c.reserve_tokens(&l, 600, 120).unwrap();
        let e = c.reserve_tokens(&l, 600, 121).unwrap_err();
        assert_eq!(
            (e.what, e.tokens, e.limit, e.retry_after),
            ("tokens per minute", true, 1_000, 59)
        );
        let b = c.reserve_tokens(&l, 400, 122).unwrap();
        // The first finishes with 100 real tokens: its reservation is replaced by them.
        c.release_tokens(&a);
        c.add_tokens(100, 123);
        assert!(c.reserve_tokens(&l, 500, 124).is_ok());
        c.release_tokens(&b);
        // An estimate above the whole limit passes into an empty window only.
        let mut fresh = Counters::default();
        assert!(fresh.reserve_tokens(&l, 5_000, 120).is_ok());
        assert!(fresh.reserve_tokens(&l, 1, 121).is_err());
        // A release after the window rolled over changes nothing in the new window.
        let r = fresh.reserve_tokens(&l, 10, 180);
        assert!(r.is_ok());
        let mut later = Counters::default();
        let old = later.reserve_tokens(&l, 10, 170).unwrap();
        later.add_tokens(7, 185);
        later.release_tokens(&old);
        assert!(later.reserve_tokens(&l, 993, 186).is_ok());
        assert!(later.reserve_tokens(&l, 1, 187).is_err());
    }

    #[test]
    fn no_limits_admit_everything() {
        let mut c = Counters::default();
        for _ in 0..1000 {
            assert_eq!(c.admit(&Limits::default(), 5).unwrap(), None);
        }
    }
}
