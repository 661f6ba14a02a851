-- Client keys. The key itself is never stored: `key_hash` is HMAC-SHA256(master key, key) in hex, and
-- `key_prefix` (its first 8 characters) identifies it in listings. Times are unix milliseconds, UTC;
-- `tags` and `policy` are JSON text (same column type in both engines). `upstream_keys` is a JSON object
-- provider → the client's own upstream key sealed with ChaCha20-Poly1305 under the master key (never plain).
CREATE TABLE clients (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    key_prefix TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT,
    tags TEXT NOT NULL,
    policy TEXT NOT NULL,
    upstream_keys TEXT NOT NULL
);
CREATE INDEX clients_key_prefix ON clients (key_prefix);
