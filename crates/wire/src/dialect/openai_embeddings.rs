//! OpenAI Embeddings API (`POST /v1/embeddings`), also spoken by Azure OpenAI, Mistral, Ollama and
//! most OpenAI-compatible servers.
//!
//! Request: `model`, `input` (a string, an array of strings, an array of token ids, or an array of
//! token-id arrays), `encoding_format` (`float` | `base64`), `dimensions`, `user`. Response: a
//! `list` of `embedding` objects with their `index`, and `usage.prompt_tokens`/`total_tokens`.

use crate::canonical::WireError;
use crate::canonical::embedding::{
    EmbeddingInput, EmbeddingRequest, EmbeddingResponse, EncodingFormat, base64_f32, f32_base64,
};
use serde_json::{Map, Value, json};

const INPUT_SHAPES: &str =
    "must be a string, an array of strings, an array of token ids or an array of token-id arrays";

fn token_ids(items: &[Value], at: &str) -> Result<Vec<u32>, WireError> {
    items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    WireError::at(
                        format!("{at}[{i}]"),
                        "must be a token id (a non-negative integer)",
                    )
                })
        })
        .collect()
}

fn parse_input(v: &Value) -> Result<EmbeddingInput, WireError> {
    let input = match v {
        Value::String(s) => EmbeddingInput::Texts(vec![s.clone()]),
        Value::Array(items) => match items.first() {
            None => return Err(WireError::at("input", "must not be empty")),
            Some(Value::String(_)) => EmbeddingInput::Texts(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        s.as_str().map(str::to_string).ok_or_else(|| {
                            WireError::at(
                                format!("input[{i}]"),
                                "must be a string like the other inputs",
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Some(Value::Number(_)) => EmbeddingInput::Tokens(vec![token_ids(items, "input")?]),
            Some(Value::Array(_)) => EmbeddingInput::Tokens(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, a)| match a {
                        Value::Array(ids) if !ids.is_empty() => {
                            token_ids(ids, &format!("input[{i}]"))
                        }
                        _ => Err(WireError::at(
                            format!("input[{i}]"),
                            "must be a non-empty array of token ids",
                        )),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Some(_) => return Err(WireError::at("input", INPUT_SHAPES)),
        },
        Value::Null => return Err(WireError::at("input", "is required")),
        _ => return Err(WireError::at("input", INPUT_SHAPES)),
    };
    if let EmbeddingInput::Texts(t) = &input {
        if t.iter().any(String::is_empty) {
            return Err(WireError::at("input", "must not contain an empty string"));
        }
    }
    Ok(input)
}

/// Parses a client's request. `url_model` (Azure's deployment in the path) stands in for a missing
/// `model`.
pub fn parse_request(body: &[u8], url_model: Option<&str>) -> Result<EmbeddingRequest, WireError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| WireError::from_json(&e))?;
    let Value::Object(obj) = v else {
        return Err(WireError::new("request body must be a JSON object"));
    };
    let model = match (obj.get("model"), url_model) {
        (Some(Value::String(m)), _) if !m.is_empty() => m.clone(),
        (None | Some(Value::Null), Some(m)) => m.to_string(),
        (None | Some(Value::Null), None) => return Err(WireError::at("model", "is required")),
        _ => return Err(WireError::at("model", "must be a non-empty string")),
    };
    let input = parse_input(obj.get("input").unwrap_or(&Value::Null))?;
    let encoding_format = match obj.get("encoding_format") {
        None | Some(Value::Null) => EncodingFormat::Float,
        Some(Value::String(s)) if s == "float" => EncodingFormat::Float,
        Some(Value::String(s)) if s == "base64" => EncodingFormat::Base64,
        Some(_) => {
            return Err(WireError::at(
                "encoding_format",
                "must be \"float\" or \"base64\"",
            ));
        }
    };
    let dimensions = crate::fields::opt_positive_u32(obj.get("dimensions"), "dimensions")?;
    let user = match obj.get("user") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(WireError::at("user", "must be a string")),
    };
    Ok(EmbeddingRequest {
        model,
        input,
        dimensions,
        user,
        encoding_format,
        task_type: None,
        title: None,
    })
}

/// The upstream body. Vectors are always asked for as floats: not every compatible server
/// implements base64, and the gateway encodes for the client itself.
pub fn request_to_json(req: &EmbeddingRequest) -> Value {
    let mut out = Map::new();
    out.insert("model".into(), json!(req.model));
    let input = match &req.input {
        EmbeddingInput::Texts(t) => json!(t),
        EmbeddingInput::Tokens(t) => json!(t),
    };
    out.insert("input".into(), input);
    out.insert("encoding_format".into(), json!("float"));
    if let Some(d) = req.dimensions {
        out.insert("dimensions".into(), json!(d));
    }
    if let Some(u) = &req.user {
        out.insert("user".into(), json!(u));
    }
    Value::Object(out)
}

/// Reads an upstream answer (float or base64 vectors), in input order.
pub fn parse_response(body: &[u8]) -> Result<EmbeddingResponse, WireError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| WireError::new(format!("embeddings response is not JSON: {e}")))?;
    let data = v
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| WireError::at("data", "embeddings response has no data array"))?;
    let mut rows: Vec<(u64, Vec<f32>)> = Vec::with_capacity(data.len());
    for (i, d) in data.iter().enumerate() {
        let index = d.get("index").and_then(Value::as_u64).unwrap_or(i as u64);
        let vector = match d.get("embedding") {
            Some(Value::Array(xs)) => xs
                .iter()
                .map(|x| x.as_f64().map(|f| f as f32))
                .collect::<Option<Vec<f32>>>(),
            Some(Value::String(s)) => base64_f32(s),
            _ => None,
        }
        .ok_or_else(|| WireError::at(format!("data[{i}].embedding"), "is not a vector"))?;
        rows.push((index, vector));
    }
    rows.sort_by_key(|(i, _)| *i);
    Ok(EmbeddingResponse {
        model: v.get("model").and_then(Value::as_str).map(str::to_string),
        vectors: rows.into_iter().map(|(_, v)| v).collect(),
        input_tokens: v
            .get("usage")
            .and_then(|u| u.get("prompt_tokens").or_else(|| u.get("total_tokens")))
            .and_then(Value::as_u64),
    })
}

/// The client's answer in the format it asked for; `input_tokens` is what the ledger recorded.
pub fn response_to_json(
    resp: &EmbeddingResponse,
    model: &str,
    format: EncodingFormat,
    input_tokens: u64,
) -> Value {
    let data: Vec<Value> = resp
        .vectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let embedding = match format {
                EncodingFormat::Float => json!(v),
                EncodingFormat::Base64 => json!(f32_base64(v)),
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    json!({
        "object": "list",
        "data": data,
        "model": resp.model.as_deref().unwrap_or(model),
        "usage": {"prompt_tokens": input_tokens, "total_tokens": input_tokens}
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<EmbeddingRequest, WireError> {
        parse_request(v.to_string().as_bytes(), None)
    }

    #[test]
    fn every_input_shape_parses() {
        let r = parse(json!({"model": "m", "input": "hi"})).unwrap();
        assert_eq!(r.input, EmbeddingInput::Texts(vec!["hi".into()]));
        assert_eq!(r.encoding_format, EncodingFormat::Float);
        let r = parse(json!({"model": "m", "input": ["a", "b"], "encoding_format": "base64", "dimensions": 3, "user": "u"})).unwrap();
        assert_eq!(r.input.len(), 2);
        assert_eq!(
            (r.encoding_format, r.dimensions, r.user.as_deref()),
            (EncodingFormat::Base64, Some(3), Some("u"))
        );
        let r = parse(json!({"model": "m", "input": [1, 2, 3]})).unwrap();
        assert_eq!(r.input, EmbeddingInput::Tokens(vec![vec![1, 2, 3]]));
        let r = parse(json!({"model": "m", "input": [[1], [2, 3]]})).unwrap();
        assert_eq!(r.input.estimate_tokens(), 3);
    }

    #[test]
    fn bad_requests_name_the_field() {
        let cases = [
            (json!({"input": "x"}), "model"),
            (json!({"model": "m"}), "input"),
            (json!({"model": "m", "input": []}), "input"),
            (json!({"model": "m", "input": ["a", 1]}), "input[1]"),
            (json!({"model": "m", "input": [[1], "a"]}), "input[1]"),
            (json!({"model": "m", "input": [-1]}), "input[0]"),
            (json!({"model": "m", "input": {"a": 1}}), "input"),
            (
                json!({"model": "m", "input": "x", "encoding_format": "int8"}),
                "encoding_format",
            ),
            (
                json!({"model": "m", "input": "x", "dimensions": 0}),
                "dimensions",
            ),
        ];
        for (body, param) in cases {
            let e = parse(body.clone()).unwrap_err();
            assert_eq!(e.param.as_deref(), Some(param), "{body}: {e}");
        }
        assert_eq!(
            parse_request(br#"{"input":"x"}"#, Some("dep"))
                .unwrap()
                .model,
            "dep"
        );
    }

    #[test]
    fn responses_round_trip_in_both_formats() {
        let upstream = json!({"object": "list", "model": "text-embedding-3-small",
            "data": [{"index": 1, "embedding": [0.25, -0.5]}, {"index": 0, "embedding": "AACAPwAAAEA="}],
            "usage": {"prompt_tokens": 7, "total_tokens": 7}});
        let r = parse_response(upstream.to_string().as_bytes()).unwrap();
        assert_eq!(r.vectors, vec![vec![1.0, 2.0], vec![0.25, -0.5]]);
        assert_eq!(r.input_tokens, Some(7));
        let out = response_to_json(&r, "alias", EncodingFormat::Base64, 7);
        assert_eq!(out["data"][0]["embedding"], json!("AACAPwAAAEA="));
        assert_eq!(out["model"], "text-embedding-3-small");
        let out = response_to_json(&r, "alias", EncodingFormat::Float, 7);
        assert_eq!(out["data"][1]["embedding"], json!([0.25, -0.5]));
        assert_eq!(out["usage"]["total_tokens"], 7);
        let req = parse(json!({"model": "m", "input": "x", "encoding_format": "base64"})).unwrap();
        assert_eq!(request_to_json(&req)["encoding_format"], "float");
    }
}
