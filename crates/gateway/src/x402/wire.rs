//! The x402 messages as they travel, v1 and v2 (field names and order as the reference
//! implementation writes them: `coinbase/x402`, `@x402/core` and `x402` on npm).
//!
//! v1: the 402 carries `{x402Version: 1, error, accepts: [PaymentRequirements]}` in its JSON body; the
//! paid retry sends `X-PAYMENT`, the answer carries `X-PAYMENT-RESPONSE`.
//! v2: the 402 carries the same kind of object (with `resource` lifted out of the requirements and
//! `amount` instead of `maxAmountRequired`) base64-encoded in `PAYMENT-REQUIRED`; the retry sends
//! `PAYMENT-SIGNATURE`, the answer carries `PAYMENT-RESPONSE`. Every header value is base64 (standard
//! alphabet, padded) of compact JSON.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

pub const V1_PAYMENT_HEADER: &str = "x-payment";
pub const V1_RESPONSE_HEADER: &str = "x-payment-response";
pub const V2_REQUIRED_HEADER: &str = "payment-required";
pub const V2_PAYMENT_HEADER: &str = "payment-signature";
pub const V2_RESPONSE_HEADER: &str = "payment-response";

/// A 402 body (v1) or the decoded `PAYMENT-REQUIRED` header (v2). `accepts` entries are kept as the
/// server wrote them: v2 echoes the chosen one back verbatim as `accepted`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequired {
    pub x402_version: u8,
    #[serde(default)]
    pub error: Option<String>,
    /// v2 only: what is being paid for.
    #[serde(default)]
    pub resource: Option<Box<RawValue>>,
    #[serde(default)]
    pub accepts: Vec<Box<RawValue>>,
}

/// One way to pay, v1 or v2 (v1 names the amount `maxAmountRequired` and carries `resource`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Requirements {
    pub scheme: String,
    pub network: String,
    /// v2.
    #[serde(default)]
    pub amount: Option<String>,
    /// v1.
    #[serde(default)]
    pub max_amount_required: Option<String>,
    pub asset: String,
    pub pay_to: String,
    #[serde(default)]
    pub max_timeout_seconds: Option<u64>,
    /// v1 only.
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub extra: Option<Extra>,
}

/// The token's EIP-712 domain name and version (USDC is "USD Coin" on Base, "USDC" on Base Sepolia).
#[derive(Debug, Clone, Deserialize)]
pub struct Extra {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
}

/// EIP-3009 `TransferWithAuthorization` parameters as x402 writes them: decimal strings for the
/// numbers, checksummed addresses, 0x-hex nonce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Authorization {
    pub from: String,
    pub to: String,
    pub value: String,
    pub valid_after: String,
    pub valid_before: String,
    pub nonce: String,
}

/// The `exact` EVM scheme's payload, v1 field order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExactPayloadV1 {
    pub signature: String,
    pub authorization: Authorization,
}

/// The `exact` EVM scheme's payload, v2 field order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExactPayloadV2 {
    pub authorization: Authorization,
    pub signature: String,
}

/// `X-PAYMENT` (v1).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentPayloadV1 {
    pub x402_version: u8,
    pub scheme: String,
    pub network: String,
    pub payload: ExactPayloadV1,
}

/// `PAYMENT-SIGNATURE` (v2): `resource` and `accepted` are the server's own JSON, echoed.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentPayloadV2<'a> {
    pub x402_version: u8,
    pub payload: ExactPayloadV2,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<&'a RawValue>,
    pub accepted: &'a RawValue,
}

/// `X-PAYMENT-RESPONSE` / `PAYMENT-RESPONSE`: the facilitator's settlement.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettleResponse {
    pub success: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
    #[serde(default)]
    pub transaction: String,
    #[serde(default)]
    pub network: String,
}
