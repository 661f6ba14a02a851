//! Embeddings, deterministic: the same text gives the same vector on every route (OpenAI,
//! Azure, Gemini), so a test can check a vector whichever upstream served it.
//!
//! Vector component `i` of a text is `(h_i mod 2048 - 1024) / 1024` where `h_i` is FNV-1a 64 of
//! the text followed by the byte `i`: multiples of 1/1024 are exact in `f32`, so a vector survives
//! float JSON and base64 (little-endian `f32`) without rounding. Default length 8; `dimensions`
//! (OpenAI) or `outputDimensionality` (Gemini) choose another. Token counts: words of each text
//! (whitespace-separated), or the length of a token array.

use serde_json::{Value, json};

/// Length of a vector when the request names none.
pub const DEFAULT_DIMENSIONS: usize = 8;

/// The deterministic vector of `text` (public so tests can compute the expected answer).
pub fn vector(text: &str, dims: usize) -> Vec<f32> {
    (0..dims)
        .map(|i| {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in text.bytes().chain(std::iter::once(i as u8)) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            ((h % 2048) as f32 - 1024.0) / 1024.0
        })
        .collect()
}

/// Words in a text: the mock's token count.
pub fn tokens(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(char::from(A[((n >> (18 - 6 * k)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// One input of an OpenAI request: its text (token arrays are named by their ids) and tokens.
fn openai_inputs(input: &Value) -> Result<Vec<(String, u64)>, String> {
    let tokens_of = |a: &[Value]| -> Option<(String, u64)> {
        let ids: Option<Vec<u64>> = a.iter().map(Value::as_u64).collect();
        ids.map(|ids| {
            let text = ids.iter().map(u64::to_string).collect::<Vec<_>>().join(" ");
            (text, ids.len() as u64)
        })
    };
    match input {
        Value::String(s) => Ok(vec![(s.clone(), tokens(s))]),
        Value::Array(items) if items.is_empty() => Err("'input' must not be empty".into()),
        Value::Array(items) if items.iter().all(Value::is_string) => Ok(items
            .iter()
            .filter_map(Value::as_str)
            .map(|s| (s.to_string(), tokens(s)))
            .collect()),
        Value::Array(items) if items.iter().all(Value::is_u64) => {
            tokens_of(items).map(|t| vec![t]).ok_or_else(|| "bad token".into())
        }
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_array()
                    .and_then(|a| tokens_of(a))
                    .ok_or_else(|| "'input' must be a string, an array of strings, an array of tokens or an array of token arrays".to_string())
            })
            .collect(),
        _ => Err("'input' is a required property".into()),
    }
}

/// `POST /v1/embeddings` (and Azure's deployment route): the OpenAI answer, or a 400 message.
pub fn openai_response(body: &Value, model: &str) -> Result<Value, String> {
    let inputs = openai_inputs(body.get("input").unwrap_or(&Value::Null))?;
    let dims = match body.get("dimensions") {
        None | Some(Value::Null) => DEFAULT_DIMENSIONS,
        Some(v) => v
            .as_u64()
            .filter(|d| (1..=4096).contains(d))
            .ok_or("'dimensions' must be a positive integer")? as usize,
    };
    let base64_out = match body.get("encoding_format").and_then(Value::as_str) {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => return Err(format!("'{other}' is not one of ['float', 'base64']")),
    };
    let mut total = 0;
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, (text, n))| {
            total += n;
            let v = vector(text, dims);
            let embedding = if base64_out {
                let bytes: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
                json!(base64(&bytes))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    Ok(json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": total, "total_tokens": total}
    }))
}

fn gemini_text(content: &Value) -> Result<String, String> {
    let parts = content
        .get("parts")
        .and_then(Value::as_array)
        .ok_or("content.parts is required")?;
    Ok(parts
        .iter()
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join(""))
}

fn gemini_dims(req: &Value) -> usize {
    req.get("outputDimensionality")
        .and_then(Value::as_u64)
        .map_or(DEFAULT_DIMENSIONS, |d| d as usize)
}

/// `:embedContent`.
pub fn gemini_single(body: &Value) -> Result<Value, String> {
    let text = gemini_text(body.get("content").unwrap_or(&Value::Null))?;
    Ok(json!({"embedding": {"values": vector(&text, gemini_dims(body))}}))
}

/// `:batchEmbedContents`: every request must name the URL's model (`models/…`).
pub fn gemini_batch(body: &Value, model: &str) -> Result<Value, String> {
    let reqs = body
        .get("requests")
        .and_then(Value::as_array)
        .ok_or("requests is required")?;
    let want = format!("models/{model}");
    let mut out = Vec::new();
    for (i, r) in reqs.iter().enumerate() {
        if r.get("model").and_then(Value::as_str) != Some(want.as_str()) {
            return Err(format!(
                "requests[{i}].model must be {want} (the model in the URL)"
            ));
        }
        let text = gemini_text(r.get("content").unwrap_or(&Value::Null))?;
        out.push(json!({"values": vector(&text, gemini_dims(r))}));
    }
    Ok(json!({"embeddings": out}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn vectors_are_deterministic_and_exact() {
        let v = vector("hello", 4);
        assert_eq!(v, vector("hello", 4));
        assert_ne!(v, vector("hellp", 4));
        assert!(
            v.iter()
                .all(|f| (f * 1024.0).fract() == 0.0 && f.abs() <= 1.0)
        );
    }
}
