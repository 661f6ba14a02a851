//! Oasis `X25519DeoxysII` sealed secrets, the format users seal their provider keys in on chain.
//!
//! CBOR `{format: 1, body: {pk: 32-byte ephemeral public key, nonce: 15 bytes, data: ciphertext ‖
//! 16-byte tag, epoch?: uint}}`. The box key is HMAC-SHA512/256 keyed with
//! `"MRAE_Box_Deoxys-II-256-128"` over X25519(our secret, pk); the data is Deoxys-II-256-128 with
//! empty associated data. Anything else — plaintext, another format, a truncated body — is refused:
//! a value that does not open is never taken for a key.

use ciborium::value::Value;
use deoxys::aead::{AeadInOut, KeyInit};
use deoxys::{DeoxysII256, Nonce, Tag};
use hmac::{Hmac, Mac};
use sha2::Sha512_256;
use x25519_dalek::{PublicKey, StaticSecret};

/// `CipherKind::X25519DeoxysII` in Oasis's cipher module.
pub const FORMAT_X25519_DEOXYSII: u64 = 1;
pub const NONCE_LEN: usize = 15;
pub const TAG_LEN: usize = 16;
/// The HMAC key of the box-key derivation (Oasis `mrae::deoxysii` "MRAE box").
pub const BOX_KDF_KEY: &[u8] = b"MRAE_Box_Deoxys-II-256-128";
/// Sealed values larger than this are refused before parsing (a provider key is < 1 KiB).
const MAX_LEN: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("not a sealed envelope: {0}")]
    Malformed(&'static str),
    #[error("unsupported envelope format {0} (expected 1, X25519DeoxysII)")]
    Format(u64),
    #[error(
        "the envelope does not open with this gateway's key (sealed to another key, or altered)"
    )]
    Open,
}

/// The parts of an envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub pk: [u8; 32],
    pub nonce: [u8; NONCE_LEN],
    /// Ciphertext followed by the tag.
    pub data: Vec<u8>,
}

fn field<'a>(map: &'a [(Value, Value)], name: &str) -> Option<&'a Value> {
    map.iter()
        .find(|(k, _)| k.as_text() == Some(name))
        .map(|(_, v)| v)
}

fn bytes<'a>(v: Option<&'a Value>, what: &'static str) -> Result<&'a [u8], EnvelopeError> {
    v.and_then(Value::as_bytes)
        .map(Vec::as_slice)
        .ok_or(EnvelopeError::Malformed(what))
}

/// Parses the CBOR envelope (no decryption).
pub fn parse(sealed: &[u8]) -> Result<Envelope, EnvelopeError> {
    if sealed.len() > MAX_LEN {
        return Err(EnvelopeError::Malformed("larger than 64 KiB"));
    }
    let v: Value =
        ciborium::de::from_reader(sealed).map_err(|_| EnvelopeError::Malformed("not CBOR"))?;
    let top = v
        .as_map()
        .ok_or(EnvelopeError::Malformed("not a CBOR map"))?;
    let format = field(top, "format")
        .and_then(Value::as_integer)
        .and_then(|i| u64::try_from(i).ok())
        .ok_or(EnvelopeError::Malformed("no integer `format`"))?;
    if format != FORMAT_X25519_DEOXYSII {
        return Err(EnvelopeError::Format(format));
    }
    let body = field(top, "body")
        .and_then(Value::as_map)
        .ok_or(EnvelopeError::Malformed("no `body` map"))?;
    let pk = bytes(field(body, "pk"), "`body.pk` is not bytes")?;
    let nonce = bytes(field(body, "nonce"), "`body.nonce` is not bytes")?;
    let data = bytes(field(body, "data"), "`body.data` is not bytes")?;
    let pk: [u8; 32] = pk
        .try_into()
        .map_err(|_| EnvelopeError::Malformed("`body.pk` is not 32 bytes"))?;
    let nonce: [u8; NONCE_LEN] = nonce
        .try_into()
        .map_err(|_| EnvelopeError::Malformed("`body.nonce` is not 15 bytes"))?;
    if data.len() < TAG_LEN {
        return Err(EnvelopeError::Malformed(
            "`body.data` is shorter than a tag",
        ));
    }
    Ok(Envelope {
        pk,
        nonce,
        data: data.to_vec(),
    })
}

/// The Deoxys-II key shared by `secret` and the peer's public key `pk`.
pub fn box_key(secret: &StaticSecret, pk: &[u8; 32]) -> [u8; 32] {
    let shared = secret.diffie_hellman(&PublicKey::from(*pk));
    derive_box_key(shared.as_bytes())
}

/// HMAC-SHA512/256(key = "MRAE_Box_Deoxys-II-256-128", message = shared secret).
pub fn derive_box_key(shared: &[u8; 32]) -> [u8; 32] {
    let mut mac = match <Hmac<Sha512_256> as Mac>::new_from_slice(BOX_KDF_KEY) {
        Ok(m) => m,
        // HMAC accepts keys of any length.
        Err(_) => return [0; 32],
    };
    mac.update(shared);
    mac.finalize().into_bytes().into()
}

/// Opens a sealed envelope with the gateway's secret: the plaintext bytes.
pub fn open(secret: &StaticSecret, sealed: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    let env = parse(sealed)?;
    let key = box_key(secret, &env.pk);
    let cipher = DeoxysII256::new_from_slice(&key).map_err(|_| EnvelopeError::Open)?;
    let split = env.data.len() - TAG_LEN;
    let (ct, tag) = env.data.split_at(split);
    let tag = Tag::try_from(tag).map_err(|_| EnvelopeError::Open)?;
    let nonce = Nonce::try_from(&env.nonce[..]).map_err(|_| EnvelopeError::Open)?;
    let mut buf = ct.to_vec();
    cipher
        .decrypt_inout_detached(&nonce, &[], buf.as_mut_slice().into(), &tag)
        .map_err(|_| EnvelopeError::Open)?;
    Ok(buf)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use ciborium::value::Value;
    use std::collections::HashMap;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn vector() -> HashMap<String, serde_json::Value> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/x25519_deoxysii_envelope.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn s(v: &HashMap<String, serde_json::Value>, k: &str) -> String {
        v[k].as_str().unwrap().to_string()
    }

    /// The sealing side, as a client SDK does it (test code only: the gateway never seals).
    pub(crate) fn seal(
        recipient: &[u8; 32],
        eph: [u8; 32],
        nonce: [u8; 15],
        msg: &[u8],
    ) -> Vec<u8> {
        let eph = StaticSecret::from(eph);
        let pk = PublicKey::from(&eph).to_bytes();
        let key = box_key(&eph, recipient);
        let cipher = DeoxysII256::new_from_slice(&key).unwrap();
        let mut buf = msg.to_vec();
        let tag = cipher
            .encrypt_inout_detached(
                &Nonce::try_from(&nonce[..]).unwrap(),
                &[],
                buf.as_mut_slice().into(),
            )
            .unwrap();
        buf.extend_from_slice(&tag);
        let env = Value::Map(vec![
            (
                Value::Text("body".into()),
                Value::Map(vec![
                    (Value::Text("pk".into()), Value::Bytes(pk.to_vec())),
                    (Value::Text("data".into()), Value::Bytes(buf)),
                    (Value::Text("nonce".into()), Value::Bytes(nonce.to_vec())),
                ]),
            ),
            (Value::Text("format".into()), Value::Integer(1.into())),
        ]);
        let mut out = Vec::new();
        ciborium::ser::into_writer(&env, &mut out).unwrap();
        out
    }

    #[test]
    fn the_reference_vector_opens_byte_for_byte() {
        let v = vector();
        let sk: [u8; 32] = hex(&s(&v, "gateway_x25519_sk")).try_into().unwrap();
        let secret = StaticSecret::from(sk);
        assert_eq!(
            PublicKey::from(&secret).to_bytes().to_vec(),
            hex(&s(&v, "gateway_x25519_pk"))
        );
        let sealed = hex(&s(&v, "cbor_envelope"));
        let env = parse(&sealed).unwrap();
        assert_eq!(env.pk.to_vec(), hex(&s(&v, "ephemeral_x25519_pk")));
        assert_eq!(env.nonce.to_vec(), hex(&s(&v, "nonce")));
        assert_eq!(env.data, hex(&s(&v, "ciphertext_with_tag")));
        assert_eq!(
            box_key(&secret, &env.pk).to_vec(),
            hex(&s(&v, "derived_deoxysii_key"))
        );
        let plain = open(&secret, &sealed).unwrap();
        assert_eq!(plain, s(&v, "plaintext_utf8").as_bytes());
        // And our sealing side reproduces the vector's envelope exactly.
        let eph: [u8; 32] = hex(&s(&v, "ephemeral_x25519_sk")).try_into().unwrap();
        let nonce: [u8; 15] = hex(&s(&v, "nonce")).try_into().unwrap();
        let pk: [u8; 32] = hex(&s(&v, "gateway_x25519_pk")).try_into().unwrap();
        assert_eq!(seal(&pk, eph, nonce, plain.as_slice()), sealed);
    }

    #[test]
    fn envelopes_sealed_here_open_and_tampering_is_refused() {
        let gw = StaticSecret::from([7u8; 32]);
        let pk = PublicKey::from(&gw).to_bytes();
        for msg in [&b""[..], b"sk-ant-api03-xyz", &[0xffu8; 300][..]] {
            let sealed = seal(&pk, [9u8; 32], [3u8; 15], msg);
            assert_eq!(open(&gw, &sealed).unwrap(), msg);
        }
        let mut sealed = seal(&pk, [9u8; 32], [3u8; 15], b"sk-live");
        let last = sealed.len() - 1;
        sealed[last - 20] ^= 1;
        assert_eq!(open(&gw, &sealed), Err(EnvelopeError::Open));
        // Sealed to another key.
        let other = StaticSecret::from([8u8; 32]);
        let sealed = seal(&pk, [9u8; 32], [3u8; 15], b"sk-live");
        assert_eq!(open(&other, &sealed), Err(EnvelopeError::Open));
    }

    #[test]
    fn plaintext_and_malformed_input_are_refused() {
        let gw = StaticSecret::from([7u8; 32]);
        let cbor = |v: Value| {
            let mut out = Vec::new();
            ciborium::ser::into_writer(&v, &mut out).unwrap();
            out
        };
        let t = |s: &str| Value::Text(s.into());
        let good_body = || {
            vec![
                (t("pk"), Value::Bytes(vec![1; 32])),
                (t("nonce"), Value::Bytes(vec![1; 15])),
                (t("data"), Value::Bytes(vec![1; 20])),
            ]
        };
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"sk-proj-plaintext-key".to_vec(), "plaintext"),
            (b"".to_vec(), "empty"),
            (cbor(t("sk-in-cbor-text")), "CBOR text"),
            (
                cbor(Value::Map(vec![(t("body"), Value::Map(good_body()))])),
                "no format",
            ),
            (
                cbor(Value::Map(vec![
                    (t("format"), Value::Integer(2.into())),
                    (t("body"), Value::Map(good_body())),
                ])),
                "format 2",
            ),
            (
                cbor(Value::Map(vec![
                    (t("format"), Value::Integer(1.into())),
                    (
                        t("body"),
                        Value::Map(vec![
                            (t("pk"), Value::Bytes(vec![1; 31])),
                            (t("nonce"), Value::Bytes(vec![1; 15])),
                            (t("data"), Value::Bytes(vec![1; 20])),
                        ]),
                    ),
                ])),
                "short pk",
            ),
            (
                cbor(Value::Map(vec![
                    (t("format"), Value::Integer(1.into())),
                    (
                        t("body"),
                        Value::Map(vec![
                            (t("pk"), Value::Bytes(vec![1; 32])),
                            (t("nonce"), Value::Bytes(vec![1; 12])),
                            (t("data"), Value::Bytes(vec![1; 20])),
                        ]),
                    ),
                ])),
                "12-byte nonce",
            ),
            (
                cbor(Value::Map(vec![
                    (t("format"), Value::Integer(1.into())),
                    (
                        t("body"),
                        Value::Map(vec![
                            (t("pk"), Value::Bytes(vec![1; 32])),
                            (t("nonce"), Value::Bytes(vec![1; 15])),
                            (t("data"), Value::Bytes(vec![1; 15])),
                        ]),
                    ),
                ])),
                "data shorter than a tag",
            ),
            (
                cbor(Value::Map(vec![
                    (t("format"), Value::Integer(1.into())),
                    (t("body"), Value::Map(good_body())),
                ])),
                "well-formed but not sealed to us",
            ),
        ];
        for (input, what) in cases {
            assert!(open(&gw, &input).is_err(), "{what} was accepted");
        }
        // Truncations of a valid envelope never open.
        let pk = PublicKey::from(&gw).to_bytes();
        let sealed = seal(&pk, [9u8; 32], [3u8; 15], b"sk-live");
        for n in 0..sealed.len() {
            assert!(open(&gw, &sealed[..n]).is_err(), "truncated to {n}");
        }
    }
}
