//! Sign-in attempts per client address. `POST /auth/login`, `POST /admin/login` and requests with a
//! wrong admin bearer token count; past the limit an address gets 429 until its minute ends, so
//! guessing an admin token, or filling the session table with fresh wallets, goes slowly from one
//! address. Per process, in memory: fixed one-minute windows, one counter per address seen this
//! minute. IPv6 addresses count by their /64, what one host is usually given.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;

/// Addresses tracked in one minute; a new address past this is refused until the minute ends
/// (memory stays bounded however many addresses an attacker has).
const MAX_ADDRESSES: usize = 65_536;

pub struct LoginLimiter {
    /// 0: no limit.
    per_minute: u32,
    window: Mutex<Window>,
}

#[derive(Default)]
struct Window {
    minute: u64,
    counts: HashMap<IpAddr, u32>,
}

/// The address attempts count against: IPv6 by /64; an unknown peer (no socket address, e.g. an
/// in-process router) shares one bucket.
fn bucket(peer: Option<IpAddr>) -> IpAddr {
    match peer {
        Some(IpAddr::V6(a)) => match a.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = a.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        Some(v4) => v4,
        None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    }
}

impl LoginLimiter {
    pub fn new(per_minute: u32) -> LoginLimiter {
        LoginLimiter {
            per_minute,
            window: Mutex::new(Window::default()),
        }
    }

    /// Counts an attempt from `peer` at `now_secs` (unix time); `Err(seconds)` until the address
    /// may try again when it is over the limit (the refused attempt is not counted).
    pub fn attempt(&self, peer: Option<IpAddr>, now_secs: u64) -> Result<(), u64> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let minute = now_secs / 60;
        let retry = 60 - now_secs % 60;
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        if w.minute != minute {
            w.minute = minute;
            w.counts.clear();
        }
        let key = bucket(peer);
        let full = w.counts.len() >= MAX_ADDRESSES;
        match w.counts.get_mut(&key) {
            Some(n) if *n >= self.per_minute => Err(retry),
            Some(n) => {
                *n += 1;
                Ok(())
            }
            None if full => Err(retry),
            None => {
                w.counts.insert(key, 1);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn an_address_gets_its_limit_per_minute_then_waits_for_the_next() {
        let l = LoginLimiter::new(3);
        let t = 1_700_000_080; // 40 s into a minute
        for _ in 0..3 {
            assert_eq!(l.attempt(ip("203.0.113.7"), t), Ok(()));
        }
        assert_eq!(l.attempt(ip("203.0.113.7"), t + 5), Err(15));
        // Others are not held back by it.
        assert_eq!(l.attempt(ip("203.0.113.8"), t + 5), Ok(()));
        // The next minute starts afresh.
        assert_eq!(l.attempt(ip("203.0.113.7"), t + 20), Ok(()));
    }

    #[test]
    fn ipv6_counts_by_slash_64_and_mapped_ipv4_as_ipv4() {
        let l = LoginLimiter::new(2);
        let t = 1_700_000_000;
        assert_eq!(l.attempt(ip("2001:db8:1:2::1"), t), Ok(()));
        assert_eq!(l.attempt(ip("2001:db8:1:2:ffff::9"), t), Ok(()));
        assert!(l.attempt(ip("2001:db8:1:2::77"), t).is_err());
        assert_eq!(l.attempt(ip("2001:db8:1:3::1"), t), Ok(()));
        assert_eq!(l.attempt(ip("::ffff:198.51.100.1"), t), Ok(()));
        assert_eq!(l.attempt(ip("198.51.100.1"), t), Ok(()));
        assert!(l.attempt(ip("198.51.100.1"), t).is_err());
    }

    #[test]
    fn zero_means_no_limit_and_memory_stays_bounded() {
        let off = LoginLimiter::new(0);
        for _ in 0..1000 {
            assert_eq!(off.attempt(ip("192.0.2.1"), 0), Ok(()));
        }
        let l = LoginLimiter::new(5);
        for i in 0..MAX_ADDRESSES as u32 {
            assert_eq!(l.attempt(Some(IpAddr::V4(Ipv4Addr::from(i))), 30), Ok(()));
        }
        assert_eq!(l.attempt(ip("255.255.255.255"), 30), Err(30));
        // Addresses already tracked still get their attempts.
        assert_eq!(l.attempt(Some(IpAddr::V4(Ipv4Addr::from(7))), 30), Ok(()));
        assert_eq!(l.attempt(ip("255.255.255.255"), 60), Ok(()));
    }
}
