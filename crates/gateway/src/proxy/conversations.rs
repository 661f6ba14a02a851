//! Conversations kept for the Responses API's `previous_response_id` when the answering provider
//! keeps nothing itself (every provider but OpenAI's Responses API).
//!
//! Each entry is the whole conversation up to and including one response, in canonical form (the
//! earlier turns, the request's input items, the answer), under the response id the gateway gave
//! the client and the client key that asked. Bounded in memory: at most [`Limits::entries`]
//! conversations and [`Limits::bytes`] of content (estimated from the text, arguments and image
//! data they hold), oldest dropped first, each forgotten after [`Limits::ttl`]. Nothing survives a
//! restart: a follow-up naming a forgotten id gets the same 400 as an unknown one.

use ekai_wire::canonical::{ContentBlock, ImageSource, Message};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How much the store may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub entries: usize,
    pub bytes: usize,
    pub ttl: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            entries: 4096,
            bytes: 128 * 1024 * 1024,
            ttl: Duration::from_secs(60 * 60),
        }
    }
}

struct Entry {
    owner: Option<String>,
    messages: Arc<Vec<Message>>,
    bytes: usize,
    /// Which record of `Inner::order` is this entry's.
    seq: u64,
}

#[derive(Default)]
struct Inner {
    map: HashMap<String, Entry>,
    /// (id, stored at, seq) in the order stored; an id stored again leaves a stale record.
    order: VecDeque<(String, Instant, u64)>,
    bytes: usize,
    next_seq: u64,
}

pub struct ConversationStore {
    limits: Limits,
    inner: Mutex<Inner>,
}

impl Default for ConversationStore {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl ConversationStore {
    pub fn new(limits: Limits) -> Self {
        ConversationStore {
            limits,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The map stays consistent even if a holder panicked: every update completes under the lock.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `messages` under `id` for `owner`; a conversation larger than the whole budget is not
    /// kept (its follow-up will be refused as unknown).
    pub fn put(&self, id: String, owner: Option<String>, messages: Vec<Message>) {
        self.put_at(Instant::now(), id, owner, messages);
    }

    fn put_at(&self, now: Instant, id: String, owner: Option<String>, messages: Vec<Message>) {
        let bytes = conversation_bytes(&messages);
        if bytes > self.limits.bytes || self.limits.entries == 0 {
            tracing::debug!(
                id,
                bytes,
                "conversation larger than the store's budget: not kept"
            );
            return;
        }
        let mut inner = self.lock();
        self.expire(&mut inner, now);
        if let Some(old) = inner.map.remove(&id) {
            inner.bytes -= old.bytes;
        }
        while !inner.map.is_empty()
            && (inner.map.len() >= self.limits.entries || inner.bytes + bytes > self.limits.bytes)
        {
            if !Self::evict_oldest(&mut inner) {
                break;
            }
        }
        inner.bytes += bytes;
        let seq = inner.next_seq;
        inner.next_seq += 1;
        inner.order.push_back((id.clone(), now, seq));
        inner.map.insert(
            id,
            Entry {
                owner,
                messages: Arc::new(messages),
                bytes,
                seq,
            },
        );
    }

    /// The conversation stored under `id`, if `owner` stored it and it has not expired.
    pub fn get(&self, owner: Option<&str>, id: &str) -> Option<Arc<Vec<Message>>> {
        self.get_at(Instant::now(), owner, id)
    }

    fn get_at(&self, now: Instant, owner: Option<&str>, id: &str) -> Option<Arc<Vec<Message>>> {
        let mut inner = self.lock();
        self.expire(&mut inner, now);
        inner
            .map
            .get(id)
            .filter(|e| e.owner.as_deref() == owner)
            .map(|e| Arc::clone(&e.messages))
    }

    pub fn contains(&self, owner: Option<&str>, id: &str) -> bool {
        self.get(owner, id).is_some()
    }

    /// (conversations, estimated bytes) held now.
    pub fn size(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.map.len(), inner.bytes)
    }

    fn expire(&self, inner: &mut Inner, now: Instant) {
        while let Some((_, at, _)) = inner.order.front() {
            if now.saturating_duration_since(*at) < self.limits.ttl {
                break;
            }
            Self::evict_oldest(inner);
        }
    }

    /// Drops the oldest record's entry (if the record is not stale); false when none is left.
    fn evict_oldest(inner: &mut Inner) -> bool {
        let Some((id, _, seq)) = inner.order.pop_front() else {
            return false;
        };
        if inner.map.get(&id).is_some_and(|e| e.seq == seq) {
            if let Some(e) = inner.map.remove(&id) {
                inner.bytes -= e.bytes;
            }
        }
        true
    }
}

/// Roughly what a conversation occupies: its text, arguments, image data and opaque blocks, plus
/// a little per block.
fn conversation_bytes(messages: &[Message]) -> usize {
    fn block(b: &ContentBlock) -> usize {
        32 + match b {
            ContentBlock::Text(t) => t.text.len(),
            ContentBlock::Image { source, .. } => match source {
                ImageSource::Url(u) => u.len(),
                ImageSource::Base64 { data, .. } => data.len(),
            },
            ContentBlock::ToolCall(c) => c.id.len() + c.name.len() + c.arguments.len(),
            ContentBlock::ToolResult {
                tool_call_id,
                content,
                ..
            } => tool_call_id.len() + content.iter().map(block).sum::<usize>(),
            ContentBlock::Thinking { text, signature } => {
                text.len() + signature.as_ref().map_or(0, String::len)
            }
            ContentBlock::RedactedThinking { data } => data.len(),
            ContentBlock::Unknown { value, .. } => value.to_string().len(),
        }
    }
    messages
        .iter()
        .map(|m| 32 + m.content.iter().map(block).sum::<usize>())
        .sum()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ekai_wire::canonical::Role;

    fn conv(text: &str) -> Vec<Message> {
        vec![Message {
            role: Role::User,
            content: vec![ContentBlock::text(text)],
            name: None,
        }]
    }

    fn store(entries: usize, bytes: usize, ttl_secs: u64) -> ConversationStore {
        ConversationStore::new(Limits {
            entries,
            bytes,
            ttl: Duration::from_secs(ttl_secs),
        })
    }

    #[test]
    fn owners_are_apart_and_ids_expire() {
        let s = store(10, 10_000, 60);
        let t0 = Instant::now();
        s.put_at(t0, "resp_a".into(), Some("key1".into()), conv("hello"));
        assert!(s.get_at(t0, Some("key1"), "resp_a").is_some());
        assert!(s.get_at(t0, Some("key2"), "resp_a").is_none());
        assert!(s.get_at(t0, None, "resp_a").is_none());
        assert!(s.get_at(t0, Some("key1"), "resp_b").is_none());
        let later = t0 + Duration::from_secs(61);
        assert!(s.get_at(later, Some("key1"), "resp_a").is_none());
        assert_eq!(s.size(), (0, 0));
    }

    #[test]
    fn entry_and_byte_caps_drop_the_oldest() {
        let one = conversation_bytes(&conv("0123456789"));
        let s = store(3, one * 10, 3600);
        let t = Instant::now();
        for i in 0..5 {
            s.put_at(t, format!("r{i}"), None, conv("0123456789"));
        }
        assert_eq!(s.size(), (3, one * 3));
        assert!(s.get_at(t, None, "r1").is_none());
        assert!(s.get_at(t, None, "r4").is_some());
        // Bytes: a big conversation pushes out as many old ones as it needs.
        let s = store(100, one * 3, 3600);
        for i in 0..3 {
            s.put_at(t, format!("r{i}"), None, conv("0123456789"));
        }
        s.put_at(t, "big".into(), None, conv(&"x".repeat(one + 10)));
        let (n, bytes) = s.size();
        assert!(bytes <= one * 3, "{bytes}");
        assert!(n < 4);
        assert!(s.get_at(t, None, "big").is_some());
        assert!(s.get_at(t, None, "r0").is_none());
        // Larger than everything: not kept, nothing else lost.
        s.put_at(t, "huge".into(), None, conv(&"x".repeat(one * 4)));
        assert!(s.get_at(t, None, "huge").is_none());
        assert!(s.get_at(t, None, "big").is_some());
        // Stored again under the same id: counted once.
        s.put_at(t, "big".into(), None, conv("small"));
        assert_eq!(s.size().1, {
            let mut total = conversation_bytes(&conv("small"));
            for id in ["r0", "r1", "r2"] {
                if s.get_at(t, None, id).is_some() {
                    total += one;
                }
            }
            total
        });
    }
}
