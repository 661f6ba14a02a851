//! Google Gemini, native API (generativelanguage.googleapis.com): the model and the streaming choice
//! live in the URL, the key in `x-goog-api-key`.

use super::Operation;

pub fn url(base: &str, model: &str, op: Operation, stream: bool) -> String {
    // Model ids may arrive as `models/gemini-…` (the API's resource name) or bare.
    let model = model.strip_prefix("models/").unwrap_or(model);
    match (op, stream) {
        (Operation::CountTokens, _) => format!("{base}/v1beta/models/{model}:countTokens"),
        (Operation::Generate, true) => {
            format!("{base}/v1beta/models/{model}:streamGenerateContent?alt=sse")
        }
        (Operation::Generate, false) => format!("{base}/v1beta/models/{model}:generateContent"),
        (Operation::Embed, _) => embed_url(base, model),
    }
}

/// `batchEmbedContents` serves one input as well as many, so the gateway always uses it.
pub fn embed_url(base: &str, model: &str) -> String {
    let model = model.strip_prefix("models/").unwrap_or(model);
    format!("{base}/v1beta/models/{model}:batchEmbedContents")
}

pub fn headers(key: Option<&str>) -> Vec<(&'static str, String)> {
    key.map(|k| vec![("x-goog-api-key", k.to_string())])
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_and_streaming_are_in_the_url() {
        let b = "https://generativelanguage.googleapis.com";
        assert_eq!(
            url(b, "gemini-2.5-pro", Operation::Generate, false),
            format!("{b}/v1beta/models/gemini-2.5-pro:generateContent")
        );
        assert_eq!(
            url(b, "models/gemini-2.5-flash", Operation::Generate, true),
            format!("{b}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
        );
    }
}
