-- What the terminals send: every stored message, each lift's latest state, sessions and commands.
-- Times are Unix seconds (UTC) as REAL/INTEGER.

CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    protocol TEXT NOT NULL,
    terminal_id TEXT NOT NULL,
    dedup_key TEXT NOT NULL,
    type TEXT NOT NULL,
    seq INTEGER NOT NULL,
    device_time INTEGER,            -- NULL when the terminal's clock was not set
    received_at REAL NOT NULL,
    payload TEXT NOT NULL           -- JSON list of the normalised events
);
-- A resend (same terminal, type, sequence, device time) is stored once.
CREATE UNIQUE INDEX messages_dedup ON messages (protocol, terminal_id, dedup_key);
CREATE INDEX messages_received ON messages (received_at);

-- The newest status of each lift by device time (batches and resends arrive late).
CREATE TABLE elevator_state (
    device_code TEXT PRIMARY KEY,
    at REAL NOT NULL,
    received_at REAL NOT NULL,
    protocol TEXT NOT NULL,
    terminal_id TEXT NOT NULL,
    floor INTEGER,
    direction TEXT,
    door TEXT,
    running INTEGER,
    door_zone INTEGER,
    occupied INTEGER,
    speed_mps REAL,
    load_pct INTEGER,
    power INTEGER,
    safety_circuit INTEGER,
    door_lock INTEGER,
    overload INTEGER,
    mode TEXT,
    trip_count INTEGER
);

CREATE TABLE terminal_sessions (
    protocol TEXT NOT NULL,
    terminal_id TEXT NOT NULL,
    online INTEGER NOT NULL DEFAULT 0,
    peer TEXT,
    firmware TEXT,
    report_interval_s INTEGER,
    connected_at REAL,
    disconnected_at REAL,
    last_frame_at REAL,
    PRIMARY KEY (protocol, terminal_id)
);

CREATE TABLE commands (
    id INTEGER PRIMARY KEY,
    protocol TEXT NOT NULL,
    terminal_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    code TEXT NOT NULL,
    argument INTEGER,
    requested_by TEXT,
    sent_at REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'sent',   -- sent, done, refused, unsupported
    replied_at REAL
);
CREATE INDEX commands_terminal ON commands (protocol, terminal_id, seq);
