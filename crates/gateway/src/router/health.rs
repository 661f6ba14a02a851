//! Per-provider health: a circuit breaker (consecutive failures or error ratio over a window opens
//! it; a single probe after the cooldown half-opens it), a latency EWMA, and `Retry-After` holds.
//!
//! Shared by every request; each provider has its own small mutex, held only for bookkeeping.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use crate::config::BreakerSettings;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Circuit {
    Closed,
    Open,
    /// Cooldown over: one probe request is (or may be) in flight.
    HalfOpen,
}

impl Circuit {
    pub fn as_str(self) -> &'static str {
        match self {
            Circuit::Closed => "closed",
            Circuit::Open => "open",
            Circuit::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug)]
struct State {
    circuit: Circuit,
    opened_at: Option<Instant>,
    probe_in_flight: bool,
    consecutive_failures: u32,
    /// (when, failed) of recent outcomes, oldest first.
    outcomes: VecDeque<(Instant, bool)>,
    latency_ewma_ms: Option<f64>,
    hold_until: Option<Instant>,
}

/// Why a provider may not be tried right now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unavailable {
    CircuitOpen { retry_in: Duration },
    RetryAfter { retry_in: Duration },
}

impl Unavailable {
    pub fn retry_in(self) -> Duration {
        match self {
            Unavailable::CircuitOpen { retry_in } | Unavailable::RetryAfter { retry_in } => {
                retry_in
            }
        }
    }
}

#[derive(Debug)]
pub struct ProviderHealth {
    settings: BreakerSettings,
    state: Mutex<State>,
}

/// A snapshot for `/health` and routing logs.
#[derive(Debug, Clone, Copy)]
pub struct HealthView {
    pub circuit: Circuit,
    pub latency_ms: Option<f64>,
    pub error_rate: f64,
    pub recent_requests: usize,
}

const EWMA_ALPHA: f64 = 0.2;

impl ProviderHealth {
    pub fn new(settings: BreakerSettings) -> Self {
        ProviderHealth {
            settings,
            state: Mutex::new(State {
                circuit: Circuit::Closed,
                opened_at: None,
                probe_in_flight: false,
                consecutive_failures: 0,
                outcomes: VecDeque::new(),
                latency_ewma_ms: None,
                hold_until: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means another request panicked mid-update of plain counters.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a request may go to this provider now. Taking the half-open probe slot is part of
    /// the answer, so call it only right before sending.
    pub fn admit(&self, now: Instant) -> Result<(), Unavailable> {
        let mut s = self.lock();
        if let Some(until) = s.hold_until {
            if until > now {
                return Err(Unavailable::RetryAfter {
                    retry_in: until - now,
                });
            }
            s.hold_until = None;
        }
        match s.circuit {
            Circuit::Closed => Ok(()),
            Circuit::Open => {
                let opened = s.opened_at.unwrap_or(now);
                let ready = opened + self.settings.cooldown;
                if now >= ready {
                    s.circuit = Circuit::HalfOpen;
                    s.probe_in_flight = true;
                    Ok(())
                } else {
                    Err(Unavailable::CircuitOpen {
                        retry_in: ready - now,
                    })
                }
            }
            Circuit::HalfOpen if !s.probe_in_flight => {
                s.probe_in_flight = true;
                Ok(())
            }
            Circuit::HalfOpen => Err(Unavailable::CircuitOpen {
                retry_in: Duration::from_secs(1),
            }),
        }
    }

    /// Whether the provider would be admitted, without taking a probe slot (for ranking).
    pub fn available(&self, now: Instant) -> bool {
        let s = self.lock();
        if s.hold_until.is_some_and(|u| u > now) {
            return false;
        }
        match s.circuit {
            Circuit::Closed => true,
            Circuit::Open => s
                .opened_at
                .is_none_or(|o| now >= o + self.settings.cooldown),
            Circuit::HalfOpen => !s.probe_in_flight,
        }
    }

    pub fn success(&self, now: Instant, latency: Duration) {
        let mut s = self.lock();
        let ms = latency.as_secs_f64() * 1000.0;
        s.latency_ewma_ms = Some(match s.latency_ewma_ms {
            Some(prev) => prev + EWMA_ALPHA * (ms - prev),
            None => ms,
        });
        s.consecutive_failures = 0;
        s.probe_in_flight = false;
        if s.circuit != Circuit::Closed {
            tracing::info!("circuit closed again after a successful probe");
        }
        s.circuit = Circuit::Closed;
        s.opened_at = None;
        self.push(&mut s, now, false);
    }

    /// A failure that says something about the provider (not about the client's request).
    pub fn failure(&self, now: Instant) -> Circuit {
        let mut s = self.lock();
        s.consecutive_failures += 1;
        self.push(&mut s, now, true);
        let (n, failed) = (
            s.outcomes.len(),
            s.outcomes.iter().filter(|(_, f)| *f).count(),
        );
        let ratio_trips = n >= self.settings.min_requests
            && failed as f64 / n as f64 >= self.settings.error_ratio;
        let trips = s.circuit == Circuit::HalfOpen
            || s.consecutive_failures >= self.settings.consecutive_failures
            || ratio_trips;
        if trips {
            s.circuit = Circuit::Open;
            s.opened_at = Some(now);
        }
        s.probe_in_flight = false;
        s.circuit
    }

    /// The provider said when to come back (`Retry-After`).
    pub fn hold(&self, now: Instant, for_: Duration) {
        let mut s = self.lock();
        let until = now + for_;
        s.hold_until = Some(s.hold_until.map_or(until, |u| u.max(until)));
    }

    fn push(&self, s: &mut State, now: Instant, failed: bool) {
        s.outcomes.push_back((now, failed));
        while s
            .outcomes
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > self.settings.window)
            || s.outcomes.len() > 256
        {
            s.outcomes.pop_front();
        }
    }

    pub fn view(&self) -> HealthView {
        let s = self.lock();
        let n = s.outcomes.len();
        let failed = s.outcomes.iter().filter(|(_, f)| *f).count();
        HealthView {
            circuit: s.circuit,
            latency_ms: s.latency_ewma_ms,
            error_rate: if n == 0 {
                0.0
            } else {
                failed as f64 / n as f64
            },
            recent_requests: n,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn quick() -> ProviderHealth {
        ProviderHealth::new(BreakerSettings {
            consecutive_failures: 3,
            cooldown: Duration::from_secs(10),
            ..BreakerSettings::default()
        })
    }

    #[test]
    fn opens_after_consecutive_failures_then_half_opens_and_closes() {
        let h = quick();
        let t0 = Instant::now();
        for _ in 0..2 {
            assert_eq!(h.failure(t0), Circuit::Closed);
        }
        assert_eq!(h.failure(t0), Circuit::Open);
        assert!(matches!(
            h.admit(t0 + Duration::from_secs(1)),
            Err(Unavailable::CircuitOpen { .. })
        ));
        // Cooldown over: exactly one probe.
        let t1 = t0 + Duration::from_secs(11);
        assert!(h.admit(t1).is_ok());
        assert!(h.admit(t1).is_err(), "one probe at a time");
        h.success(t1, Duration::from_millis(5));
        assert_eq!(h.view().circuit, Circuit::Closed);
        assert!(h.admit(t1).is_ok());
    }

    #[test]
    fn a_failed_probe_reopens() {
        let h = quick();
        let t0 = Instant::now();
        for _ in 0..3 {
            h.failure(t0);
        }
        let t1 = t0 + Duration::from_secs(11);
        assert!(h.admit(t1).is_ok());
        assert_eq!(h.failure(t1), Circuit::Open);
        assert!(h.admit(t1 + Duration::from_secs(1)).is_err());
    }

    #[test]
    fn error_ratio_opens_without_a_streak() {
        let h = ProviderHealth::new(BreakerSettings {
            consecutive_failures: 100,
            min_requests: 10,
            error_ratio: 0.5,
            ..BreakerSettings::default()
        });
        let t = Instant::now();
        for i in 0..10 {
            if i % 2 == 0 {
                h.success(t, Duration::from_millis(1));
            } else {
                h.failure(t);
            }
        }
        assert_eq!(h.view().circuit, Circuit::Open);
    }

    #[test]
    fn retry_after_holds_the_provider() {
        let h = quick();
        let t = Instant::now();
        h.hold(t, Duration::from_secs(7));
        let e = h.admit(t + Duration::from_secs(2)).unwrap_err();
        assert_eq!(e.retry_in(), Duration::from_secs(5));
        assert!(h.admit(t + Duration::from_secs(8)).is_ok());
    }

    #[test]
    fn latency_is_an_ewma() {
        let h = quick();
        let t = Instant::now();
        h.success(t, Duration::from_millis(100));
        h.success(t, Duration::from_millis(200));
        let l = h.view().latency_ms.unwrap();
        assert!((l - 120.0).abs() < 1e-6, "{l}");
    }
}
