-- This database's id (one row, made by the first instance that needs it): instances sharing the
-- database, and only those, share their Redis counters for the gateway's own budget.
CREATE TABLE deployment (
    k INTEGER PRIMARY KEY CHECK (k = 1),
    id TEXT NOT NULL
);
