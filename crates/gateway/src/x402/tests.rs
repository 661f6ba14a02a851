//! The shared interop vectors (produced by the reference libraries), reproduced byte for byte.

use super::*;
use serde_json::Value;

const EIP3009: &str = include_str!("../../tests/vectors/eip3009_transfer_authorization.json");
const V2: &str = include_str!("../../tests/vectors/x402_v2_payment_payload.json");

/// Compact JSON in the file's own key order (serde_json's map would sort the keys).
fn minify(pretty: &str) -> String {
    let mut out = String::new();
    let (mut in_str, mut esc) = (false, false);
    for c in pretty.chars() {
        if in_str {
            out.push(c);
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

/// The text of `key`'s value inside a minified object (the vector keeps key order).
fn raw_field(min: &str, key: &str) -> String {
    let v: Value = serde_json::from_str(min).unwrap();
    assert!(v.get(key).is_some());
    let needle = format!("\"{key}\":");
    let start = min.find(&needle).unwrap() + needle.len();
    let mut depth = 0i32;
    let (mut in_str, mut esc) = (false, false);
    for (i, c) in min[start..].char_indices() {
        if in_str {
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                in_str = false;
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '{' | '[' => depth += 1,
            '}' | ']' => {
                depth -= 1;
                if depth == 0 {
                    return min[start..start + i + 1].to_string();
                }
            }
            _ => {}
        }
    }
    unreachable!()
}

fn wallet(v: &Value) -> Wallet {
    Wallet::new(&Secret::new(v["private_key"].as_str().unwrap())).unwrap()
}

fn auth_of(m: &Value) -> Authorization {
    serde_json::from_value(m.clone()).unwrap()
}

#[test]
fn eip3009_vector_hashes_signature_and_v1_header() {
    let v: Value = serde_json::from_str(EIP3009).unwrap();
    let w = wallet(&v);
    assert_eq!(w.address().to_string(), v["from"].as_str().unwrap());
    let d = &v["domain"];
    let domain = eip3009::domain(
        d["name"].as_str().unwrap(),
        d["version"].as_str().unwrap(),
        d["chainId"].as_u64().unwrap(),
        d["verifyingContract"].as_str().unwrap().parse().unwrap(),
    );
    assert_eq!(
        domain.separator().to_string(),
        v["domain_separator"].as_str().unwrap()
    );
    let offer_json = serde_json::json!({
        "scheme": "exact", "network": "base-sepolia", "maxAmountRequired": "10000",
        "asset": d["verifyingContract"], "payTo": v["message"]["to"], "maxTimeoutSeconds": 60,
        "resource": "http://127.0.0.1/", "description": "", "extra": {"name": "USDC", "version": "2"}
    })
    .to_string();
    let offer = Offer {
        req: serde_json::from_str(&offer_json).unwrap(),
        raw: RawValue::from_string(offer_json).unwrap(),
    };
    let auth = auth_of(&v["message"]);
    let (dom, msg) = typed_data(&offer, &auth).unwrap();
    assert_eq!(dom, domain);
    assert_eq!(
        alloy_primitives::hex::encode_prefixed(alloy_sol_types::SolStruct::eip712_hash_struct(
            &msg
        )),
        v["struct_hash"].as_str().unwrap()
    );
    assert_eq!(
        eip3009::signing_hash(&msg, &dom).to_string(),
        v["digest"].as_str().unwrap()
    );
    let sig = sign_offer(&w, &offer, &auth).unwrap();
    assert_eq!(sig, v["signature"].as_str().unwrap());
    let raw_sig = alloy_primitives::hex::decode(&sig).unwrap();
    assert_eq!(
        eip3009::recover(&msg, &dom, &raw_sig).unwrap().to_string(),
        v["recovered"].as_str().unwrap()
    );
    let ch = Challenge {
        version: 1,
        error: None,
        resource: None,
        offers: Vec::new(),
    };
    let (name, value) = payment_header(&ch, &offer, auth, sig).unwrap();
    assert_eq!(name, "x-payment");
    assert_eq!(value, v["x_payment_v1_header"].as_str().unwrap());
    let decoded = B64.decode(&value).unwrap();
    assert_eq!(
        String::from_utf8(decoded).unwrap(),
        raw_field(&minify(EIP3009), "x_payment_v1_json")
    );
}

#[test]
fn x402_v2_vector_payload_is_reproduced() {
    let key: Value = serde_json::from_str(EIP3009).unwrap();
    let w = wallet(&key);
    let min = minify(V2);
    let v: Value = serde_json::from_str(&min).unwrap();
    let accepted = raw_field(&min, "accepted");
    let resource = raw_field(&min, "resource");
    let offer = Offer {
        req: serde_json::from_str(&accepted).unwrap(),
        raw: RawValue::from_string(accepted).unwrap(),
    };
    let ch = Challenge {
        version: 2,
        error: None,
        resource: Some(RawValue::from_string(resource).unwrap()),
        offers: Vec::new(),
    };
    let auth = auth_of(&v["payload"]["authorization"]);
    let sig = sign_offer(&w, &offer, &auth).unwrap();
    assert_eq!(sig, v["payload"]["signature"].as_str().unwrap());
    let (name, value) = payment_header(&ch, &offer, auth, sig).unwrap();
    assert_eq!(name, "payment-signature");
    assert_eq!(String::from_utf8(B64.decode(value).unwrap()).unwrap(), min);
}

#[test]
fn challenges_parse_from_a_v1_body_or_a_v2_header() {
    let v1 = br#"{"x402Version":1,"error":"X-PAYMENT header is required","accepts":[{"scheme":"exact","network":"base-sepolia","maxAmountRequired":"1000","resource":"http://x/","description":"d","mimeType":"application/json","payTo":"0xfa3F54AE9C4287CA09a486dfaFaCe7d1d4095d93","maxTimeoutSeconds":300,"asset":"0x036CbD53842c5426634e7929541eC2318f3dCF7e","extra":{"name":"USDC","version":"2"}}]}"#;
    let ch = parse_challenge(&http::HeaderMap::new(), v1).unwrap();
    assert_eq!(ch.version, 1);
    assert_eq!(ch.offers[0].amount(), Some(U256::from(1000u64)));
    let v2 = r#"{"x402Version":2,"error":"Payment required","resource":{"url":"http://x/","description":"","mimeType":""},"accepts":[{"scheme":"exact","network":"eip155:84532","amount":"100000","asset":"0x036CbD53842c5426634e7929541eC2318f3dCF7e","payTo":"0xfa3F54AE9C4287CA09a486dfaFaCe7d1d4095d93","maxTimeoutSeconds":300,"extra":{"name":"USDC","version":"2"}}]}"#;
    let mut h = http::HeaderMap::new();
    h.insert(
        "payment-required",
        http::HeaderValue::from_str(&B64.encode(v2)).unwrap(),
    );
    let ch = parse_challenge(&h, b"{}").unwrap();
    assert_eq!(ch.version, 2);
    assert_eq!(ch.offers[0].amount(), Some(U256::from(100_000u64)));
    assert!(ch.resource.is_some());
    assert!(parse_challenge(&http::HeaderMap::new(), b"not json").is_err());
    assert!(
        parse_challenge(
            &http::HeaderMap::new(),
            br#"{"x402Version":1,"accepts":[]}"#
        )
        .is_err()
    );
}

fn payer(cfg: X402Config) -> Payer {
    let key: Value = serde_json::from_str(EIP3009).unwrap();
    Payer::new(wallet(&key), cfg, Arc::new(MemoryBook::new()))
}

fn challenge(network: &str, amount: &str, asset: &str) -> Challenge {
    let body = serde_json::json!({"x402Version": 1, "accepts": [{
        "scheme": "exact", "network": network, "maxAmountRequired": amount, "asset": asset,
        "payTo": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C", "maxTimeoutSeconds": 60,
        "resource": "http://x/", "description": "", "extra": {"name": "USDC", "version": "2"}
    }]});
    parse_challenge(&http::HeaderMap::new(), body.to_string().as_bytes()).unwrap()
}

const SEPOLIA_USDC: &str = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";

#[tokio::test]
async fn spend_controls_refuse_before_signing() {
    let mut cfg = X402Config::off();
    cfg.max_per_day = Some(Decimal::new(25, 3));
    let p = payer(cfg);
    let e = p
        .authorize(&challenge("eip155:1", "10000", SEPOLIA_USDC), None, "r")
        .await
        .unwrap_err();
    assert!(
        e.message.contains("network \"eip155:1\" is not allowed"),
        "{}",
        e.message
    );
    let e = p
        .authorize(
            &challenge(
                "base-sepolia",
                "10000",
                "0x0000000000000000000000000000000000000001",
            ),
            None,
            "r",
        )
        .await
        .unwrap_err();
    assert!(e.message.contains("x402.assets"), "{}", e.message);
    let e = p
        .authorize(
            &challenge("base-sepolia", "100001", SEPOLIA_USDC),
            None,
            "r",
        )
        .await
        .unwrap_err();
    assert!(
        e.message.contains("per-request limit of 0.1 USD"),
        "{}",
        e.message
    );
    // The catalog says ~0.001: 0.05 is more than twice that and above the 0.02 minimum.
    let e = p
        .authorize(
            &challenge("base-sepolia", "50000", SEPOLIA_USDC),
            Some(Decimal::new(1, 3)),
            "r",
        )
        .await
        .unwrap_err();
    assert!(e.message.contains("estimate_tolerance"), "{}", e.message);
    // Two payments of 0.01 fit the 0.025 daily cap; the third does not.
    let ch = challenge("eip155:84532", "10000", SEPOLIA_USDC);
    let mut a = p.authorize(&ch, None, "r1").await.unwrap();
    assert_eq!(a.header.0, "x-payment");
    assert_eq!(a.payment.amount_nano, 10_000_000);
    p.authorize(&ch, None, "r2").await.unwrap();
    let e = p.authorize(&ch, None, "r3").await.unwrap_err();
    assert!(
        e.message.contains("daily x402 spend limit of 0.025 USD"),
        "{}",
        e.message
    );
    // A released reservation (no settlement) frees its share.
    assert!(!p.finish(&mut a, None, false).await);
    p.authorize(&ch, None, "r4").await.unwrap();
}

#[tokio::test]
async fn signed_payment_recovers_to_the_wallet() {
    let p = payer(X402Config::off());
    let ch = challenge("base-sepolia", "10000", SEPOLIA_USDC);
    let a = p.authorize(&ch, None, "r").await.unwrap();
    let json: Value = serde_json::from_slice(&B64.decode(&a.header.1).unwrap()).unwrap();
    let auth = auth_of(&json["payload"]["authorization"]);
    let sig =
        alloy_primitives::hex::decode(json["payload"]["signature"].as_str().unwrap()).unwrap();
    let (d, m) = typed_data(&ch.offers[0], &auth).unwrap();
    assert_eq!(eip3009::recover(&m, &d, &sig).unwrap(), p.address());
    let after: u64 = auth.valid_after.parse().unwrap();
    let before: u64 = auth.valid_before.parse().unwrap();
    assert_eq!(before - after, 660);
    assert!(!format!("{:?}", p.wallet).contains("ac0974"));
}
