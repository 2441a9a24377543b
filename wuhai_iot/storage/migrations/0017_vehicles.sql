-- Vehicle cylinders under dynamic supervision (JT/T 808 terminals): each terminal's vehicle and
-- authentication code, the stations' coordinates, track points, each vehicle's current position, daily
-- per-vehicle figures, vehicle alarms and the collisions that block a vehicle's cylinders (fill reason 12).
-- Times are Unix seconds (UTC) as REAL; days are CST calendar dates 'YYYY-MM-DD'.

ALTER TABLE terminals ADD COLUMN plate TEXT;              -- jt808: the vehicle the terminal rides in
ALTER TABLE terminals ADD COLUMN issued_key TEXT;         -- jt808: the code issued at REGISTER (no census key)
ALTER TABLE terminals ADD COLUMN registered_at REAL;      -- jt808: REGISTER accepted; NULL after UNREGISTER
CREATE INDEX terminals_plate ON terminals (plate) WHERE plate IS NOT NULL;

ALTER TABLE stations ADD COLUMN latitude REAL;            -- WGS-84 degrees: is a vehicle at the station?
ALTER TABLE stations ADD COLUMN longitude REAL;

ALTER TABLE cylinders ADD COLUMN inspection_recorded_at REAL;  -- when staff recorded the last inspection

-- A vehicle is an alarm subject too. The CHECK that an alarm has a subject gains "or a plate": SQLite cannot
-- alter a CHECK, and rebuilding the table would drop the triggers other migrations keep on it, so the
-- table's definition is edited in place, the procedure SQLite documents for relaxing a CHECK (every
-- stored row still satisfies it; nothing on disk changes).
ALTER TABLE alarms ADD COLUMN plate TEXT;
PRAGMA writable_schema = ON;
UPDATE sqlite_master SET sql = replace(sql, 'OR station_code IS NOT NULL)', 'OR station_code IS NOT NULL OR plate IS NOT NULL)')
    WHERE type = 'table' AND name = 'alarms';
PRAGMA writable_schema = RESET;
CREATE INDEX alarms_plate ON alarms (plate, raised_at) WHERE plate IS NOT NULL;

-- Track points, one per location record; kept retention.raw_status_days like raw lift samples.
-- Keyed by vehicle and device time: a resent or repeated record is one point, and pruning a vehicle's
-- old points is a range delete on the key.
CREATE TABLE vehicle_track (
    plate TEXT NOT NULL,
    at REAL NOT NULL,                    -- device time (receive time when the record has no fix time)
    latitude REAL NOT NULL,
    longitude REAL NOT NULL,
    speed_kmh REAL NOT NULL,
    course INTEGER NOT NULL,
    status INTEGER NOT NULL,             -- bit 0 ACC on, bit 1 position fixed
    alarm_flags INTEGER NOT NULL,
    pressure_mpa REAL,                   -- NULL: not reported or sensor fault
    gas_lel_pct REAL,
    PRIMARY KEY (plate, at)
) WITHOUT ROWID;

-- Each vehicle's newest record by device time (a buffered batch never moves it back).
CREATE TABLE vehicle_state (
    plate TEXT PRIMARY KEY,
    terminal_id TEXT NOT NULL,
    at REAL NOT NULL,
    received_at REAL NOT NULL,
    latitude REAL NOT NULL,
    longitude REAL NOT NULL,
    speed_kmh REAL NOT NULL,
    course INTEGER NOT NULL,
    acc_on INTEGER NOT NULL,
    fixed INTEGER NOT NULL,
    alarm_flags INTEGER NOT NULL,
    odometer_km REAL,
    pressure_mpa REAL,
    pressure_fault INTEGER NOT NULL DEFAULT 0,
    gas_lel_pct REAL,
    gas_fault INTEGER NOT NULL DEFAULT 0,
    tags TEXT                            -- JSON list of the tag UIDs of the newest reader item
);

-- Daily per-vehicle figures (CST day), added to incrementally; kept retention.records_years.
CREATE TABLE vehicle_daily (
    plate TEXT NOT NULL,
    day TEXT NOT NULL,
    records INTEGER NOT NULL DEFAULT 0,
    distance_km REAL NOT NULL DEFAULT 0,
    driving_s REAL NOT NULL DEFAULT 0,
    max_pressure_mpa REAL,
    fills_seen INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (plate, day)
) WITHOUT ROWID;
CREATE INDEX vehicle_daily_day ON vehicle_daily (day);

-- Collisions (alarm bit 29 rising): a vehicle cylinder whose last inspection was recorded before its
-- vehicle's latest collision is denied fills with reason 12.
CREATE TABLE vehicle_collisions (
    plate TEXT NOT NULL,
    at REAL NOT NULL,                    -- device time of the record whose bit 29 rose
    latitude REAL,
    longitude REAL,
    PRIMARY KEY (plate, at)
) WITHOUT ROWID;
