//! Gemini embeddings: `POST /v1beta/models/{model}:batchEmbedContents` with
//! `{"requests": [{"model": "models/{model}", "content": {"parts": [{"text"}]},
//! "outputDimensionality"}]}`, answered by `{"embeddings": [{"values": […]}]}` in request order
//! (Gemini API reference, `models.batchEmbedContents`). The answer carries no token count.

use crate::canonical::WireError;
use crate::canonical::embedding::{EmbeddingInput, EmbeddingRequest, EmbeddingResponse};
use serde_json::{Value, json};

/// The upstream body for `model` (bare or `models/…`). Token-id inputs have no Gemini form.
pub fn request_to_json(req: &EmbeddingRequest, model: &str) -> Result<Value, WireError> {
    let EmbeddingInput::Texts(texts) = &req.input else {
        return Err(WireError::at(
            "input",
            "token-id inputs cannot be sent to a Gemini model; send the text instead",
        ));
    };
    let name = format!("models/{}", model.strip_prefix("models/").unwrap_or(model));
    let requests: Vec<Value> = texts
        .iter()
        .map(|t| {
            let mut r = json!({"model": name, "content": {"parts": [{"text": t}]}});
            if let Some(d) = req.dimensions {
                r["outputDimensionality"] = json!(d);
            }
            r
        })
        .collect();
    Ok(json!({ "requests": requests }))
}

/// Reads a `batchEmbedContents` answer (or a single `embedContent` one).
pub fn parse_response(body: &[u8]) -> Result<EmbeddingResponse, WireError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| WireError::new(format!("embeddings response is not JSON: {e}")))?;
    let items: Vec<&Value> = match (v.get("embeddings"), v.get("embedding")) {
        (Some(Value::Array(a)), _) => a.iter().collect(),
        (_, Some(one)) => vec![one],
        _ => return Err(WireError::at("embeddings", "response has no embeddings")),
    };
    let vectors = items
        .iter()
        .enumerate()
        .map(|(i, e)| {
            e.get("values")
                .and_then(Value::as_array)
                .and_then(|xs| xs.iter().map(|x| x.as_f64().map(|f| f as f32)).collect())
                .ok_or_else(|| WireError::at(format!("embeddings[{i}].values"), "is not a vector"))
        })
        .collect::<Result<_, _>>()?;
    Ok(EmbeddingResponse {
        model: None,
        vectors,
        input_tokens: v
            .get("usageMetadata")
            .and_then(|u| u.get("promptTokenCount"))
            .and_then(Value::as_u64),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::canonical::embedding::EncodingFormat;

    #[test]
    fn batch_request_and_response() {
        let req = EmbeddingRequest {
            model: "gemini-embedding-001".into(),
            input: EmbeddingInput::Texts(vec!["a".into(), "b".into()]),
            dimensions: Some(4),
            user: None,
            encoding_format: EncodingFormat::Base64,
        };
        let body = request_to_json(&req, "models/gemini-embedding-001").unwrap();
        assert_eq!(body["requests"][1]["model"], "models/gemini-embedding-001");
        assert_eq!(body["requests"][1]["content"]["parts"][0]["text"], "b");
        assert_eq!(body["requests"][0]["outputDimensionality"], 4);
        let r = parse_response(br#"{"embeddings":[{"values":[0.5]},{"values":[-1]}]}"#).unwrap();
        assert_eq!(r.vectors, vec![vec![0.5], vec![-1.0]]);
        assert_eq!(r.input_tokens, None);
        let tokens = EmbeddingRequest {
            input: EmbeddingInput::Tokens(vec![vec![1]]),
            ..req
        };
        assert_eq!(
            request_to_json(&tokens, "m").unwrap_err().param.as_deref(),
            Some("input")
        );
    }
}
