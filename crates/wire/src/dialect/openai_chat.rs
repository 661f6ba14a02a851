//! OpenAI Chat Completions API (`/v1/chat/completions`), and the many upstreams that copy it.
//!
//! Decoding is lenient where compatible upstreams differ from OpenAI (reasoning text as
//! `reasoning_content` or `reasoning`, usage in the finish chunk or after it, tool-call fragments
//! without an `index`); encoding always produces what OpenAI itself sends.

mod request;
mod response;
mod stream;
mod usage;

pub use request::{parse_request, request_to_json};
pub use response::{parse_response, response_to_json};
pub use stream::{Decoder, Encoder};
pub use usage::{is_usage_only_chunk, usage_from_chunk, usage_from_response};

pub use super::openai_common::{error_json, parse_error};
