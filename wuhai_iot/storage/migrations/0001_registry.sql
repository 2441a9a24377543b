-- The registry: what the census and installation templates describe (../shared/census/README.md).
-- Rows are added and updated by `wuhai-iot import`, never deleted by it.
-- Dates are TEXT 'YYYY-MM-DD'; updated_at is ISO-8601 UTC ('...Z').
-- Foreign keys point only at districts (seeded here, never re-imported); references between imported
-- tables (owner station, vehicle, lift, operator's station) are checked and reported by the importer,
-- so that no import order can be refused by the database.

CREATE TABLE districts (
    code TEXT PRIMARY KEY,
    name TEXT UNIQUE NOT NULL
);
INSERT INTO districts (code, name) VALUES ('150302', '海勃湾区'), ('150304', '乌达区'), ('150303', '海南区');

CREATE TABLE stations (
    station_code INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    district_code TEXT NOT NULL REFERENCES districts (code),
    address TEXT,
    licence_no TEXT NOT NULL,
    licence_expiry TEXT NOT NULL,
    media TEXT NOT NULL,                 -- licensed media joined by '|', e.g. 'LPG|CNG'
    scales INTEGER,                      -- number of filling posts
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    updated_at TEXT NOT NULL
);
CREATE INDEX stations_district ON stations (district_code);

CREATE TABLE workers (
    card INTEGER PRIMARY KEY,            -- census '00009001' is the card a controller reports as 9001
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('maintenance', 'filling_operator')),
    unit TEXT NOT NULL,                  -- maintenance company name, or the station code (as text) of an operator
    certificate_no TEXT,
    certificate_expiry TEXT,
    updated_at TEXT NOT NULL
);
CREATE INDEX workers_unit ON workers (unit);

CREATE TABLE vehicles (
    plate TEXT PRIMARY KEY,
    district_code TEXT NOT NULL REFERENCES districts (code),
    owner TEXT NOT NULL,
    use TEXT NOT NULL CHECK (use IN ('taxi', 'bus', 'private', 'freight', 'other')),
    fuel TEXT NOT NULL CHECK (fuel IN ('CNG', 'LNG')),
    certificate_no TEXT,                 -- vehicle cylinder registration certificate
    certificate_issued TEXT,
    certificate_status TEXT CHECK (certificate_status IN ('valid', 'revoked')),
    updated_at TEXT NOT NULL
);
CREATE INDEX vehicles_district ON vehicles (district_code);

CREATE TABLE elevators (
    device_code TEXT PRIMARY KEY,        -- 20 digits
    registration_no TEXT,
    district_code TEXT NOT NULL REFERENCES districts (code),
    address TEXT NOT NULL,
    user_unit TEXT NOT NULL,
    maintenance_company TEXT NOT NULL,
    kind TEXT CHECK (kind IN ('traction', 'hydraulic', 'escalator', 'moving_walk', 'other')),
    lowest_floor INTEGER,
    highest_floor INTEGER,
    rated_speed_mps REAL,
    rated_load_kg INTEGER,
    next_inspection TEXT NOT NULL,
    pilot INTEGER NOT NULL DEFAULT 0 CHECK (pilot IN (0, 1)),
    latitude REAL,                       -- WGS-84
    longitude REAL,
    updated_at TEXT NOT NULL
);
CREATE INDEX elevators_district ON elevators (district_code);
CREATE INDEX elevators_maintenance_company ON elevators (maintenance_company);

CREATE TABLE cylinders (
    cylinder_code TEXT PRIMARY KEY,
    tag_uid TEXT UNIQUE,                 -- upper-case hex; NULL while untagged
    kind TEXT NOT NULL CHECK (kind IN ('household_lpg', 'vehicle_cng', 'vehicle_lng', 'industrial')),
    medium TEXT NOT NULL CHECK (medium IN ('LPG', 'CNG', 'LNG', 'OTHER')),
    model TEXT,
    capacity_l REAL,
    rated_fill_kg REAL NOT NULL,
    tare_kg REAL NOT NULL,
    manufacture_date TEXT NOT NULL,
    design_life_years INTEGER NOT NULL,
    last_inspection TEXT,
    next_inspection TEXT NOT NULL,
    owner_station INTEGER,
    vehicle_plate TEXT,
    status TEXT NOT NULL DEFAULT 'in_service' CHECK (status IN ('in_service', 'scrapped', 'blacklisted')),
    updated_at TEXT NOT NULL
);
CREATE INDEX cylinders_vehicle ON cylinders (vehicle_plate);
CREATE INDEX cylinders_owner_station ON cylinders (owner_station);

CREATE TABLE terminals (
    protocol TEXT NOT NULL,              -- elink, lmt, gasfill
    terminal_id TEXT NOT NULL,           -- gasfill: '<station_code>-<scale>'
    device_code TEXT,                    -- the lift (elink, lmt)
    station_code INTEGER,                -- gasfill only
    scale INTEGER,                       -- gasfill only
    key TEXT,                            -- the terminal's secret; NULL = none
    installed_on TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (protocol, terminal_id)
);
CREATE INDEX terminals_device ON terminals (device_code);
CREATE INDEX terminals_station ON terminals (station_code);
