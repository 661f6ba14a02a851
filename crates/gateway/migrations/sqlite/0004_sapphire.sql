-- Sapphire mode. Times are unix milliseconds, UTC; addresses and 32-byte ids are lower-case 0x hex.
--
-- Wallet sessions: a bearer token (shown once, at login) proves the wallet that signed the EIP-712
-- login. Only its SHA-256 is stored. (wallet, nonce) is unique so a signed login cannot be replayed.
CREATE TABLE wallet_sessions (
    token_hash TEXT PRIMARY KEY,
    wallet TEXT NOT NULL,
    client_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX wallet_sessions_nonce ON wallet_sessions (wallet, nonce);
CREATE INDEX wallet_sessions_expiry ON wallet_sessions (expires_at);

-- Receipt outbox: one row per completed request in Sapphire mode, inserted in the same transaction
-- as its usage row, sent to EkaiControlPlane.logReceipt by the background sender. A row is pending
-- until mined_at is set; tx_hash is the last transaction sent for it (at sent_at) (NULL through rofl-appd, which
-- reports the call result, not a hash).
CREATE TABLE receipt_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL,
    request_hash TEXT NOT NULL UNIQUE,
    owner TEXT NOT NULL,
    delegate TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    model_id TEXT NOT NULL,
    prompt_tokens BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    timestamp_ms BIGINT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    tx_hash TEXT,
    sent_at BIGINT,
    mined_at BIGINT
);
CREATE INDEX receipt_outbox_due ON receipt_outbox (mined_at, next_attempt_at);
