//! Scenario parsing: `model@a,b=c` or the `x-mock-scenario` header.

/// Scripted behaviour for one request. Unknown items are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scenario {
    /// `status=N`: answer with this HTTP status and a dialect-correct error body.
    pub status: Option<u16>,
    /// `retry-after=S`: `Retry-After` header value on the error response.
    pub retry_after: Option<String>,
    /// `delay=MS`: sleep before the first byte (before the headers).
    pub delay_ms: u64,
    /// `chunk-delay=MS`: sleep between stream events.
    pub chunk_delay_ms: u64,
    /// `cut=N`: send N stream events, then abort the connection.
    pub cut: Option<usize>,
    /// `malformed`: an extra stream event whose data is `{not json`.
    pub malformed: bool,
    /// `nousage`: omit usage entirely.
    pub nousage: bool,
    /// `cache`: report cache tokens.
    pub cache: bool,
    /// `think`: force a thinking / reasoning block.
    pub think: bool,
    /// `long=N`: the text answer is `word1 word2 ... wordN`.
    pub long: Option<usize>,
    /// `parallel`: call the chosen tool twice.
    pub parallel: bool,
}

impl Scenario {
    /// Parses a comma-separated scenario list such as `status=429,retry-after=7`.
    pub fn parse(spec: &str) -> Self {
        let mut sc = Self::default();
        for item in spec.split(',') {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let (key, value) = match item.split_once('=') {
                Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
                None => (item.to_ascii_lowercase(), None),
            };
            match (key.as_str(), value) {
                ("status", Some(v)) => sc.status = v.parse().ok(),
                ("retry-after", Some(v)) => sc.retry_after = Some(v.to_string()),
                ("delay", Some(v)) => sc.delay_ms = v.parse().unwrap_or(0),
                ("chunk-delay", Some(v)) => sc.chunk_delay_ms = v.parse().unwrap_or(0),
                ("cut", Some(v)) => sc.cut = v.parse().ok(),
                ("long", Some(v)) => sc.long = v.parse().ok(),
                ("malformed", _) => sc.malformed = true,
                ("nousage", _) => sc.nousage = true,
                ("cache", _) => sc.cache = true,
                ("think", _) => sc.think = true,
                ("parallel", _) => sc.parallel = true,
                _ => {}
            }
        }
        sc
    }

    /// The scenario from the header if present, else from the part of the model after the first '@'.
    pub fn select(header: Option<&str>, model: &str) -> Self {
        match header {
            Some(h) => Self::parse(h),
            None => model
                .split_once('@')
                .map(|(_, spec)| Self::parse(spec))
                .unwrap_or_default(),
        }
    }

    /// The error status to answer with, if any (only 4xx/5xx are honoured).
    pub fn error_status(&self) -> Option<u16> {
        self.status.filter(|s| (400..=599).contains(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_model_suffix() {
        let sc = Scenario::select(None, "gpt-4o@status=429,retry-after=7");
        assert_eq!(sc.status, Some(429));
        assert_eq!(sc.retry_after.as_deref(), Some("7"));
        let sc = Scenario::select(
            None,
            "claude@delay=200,chunk-delay=5,cut=3,malformed,nousage",
        );
        assert_eq!(sc.delay_ms, 200);
        assert_eq!(sc.chunk_delay_ms, 5);
        assert_eq!(sc.cut, Some(3));
        assert!(sc.malformed && sc.nousage);
        assert_eq!(Scenario::select(None, "gpt-4o"), Scenario::default());
    }

    #[test]
    fn header_wins() {
        let sc = Scenario::select(Some("think,long=4"), "gpt-4o@status=500");
        assert_eq!(sc.status, None);
        assert!(sc.think);
        assert_eq!(sc.long, Some(4));
    }
}
