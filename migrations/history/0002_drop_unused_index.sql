-- No query filters agent rows by platform and model (the calibration groups
-- them in memory): the index only cost every inserted row a third b-tree insert.
DROP INDEX IF EXISTS agent_runs_by_platform;
