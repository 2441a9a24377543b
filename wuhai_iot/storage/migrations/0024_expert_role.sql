-- A read-only role for the outside experts of the final acceptance: sees every district, changes nothing.
-- SQLite cannot change a CHECK constraint in place, so the users table is rebuilt. Dropping it deletes the
-- sessions and tokens that refer to it (ON DELETE CASCADE): they are kept aside and put back.
CREATE TEMP TABLE kept_sessions AS SELECT * FROM web_sessions;
CREATE TEMP TABLE kept_tokens AS SELECT * FROM api_tokens;
CREATE TABLE users_with_expert (
    id INTEGER PRIMARY KEY,
    name TEXT UNIQUE NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'district', 'police', 'transport', 'station', 'maintenance',
                                       'expert')),
    district_code TEXT REFERENCES districts (code),  -- role district only
    unit TEXT,                           -- station code (role station) or maintenance company name (role maintenance)
    password_hash TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at REAL NOT NULL,
    CHECK ((role = 'district') = (district_code IS NOT NULL)),
    CHECK ((role IN ('station', 'maintenance')) = (unit IS NOT NULL))
);
INSERT INTO users_with_expert (id, name, role, district_code, unit, password_hash, active, created_at)
    SELECT id, name, role, district_code, unit, password_hash, active, created_at FROM users;
DROP TABLE users;
ALTER TABLE users_with_expert RENAME TO users;
INSERT INTO web_sessions SELECT * FROM kept_sessions;
INSERT INTO api_tokens SELECT * FROM kept_tokens;
DROP TABLE kept_sessions;
DROP TABLE kept_tokens;
