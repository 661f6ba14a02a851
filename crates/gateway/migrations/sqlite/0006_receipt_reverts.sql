-- Receipts whose logReceipt transaction reverted. A revert burns the sender's gas and almost always
-- repeats (the contract refuses this receipt), so after `sapphire.receipt_max_reverts` of them the
-- receipt is given up: given_up_at is set, the row (and its usage row) stays, it is never sent again.
ALTER TABLE receipt_outbox ADD COLUMN reverts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE receipt_outbox ADD COLUMN given_up_at BIGINT;
