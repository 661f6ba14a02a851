-- x402 pay-per-request. `x402_payments` is the spend book: a row is reserved (atomically, within the
-- daily and monthly caps) BEFORE a payment is signed, then settled or released; released rows no
-- longer count. `id` is the EIP-3009 nonce (unique per signature). Amounts: `amount_atomic` is the
-- signed uint256 in the token's smallest unit (text), `amount_nano` the same in nano-USD.
CREATE TABLE x402_payments (
    id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    state TEXT NOT NULL,
    amount_atomic TEXT NOT NULL,
    amount_nano BIGINT NOT NULL,
    asset TEXT NOT NULL,
    network TEXT NOT NULL,
    payer TEXT NOT NULL,
    payee TEXT NOT NULL,
    tx_hash TEXT,
    updated_at BIGINT NOT NULL
);
CREATE INDEX x402_payments_time ON x402_payments (created_at);

-- What a usage row paid through x402 (NULL for key-paid rows and for payments not settled).
ALTER TABLE usage_records ADD COLUMN x402_amount_atomic TEXT;
ALTER TABLE usage_records ADD COLUMN x402_amount_nano BIGINT;
ALTER TABLE usage_records ADD COLUMN x402_asset TEXT;
ALTER TABLE usage_records ADD COLUMN x402_network TEXT;
ALTER TABLE usage_records ADD COLUMN x402_payer TEXT;
ALTER TABLE usage_records ADD COLUMN x402_payee TEXT;
ALTER TABLE usage_records ADD COLUMN x402_tx_hash TEXT;
