-- Gas filling: every fill decision the platform gave and every fill a controller reported.
-- (Registry changes made by hand are in the registry rows and the audit log.)
-- Times are Unix seconds (UTC) as REAL; weights are grams.

-- One row per GF-3 FILL_REQUEST answered (ids are allocated by the serving process).
CREATE TABLE fill_decisions (
    id INTEGER PRIMARY KEY,
    decided_at REAL NOT NULL,
    station_code INTEGER NOT NULL,
    scale INTEGER NOT NULL,
    request_seq INTEGER NOT NULL,        -- the FILL_REQUEST's SEQ, which its FILL_RESULT repeats
    tag TEXT NOT NULL,                   -- upper-case hex, as read
    cylinder_code TEXT,                  -- NULL when the tag is not registered
    operator_card INTEGER NOT NULL,
    medium TEXT NOT NULL,                -- requested medium
    gross_before_g INTEGER NOT NULL,
    permit INTEGER NOT NULL CHECK (permit IN (0, 1)),
    reason INTEGER NOT NULL,             -- 0 permitted, GF-3 deny reasons, 99 platform error
    net_limit_g INTEGER NOT NULL,
    message TEXT NOT NULL
);
-- A FILL_RESULT finds its decision by scale, request SEQ and tag (the most recent one).
CREATE INDEX fill_decisions_request ON fill_decisions (station_code, scale, request_seq, tag, decided_at);
CREATE INDEX fill_decisions_cylinder ON fill_decisions (cylinder_code, decided_at);
CREATE INDEX fill_decisions_station ON fill_decisions (station_code, decided_at);

-- One row per FILL_RESULT (a resent result is stored once: the messages table deduplicates it, and
-- the unique key below says the same).
CREATE TABLE fills (
    id INTEGER PRIMARY KEY,
    station_code INTEGER NOT NULL,
    scale INTEGER NOT NULL,
    request_seq INTEGER NOT NULL,
    tag TEXT NOT NULL,
    cylinder_code TEXT,                  -- NULL when the tag is not registered
    decision_id INTEGER,                 -- NULL: the platform was never asked
    permitted INTEGER NOT NULL CHECK (permitted IN (0, 1)),
    operator_card INTEGER,               -- from the decision
    gross_before_g INTEGER NOT NULL,
    gross_after_g INTEGER NOT NULL,
    duration_s INTEGER NOT NULL,
    outcome INTEGER NOT NULL,            -- 0 completed, 1 aborted, 2 scale limit, 3 equipment fault
    ended_at REAL NOT NULL,              -- the controller's end time: the fill's time
    received_at REAL NOT NULL,
    UNIQUE (station_code, scale, request_seq, tag, gross_before_g, gross_after_g)
);
-- Rule 10 (last completed fill of a cylinder at any station) and the cylinder's history.
CREATE INDEX fills_cylinder ON fills (cylinder_code, outcome, ended_at);
CREATE INDEX fills_station ON fills (station_code, ended_at);
