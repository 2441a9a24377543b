-- Captures of one terminal's raw frames, asked for on a running platform (`wuhai-iot capture start`): the
-- command writes the row; the platform picks it up within a second (pipeline/capturing.py), records the
-- terminal's frames to `path` (a frames file, wuhai_iot/captures.py) until `until`, and notes when it
-- started and stopped. `capture stop` sets `until` to now. Times are Unix seconds.
CREATE TABLE captures (
    id INTEGER PRIMARY KEY,
    protocol TEXT NOT NULL,
    terminal_id TEXT NOT NULL,
    path TEXT NOT NULL,
    requested_by TEXT,
    requested_at REAL NOT NULL,
    until REAL NOT NULL,
    started_at REAL,              -- NULL: no running platform has picked it up yet
    stopped_at REAL,              -- NULL: not over
    frames INTEGER NOT NULL DEFAULT 0,
    problem TEXT                  -- why the platform could not record it (the file cannot be written)
);
-- The platform's poll reads only the captures not over.
CREATE INDEX captures_open ON captures (id) WHERE stopped_at IS NULL;
