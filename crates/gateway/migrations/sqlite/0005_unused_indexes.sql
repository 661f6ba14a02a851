-- Indexes no query reads, each one more B-tree to update for every usage row written:
-- `usage_records_key_time` cannot serve the only client-key filter on raw rows, which compares
-- COALESCE(client_key_id, '') (keys are read from the rollups otherwise), and nothing looks rows
-- up by request id.
DROP INDEX IF EXISTS usage_records_key_time;
DROP INDEX IF EXISTS usage_records_request;
