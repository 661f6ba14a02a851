use super::*;

#[test]
fn error_json_shape() {
    let v = error_json(ErrorKind::RateLimit, "quota");
    assert_eq!(
        v,
        json!({"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}})
    );
}
