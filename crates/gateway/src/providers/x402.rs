//! The x402 relay (`X402_BASE_URL`, default the original gateway's hosted relay): OpenAI Chat at
//! `{base}/v1/chat/completions` and Anthropic Messages at `{base}/v1/messages`, no key — each
//! request is paid from the wallet when the relay answers 402 (`crate::x402`, `proxy::pay`).

use super::Operation;
use ekai_wire::canonical::Dialect;

pub fn url(base: &str, dialect: Dialect, op: Operation) -> Option<String> {
    match (dialect, op) {
        (Dialect::OpenAiChat, Operation::Generate) => Some(format!("{base}/v1/chat/completions")),
        (Dialect::Anthropic, Operation::Generate) => Some(format!("{base}/v1/messages")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_serves_chat_and_messages_only() {
        let b = "https://x402.ekailabs.xyz";
        assert_eq!(
            url(b, Dialect::OpenAiChat, Operation::Generate).as_deref(),
            Some("https://x402.ekailabs.xyz/v1/chat/completions")
        );
        assert_eq!(
            url(b, Dialect::Anthropic, Operation::Generate).as_deref(),
            Some("https://x402.ekailabs.xyz/v1/messages")
        );
        assert!(url(b, Dialect::Anthropic, Operation::CountTokens).is_none());
        assert!(url(b, Dialect::Gemini, Operation::Generate).is_none());
    }
}
