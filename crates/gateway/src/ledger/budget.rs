//! The monthly spending cap.
//!
//! Spent month-to-date = what the daily rollups hold (read at open, refreshed by the writer, and
//! advanced by every batch it commits) + costs settled but not yet written + costs reserved by
//! requests still running. Admission ([`Budget::try_reserve`]) checks and reserves under one lock,
//! so concurrent requests cannot all slip under the cap: once spent + reserved reaches the cap,
//! everyone else is refused, and the overshoot is bounded by what was already in flight.

use super::money::{from_nano, to_nano};
use super::store::{Row, Store};
use super::time::{day_start, month_start, now_ms};
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Debug, Default)]
struct State {
    /// nano-USD; None = no cap.
    cap: Option<i64>,
    alert_only: bool,
    /// Month (its start, ms) the sums below belong to.
    month: i64,
    /// Day (its start, ms) the clients' `today_*` sums belong to.
    day: i64,
    /// Committed to the database this month.
    written: i64,
    /// Settled by requests of this process, not yet committed by the writer.
    in_transit: i64,
    /// Reserved by requests still running.
    reserved: i64,
    /// The same sums per client key (their caps live in each client's policy).
    clients: HashMap<String, Spend>,
}

/// One client's month: written, in transit and reserved, as for the whole gateway; and the same
/// for today (UTC), for a daily cap.
#[derive(Debug, Default, Clone, Copy)]
struct Spend {
    written: i64,
    in_transit: i64,
    reserved: i64,
    today_written: i64,
    today_in_transit: i64,
}

impl Spend {
    fn total(&self) -> i64 {
        self.written + self.in_transit + self.reserved
    }

    fn today(&self) -> i64 {
        self.today_written + self.today_in_transit + self.reserved
    }
}

impl State {
    fn roll_month(&mut self) {
        let now = now_ms();
        let d = day_start(now);
        if d != self.day {
            self.day = d;
            for c in self.clients.values_mut() {
                c.today_written = 0;
                c.today_in_transit = 0;
            }
        }
        let m = month_start(now);
        if m != self.month {
            self.month = m;
            self.written = 0;
            self.in_transit = 0;
            for c in self.clients.values_mut() {
                c.written = 0;
                c.in_transit = 0;
            }
        }
    }

    fn spent(&self) -> i64 {
        self.written + self.in_transit + self.reserved
    }
}

#[derive(Clone, Default)]
pub struct Budget {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("monthly budget of ${cap} reached (spent ${spent} this month)")]
pub struct BudgetExceeded {
    pub cap: Decimal,
    pub spent: Decimal,
}

/// A client's own cap is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientBudgetExceeded {
    /// "daily" or "monthly".
    pub period: &'static str,
    pub cap: Decimal,
    pub spent: Decimal,
}

/// What `GET /budget` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetStatus {
    pub amount: Option<Decimal>,
    pub alert_only: bool,
    pub spent_month_to_date: Decimal,
    /// None when there is no cap; never negative.
    pub remaining: Option<Decimal>,
}

/// An admitted request's expected cost. Settle it with the actual cost; dropping it unsettled
/// releases it (the request failed before costing anything).
#[must_use = "a reservation is released when dropped"]
pub struct Reservation {
    budget: Budget,
    amount: i64,
    done: bool,
    /// A client's reservation (against its own cap) rather than the gateway's.
    client: Option<String>,
}

impl Budget {
    pub async fn load(store: &Store) -> Result<Budget, sqlx::Error> {
        let b = Budget::default();
        b.refresh(store).await?;
        Ok(b)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a panic elsewhere; the sums are still plain integers.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Re-reads the cap and the month's spend from the database.
    pub async fn refresh(&self, store: &Store) -> Result<(), sqlx::Error> {
        let now = now_ms();
        let (month, day) = (month_start(now), day_start(now));
        let (cap, alert_only) = store.get_budget().await?;
        let written = store.spent_since(month).await?;
        let per_client = store.spent_by_client_since(month).await?;
        let per_client_today = store.spent_by_client_since(day).await?;
        let mut s = self.lock();
        let new_day = s.day != day;
        s.day = day;
        s.cap = cap;
        s.alert_only = alert_only;
        let new_month = s.month != month;
        if new_month {
            s.in_transit = 0;
        }
        s.month = month;
        s.written = written;
        for (id, c) in s.clients.iter_mut() {
            c.written = per_client.get(id).copied().unwrap_or(0);
            c.today_written = per_client_today.get(id).copied().unwrap_or(0);
            if new_month {
                c.in_transit = 0;
            }
            if new_day {
                c.today_in_transit = 0;
            }
        }
        for (id, w) in per_client {
            s.clients.entry(id).or_default().written = w;
        }
        for (id, w) in per_client_today {
            s.clients.entry(id).or_default().today_written = w;
        }
        Ok(())
    }

    /// Stores a new cap and applies it at once.
    pub async fn set(
        &self,
        store: &Store,
        amount: Option<Decimal>,
        alert_only: bool,
    ) -> Result<(), sqlx::Error> {
        let nano = amount.map(to_nano);
        store.set_budget(nano, alert_only).await?;
        let mut s = self.lock();
        s.cap = nano;
        s.alert_only = alert_only;
        Ok(())
    }

    pub fn status(&self) -> BudgetStatus {
        let mut s = self.lock();
        s.roll_month();
        let spent = s.spent();
        BudgetStatus {
            amount: s.cap.map(from_nano),
            alert_only: s.alert_only,
            spent_month_to_date: from_nano(spent),
            remaining: s.cap.map(|c| from_nano((c - spent).max(0))),
        }
    }

    /// Admits a request expected to cost `expected` unless the cap is already reached (spent +
    /// reserved ≥ cap) and not alert-only. Check and reservation are one step under the lock.
    pub fn try_reserve(&self, expected: Decimal) -> Result<Reservation, BudgetExceeded> {
        let amount = to_nano(expected).max(0);
        let mut s = self.lock();
        s.roll_month();
        if let Some(cap) = s.cap {
            let spent = s.spent();
            if spent >= cap {
                if s.alert_only {
                    tracing::warn!(
                        cap = %from_nano(cap),
                        spent = %from_nano(spent),
                        "monthly budget reached (alert only: request admitted)"
                    );
                } else {
                    return Err(BudgetExceeded {
                        cap: from_nano(cap),
                        spent: from_nano(spent),
                    });
                }
            }
        }
        s.reserved += amount;
        Ok(Reservation {
            budget: self.clone(),
            amount,
            done: false,
            client: None,
        })
    }

    /// The gateway's cap (nano-USD, None: no cap, or alert-only) and its spend this month, written
    /// or in transit, WITHOUT requests still running (whose reservations a shared store counts
    /// across instances).
    pub fn settled_nano(&self) -> (Option<i64>, i64) {
        let mut s = self.lock();
        s.roll_month();
        let cap = s.cap.filter(|_| !s.alert_only);
        (cap, s.written + s.in_transit)
    }

    /// A client's spend this month and today in nano-USD, written or in transit, WITHOUT requests
    /// still running (whose reservations a shared store counts across instances).
    pub fn client_settled_nano(&self, client: &str) -> (i64, i64) {
        let mut s = self.lock();
        s.roll_month();
        s.clients.get(client).map_or((0, 0), |c| {
            (
                c.written + c.in_transit,
                c.today_written + c.today_in_transit,
            )
        })
    }

    /// A client's month-to-date spend (written + in transit + reserved).
    pub fn client_spent(&self, client: &str) -> Decimal {
        let mut s = self.lock();
        s.roll_month();
        from_nano(s.clients.get(client).map(Spend::total).unwrap_or(0))
    }

    /// A client's spend today (UTC; written + in transit + reserved).
    pub fn client_spent_today(&self, client: &str) -> Decimal {
        let mut s = self.lock();
        s.roll_month();
        from_nano(s.clients.get(client).map(Spend::today).unwrap_or(0))
    }

    /// As [`Budget::try_reserve`], against one client's own caps (from its policy): per month and,
    /// when set, per day (UTC). Once its spent + reserved reaches either, its requests are refused.
    /// One step under the lock.
    pub fn try_reserve_client(
        &self,
        client: &str,
        month_cap: Option<Decimal>,
        day_cap: Option<Decimal>,
        expected: Decimal,
    ) -> Result<Reservation, ClientBudgetExceeded> {
        let amount = to_nano(expected).max(0);
        let mut s = self.lock();
        s.roll_month();
        let c = s.clients.entry(client.to_string()).or_default();
        if let Some(cap) = day_cap
            && c.today() >= to_nano(cap)
        {
            return Err(ClientBudgetExceeded {
                period: "daily",
                cap,
                spent: from_nano(c.today()),
            });
        }
        if let Some(cap) = month_cap
            && c.total() >= to_nano(cap)
        {
            return Err(ClientBudgetExceeded {
                period: "monthly",
                cap,
                spent: from_nano(c.total()),
            });
        }
        c.reserved += amount;
        Ok(Reservation {
            budget: self.clone(),
            amount,
            done: false,
            client: Some(client.to_string()),
        })
    }

    /// Called by the writer after a batch commits: those costs move from "in transit" to "written".
    pub(crate) fn on_written(&self, rows: &[Row]) {
        let mut s = self.lock();
        s.roll_month();
        let month = s.month;
        let cost: i64 = rows
            .iter()
            .filter(|r| r.started_at >= month)
            .filter_map(|r| r.cost.map(|c| c.total))
            .sum();
        s.written += cost;
        let day = s.day;
        for r in rows.iter().filter(|r| r.started_at >= month) {
            if let (Some(id), Some(c)) = (&r.client_key_id, r.cost) {
                let e = s.clients.entry(id.clone()).or_default();
                e.written += c.total;
                e.in_transit = (e.in_transit - c.total).max(0);
                if r.started_at >= day {
                    e.today_written += c.total;
                    e.today_in_transit = (e.today_in_transit - c.total).max(0);
                }
            }
        }
        // Rows of requests that never reserved (or of another month) may subtract more than was
        // settled here; clamping keeps the estimate conservative rather than negative.
        s.in_transit = (s.in_transit - cost).max(0);
    }
}

impl Reservation {
    pub fn amount(&self) -> Decimal {
        from_nano(self.amount)
    }

    /// Replaces the reservation with the actual cost (None = unpriced or nothing charged).
    pub fn settle(mut self, actual: Option<Decimal>) {
        self.done = true;
        let actual = actual.map(to_nano).unwrap_or(0).max(0);
        let mut s = self.budget.lock();
        match &self.client {
            None => {
                s.reserved -= self.amount;
                s.in_transit += actual;
            }
            Some(id) => {
                let c = s.clients.entry(id.clone()).or_default();
                c.reserved -= self.amount;
                c.in_transit += actual;
                c.today_in_transit += actual;
            }
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.done {
            let mut s = self.budget.lock();
            match &self.client {
                None => s.reserved -= self.amount,
                Some(id) => s.clients.entry(id.clone()).or_default().reserved -= self.amount,
            }
        }
    }
}

impl crate::accounting::Budget for Budget {
    fn admit(&self, expected: Decimal) -> Result<Box<dyn crate::accounting::Hold>, String> {
        self.try_reserve(expected)
            .map(|r| Box::new(r) as Box<dyn crate::accounting::Hold>)
            .map_err(|e| e.to_string())
    }
}

impl crate::accounting::Hold for Reservation {
    fn settle(self: Box<Self>, actual: Option<Decimal>) {
        Reservation::settle(*self, actual);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn capped(cap: &str, alert_only: bool) -> Budget {
        let b = Budget::default();
        {
            let mut s = b.lock();
            s.roll_month();
            s.cap = Some(to_nano(d(cap)));
            s.alert_only = alert_only;
        }
        b
    }

    #[test]
    fn reserve_settle_and_release() {
        let b = capped("1", false);
        let r = b.try_reserve(d("0.4")).unwrap();
        assert_eq!(b.status().spent_month_to_date, d("0.4"));
        r.settle(Some(d("0.3")));
        assert_eq!(b.status().spent_month_to_date, d("0.3"));
        let r = b.try_reserve(d("0.5")).unwrap();
        drop(r);
        assert_eq!(b.status().remaining, Some(d("0.7")));
        let r = b.try_reserve(d("0.69")).unwrap();
        r.settle(Some(d("0.7")));
        assert_eq!(b.status().remaining, Some(d("0")));
        assert!(b.try_reserve(d("0.01")).is_err());
    }

    #[test]
    fn client_reservations_are_separate_from_the_gateway_cap() {
        let b = capped("100", false);
        let one = Some(d("1"));
        let r = b.try_reserve_client("cl_a", one, None, d("0.6")).unwrap();
        assert_eq!(b.client_spent("cl_a"), d("0.6"));
        assert_eq!(b.status().spent_month_to_date, d("0"));
        let r2 = b.try_reserve_client("cl_a", one, None, d("0.6")).unwrap();
        // spent + reserved ≥ cap: refused; another client is unaffected.
        assert!(b.try_reserve_client("cl_a", one, None, d("0.1")).is_err());
        assert!(b.try_reserve_client("cl_b", one, None, d("0.1")).is_ok());
        drop(r2);
        r.settle(Some(d("0.1")));
        assert_eq!(b.client_spent("cl_a"), d("0.1"));
    }

    #[test]
    fn a_daily_cap_refuses_before_the_monthly_one() {
        let b = capped("100", false);
        let (month, day) = (Some(d("10")), Some(d("1")));
        let r = b.try_reserve_client("cl_a", month, day, d("0.8")).unwrap();
        r.settle(Some(d("1")));
        assert_eq!(b.client_spent_today("cl_a"), d("1"));
        let e = b
            .try_reserve_client("cl_a", month, day, d("0.1"))
            .err()
            .unwrap();
        assert_eq!((e.period, e.cap, e.spent), ("daily", d("1"), d("1")));
        // Without a daily cap the monthly one still has room.
        assert!(b.try_reserve_client("cl_a", month, None, d("0.1")).is_ok());
    }

    #[test]
    fn alert_only_admits_past_the_cap_and_no_cap_admits_everything() {
        let b = capped("0", true);
        assert!(b.try_reserve(d("1")).is_ok());
        let b = Budget::default();
        assert!(b.try_reserve(d("1000")).is_ok());
        assert_eq!(b.status().remaining, None);
    }

    #[test]
    fn concurrent_reservations_do_not_overshoot_beyond_one_request() {
        let b = capped("1", false);
        let per = d("0.07");
        let settled = Arc::new(Mutex::new(Decimal::ZERO));
        std::thread::scope(|scope| {
            for _ in 0..50 {
                let b = b.clone();
                let settled = Arc::clone(&settled);
                scope.spawn(move || {
                    if let Ok(r) = b.try_reserve(per) {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                        r.settle(Some(per));
                        *settled.lock().unwrap() += per;
                    }
                });
            }
        });
        let total = *settled.lock().unwrap();
        assert!(total <= d("1") + per, "settled {total}");
        assert!(
            total >= d("1"),
            "the cap should be reached, settled {total}"
        );
        assert_eq!(b.status().spent_month_to_date, total);
    }
}
