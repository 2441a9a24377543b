-- The city's plan and the acceptance of installed terminals (issue 22: publishing progress and effect).

-- Phases of the plan with their dates (CST calendar dates, 'YYYY-MM-DD'), recorded by the admin.
CREATE TABLE plan_phases (
    phase TEXT PRIMARY KEY CHECK (phase IN ('pilot', 'rollout', 'final')),
    starts_on TEXT NOT NULL,
    ends_on TEXT NOT NULL,
    updated_at REAL NOT NULL,
    updated_by TEXT,
    CHECK (starts_on <= ends_on)
);

-- How many objects of a kind a district is to have in service by the end of a phase. Without a row the
-- plan's own words apply: the pilot lifts (census column pilot) by the end of the pilot, everything by the
-- end of the rollout.
CREATE TABLE plan_targets (
    phase TEXT NOT NULL REFERENCES plan_phases (phase) ON DELETE CASCADE,
    district_code TEXT NOT NULL REFERENCES districts (code),
    kind TEXT NOT NULL CHECK (kind IN ('elevators', 'stations', 'cylinders', 'vehicles')),
    target INTEGER NOT NULL CHECK (target >= 0),
    PRIMARY KEY (phase, district_code, kind)
) WITHOUT ROWID;

-- Who installed a terminal (census terminals.csv column installer): subsidies are paid per installing unit.
ALTER TABLE terminals ADD COLUMN installer TEXT;

-- The CST days on which a terminal sent valid data (recorded every few minutes from terminal_sessions by
-- publishing/installations.py): acceptance after consecutive days, lapses and long gaps are read from here.
CREATE TABLE terminal_days (
    protocol TEXT NOT NULL,
    terminal_id TEXT NOT NULL,
    day TEXT NOT NULL,
    PRIMARY KEY (protocol, terminal_id, day)
) WITHOUT ROWID;
CREATE INDEX terminal_days_day ON terminal_days (day);
