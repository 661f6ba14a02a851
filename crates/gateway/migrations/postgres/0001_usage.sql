-- The usage ledger. Money is INTEGER nano-USD (1e-9 USD) so sums are exact in SQLite and Postgres alike;
-- cost columns are NULL when the row is unpriced (never a silent 0). Times are unix milliseconds, UTC.
CREATE TABLE usage_records (
    id BIGSERIAL PRIMARY KEY,
    request_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    started_at BIGINT NOT NULL,
    client_key_id TEXT,
    client_dialect TEXT NOT NULL,
    requested_model TEXT NOT NULL,
    provider TEXT NOT NULL,
    upstream_model TEXT NOT NULL,
    status INTEGER NOT NULL,
    error_kind TEXT,
    error TEXT,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cache_read_tokens BIGINT NOT NULL,
    cache_write_tokens BIGINT NOT NULL,
    reasoning_tokens BIGINT NOT NULL,
    cost_input BIGINT,
    cost_output BIGINT,
    cost_cache_read BIGINT,
    cost_cache_write BIGINT,
    cost_total BIGINT,
    priced BOOLEAN NOT NULL,
    usage_estimated BOOLEAN NOT NULL,
    streamed BOOLEAN NOT NULL,
    client_disconnected BOOLEAN NOT NULL,
    first_byte_ms BIGINT,
    total_ms BIGINT NOT NULL,
    payment_method TEXT NOT NULL
);
CREATE INDEX usage_records_started_at ON usage_records (started_at);
CREATE INDEX usage_records_key_time ON usage_records (client_key_id, started_at);
CREATE INDEX usage_records_provider_time ON usage_records (provider, started_at);
CREATE INDEX usage_records_model_time ON usage_records (upstream_model, started_at);
CREATE INDEX usage_records_request ON usage_records (request_id);

-- Rollups, upserted in the same transaction as the rows they summarise. `model` is the upstream model;
-- `client_key_id` is '' when the request carried no client key (a primary key column cannot be NULL).
CREATE TABLE usage_hourly (
    bucket_start BIGINT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    client_key_id TEXT NOT NULL,
    requests BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cache_read_tokens BIGINT NOT NULL,
    cache_write_tokens BIGINT NOT NULL,
    reasoning_tokens BIGINT NOT NULL,
    cost_input BIGINT NOT NULL,
    cost_output BIGINT NOT NULL,
    cost_cache_read BIGINT NOT NULL,
    cost_cache_write BIGINT NOT NULL,
    cost_total BIGINT NOT NULL,
    unpriced BIGINT NOT NULL,
    total_ms BIGINT NOT NULL,
    PRIMARY KEY (bucket_start, provider, model, client_key_id)
);

CREATE TABLE usage_daily (
    bucket_start BIGINT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    client_key_id TEXT NOT NULL,
    requests BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cache_read_tokens BIGINT NOT NULL,
    cache_write_tokens BIGINT NOT NULL,
    reasoning_tokens BIGINT NOT NULL,
    cost_input BIGINT NOT NULL,
    cost_output BIGINT NOT NULL,
    cost_cache_read BIGINT NOT NULL,
    cost_cache_write BIGINT NOT NULL,
    cost_total BIGINT NOT NULL,
    unpriced BIGINT NOT NULL,
    total_ms BIGINT NOT NULL,
    PRIMARY KEY (bucket_start, provider, model, client_key_id)
);

-- One row (id = 1): the monthly cap. amount_nano NULL = no cap.
CREATE TABLE budget (
    id INTEGER PRIMARY KEY,
    amount_nano BIGINT,
    alert_only BOOLEAN NOT NULL,
    updated_at BIGINT NOT NULL
);
