//! Gemini embeddings: `POST /v1beta/models/{model}:batchEmbedContents` with
//! `{"requests": [{"model": "models/{model}", "content": {"parts": [{"text"}]},
//! "outputDimensionality", "taskType", "title"}]}`, answered by `{"embeddings": [{"values": […]}]}`
//! in request order, and `:embedContent` with one such request (no `model` needed), answered by
//! `{"embedding": {"values": […]}}` (Gemini API reference, `models.embedContent` /
//! `models.batchEmbedContents`). The answer carries no token count.
//!
//! Both directions: the gateway sends Gemini upstreams batches, and takes either method from
//! Gemini clients.

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
            if let Some(t) = &req.task_type {
                r["taskType"] = json!(t);
            }
            if let Some(t) = &req.title {
                r["title"] = json!(t);
            }
            r
        })
        .collect();
    Ok(json!({ "requests": requests }))
}

/// Which method a Gemini client called: the answer takes its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbedMethod {
    /// `:embedContent`: one content, `{"embedding": …}` back.
    Single,
    /// `:batchEmbedContents`: `{"requests": […]}`, `{"embeddings": […]}` back.
    Batch,
}

/// One `EmbedContentRequest`'s parts: its text, dimensions, task type and title. `at` names it in
/// errors (`""` for `:embedContent`'s body, `requests[i].` in a batch).
type One = (String, Option<u32>, Option<String>, Option<String>);

fn parse_one(v: &Value, at: &str) -> Result<One, WireError> {
    let Some(obj) = v.as_object() else {
        return Err(WireError::new(format!("{at}must be a JSON object")));
    };
    let parts = obj
        .get("content")
        .and_then(|c| c.get("parts"))
        .and_then(Value::as_array)
        .ok_or_else(|| {
            WireError::at(
                format!("{at}content.parts"),
                "is required: the text to embed",
            )
        })?;
    let mut text = String::new();
    for (i, p) in parts.iter().enumerate() {
        match p.get("text") {
            Some(Value::String(t)) => text.push_str(t),
            _ => {
                return Err(WireError::at(
                    format!("{at}content.parts[{i}]"),
                    "only text parts can be embedded",
                ));
            }
        }
    }
    let dims = crate::fields::opt_positive_u32(
        obj.get("outputDimensionality"),
        &format!("{at}outputDimensionality"),
    )?;
    let text_field = |name: &str| match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(WireError::at(format!("{at}{name}"), "must be a string")),
    };
    Ok((text, dims, text_field("taskType")?, text_field("title")?))
}

/// A Gemini client's `:embedContent` / `:batchEmbedContents` body for `model` (from the URL).
/// The requests of a batch are embedded as one call, so they must agree on dimensions, task type
/// and title.
pub fn parse_request(
    body: &[u8],
    model: &str,
    method: EmbedMethod,
) -> Result<EmbeddingRequest, WireError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| WireError::from_json(&e))?;
    let ones: Vec<One> = match method {
        EmbedMethod::Single => vec![parse_one(&v, "")?],
        EmbedMethod::Batch => {
            let Some(reqs) = v.get("requests").and_then(Value::as_array) else {
                return Err(WireError::at(
                    "requests",
                    "is required: an array of EmbedContentRequest",
                ));
            };
            if reqs.is_empty() {
                return Err(WireError::at("requests", "must not be empty"));
            }
            reqs.iter()
                .enumerate()
                .map(|(i, r)| parse_one(r, &format!("requests[{i}].")))
                .collect::<Result<_, _>>()?
        }
    };
    let (_, dimensions, task_type, title) = ones[0].clone();
    if let Some(i) = ones
        .iter()
        .position(|o| (o.1, &o.2, &o.3) != (dimensions, &task_type, &title))
    {
        return Err(WireError::at(
            format!("requests[{i}]"),
            "every request of a batch must have the same outputDimensionality, taskType and title as the first",
        ));
    }
    Ok(EmbeddingRequest {
        model: model.strip_prefix("models/").unwrap_or(model).to_string(),
        input: EmbeddingInput::Texts(ones.into_iter().map(|o| o.0).collect()),
        dimensions,
        user: None,
        encoding_format: crate::canonical::embedding::EncodingFormat::Float,
        task_type,
        title,
    })
}

/// The answer for a Gemini client, in the shape of the method it called.
pub fn response_to_json(resp: &EmbeddingResponse, method: EmbedMethod) -> Value {
    let one = |v: &Vec<f32>| json!({ "values": v });
    match method {
        EmbedMethod::Single => {
            json!({ "embedding": resp.vectors.first().map(one).unwrap_or(json!({"values": []})) })
        }
        EmbedMethod::Batch => {
            json!({ "embeddings": resp.vectors.iter().map(one).collect::<Vec<_>>() })
        }
    }
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
    fn a_gemini_clients_requests_and_the_answers_it_expects() {
        let single = br#"{"model":"models/gemini-embedding-001","content":{"parts":[{"text":"Hello "},{"text":"world"}]},
            "taskType":"RETRIEVAL_QUERY","outputDimensionality":8}"#;
        let r = parse_request(single, "models/gemini-embedding-001", EmbedMethod::Single).unwrap();
        assert_eq!(r.model, "gemini-embedding-001");
        assert_eq!(r.input, EmbeddingInput::Texts(vec!["Hello world".into()]));
        assert_eq!(
            (r.dimensions, r.task_type.as_deref()),
            (Some(8), Some("RETRIEVAL_QUERY"))
        );
        let answer = EmbeddingResponse {
            model: None,
            vectors: vec![vec![0.25, -1.0], vec![0.5, 0.0]],
            input_tokens: None,
        };
        assert_eq!(
            response_to_json(&answer, EmbedMethod::Single),
            json!({"embedding": {"values": [0.25, -1.0]}})
        );
        assert_eq!(
            response_to_json(&answer, EmbedMethod::Batch),
            json!({"embeddings": [{"values": [0.25, -1.0]}, {"values": [0.5, 0.0]}]})
        );

        let batch = br#"{"requests":[{"model":"models/m","content":{"parts":[{"text":"a"}]}},
            {"model":"models/m","content":{"parts":[{"text":"b"}]}}]}"#;
        let r = parse_request(batch, "m", EmbedMethod::Batch).unwrap();
        assert_eq!(r.input, EmbeddingInput::Texts(vec!["a".into(), "b".into()]));

        for (body, method, param) in [
            (&br#"{"content":{"parts":[{"inlineData":{}}]}}"#[..], EmbedMethod::Single, "content.parts[0]"),
            (br#"{"content":{}}"#, EmbedMethod::Single, "content.parts"),
            (br#"{"content":{"parts":[{"text":"a"}]},"outputDimensionality":0}"#, EmbedMethod::Single, "outputDimensionality"),
            (br#"{"requests":[]}"#, EmbedMethod::Batch, "requests"),
            (br#"{"content":{"parts":[{"text":"a"}]}}"#, EmbedMethod::Batch, "requests"),
            (
                br#"{"requests":[{"content":{"parts":[{"text":"a"}]}},{"content":{"parts":[{"text":"b"}]},"taskType":"CLUSTERING"}]}"#,
                EmbedMethod::Batch,
                "requests[1]",
            ),
        ] {
            let e = parse_request(body, "m", method).unwrap_err();
            assert_eq!(e.param.as_deref(), Some(param), "{}", e.message);
        }
    }

    #[test]
    fn batch_request_and_response() {
        let req = EmbeddingRequest {
            model: "gemini-embedding-001".into(),
            input: EmbeddingInput::Texts(vec!["a".into(), "b".into()]),
            dimensions: Some(4),
            user: None,
            encoding_format: EncodingFormat::Base64,
            task_type: Some("RETRIEVAL_DOCUMENT".into()),
            title: Some("Notes".into()),
        };
        let body = request_to_json(&req, "models/gemini-embedding-001").unwrap();
        assert_eq!(body["requests"][1]["model"], "models/gemini-embedding-001");
        assert_eq!(body["requests"][1]["content"]["parts"][0]["text"], "b");
        assert_eq!(body["requests"][0]["outputDimensionality"], 4);
        assert_eq!(body["requests"][1]["taskType"], "RETRIEVAL_DOCUMENT");
        assert_eq!(body["requests"][1]["title"], "Notes");
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
