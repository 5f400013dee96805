-- The run journal in PostgreSQL: the same events as the SQLite journal (one
-- JSON body per event, the same encoding), keyed by run.
CREATE TABLE IF NOT EXISTS runs (
    run_id     TEXT PRIMARY KEY,
    created_ms BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    run_id TEXT   NOT NULL REFERENCES runs (run_id),
    seq    BIGINT NOT NULL,
    at_ms  BIGINT NOT NULL,
    kind   TEXT   NOT NULL,
    agent  TEXT,
    -- `json`, not `jsonb`: the text is kept exactly as written (and a NUL
    -- escape in agent output stays storable).
    body   JSON   NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE INDEX IF NOT EXISTS events_by_agent ON events (run_id, agent, seq);
