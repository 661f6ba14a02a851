//! Golden-snapshot helpers shared by the wire crate's fixture tests.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

use serde_json::Value;
use std::path::Path;

fn updating() -> bool {
    std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1")
}

/// Compares `actual` with the file at `path` byte for byte; `UPDATE_SNAPSHOTS=1` (re)writes it
/// instead, to be reviewed and committed.
pub fn assert_text_snapshot(path: &Path, actual: &str) {
    if updating() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_else(|_| {
        panic!(
            "missing snapshot {}: run with UPDATE_SNAPSHOTS=1 to create it, then review and commit it",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{} differs from the conversion (UPDATE_SNAPSHOTS=1 rewrites it); actual:\n{actual}",
        path.display()
    );
}

/// The same for a JSON value, stored pretty-printed.
pub fn assert_json_snapshot(path: &Path, actual: &Value) {
    let mut text = serde_json::to_string_pretty(actual).unwrap();
    text.push('\n');
    assert_text_snapshot(path, &text);
}
