//! One module per API dialect. Each converts to and from `crate::canonical` only.

pub mod anthropic;
pub mod gemini;
pub mod openai_chat;
mod openai_common;
pub mod openai_embeddings;
pub mod openai_responses;
