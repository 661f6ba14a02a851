//! Conversion costs on the gateway's hot paths:
//! - `request/*`: a typical chat request (10 messages, 2 tools, one tool call and its result) parsed
//!   from one dialect's bytes and rendered as the other's;
//! - `stream/*`: a 200-delta streamed answer parsed (SSE), decoded and re-encoded as the other
//!   dialect's SSE;
//! - `passthrough_usage/*`: the cheap usage readers a same-dialect relay runs on every event, and
//!   the one it runs on a whole JSON answer (an 8 KB chat completion).
//!
//! Run: `cargo bench -p ekai-wire` (add `-- --warm-up-time 1 --measurement-time 3` for a quick pass).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ekai_wire::canonical::{StreamDecoder, StreamEncoder, StreamEvent};
use ekai_wire::dialect::{anthropic, openai_chat};
use ekai_wire::sse::{SseEvent, SseParser};
use serde_json::json;

const DELTAS: usize = 200;
/// Upstream reads rarely line up with events; feed the parser in socket-sized pieces.
const READ_SIZE: usize = 4096;

const WORDS: &[&str] = &[
    "The",
    " borrow",
    " checker",
    " ensures",
    " that",
    " references",
    " never",
    " outlive",
    " the",
    " data",
    " they",
    " point",
    " to",
    ",",
    " so",
    " use-after-free",
    " is",
    " caught",
    " at",
    " compile",
    " time",
    ".\n",
];

// ---------------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------------

/// A realistic OpenAI request: system + 9 turns, two tools, one call answered by a tool message.
fn openai_request() -> Vec<u8> {
    let body = json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You are a helpful travel assistant. Answer concisely, prefer metric units, and use the tools when the user asks about weather or bookings."},
            {"role": "user", "content": "Hi! I'm planning a trip to Lisbon in May. What should I pack?"},
            {"role": "assistant", "content": "Lisbon in May is mild: expect 15–24°C with occasional showers. Pack layers, a light rain jacket, comfortable walking shoes for the hills, and sunscreen."},
            {"role": "user", "content": "Great. Are there any good day trips from the city?"},
            {"role": "assistant", "content": "Sintra (palaces and gardens, 40 minutes by train), Cascais (beaches), and Évora (Roman temple, 1.5 hours) are the classic choices."},
            {"role": "user", "content": "What's the weather forecast for Sintra this Saturday?"},
            {"role": "assistant", "content": "Let me check the forecast.", "tool_calls": [
                {"id": "call_9f3b2c", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Sintra\",\"country\":\"PT\",\"date\":\"2025-05-17\",\"unit\":\"celsius\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_9f3b2c", "content": "{\"date\":\"2025-05-17\",\"high\":21,\"low\":13,\"sky\":\"partly cloudy\",\"precipitation_chance\":0.2,\"wind_kph\":14}"},
            {"role": "assistant", "content": "Saturday in Sintra: partly cloudy, 13–21°C, 20% chance of rain and a light breeze. A good day for the palaces."},
            {"role": "user", "content": "Perfect. Can you book a table for two near Pena Palace at 1pm?"}
        ],
        "tools": [
            {"type": "function", "function": {
                "name": "get_weather",
                "description": "Get the weather forecast for a city on a given date.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "city": {"type": "string", "description": "City name, e.g. Lisbon"},
                        "country": {"type": "string", "description": "ISO 3166-1 alpha-2 country code"},
                        "date": {"type": "string", "format": "date", "description": "Forecast date (YYYY-MM-DD)"},
                        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}
                    },
                    "required": ["city", "date"],
                    "additionalProperties": false
                },
                "strict": true
            }},
            {"type": "function", "function": {
                "name": "book_table",
                "description": "Reserve a restaurant table.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "near": {"type": "string", "description": "Landmark or address to search near"},
                        "people": {"type": "integer", "minimum": 1, "maximum": 20},
                        "time": {"type": "string", "description": "Local time, HH:MM"},
                        "date": {"type": "string", "format": "date"},
                        "preferences": {"type": "array", "items": {"type": "string", "enum": ["vegetarian", "vegan", "outdoor", "quiet", "view"]}}
                    },
                    "required": ["near", "people", "time"],
                    "additionalProperties": false
                }
            }}
        ],
        "tool_choice": "auto",
        "temperature": 0.4,
        "max_completion_tokens": 1024,
        "stream": true,
        "stream_options": {"include_usage": true},
        "user": "user-8d2f"
    });
    serde_json::to_vec(&body).unwrap()
}

/// The same conversation as an Anthropic client sends it.
fn anthropic_request() -> Vec<u8> {
    let req = openai_chat::parse_request(&openai_request()).unwrap();
    serde_json::to_vec(&anthropic::request_to_json(&req).unwrap()).unwrap()
}

fn openai_stream() -> Vec<u8> {
    let chunk = |delta: serde_json::Value, finish: Option<&str>| {
        json!({
            "id": "chatcmpl-Bench1", "object": "chat.completion.chunk", "created": 1753000000,
            "model": "gpt-4o-2024-08-06", "system_fingerprint": "fp_a288987b44",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
            "usage": null
        })
    };
    let mut out = Vec::new();
    let mut push = |v: &serde_json::Value| {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(serde_json::to_string(v).unwrap().as_bytes());
        out.extend_from_slice(b"\n\n");
    };
    push(&chunk(json!({"role": "assistant", "content": ""}), None));
    for i in 0..DELTAS {
        push(&chunk(json!({"content": WORDS[i % WORDS.len()]}), None));
    }
    push(&chunk(json!({}), Some("stop")));
    push(&json!({
        "id": "chatcmpl-Bench1", "object": "chat.completion.chunk", "created": 1753000000,
        "model": "gpt-4o-2024-08-06", "choices": [],
        "usage": {"prompt_tokens": 1480, "completion_tokens": 200, "total_tokens": 1680,
                  "prompt_tokens_details": {"cached_tokens": 1024},
                  "completion_tokens_details": {"reasoning_tokens": 0}}
    }));
    out.extend_from_slice(b"data: [DONE]\n\n");
    out
}

fn anthropic_stream() -> Vec<u8> {
    let mut out = Vec::new();
    let mut push = |name: &str, v: serde_json::Value| {
        ekai_wire::sse::write_event(&mut out, Some(name), &serde_json::to_string(&v).unwrap());
    };
    push(
        "message_start",
        json!({"type": "message_start", "message": {
            "id": "msg_01Bench", "type": "message", "role": "assistant",
            "model": "claude-sonnet-4-5-20250929", "content": [], "stop_reason": null,
            "stop_sequence": null,
            "usage": {"input_tokens": 456, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 1024, "output_tokens": 1}}}),
    );
    push(
        "content_block_start",
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    );
    for i in 0..DELTAS {
        push(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
                   "delta": {"type": "text_delta", "text": WORDS[i % WORDS.len()]}}),
        );
    }
    push(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    );
    push(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
               "usage": {"output_tokens": 200}}),
    );
    push("message_stop", json!({"type": "message_stop"}));
    out
}

fn sse_events(bytes: &[u8]) -> Vec<SseEvent> {
    let mut parser = SseParser::new();
    parser.push(bytes);
    std::iter::from_fn(|| parser.next_event()).collect()
}

/// Parse + decode + encode a whole upstream stream; returns the client-side bytes.
fn translate(
    bytes: &[u8],
    decoder: &mut dyn StreamDecoder,
    encoder: &mut dyn StreamEncoder,
) -> Vec<u8> {
    let mut parser = SseParser::new();
    let mut events: Vec<StreamEvent> = Vec::with_capacity(8);
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for piece in bytes.chunks(READ_SIZE) {
        parser.push(piece);
        while let Some(ev) = parser.next_event() {
            decoder.decode(ev.event.as_deref(), &ev.data, &mut events);
            for e in events.drain(..) {
                encoder.encode(&e, &mut out);
            }
        }
    }
    if let Some(ev) = parser.finish() {
        decoder.decode(ev.event.as_deref(), &ev.data, &mut events);
    }
    decoder.finish(&mut events);
    for e in events.drain(..) {
        encoder.encode(&e, &mut out);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Benchmarks
// ---------------------------------------------------------------------------------------------

fn requests(c: &mut Criterion) {
    let openai = openai_request();
    let anthropic_body = anthropic_request();
    let mut g = c.benchmark_group("request");
    g.throughput(Throughput::Elements(1));
    g.bench_function("openai_to_anthropic", |b| {
        b.iter(|| {
            let req = openai_chat::parse_request(black_box(&openai)).unwrap();
            serde_json::to_vec(&anthropic::request_to_json(&req).unwrap()).unwrap()
        })
    });
    g.bench_function("anthropic_to_openai", |b| {
        b.iter(|| {
            let req = anthropic::parse_request(black_box(&anthropic_body)).unwrap();
            serde_json::to_vec(&openai_chat::request_to_json(&req).unwrap()).unwrap()
        })
    });
    g.finish();
}

fn streams(c: &mut Criterion) {
    let openai = openai_stream();
    let anthropic_sse = anthropic_stream();
    // Sanity: the translated streams carry all the text.
    let text: String = (0..DELTAS).map(|i| WORDS[i % WORDS.len()]).collect();
    for (src, out) in [
        (
            "openai",
            translate(
                &openai,
                &mut openai_chat::Decoder::new(),
                &mut anthropic::Encoder::new(),
            ),
        ),
        (
            "anthropic",
            translate(
                &anthropic_sse,
                &mut anthropic::Decoder::new(),
                &mut openai_chat::Encoder::new(1753000000, true),
            ),
        ),
    ] {
        let events = sse_events(&out);
        assert!(events.len() > DELTAS, "{src}: {} events", events.len());
        let joined: String = events
            .iter()
            .filter_map(|e| serde_json::from_str::<serde_json::Value>(&e.data).ok())
            .filter_map(|v| {
                v["delta"]["text"]
                    .as_str()
                    .or(v["choices"][0]["delta"]["content"].as_str())
                    .map(str::to_string)
            })
            .collect();
        assert_eq!(joined, text, "{src}");
    }

    let mut g = c.benchmark_group("stream");
    g.throughput(Throughput::Elements(DELTAS as u64));
    g.bench_function("openai_to_anthropic_200_deltas", |b| {
        b.iter(|| {
            translate(
                black_box(&openai),
                &mut openai_chat::Decoder::new(),
                &mut anthropic::Encoder::new(),
            )
        })
    });
    g.bench_function("anthropic_to_openai_200_deltas", |b| {
        b.iter(|| {
            translate(
                black_box(&anthropic_sse),
                &mut anthropic::Decoder::new(),
                &mut openai_chat::Encoder::new(1753000000, true),
            )
        })
    });
    g.finish();
}

fn passthrough_usage(c: &mut Criterion) {
    let openai = sse_events(&openai_stream());
    let anthropic_events = sse_events(&anthropic_stream());
    // Each reader finds exactly the usage the stream reports.
    let found = openai
        .iter()
        .filter_map(|e| openai_chat::usage_from_chunk(&e.data))
        .count();
    assert_eq!(found, 1);
    let found = anthropic_events
        .iter()
        .filter_map(|e| anthropic::usage_from_event(e.event.as_deref(), &e.data))
        .count();
    assert_eq!(found, 2);

    let mut g = c.benchmark_group("passthrough_usage");
    g.throughput(Throughput::Elements(openai.len() as u64));
    g.bench_function("openai_usage_from_chunk", |b| {
        b.iter(|| {
            let mut usage = ekai_wire::canonical::Usage::default();
            for e in black_box(&openai) {
                if let Some(u) = openai_chat::usage_from_chunk(&e.data) {
                    usage.merge_max(&u);
                }
            }
            usage
        })
    });
    g.throughput(Throughput::Elements(anthropic_events.len() as u64));
    g.bench_function("anthropic_usage_from_event", |b| {
        b.iter(|| {
            let mut usage = ekai_wire::canonical::Usage::default();
            for e in black_box(&anthropic_events) {
                if let Some(u) = anthropic::usage_from_event(e.event.as_deref(), &e.data) {
                    usage.merge_max(&u);
                }
            }
            usage
        })
    });
    let answer = json_answer();
    assert_eq!(
        openai_chat::usage_from_response(&answer).map(|u| u.input_tokens),
        Some(1200)
    );
    g.throughput(Throughput::Bytes(answer.len() as u64));
    g.bench_function("openai_usage_from_response_8k", |b| {
        b.iter(|| openai_chat::usage_from_response(black_box(&answer)))
    });
    g.finish();
}

/// A chat completion with ~8 KB of content (escapes included) and the usage at the end, as OpenAI
/// sends it.
fn json_answer() -> Vec<u8> {
    let content = "Here is the plan: \"step\" one, then two.\n".repeat(180);
    serde_json::to_vec(&serde_json::json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": null,
            "message": {"role": "assistant", "content": content, "refusal": null, "annotations": []}}],
        "service_tier": "default", "system_fingerprint": "fp",
        "usage": {"prompt_tokens": 1200, "completion_tokens": 1800, "total_tokens": 3000,
            "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}
    }))
    .unwrap()
}

criterion_group!(benches, requests, streams, passthrough_usage);
criterion_main!(benches);
