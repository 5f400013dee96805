-- The ready queue: one row per agent of a run, holding its current attempt.
-- `attempt` is the fencing token: it grows by one each time the row is
-- queued again (a lost lease, or the engine's retry), and every write of a
-- worker names it.
CREATE TABLE IF NOT EXISTS queue (
    run_id           TEXT    NOT NULL REFERENCES runs (run_id),
    agent            TEXT    NOT NULL,
    attempt          INTEGER NOT NULL,
    engine_attempt   INTEGER NOT NULL,
    platform         TEXT    NOT NULL,
    task             JSON    NOT NULL,
    state            TEXT    NOT NULL CHECK (state IN ('ready', 'claimed', 'done', 'cancelled')),
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    worker           TEXT,
    lease_until      TIMESTAMPTZ,
    enqueued_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    claimed_at       TIMESTAMPTZ,
    finished_at      TIMESTAMPTZ,
    result           JSON,
    PRIMARY KEY (run_id, agent)
);
CREATE INDEX IF NOT EXISTS queue_ready ON queue (enqueued_at) WHERE state = 'ready';
CREATE INDEX IF NOT EXISTS queue_claimed ON queue (lease_until) WHERE state = 'claimed';

-- What workers observed while an attempt ran, streamed back in order.
CREATE TABLE IF NOT EXISTS outputs (
    id      BIGSERIAL PRIMARY KEY,
    run_id  TEXT    NOT NULL,
    agent   TEXT    NOT NULL,
    attempt INTEGER NOT NULL,
    body    JSON    NOT NULL
);
CREATE INDEX IF NOT EXISTS outputs_by_attempt ON outputs (run_id, agent, attempt, id);

-- Every claim of an attempt and how it ended: the audit trail of leases.
CREATE TABLE IF NOT EXISTS claims (
    run_id     TEXT    NOT NULL,
    agent      TEXT    NOT NULL,
    attempt    INTEGER NOT NULL,
    worker     TEXT    NOT NULL,
    claimed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    ended_at   TIMESTAMPTZ,
    -- finished | rejected | lost
    ending     TEXT,
    PRIMARY KEY (run_id, agent, attempt)
);
CREATE INDEX IF NOT EXISTS queue_by_worker ON queue (worker) WHERE state = 'claimed';
