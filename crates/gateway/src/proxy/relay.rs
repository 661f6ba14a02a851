//! Streams an upstream SSE body to the client as it arrives: byte-for-byte when both sides speak the
//! same dialect, event-by-event translated otherwise. Nothing is buffered beyond one partial event
//! and what the upstream already delivered: events that arrived together leave in one write.
//!
//! Dropping a `Relay` (the client hung up, so hyper dropped the body) drops the upstream response,
//! which cancels the upstream request; `Drop` still emits the accounting record, marked disconnected.

use super::codec;
use crate::accounting::Record;
use bytes::Bytes;
use ekai_wire::canonical::{
    Dialect, Response as CanonicalResponse, ResponseAccumulator, StreamDecoder, StreamEncoder,
    StreamEvent, Usage,
};
use ekai_wire::dialect::openai_chat;
use ekai_wire::sse::{SseParser, write_event};
use futures_util::Stream;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// Given the translated answer once it is complete (a Responses conversation to keep).
pub type OnComplete = Box<dyn FnOnce(&CanonicalResponse) + Send>;

pub enum Mode {
    /// Same dialect: forward upstream bytes untouched, sniff usage on the side.
    Raw,
    /// Same dialect (OpenAI): the gateway forced `include_usage`; drop that chunk again.
    StripUsage,
    /// Different dialects: decode to canonical events, encode for the client.
    Translate {
        decoder: Box<dyn StreamDecoder + Send>,
        encoder: Box<dyn StreamEncoder + Send>,
    },
}

/// The upstream body as a stream of chunks (reqwest's type cannot be named).
type UpstreamBody = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// Most bytes gathered into one client write: enough for a burst of events, small enough that a
/// slow client's socket takes it in one go.
const MAX_GATHER: usize = 64 * 1024;

/// Yields without a new upstream chunk before sending what was gathered. hyper's client needs two
/// scheduler rounds to hand over the next chunk it has already read (measured: never more than
/// two with the whole stream in its buffer); one spare.
const GATHER_YIELDS: u32 = 3;

pub struct Relay {
    upstream: UpstreamBody,
    parser: SseParser,
    mode: Mode,
    client: Dialect,
    provider: Dialect,
    keepalive: Duration,
    idle: Duration,
    /// Fires `keepalive` after the last upstream bytes (re-armed lazily, not per chunk).
    timer: Pin<Box<Sleep>>,
    last_data: Instant,
    /// Translated bytes waiting for the client, in order.
    ready: VecDeque<Bytes>,
    ready_len: usize,
    /// Handing `ready` over to the client; gathering resumes once it is empty.
    sending: bool,
    /// Yields in a row that brought no new upstream chunk.
    idle_yields: u32,
    events: Vec<StreamEvent>,
    acc: ResponseAccumulator,
    usage: Usage,
    /// The upstream sent its own end-of-stream marker.
    complete: bool,
    done: bool,
    record: Option<Record>,
    /// The first upstream chunk, read before committing to this provider.
    pending: Option<Bytes>,
    /// For a provider that reports no usage: the request's estimated input and the bytes relayed.
    estimated_input: u64,
    bytes_out: usize,
    /// Run with the translated answer once it completed (a Responses conversation to keep).
    on_complete: Option<OnComplete>,
}

impl Relay {
    pub fn on_complete(mut self, hook: Option<OnComplete>) -> Self {
        self.on_complete = hook;
        self
    }

    #[allow(clippy::too_many_arguments)]
    pub fn new(
        upstream: reqwest::Response,
        first: Bytes,
        mode: Mode,
        client: Dialect,
        provider: Dialect,
        keepalive: Duration,
        idle: Duration,
        record: Record,
        estimated_input: u64,
    ) -> Self {
        let now = Instant::now();
        Relay {
            upstream: Box::pin(upstream.bytes_stream()),
            parser: SseParser::new(),
            mode,
            client,
            provider,
            keepalive,
            idle,
            timer: Box::pin(tokio::time::sleep_until(now + keepalive)),
            last_data: now,
            ready: VecDeque::new(),
            ready_len: 0,
            sending: false,
            idle_yields: 0,
            events: Vec::new(),
            acc: ResponseAccumulator::new(),
            usage: Usage::default(),
            complete: false,
            done: false,
            record: Some(record),
            pending: Some(first),
            estimated_input,
            bytes_out: 0,
            on_complete: None,
        }
    }

    fn queue(&mut self, out: Bytes) {
        if !out.is_empty() {
            self.ready_len += out.len();
            self.ready.push_back(out);
        }
    }

    /// Reads what the upstream has ready into `ready`. `Ready` when `ready` is to be handed over
    /// (or the stream is done); `Pending` while yielding to gather more, or when there is nothing
    /// to send.
    ///
    /// Why gather: hyper's client hands over a stream one chunk per poll, and the server writes
    /// to the socket whenever the body says `Pending`. Returning each event as it comes would
    /// cost one write (and one wake-up of the client) per event even when the upstream sent a
    /// burst in one packet. So when the upstream is momentarily empty, the relay yields to the
    /// scheduler (letting the connection task decode what it already read) and sends what it
    /// gathered once yielding stops bringing chunks. A real model's events, milliseconds apart,
    /// go out one by one as before, a few task polls later.
    fn gather(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(first) = self.pending.take() {
            let out = self.process(first);
            self.queue(out);
        }
        while !self.done && self.ready_len < MAX_GATHER {
            match self.upstream.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    self.idle_yields = 0;
                    self.last_data = Instant::now();
                    let out = self.process(chunk);
                    self.queue(out);
                }
                Poll::Ready(Some(Err(_))) => {
                    let out = self.fail("api_error", "the provider closed the stream early");
                    self.queue(out);
                }
                Poll::Ready(None) => {
                    // `end` marks the relay done.
                    if let Some(out) = self.end() {
                        self.queue(out);
                    }
                }
                Poll::Pending if !self.ready.is_empty() => {
                    // The first event goes out at once, with the response head.
                    if self.bytes_out > 0 && self.idle_yields < GATHER_YIELDS {
                        self.idle_yields += 1;
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                    self.idle_yields = 0;
                    return Poll::Ready(());
                }
                Poll::Pending => return self.poll_silence(cx),
            }
        }
        Poll::Ready(())
    }

    /// The upstream is quiet and nothing waits to be sent: a keep-alive, or the idle timeout.
    fn poll_silence(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let now = Instant::now();
            let silent = now.saturating_duration_since(self.last_data);
            if silent < self.keepalive {
                // Data came since the timer was set: re-arm for the rest of the quiet period.
                let at = self.last_data + self.keepalive;
                self.timer.as_mut().reset(at);
                continue;
            }
            self.timer.as_mut().reset(now + self.keepalive);
            let out = if silent >= self.idle {
                self.fail("timeout_error", "the provider stopped sending data")
            } else {
                Bytes::from_static(codec::keepalive(self.client))
            };
            self.queue(out);
            return Poll::Ready(());
        }
    }

    fn process(&mut self, chunk: Bytes) -> Bytes {
        self.parser.push(&chunk);
        match &mut self.mode {
            Mode::Raw => {
                while let Some(ev) = self.parser.next_event() {
                    if let Some(u) =
                        codec::usage_from_event(self.provider, ev.event.as_deref(), &ev.data)
                    {
                        self.usage.merge_max(&u);
                    }
                    self.complete |=
                        codec::is_terminal(self.provider, ev.event.as_deref(), &ev.data);
                }
                chunk
            }
            Mode::StripUsage => {
                let mut out = Vec::with_capacity(chunk.len());
                while let Some(ev) = self.parser.next_event() {
                    if let Some(u) = openai_chat::usage_from_chunk(&ev.data) {
                        self.usage.merge_max(&u);
                    }
                    self.complete |=
                        codec::is_terminal(self.provider, ev.event.as_deref(), &ev.data);
                    if !openai_chat::is_usage_only_chunk(&ev.data) {
                        write_event(&mut out, ev.event.as_deref(), &ev.data);
                    }
                }
                Bytes::from(out)
            }
            Mode::Translate { decoder, encoder } => {
                let mut out = Vec::with_capacity(chunk.len() + 64);
                while let Some(ev) = self.parser.next_event() {
                    decoder.decode(ev.event.as_deref(), &ev.data, &mut self.events);
                }
                for e in self.events.drain(..) {
                    self.acc.push(&e);
                    encoder.encode(&e, &mut out);
                }
                self.complete = self.acc.finished;
                self.run_on_complete();
                if let Some((kind, message)) = &self.acc.error {
                    if let Some(rec) = self.record.as_mut() {
                        rec.data.error_kind = Some(kind.clone());
                        rec.data.error = Some(message.clone());
                    }
                    self.done = true;
                }
                Bytes::from(out)
            }
        }
    }

    /// The upstream finished its body.
    fn end(&mut self) -> Option<Bytes> {
        let mut out = Vec::new();
        if let Some(ev) = self.parser.finish() {
            if let Mode::Raw = self.mode {
                // Its bytes already went out with the chunk that carried them.
                if let Some(u) =
                    codec::usage_from_event(self.provider, ev.event.as_deref(), &ev.data)
                {
                    self.usage.merge_max(&u);
                }
                self.complete |= codec::is_terminal(self.provider, ev.event.as_deref(), &ev.data);
            } else {
                // A last event without its blank line: frame it and process it like any other.
                let mut tail = Vec::new();
                write_event(&mut tail, ev.event.as_deref(), &ev.data);
                self.parser = SseParser::new();
                out.extend_from_slice(&self.process(Bytes::from(tail)));
            }
        }
        if !self.done {
            out.extend_from_slice(&self.finish_bytes());
        }
        self.done = true;
        (!out.is_empty()).then(|| Bytes::from(out))
    }

    fn finish_bytes(&mut self) -> Vec<u8> {
        self.done = true;
        if codec::ends_at_eof(self.provider) {
            self.complete = true;
        }
        if !self.complete {
            return self
                .fail(
                    "api_error",
                    "the provider ended the stream before it was complete",
                )
                .to_vec();
        }
        let mut out = Vec::new();
        if let Mode::Translate { decoder, encoder } = &mut self.mode {
            decoder.finish(&mut self.events);
            for e in self.events.drain(..) {
                self.acc.push(&e);
                encoder.encode(&e, &mut out);
            }
        }
        self.run_on_complete();
        out
    }

    /// As soon as the translated answer is complete (the client may hang up right after it).
    fn run_on_complete(&mut self) {
        if self.acc.finished && self.acc.error.is_none() {
            if let Some(hook) = self.on_complete.take() {
                hook(self.acc.response());
            }
        }
    }

    /// Ends the stream with an error event in the client's dialect.
    fn fail(&mut self, kind: &str, message: &str) -> Bytes {
        self.done = true;
        if let Some(rec) = self.record.as_mut() {
            rec.data.error_kind = Some(kind.to_string());
            rec.data.error = Some(message.to_string());
            rec.data.status = 502;
        }
        let ev = StreamEvent::Error {
            kind: kind.to_string(),
            message: message.to_string(),
        };
        let mut out = Vec::new();
        match &mut self.mode {
            Mode::Translate { encoder, .. } => encoder.encode(&ev, &mut out),
            _ => codec::encoder(self.client, 0, false).encode(&ev, &mut out),
        }
        Bytes::from(out)
    }
}

impl Stream for Relay {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        // Hand over what was gathered back to back (hyper buffers it into one write), then gather
        // again.
        if !this.sending {
            if this.gather(cx).is_pending() {
                return Poll::Pending;
            }
            this.sending = true;
        }
        match this.ready.pop_front() {
            Some(out) => {
                this.ready_len -= out.len();
                this.bytes_out += out.len();
                if this.ready.is_empty() {
                    this.sending = false;
                }
                Poll::Ready(Some(Ok(out)))
            }
            None => {
                this.sending = false;
                Poll::Ready(None)
            }
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(mut rec) = self.record.take() {
            rec.data.client_disconnected = !self.done;
            let mut usage = self.usage;
            usage.merge_max(&self.acc.usage());
            if usage.is_empty() {
                // About four bytes a token, and SSE framing roughly doubles the text.
                let estimate = Usage {
                    input_tokens: self.estimated_input,
                    output_tokens: (self.bytes_out / 8) as u64,
                    ..Usage::default()
                };
                rec.set_usage(estimate, true);
            } else {
                rec.set_usage(usage, false);
            }
            rec.finish();
        }
    }
}
