-- People: web users, their sessions and API tokens, and the audit log of every change.
-- Times are Unix seconds (UTC). No secret is stored in clear: passwords as scrypt hashes
-- ('scrypt$n$r$p$salt$hash', base64), session cookies and API tokens as sha256 hex digests.

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    name TEXT UNIQUE NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'district', 'police', 'transport', 'station', 'maintenance')),
    district_code TEXT REFERENCES districts (code),  -- role district only
    unit TEXT,                           -- station code (role station) or maintenance company name (role maintenance)
    password_hash TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at REAL NOT NULL,
    CHECK ((role = 'district') = (district_code IS NOT NULL)),
    CHECK ((role IN ('station', 'maintenance')) = (unit IS NOT NULL))
);

CREATE TABLE web_sessions (
    token_hash TEXT PRIMARY KEY,         -- sha256 of the cookie value
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    peer TEXT
);
CREATE INDEX web_sessions_user ON web_sessions (user_id);
CREATE INDEX web_sessions_expires ON web_sessions (expires_at);

CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    token_hash TEXT UNIQUE NOT NULL,     -- sha256 of the bearer token
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    label TEXT,
    created_at REAL NOT NULL,
    revoked_at REAL
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    user_name TEXT,                      -- NULL: the platform itself or the command line without a user
    action TEXT NOT NULL,                -- e.g. alarm.acknowledge, command.send, user.add, login
    object_type TEXT,                    -- e.g. alarm, elevator, user, census
    object_id TEXT,
    district_code TEXT,                  -- where the object belongs, for district-scoped viewing
    details TEXT                         -- JSON object
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_object ON audit_log (object_type, object_id);
