//! Embeddings in the gateway's own terms: what to embed, and the vectors that came back. Dialects
//! convert to and from these (`dialect::openai_embeddings`, `dialect::gemini::embed`).

/// What to embed: texts, or (OpenAI dialect only) pre-tokenised inputs.
#[derive(Debug, Clone, PartialEq)]
pub enum EmbeddingInput {
    Texts(Vec<String>),
    Tokens(Vec<Vec<u32>>),
}

impl EmbeddingInput {
    pub fn len(&self) -> usize {
        match self {
            EmbeddingInput::Texts(t) => t.len(),
            EmbeddingInput::Tokens(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A cheap token estimate (about four bytes a token; exact for token arrays).
    pub fn estimate_tokens(&self) -> u64 {
        match self {
            EmbeddingInput::Texts(t) => t.iter().map(|s| (s.len() as u64).div_ceil(4)).sum(),
            EmbeddingInput::Tokens(t) => t.iter().map(|v| v.len() as u64).sum(),
        }
    }
}

/// How the client wants vectors written back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EncodingFormat {
    #[default]
    Float,
    /// Little-endian `f32`s, base64 (what the openai SDKs ask for by default).
    Base64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingRequest {
    pub model: String,
    pub input: EmbeddingInput,
    pub dimensions: Option<u32>,
    pub user: Option<String>,
    pub encoding_format: EncodingFormat,
    /// Gemini's `taskType` (e.g. `RETRIEVAL_QUERY`): what the vectors are for. Only Gemini
    /// upstreams take it; the others ignore it.
    pub task_type: Option<String>,
    /// Gemini's `title` of a `RETRIEVAL_DOCUMENT` text (Gemini upstreams only).
    pub title: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct EmbeddingResponse {
    /// The model the upstream says answered, when it says.
    pub model: Option<String>,
    /// One vector per input, in input order.
    pub vectors: Vec<Vec<f32>>,
    /// Input tokens the upstream reported (None: it reports none).
    pub input_tokens: Option<u64>,
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 (RFC 4648, padded) of a vector's little-endian `f32` bytes.
pub fn f32_base64(v: &[f32]) -> String {
    let bytes: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b1 = chunk.get(1).copied().unwrap_or(0);
        let b2 = chunk.get(2).copied().unwrap_or(0);
        let n = (u32::from(chunk[0]) << 16) | (u32::from(b1) << 8) | u32::from(b2);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(char::from(B64[((n >> (18 - 6 * k)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The inverse of [`f32_base64`]; None when the text is not base64 of whole `f32`s.
pub fn base64_f32(text: &str) -> Option<Vec<f32>> {
    let text = text.trim_end_matches('=');
    let mut bytes = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = B64.iter().position(|&b| b == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            bytes.push((acc >> bits) as u8);
        }
    }
    if bytes.len() % 4 != 0 {
        return None;
    }
    Some(
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_f32s() {
        let v = vec![0.5f32, -1.0, 0.000_976_562_5, 3.25];
        let s = f32_base64(&v);
        assert_eq!(base64_f32(&s), Some(v));
        // 1.0f32 is 00 00 80 3f.
        assert_eq!(f32_base64(&[1.0]), "AACAPw==");
        assert!(base64_f32("AAA").is_none());
        assert!(base64_f32("A*AA").is_none());
    }
}
