//! Incremental Server-Sent Events parsing and encoding (WHATWG `text/event-stream`).
//!
//! Written here rather than taken from a crate because the gateway needs two things the SSE crates we
//! looked at do not give together: feeding arbitrary byte chunks (upstream TCP reads split events
//! anywhere, even inside a UTF-8 sequence) and knowing the byte span of each event, so a passthrough
//! relay can forward the original bytes while still reading the data it needs for accounting.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field, when present.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Feed bytes as they arrive; take out complete events.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    /// How far into `buf` lines have been consumed.
    pos: usize,
    event: Option<String>,
    data: String,
    has_data: bool,
    /// Set once the first line has been looked at (a leading BOM is dropped).
    started: bool,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a chunk of the stream.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        self.buf.extend_from_slice(chunk);
        if !self.started && self.buf.len() >= 3 {
            self.started = true;
            if self.buf.starts_with(b"\xEF\xBB\xBF") {
                self.pos = 3;
            }
        }
    }

    /// Returns the next complete event, or None when more bytes are needed.
    pub fn next_event(&mut self) -> Option<SseEvent> {
        loop {
            let rest = &self.buf[self.pos..];
            let nl = rest.iter().position(|&b| b == b'\n' || b == b'\r')?;
            // A CR at the very end may be the first half of CRLF: wait for the next byte.
            if rest[nl] == b'\r' && nl + 1 == rest.len() {
                return None;
            }
            let line_end = self.pos + nl;
            let mut next = line_end + 1;
            if self.buf[line_end] == b'\r' && self.buf.get(next) == Some(&b'\n') {
                next += 1;
            }
            let line = String::from_utf8_lossy(&self.buf[self.pos..line_end]).into_owned();
            self.pos = next;
            if self.pos > 64 * 1024 && self.pos * 2 > self.buf.len() {
                self.buf.drain(..self.pos);
                self.pos = 0;
            }
            if line.is_empty() {
                if self.has_data || self.event.is_some() {
                    let ev = SseEvent {
                        event: self.event.take(),
                        data: std::mem::take(&mut self.data),
                    };
                    self.has_data = false;
                    return Some(ev);
                }
                continue;
            }
            self.field(&line);
        }
    }

    /// The stream ended: returns a last event that was not terminated by a blank line.
    pub fn finish(&mut self) -> Option<SseEvent> {
        let rest = &self.buf[self.pos..];
        if !rest.is_empty() {
            let line = String::from_utf8_lossy(rest)
                .trim_end_matches(['\r', '\n'])
                .to_string();
            self.pos = self.buf.len();
            if !line.is_empty() {
                self.field(&line);
            }
        }
        if self.has_data {
            self.has_data = false;
            return Some(SseEvent {
                event: self.event.take(),
                data: std::mem::take(&mut self.data),
            });
        }
        None
    }

    fn field(&mut self, line: &str) {
        if line.starts_with(':') {
            return; // comment (keep-alive)
        }
        let (name, value) = match line.split_once(':') {
            Some((n, v)) => (n, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match name {
            "event" => self.event = Some(value.to_string()),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            _ => {} // id, retry and unknown fields do not matter to a relay
        }
    }
}

/// Appends `event: NAME\ndata: DATA\n\n` (the event line only when a name is given).
pub fn write_event(out: &mut Vec<u8>, event: Option<&str>, data: &str) {
    if let Some(name) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    for line in data.split('\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
}

/// An SSE comment line, used as a keep-alive that no client parses as data.
pub const KEEPALIVE_COMMENT: &[u8] = b": keep-alive\n\n";

#[cfg(test)]
mod tests {
    use super::*;

    fn all(p: &mut SseParser) -> Vec<SseEvent> {
        std::iter::from_fn(|| p.next_event()).collect()
    }

    #[test]
    fn events_split_across_chunks_at_every_byte() {
        let src = b"event: message_start\ndata: {\"a\":1}\n\n: ping\n\ndata: x\r\ndata: y\r\n\r\ndata: [DONE]\n\n";
        for split in 0..src.len() {
            let mut p = SseParser::new();
            p.push(&src[..split]);
            let mut got = all(&mut p);
            p.push(&src[split..]);
            got.extend(all(&mut p));
            assert_eq!(
                got,
                vec![
                    SseEvent {
                        event: Some("message_start".into()),
                        data: "{\"a\":1}".into()
                    },
                    SseEvent {
                        event: None,
                        data: "x\ny".into()
                    },
                    SseEvent {
                        event: None,
                        data: "[DONE]".into()
                    },
                ],
                "split at {split}"
            );
        }
    }

    #[test]
    fn unterminated_last_event_is_returned_by_finish() {
        let mut p = SseParser::new();
        p.push(b"data: tail");
        assert_eq!(p.next_event(), None);
        assert_eq!(p.finish().map(|e| e.data), Some("tail".to_string()));
    }

    #[test]
    fn utf8_split_inside_a_character() {
        let src = "data: héllo ✓\n\n".as_bytes();
        let mut p = SseParser::new();
        p.push(&src[..8]);
        assert_eq!(p.next_event(), None);
        p.push(&src[8..]);
        assert_eq!(p.next_event().map(|e| e.data), Some("héllo ✓".to_string()));
    }

    #[test]
    fn write_event_round_trips() {
        let mut out = Vec::new();
        write_event(&mut out, Some("content_block_delta"), "{\"x\":\"a\\nb\"}");
        write_event(&mut out, None, "two\nlines");
        let mut p = SseParser::new();
        p.push(&out);
        let got = all(&mut p);
        assert_eq!(got[0].event.as_deref(), Some("content_block_delta"));
        assert_eq!(got[1].data, "two\nlines");
    }
}
