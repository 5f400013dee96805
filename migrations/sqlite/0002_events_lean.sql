-- Cheaper appends: every commit of version 1 wrote three pages (the events,
-- the AUTOINCREMENT counter in sqlite_sequence, and the events_by_agent
-- index, which no query uses). Sequence numbers stay the rowid: the writer
-- assigns them, and `append` takes max(seq) + 1, as AUTOINCREMENT did in an
-- append-only table. Existing journals are copied over once.
CREATE TABLE events_lean (
    seq   INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    kind  TEXT    NOT NULL,
    agent TEXT,
    body  TEXT    NOT NULL
);
INSERT INTO events_lean (seq, at_ms, kind, agent, body)
    SELECT seq, at_ms, kind, agent, body FROM events ORDER BY seq;
DROP TABLE events;
ALTER TABLE events_lean RENAME TO events;
