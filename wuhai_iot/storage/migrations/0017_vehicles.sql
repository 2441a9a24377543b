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

-- A vehicle is an alarm subject too: the alarms table is rebuilt with a plate column, because its CHECK
-- that an alarm has a subject cannot be altered in place.
CREATE TABLE alarms_with_plate (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    severity TEXT NOT NULL CHECK (severity IN ('critical', 'major', 'minor')),
    device_code TEXT,                    -- the subject: a lift, or a cylinder (station_code = where), or a station,
    cylinder_code TEXT,
    station_code INTEGER,
    plate TEXT,                          -- or a vehicle
    vendor_code TEXT,
    sources TEXT NOT NULL,
    active_sources TEXT NOT NULL,
    condition TEXT NOT NULL CHECK (condition IN ('active', 'cleared')),
    since REAL NOT NULL,
    raised_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    cleared_at REAL,
    cleared_by TEXT,
    repeats INTEGER NOT NULL DEFAULT 1,
    episodes INTEGER NOT NULL DEFAULT 1,
    flapping INTEGER NOT NULL DEFAULT 0,
    merged_into INTEGER,
    detail TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'raised' CHECK (status IN ('raised', 'acknowledged', 'resolved')),
    acknowledged_by TEXT,
    acknowledged_at REAL,
    acknowledge_note TEXT,
    resolved_by TEXT,
    resolved_at REAL,
    resolve_note TEXT,
    CHECK (device_code IS NOT NULL OR cylinder_code IS NOT NULL OR station_code IS NOT NULL OR plate IS NOT NULL)
);
INSERT INTO alarms_with_plate (id, kind, severity, device_code, cylinder_code, station_code, vendor_code, sources, active_sources, condition, since, raised_at, updated_at, cleared_at, cleared_by, repeats, episodes, flapping, merged_into, detail, created_at, status, acknowledged_by, acknowledged_at, acknowledge_note, resolved_by, resolved_at, resolve_note)
    SELECT id, kind, severity, device_code, cylinder_code, station_code, vendor_code, sources, active_sources, condition, since, raised_at, updated_at, cleared_at, cleared_by, repeats, episodes, flapping, merged_into, detail, created_at, status, acknowledged_by, acknowledged_at, acknowledge_note, resolved_by, resolved_at, resolve_note FROM alarms;
DROP TABLE alarms;
ALTER TABLE alarms_with_plate RENAME TO alarms;
CREATE INDEX alarms_device ON alarms (device_code, raised_at) WHERE device_code IS NOT NULL;
CREATE INDEX alarms_cylinder ON alarms (cylinder_code, raised_at) WHERE cylinder_code IS NOT NULL;
CREATE INDEX alarms_station ON alarms (station_code, raised_at) WHERE station_code IS NOT NULL;
CREATE INDEX alarms_plate ON alarms (plate, raised_at) WHERE plate IS NOT NULL;
CREATE INDEX alarms_open ON alarms (status, raised_at) WHERE status != 'resolved';
CREATE INDEX alarms_raised ON alarms (raised_at);

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
