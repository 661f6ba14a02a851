//! Prices and the cost of a request. Money is `Decimal` end to end: a float would drift when
//! millions of sub-cent costs are summed.

use ekai_wire::canonical::Usage;
use rust_decimal::Decimal;

const PER_MILLION: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);

/// USD per 1M tokens, as the providers publish them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input: Decimal,
    pub output: Decimal,
    /// Reading a prompt prefix from the provider's cache; None = the provider has no discount.
    #[serde(default)]
    pub cache_read: Option<Decimal>,
    /// Writing a prompt prefix into the cache; None = charged as ordinary input.
    #[serde(default)]
    pub cache_write: Option<Decimal>,
}

/// Cost of one request by component, in USD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cost {
    pub input: Decimal,
    pub output: Decimal,
    pub cache_read: Decimal,
    pub cache_write: Decimal,
    pub total: Decimal,
}

impl Price {
    /// What `usage` (canonical convention: `input_tokens` includes cache reads and writes) costs.
    pub fn cost(&self, usage: &Usage) -> Cost {
        let tokens = |n: u64| Decimal::from(n);
        let uncached = usage
            .input_tokens
            .saturating_sub(usage.cache_read_tokens)
            .saturating_sub(usage.cache_write_tokens);
        let input = tokens(uncached) * self.input / PER_MILLION;
        let cache_read =
            tokens(usage.cache_read_tokens) * self.cache_read.unwrap_or(self.input) / PER_MILLION;
        let cache_write =
            tokens(usage.cache_write_tokens) * self.cache_write.unwrap_or(self.input) / PER_MILLION;
        let output = tokens(usage.output_tokens) * self.output / PER_MILLION;
        Cost {
            input,
            output,
            cache_read,
            cache_write,
            total: input + output + cache_read + cache_write,
        }
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

    #[test]
    fn each_component_is_priced_per_million_tokens() {
        let p = Price {
            input: d("3"),
            output: d("15"),
            cache_read: Some(d("0.30")),
            cache_write: Some(d("3.75")),
        };
        let c = p.cost(&Usage {
            input_tokens: 1_000_000 + 200_000 + 100_000,
            output_tokens: 10_000,
            cache_read_tokens: 200_000,
            cache_write_tokens: 100_000,
            reasoning_tokens: 5_000,
        });
        assert_eq!(c.input, d("3"));
        assert_eq!(c.cache_read, d("0.06"));
        assert_eq!(c.cache_write, d("0.375"));
        assert_eq!(c.output, d("0.15"));
        assert_eq!(c.total, d("3.585"));
    }

    #[test]
    fn missing_cache_prices_fall_back_to_input() {
        let p = Price {
            input: d("2.5"),
            output: d("10"),
            cache_read: None,
            cache_write: None,
        };
        let c = p.cost(&Usage {
            input_tokens: 400,
            cache_read_tokens: 100,
            ..Usage::default()
        });
        assert_eq!(c.total, d("0.001"));
    }
}
