//! Anthropic Messages API. (stub: replaced by the real module)
#![allow(clippy::all, unused)]
use crate::canonical::*;
use serde_json::Value;
pub fn parse_request(body: &[u8]) -> Result<Request, WireError> {
    Err(WireError::new("todo"))
}
pub fn request_to_json(req: &Request) -> Result<Value, WireError> {
    Err(WireError::new("todo"))
}
pub fn parse_response(body: &[u8]) -> Result<Response, WireError> {
    Err(WireError::new("todo"))
}
pub fn response_to_json(resp: &Response) -> Value {
    Value::Null
}
pub struct Decoder;
impl Decoder {
    pub fn new() -> Self {
        Decoder
    }
}
impl StreamDecoder for Decoder {
    fn decode(&mut self, event: Option<&str>, data: &str, out: &mut Vec<StreamEvent>) {}
    fn finish(&mut self, out: &mut Vec<StreamEvent>) {}
}
pub struct Encoder;
impl Encoder {
    pub fn new() -> Self {
        Encoder
    }
}
impl StreamEncoder for Encoder {
    fn encode(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {}
}
pub fn error_json(kind: ErrorKind, message: &str) -> Value {
    Value::Null
}
pub fn parse_error(body: &[u8]) -> Option<(String, String)> {
    None
}
pub fn usage_from_response(body: &[u8]) -> Option<Usage> {
    None
}
pub fn usage_from_event(event: Option<&str>, data: &str) -> Option<Usage> {
    None
}
pub fn count_tokens_request(body: &[u8]) -> Result<Request, WireError> {
    Err(WireError::new("todo"))
}
pub fn estimate_input_tokens(req: &Request) -> u64 {
    0
}
pub fn count_tokens_json(input_tokens: u64) -> Value {
    Value::Null
}
