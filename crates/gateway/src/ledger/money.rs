//! USD as integer nano-dollars in the database (exact sums in SQLite and Postgres) and as `Decimal`
//! everywhere else.

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

const NANO: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);

/// Rounds half-to-even at 1e-9 USD (prices per 1M tokens with more than 3 decimals are the only
/// source of sub-nano amounts).
pub fn to_nano(d: Decimal) -> i64 {
    d.checked_mul(NANO)
        .map(|v| v.round())
        .and_then(|v| v.to_i64())
        .unwrap_or(if d.is_sign_negative() {
            i64::MIN
        } else {
            i64::MAX
        })
}

pub fn from_nano(n: i64) -> Decimal {
    Decimal::new(n, 9).normalize()
}

/// A JSON number with at most 9 decimals (the original gateway reports costs as numbers).
pub fn json_usd(n: i64) -> serde_json::Value {
    from_nano(n)
        .to_f64()
        .and_then(serde_json::Number::from_f64)
        .map(serde_json::Value::Number)
        .unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn nano_round_trip_is_exact_to_nine_places() {
        let d = Decimal::from_str("0.000003585").unwrap();
        assert_eq!(to_nano(d), 3585);
        assert_eq!(from_nano(3585), d);
        assert_eq!(to_nano(Decimal::from_str("0.0000000375").unwrap()), 38);
        assert_eq!(to_nano(Decimal::from_str("0.0000000385").unwrap()), 38);
        assert_eq!(json_usd(1_500_000_000).to_string(), "1.5");
        assert_eq!(json_usd(1).to_string(), "1e-9");
    }
}
