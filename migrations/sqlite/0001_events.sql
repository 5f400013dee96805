-- The run journal: an append-only event log.
CREATE TABLE IF NOT EXISTS events (
    seq   INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    kind  TEXT    NOT NULL,
    agent TEXT,
    body  TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_agent ON events (agent, seq);
