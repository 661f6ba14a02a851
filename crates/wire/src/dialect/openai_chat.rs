//! OpenAI Chat Completions API.
