-- The history store: one row per run and one per agent per run.
-- A resumed run replaces its rows (upsert by run_id / (run_id, agent_id)).
CREATE TABLE IF NOT EXISTS runs (
    run_id          TEXT    PRIMARY KEY,
    plan            TEXT    NOT NULL,
    plan_path       TEXT,
    mode            TEXT    NOT NULL,
    concurrency     INTEGER NOT NULL,
    agents          INTEGER NOT NULL,
    outcome         TEXT    NOT NULL,
    started_at_ms   INTEGER,
    finished_at_ms  INTEGER NOT NULL,
    wall_secs       REAL,
    predicted_secs  REAL,
    prediction_basis TEXT   NOT NULL,
    cost_usd        REAL    NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_plan ON runs (plan, finished_at_ms);

CREATE TABLE IF NOT EXISTS agent_runs (
    run_id          TEXT    NOT NULL,
    agent_id        TEXT    NOT NULL,
    plan            TEXT    NOT NULL,
    plan_path       TEXT,
    wave            TEXT,
    platform        TEXT    NOT NULL,
    model           TEXT,
    scope           TEXT    NOT NULL,
    estimate_secs   REAL,
    actual_secs     REAL,
    attempt_secs    REAL,
    attempts        INTEGER NOT NULL,
    failed_attempts INTEGER NOT NULL,
    outcome         TEXT    NOT NULL,
    gates_passed    INTEGER NOT NULL,
    gates_failed    INTEGER NOT NULL,
    input_tokens    INTEGER NOT NULL,
    output_tokens   INTEGER NOT NULL,
    cost_usd        REAL    NOT NULL,
    started_at_ms   INTEGER,
    finished_at_ms  INTEGER NOT NULL,
    PRIMARY KEY (run_id, agent_id)
);
CREATE INDEX IF NOT EXISTS agent_runs_by_platform ON agent_runs (platform, model);
CREATE INDEX IF NOT EXISTS agent_runs_by_plan ON agent_runs (plan, agent_id);
