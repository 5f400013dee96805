-- A plan's rows were indexed by (plan, agent_id): every run of a plan added
-- one entry next to each of its agents' earlier entries, so a run's rows were
-- written all over the index, and a history of a few dozen 1,000-agent runs
-- spent 15-26 ms inserting a run and 10 ms checkpointing it. Indexed by
-- (plan, finished_at_ms) instead, a run's rows go at the end of its plan's
-- entries (runs finish in time order); the per-plan query (`rows`, ordered
-- by finish time) reads the same index.
DROP INDEX IF EXISTS agent_runs_by_plan;
CREATE INDEX IF NOT EXISTS agent_runs_by_plan_in_time ON agent_runs (plan, finished_at_ms);
