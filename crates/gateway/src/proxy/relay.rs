//! Streams an upstream SSE body to the client as it arrives: byte-for-byte when both sides speak the
//! same dialect, event-by-event translated otherwise. Nothing is buffered beyond one partial event.
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
use std::time::Duration;

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

pub struct Relay {
    upstream: reqwest::Response,
    parser: SseParser,
    mode: Mode,
    client: Dialect,
    provider: Dialect,
    keepalive: Duration,
    idle: Duration,
    silent_for: Duration,
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
        Relay {
            upstream,
            parser: SseParser::new(),
            mode,
            client,
            provider,
            keepalive,
            idle,
            silent_for: Duration::ZERO,
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

    /// The response body as a stream of chunks.
    pub fn into_stream(
        self,
    ) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
        futures_util::stream::unfold(self, |mut r| async move {
            let chunk = r.next_chunk().await?;
            r.bytes_out += chunk.len();
            Some((Ok(chunk), r))
        })
    }

    async fn next_chunk(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        if let Some(first) = self.pending.take() {
            let out = self.process(first);
            if !out.is_empty() {
                return Some(out);
            }
        }
        loop {
            match tokio::time::timeout(self.keepalive, self.upstream.chunk()).await {
                Err(_) => {
                    self.silent_for += self.keepalive;
                    if self.silent_for >= self.idle {
                        return Some(
                            self.fail("timeout_error", "the provider stopped sending data"),
                        );
                    }
                    return Some(Bytes::from_static(codec::keepalive(self.client)));
                }
                Ok(Err(_)) => {
                    return Some(self.fail("api_error", "the provider closed the stream early"));
                }
                Ok(Ok(None)) => return self.end(),
                Ok(Ok(Some(chunk))) => {
                    self.silent_for = Duration::ZERO;
                    let out = self.process(chunk);
                    if !out.is_empty() {
                        return Some(out);
                    }
                }
            }
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
