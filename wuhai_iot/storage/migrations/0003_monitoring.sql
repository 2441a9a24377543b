-- Elevator monitoring: alarms (subject-neutral: a lift, a cylinder or a station), the status records
-- kept with them, rescues, maintenance visits, rule state and daily per-lift figures.
-- Times are Unix seconds (UTC) as REAL; days are CST calendar dates 'YYYY-MM-DD'.
-- Alarms, rescues and visits are kept for retention.records_years (>= 4); raw messages are pruned after
-- retention.raw_status_days.

CREATE TABLE alarms (
    id INTEGER PRIMARY KEY,              -- allocated by the alarm book (rows are written as whole-row upserts)
    kind TEXT NOT NULL,                  -- domain.md kinds
    severity TEXT NOT NULL CHECK (severity IN ('critical', 'major', 'minor')),
    device_code TEXT,                    -- the subject: a lift, or a cylinder (station_code = where), or a station
    cylinder_code TEXT,
    station_code INTEGER,
    vendor_code TEXT,                    -- the vendor's code (always kept for unknown_fault)
    sources TEXT NOT NULL,               -- what has reported the condition: 'device', 'rule' or 'device,rule'
    active_sources TEXT NOT NULL,        -- sources whose condition is still active ('' once cleared)
    condition TEXT NOT NULL CHECK (condition IN ('active', 'cleared')),
    since REAL NOT NULL,                 -- the condition began (device time)
    raised_at REAL NOT NULL,             -- the alarm was raised (device time: since + the rule's duration)
    updated_at REAL NOT NULL,            -- the latest repeat of the condition
    cleared_at REAL,
    cleared_by TEXT,                     -- 'device' or 'rule'
    repeats INTEGER NOT NULL DEFAULT 1,
    episodes INTEGER NOT NULL DEFAULT 1, -- raise/clear cycles collapsed into this alarm
    flapping INTEGER NOT NULL DEFAULT 0,
    merged_into INTEGER,                 -- an earlier episode collapsed into a flapping alarm
    detail TEXT NOT NULL DEFAULT '{}',   -- JSON: thresholds in force, floor, speeds ...
    created_at REAL NOT NULL,            -- platform clock when the alarm row was created
    status TEXT NOT NULL DEFAULT 'raised' CHECK (status IN ('raised', 'acknowledged', 'resolved')),
    acknowledged_by TEXT,
    acknowledged_at REAL,
    acknowledge_note TEXT,
    resolved_by TEXT,
    resolved_at REAL,
    resolve_note TEXT,
    CHECK (device_code IS NOT NULL OR cylinder_code IS NOT NULL OR station_code IS NOT NULL)
);
CREATE INDEX alarms_device ON alarms (device_code, raised_at) WHERE device_code IS NOT NULL;
CREATE INDEX alarms_cylinder ON alarms (cylinder_code, raised_at) WHERE cylinder_code IS NOT NULL;
CREATE INDEX alarms_station ON alarms (station_code, raised_at) WHERE station_code IS NOT NULL;
CREATE INDEX alarms_open ON alarms (status, raised_at) WHERE status != 'resolved';
CREATE INDEX alarms_raised ON alarms (raised_at);

-- The status records around an alarm: from a minute before it was raised to its clearing.
CREATE TABLE alarm_samples (
    alarm_id INTEGER NOT NULL,
    at REAL NOT NULL,
    record TEXT NOT NULL,                -- JSON event record (events.event_record)
    PRIMARY KEY (alarm_id, at)
) WITHOUT ROWID;

CREATE TABLE rescues (
    alarm_id INTEGER PRIMARY KEY,        -- the trapped alarm
    device_code TEXT NOT NULL,
    raised_at REAL NOT NULL,
    arrived_at REAL,
    arrival_source TEXT,                 -- 'card' or 'staff'
    arrived_by TEXT,                     -- card number or user name
    released_at REAL,
    arrival_min REAL,
    late INTEGER NOT NULL DEFAULT 0      -- arrival (or still no arrival) beyond the limit
);
CREATE INDEX rescues_device ON rescues (device_code, raised_at);
CREATE INDEX rescues_raised ON rescues (raised_at);

CREATE TABLE maintenance_visits (
    id INTEGER PRIMARY KEY,              -- allocated in memory, whole-row upserts
    device_code TEXT NOT NULL,
    card INTEGER NOT NULL,
    worker_name TEXT,
    worker_company TEXT,
    started_at REAL,                     -- NULL for an end without a start
    ended_at REAL,
    duration_min REAL,
    items INTEGER,
    flags TEXT NOT NULL DEFAULT '',      -- reasons, '|'-joined: short, unregistered_card, other_company,
                                         -- certificate_expired, overlap, impossible_travel, no_end, no_start
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX maintenance_visits_device ON maintenance_visits (device_code, started_at);
CREATE INDEX maintenance_visits_card ON maintenance_visits (card, started_at);
CREATE INDEX maintenance_visits_started ON maintenance_visits (started_at);

-- What a rule remembers about a subject ("doors closed with a person inside since ..."), reloaded at start.
CREATE TABLE rule_state (
    rule TEXT NOT NULL,
    subject TEXT NOT NULL,
    state TEXT NOT NULL,                 -- JSON
    PRIMARY KEY (rule, subject)
) WITHOUT ROWID;

-- Daily per-lift figures, maintained incrementally (additive upserts) so reports never scan raw samples.
CREATE TABLE lift_daily (
    device_code TEXT NOT NULL,
    day TEXT NOT NULL,                   -- CST date
    runs INTEGER NOT NULL DEFAULT 0,
    running_s REAL NOT NULL DEFAULT 0,
    faults INTEGER NOT NULL DEFAULT 0,
    online_s REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (device_code, day)
) WITHOUT ROWID;
CREATE INDEX lift_daily_day ON lift_daily (day);
