//! Real token counts for models whose tokenizer is public (OpenAI's, via `tiktoken-rs` with its
//! bundled encodings), for `count_tokens` when no provider endpoint can count.
//!
//! Messages are framed the way OpenAI documents for its chat models (3 tokens per message, 1 more
//! for a name, 3 to prime the reply). Tool definitions are counted as their JSON; images as a
//! high-detail 1024×1024 image (765 tokens) since their size is not known without decoding them.

use ekai_wire::canonical::{ContentBlock, Request, Tool};
use tiktoken_rs::CoreBPE;
use tiktoken_rs::tokenizer::{Tokenizer, get_tokenizer};

const PER_MESSAGE: u64 = 3;
const PER_NAME: u64 = 1;
const REPLY_PRIMING: u64 = 3;
const IMAGE: u64 = 765;

/// The encoding for `model` (an upstream id such as `gpt-4o-mini`), with its name.
fn encoding(model: &str) -> Option<(&'static CoreBPE, &'static str)> {
    // `openai/gpt-4o` (OpenRouter ids) counts like `gpt-4o`.
    let bare = model.rsplit('/').next().unwrap_or(model);
    match get_tokenizer(bare)? {
        Tokenizer::O200kBase | Tokenizer::O200kHarmony => {
            Some((tiktoken_rs::o200k_base_singleton(), "o200k_base"))
        }
        Tokenizer::Cl100kBase => Some((tiktoken_rs::cl100k_base_singleton(), "cl100k_base")),
        _ => None,
    }
}

/// Input tokens of `req` for `model`, and the encoding used; None when its tokenizer is unknown.
pub fn count(req: &Request, model: &str) -> Option<(u64, &'static str)> {
    let (bpe, name) = encoding(model)?;
    let n = |s: &str| bpe.encode_with_special_tokens(s).len() as u64;
    let mut total = REPLY_PRIMING;
    if !req.system.is_empty() {
        total += PER_MESSAGE;
        for part in &req.system {
            total += n(&part.text);
        }
    }
    for msg in &req.messages {
        total += PER_MESSAGE;
        if let Some(name) = &msg.name {
            total += PER_NAME + n(name);
        }
        for block in &msg.content {
            total += block_tokens(block, &n);
        }
    }
    for tool in &req.tools {
        total += match tool {
            Tool::Function(f) => {
                n(&f.name) + f.description.as_deref().map_or(0, n) + n(&f.parameters.to_string())
            }
            Tool::Unknown { value, .. } => n(&value.to_string()),
        };
    }
    Some((total, name))
}

fn block_tokens(block: &ContentBlock, n: &impl Fn(&str) -> u64) -> u64 {
    match block {
        ContentBlock::Text(t) => n(&t.text),
        ContentBlock::Image { .. } => IMAGE,
        ContentBlock::ToolCall(c) => n(&c.name) + n(&c.arguments),
        ContentBlock::ToolResult { content, .. } => {
            content.iter().map(|b| block_tokens(b, n)).sum::<u64>()
        }
        // Earlier turns' reasoning is not sent back to OpenAI models as input text.
        ContentBlock::Thinking { .. } | ContentBlock::RedactedThinking { .. } => 0,
        ContentBlock::Unknown { value, .. } => n(&value.to_string()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ekai_wire::canonical::{Message, Role, TextPart};

    fn user(text: &str) -> Message {
        Message {
            role: Role::User,
            content: vec![ContentBlock::text(text)],
            name: None,
        }
    }

    #[test]
    fn counts_with_the_models_encoding() {
        // "hello world" is 2 tokens in both o200k_base and cl100k_base.
        let req = Request {
            messages: vec![user("hello world")],
            ..Request::default()
        };
        assert_eq!(count(&req, "gpt-4o-mini"), Some((2 + 3 + 3, "o200k_base")));
        assert_eq!(count(&req, "openai/gpt-4o"), Some((8, "o200k_base")));
        assert_eq!(count(&req, "gpt-4-0613"), Some((8, "cl100k_base")));
        assert_eq!(count(&req, "claude-sonnet-4-5"), None);
        assert_eq!(count(&req, "gemini-2.5-flash"), None);
    }

    #[test]
    fn system_names_tools_and_images_add_up() {
        let mut req = Request {
            system: vec![TextPart {
                text: "hello world".into(),
                cache_control: None,
            }],
            messages: vec![user("hello world")],
            ..Request::default()
        };
        let base = count(&req, "gpt-4o").unwrap().0;
        assert_eq!(base, 3 + (3 + 2) + (3 + 2));
        req.messages[0].name = Some("bob".into());
        req.messages[0].content.push(ContentBlock::Image {
            source: ekai_wire::canonical::ImageSource::Url("https://x/y.png".into()),
            cache_control: None,
        });
        let with = count(&req, "gpt-4o").unwrap().0;
        assert_eq!(with, base + 1 + 1 + IMAGE);
    }
}
