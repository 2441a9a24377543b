-- Running figures: what the dashboard, the rollout page and the lift lists count is kept up to date as things
-- happen, by triggers, in the same transaction as the change that moves it. A page then reads a handful of
-- rows instead of recounting the registry (see wuhai_iot/storage/figures.py, which reads them, and
-- tests/test_figures.py, which checks them against a full recount).
--
-- Two layers:
-- 1. Facts of each lift, station and cylinder that used to be computed per request from other tables
--    (terminals, online terminals, last completed maintenance visit, open alarms) are columns of the
--    registry row, kept by triggers on the tables they come from. A lift's maintenance reference date is a
--    generated column, so "maintenance overdue" is a range on an index.
-- 2. Per district (and maintenance company, the narrowest scope a user has) counters in `figures`, and
--    counters per calendar day in `day_figures` (summed over a range of days: "overdue" is "reference day
--    before X"; "filled in 30 days" is "last fill on one of the last 30 days"). Triggers on the registry rows
--    add a row's new contribution and take away its old one.

ALTER TABLE elevators ADD COLUMN terminals INTEGER NOT NULL DEFAULT 0;
ALTER TABLE elevators ADD COLUMN tracked_since TEXT;   -- earliest installed_on of its terminals ('' = unknown)
ALTER TABLE elevators ADD COLUMN online_terminals INTEGER NOT NULL DEFAULT 0;
ALTER TABLE elevators ADD COLUMN last_visit_at REAL;   -- end of the last completed visit without a flag
ALTER TABLE elevators ADD COLUMN open_alarms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE elevators ADD COLUMN open_critical INTEGER NOT NULL DEFAULT 0;
ALTER TABLE elevators ADD COLUMN open_major INTEGER NOT NULL DEFAULT 0;
ALTER TABLE elevators ADD COLUMN trapped_alarms INTEGER NOT NULL DEFAULT 0;  -- trapped, condition still active
-- The CST day maintenance is counted from (NULL: no terminal, not tracked); see elevators/queries.py.
ALTER TABLE elevators ADD COLUMN maintenance_ref TEXT GENERATED ALWAYS AS (
    CASE WHEN terminals > 0 THEN coalesce(date(last_visit_at, 'unixepoch', '+8 hours'), tracked_since) END
) VIRTUAL;

ALTER TABLE stations ADD COLUMN online_scales INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cylinders ADD COLUMN district_code TEXT;   -- its vehicle's district, else its owner station's

CREATE TABLE figures (
    district_code TEXT NOT NULL,
    company TEXT NOT NULL,               -- a lift's maintenance company; '' for what has none
    figure TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (district_code, company, figure)
) WITHOUT ROWID;

CREATE TABLE day_figures (
    district_code TEXT NOT NULL,
    company TEXT NOT NULL,
    figure TEXT NOT NULL,
    day TEXT NOT NULL,                   -- a CST date, or '' for "unknown, long ago"
    value INTEGER NOT NULL,
    PRIMARY KEY (figure, district_code, company, day)
) WITHOUT ROWID;

-- Indexes the lift lists page on (overdue first, keyset by device code).
CREATE INDEX elevators_maintenance_ref ON elevators (maintenance_ref, device_code) WHERE terminals > 0;
CREATE INDEX elevators_district_maintenance_ref ON elevators (district_code, maintenance_ref, device_code)
    WHERE terminals > 0;
CREATE INDEX elevators_next_inspection ON elevators (next_inspection, device_code);
CREATE INDEX elevators_district_next_inspection ON elevators (district_code, next_inspection, device_code);
CREATE INDEX elevators_trapped ON elevators (trapped_alarms, device_code) WHERE trapped_alarms > 0;

-- A lift's counters are written per maintenance company; these add each change to the district's total
-- (company '') as well, so a district or the city reads its totals without summing over companies.
CREATE TRIGGER figures_rollup_insert AFTER INSERT ON figures WHEN NEW.company != ''
BEGIN
    INSERT INTO figures (district_code, company, figure, value) VALUES (NEW.district_code, '', NEW.figure, NEW.value)
    ON CONFLICT (district_code, company, figure) DO UPDATE SET value = value + excluded.value;
END;

CREATE TRIGGER figures_rollup_update AFTER UPDATE OF value ON figures WHEN NEW.company != ''
BEGIN
    UPDATE figures SET value = value + NEW.value - OLD.value
    WHERE district_code = NEW.district_code AND company = '' AND figure = NEW.figure;
END;

CREATE TRIGGER day_figures_rollup_insert AFTER INSERT ON day_figures WHEN NEW.company != ''
BEGIN
    INSERT INTO day_figures (district_code, company, figure, day, value)
    VALUES (NEW.district_code, '', NEW.figure, NEW.day, NEW.value)
    ON CONFLICT (figure, district_code, company, day) DO UPDATE SET value = value + excluded.value;
END;

CREATE TRIGGER day_figures_rollup_update AFTER UPDATE OF value ON day_figures WHEN NEW.company != ''
BEGIN
    UPDATE day_figures SET value = value + NEW.value - OLD.value
    WHERE figure = NEW.figure AND district_code = NEW.district_code AND company = '' AND day = NEW.day;
END;

-- --- layer 1: the facts of a lift -------------------------------------------------------------------

CREATE TRIGGER terminals_lift_insert AFTER INSERT ON terminals WHEN NEW.device_code IS NOT NULL
BEGIN
    UPDATE elevators SET
        terminals = (SELECT count(*) FROM terminals t WHERE t.device_code = NEW.device_code),
        tracked_since = (SELECT min(coalesce(t.installed_on, '')) FROM terminals t WHERE t.device_code = NEW.device_code),
        online_terminals = (SELECT count(*) FROM terminals t JOIN terminal_sessions ts ON ts.protocol = t.protocol
                            AND ts.terminal_id = t.terminal_id WHERE t.device_code = NEW.device_code AND ts.online = 1)
    WHERE device_code = NEW.device_code;
END;

CREATE TRIGGER terminals_lift_update AFTER UPDATE OF device_code, installed_on ON terminals
WHEN OLD.device_code IS NOT NEW.device_code OR OLD.installed_on IS NOT NEW.installed_on
BEGIN
    UPDATE elevators SET
        terminals = (SELECT count(*) FROM terminals t WHERE t.device_code = elevators.device_code),
        tracked_since = (SELECT min(coalesce(t.installed_on, '')) FROM terminals t
                         WHERE t.device_code = elevators.device_code),
        online_terminals = (SELECT count(*) FROM terminals t JOIN terminal_sessions ts ON ts.protocol = t.protocol
                            AND ts.terminal_id = t.terminal_id WHERE t.device_code = elevators.device_code
                            AND ts.online = 1)
    WHERE device_code IN (OLD.device_code, NEW.device_code);
END;

CREATE TRIGGER terminals_lift_delete AFTER DELETE ON terminals WHEN OLD.device_code IS NOT NULL
BEGIN
    UPDATE elevators SET
        terminals = (SELECT count(*) FROM terminals t WHERE t.device_code = OLD.device_code),
        tracked_since = (SELECT min(coalesce(t.installed_on, '')) FROM terminals t WHERE t.device_code = OLD.device_code),
        online_terminals = (SELECT count(*) FROM terminals t JOIN terminal_sessions ts ON ts.protocol = t.protocol
                            AND ts.terminal_id = t.terminal_id WHERE t.device_code = OLD.device_code AND ts.online = 1)
    WHERE device_code = OLD.device_code;
END;

-- A lift (re-)entering the registry finds its terminals, sessions, alarms and visits already there.
CREATE TRIGGER elevators_facts_insert AFTER INSERT ON elevators
BEGIN
    UPDATE elevators SET
        terminals = (SELECT count(*) FROM terminals t WHERE t.device_code = NEW.device_code),
        tracked_since = (SELECT min(coalesce(t.installed_on, '')) FROM terminals t WHERE t.device_code = NEW.device_code),
        online_terminals = (SELECT count(*) FROM terminals t JOIN terminal_sessions ts ON ts.protocol = t.protocol
                            AND ts.terminal_id = t.terminal_id WHERE t.device_code = NEW.device_code AND ts.online = 1),
        last_visit_at = (SELECT max(v.ended_at) FROM maintenance_visits v WHERE v.device_code = NEW.device_code
                         AND v.started_at IS NOT NULL AND v.ended_at IS NOT NULL AND v.flags = ''),
        open_alarms = (SELECT count(*) FROM alarms a WHERE a.device_code = NEW.device_code
                       AND a.status != 'resolved' AND a.merged_into IS NULL),
        open_critical = (SELECT count(*) FROM alarms a WHERE a.device_code = NEW.device_code
                         AND a.status != 'resolved' AND a.merged_into IS NULL AND a.severity = 'critical'),
        open_major = (SELECT count(*) FROM alarms a WHERE a.device_code = NEW.device_code
                      AND a.status != 'resolved' AND a.merged_into IS NULL AND a.severity = 'major'),
        trapped_alarms = (SELECT count(*) FROM alarms a WHERE a.device_code = NEW.device_code
                          AND a.status != 'resolved' AND a.merged_into IS NULL AND a.kind = 'trapped' AND a.condition = 'active')
    WHERE device_code = NEW.device_code AND EXISTS (SELECT 1 FROM terminals t WHERE t.device_code = NEW.device_code
        UNION ALL SELECT 1 FROM alarms a WHERE a.device_code = NEW.device_code
        UNION ALL SELECT 1 FROM maintenance_visits v WHERE v.device_code = NEW.device_code);
END;

CREATE TRIGGER stations_facts_insert AFTER INSERT ON stations
BEGIN
    UPDATE stations SET online_scales = (
        SELECT count(*) FROM terminals t JOIN terminal_sessions ts ON ts.protocol = t.protocol
        AND ts.terminal_id = t.terminal_id WHERE t.station_code = NEW.station_code AND t.device_code IS NULL
        AND ts.online = 1)
    WHERE station_code = NEW.station_code AND EXISTS (SELECT 1 FROM terminals t WHERE t.station_code = NEW.station_code);
END;

-- A session going on or off line (not its every frame: last_frame_at changes do not fire these).
CREATE TRIGGER sessions_online_insert AFTER INSERT ON terminal_sessions WHEN NEW.online = 1
BEGIN
    UPDATE elevators SET online_terminals = online_terminals + 1
    WHERE device_code = (SELECT device_code FROM terminals WHERE protocol = NEW.protocol AND terminal_id = NEW.terminal_id);
    UPDATE stations SET online_scales = online_scales + 1
    WHERE station_code = (SELECT station_code FROM terminals WHERE protocol = NEW.protocol
                          AND terminal_id = NEW.terminal_id AND device_code IS NULL);
END;

CREATE TRIGGER sessions_online_update AFTER UPDATE OF online ON terminal_sessions WHEN OLD.online IS NOT NEW.online
BEGIN
    UPDATE elevators SET online_terminals = online_terminals + (CASE WHEN NEW.online = 1 THEN 1 ELSE -1 END)
    WHERE device_code = (SELECT device_code FROM terminals WHERE protocol = NEW.protocol AND terminal_id = NEW.terminal_id);
    UPDATE stations SET online_scales = online_scales + (CASE WHEN NEW.online = 1 THEN 1 ELSE -1 END)
    WHERE station_code = (SELECT station_code FROM terminals WHERE protocol = NEW.protocol
                          AND terminal_id = NEW.terminal_id AND device_code IS NULL);
END;

CREATE TRIGGER sessions_online_delete AFTER DELETE ON terminal_sessions WHEN OLD.online = 1
BEGIN
    UPDATE elevators SET online_terminals = online_terminals - 1
    WHERE device_code = (SELECT device_code FROM terminals WHERE protocol = OLD.protocol AND terminal_id = OLD.terminal_id);
    UPDATE stations SET online_scales = online_scales - 1
    WHERE station_code = (SELECT station_code FROM terminals WHERE protocol = OLD.protocol
                          AND terminal_id = OLD.terminal_id AND device_code IS NULL);
END;

-- A gasfill terminal's station changing (a census correction) moves its online session with it.
CREATE TRIGGER terminals_station_update AFTER UPDATE OF station_code, device_code ON terminals
WHEN OLD.station_code IS NOT NEW.station_code OR OLD.device_code IS NOT NEW.device_code
BEGIN
    UPDATE stations SET online_scales = (
        SELECT count(*) FROM terminals t JOIN terminal_sessions ts ON ts.protocol = t.protocol
        AND ts.terminal_id = t.terminal_id WHERE t.station_code = stations.station_code AND t.device_code IS NULL
        AND ts.online = 1)
    WHERE station_code IN (OLD.station_code, NEW.station_code);
END;

CREATE TRIGGER terminals_station_delete AFTER DELETE ON terminals WHEN OLD.station_code IS NOT NULL
BEGIN
    UPDATE stations SET online_scales = (
        SELECT count(*) FROM terminals t JOIN terminal_sessions ts ON ts.protocol = t.protocol
        AND ts.terminal_id = t.terminal_id WHERE t.station_code = stations.station_code AND t.device_code IS NULL
        AND ts.online = 1)
    WHERE station_code = OLD.station_code;
END;

CREATE TRIGGER terminals_station_insert AFTER INSERT ON terminals
WHEN NEW.station_code IS NOT NULL AND NEW.device_code IS NULL
BEGIN
    UPDATE stations SET online_scales = (
        SELECT count(*) FROM terminals t JOIN terminal_sessions ts ON ts.protocol = t.protocol
        AND ts.terminal_id = t.terminal_id WHERE t.station_code = stations.station_code AND t.device_code IS NULL
        AND ts.online = 1)
    WHERE station_code = NEW.station_code;
END;

-- Completed maintenance visits without a flag (only those restart the 15-day count; whole-row upserts, and
-- the retention's deletes).
CREATE TRIGGER visits_lift_insert AFTER INSERT ON maintenance_visits
WHEN NEW.started_at IS NOT NULL AND NEW.ended_at IS NOT NULL AND NEW.flags = ''
BEGIN
    UPDATE elevators SET last_visit_at = (
        SELECT max(v.ended_at) FROM maintenance_visits v WHERE v.device_code = NEW.device_code
        AND v.started_at IS NOT NULL AND v.ended_at IS NOT NULL AND v.flags = '')
    WHERE device_code = NEW.device_code;
END;

CREATE TRIGGER visits_lift_update AFTER UPDATE OF started_at, ended_at, device_code, flags ON maintenance_visits
WHEN OLD.started_at IS NOT NEW.started_at OR OLD.ended_at IS NOT NEW.ended_at OR OLD.device_code IS NOT NEW.device_code
    OR OLD.flags IS NOT NEW.flags
BEGIN
    UPDATE elevators SET last_visit_at = (
        SELECT max(v.ended_at) FROM maintenance_visits v WHERE v.device_code = elevators.device_code
        AND v.started_at IS NOT NULL AND v.ended_at IS NOT NULL AND v.flags = '')
    WHERE device_code IN (OLD.device_code, NEW.device_code);
END;

CREATE TRIGGER visits_lift_delete AFTER DELETE ON maintenance_visits
WHEN OLD.started_at IS NOT NULL AND OLD.ended_at IS NOT NULL AND OLD.flags = ''
BEGIN
    UPDATE elevators SET last_visit_at = (
        SELECT max(v.ended_at) FROM maintenance_visits v WHERE v.device_code = OLD.device_code
        AND v.started_at IS NOT NULL AND v.ended_at IS NOT NULL AND v.flags = '')
    WHERE device_code = OLD.device_code;
END;

-- Open alarms of a lift (open: not resolved and not merged into a flapping alarm; trapped: people inside
-- now, the condition still active). Alarm rows are
-- rewritten on every repeat; only a change of what makes an alarm open recounts.
CREATE TRIGGER alarms_lift_insert AFTER INSERT ON alarms
WHEN NEW.device_code IS NOT NULL AND NEW.status != 'resolved' AND NEW.merged_into IS NULL
BEGIN
    UPDATE elevators SET
        open_alarms = open_alarms + 1,
        open_critical = open_critical + (NEW.severity = 'critical'),
        open_major = open_major + (NEW.severity = 'major'),
        trapped_alarms = trapped_alarms + (NEW.kind = 'trapped' AND NEW.condition = 'active')
    WHERE device_code = NEW.device_code;
END;

CREATE TRIGGER alarms_lift_update AFTER UPDATE OF status, merged_into, device_code, condition ON alarms
WHEN (OLD.status = 'resolved') IS NOT (NEW.status = 'resolved') OR (OLD.merged_into IS NULL) IS NOT (NEW.merged_into IS NULL)
    OR OLD.device_code IS NOT NEW.device_code OR (OLD.kind = 'trapped' AND OLD.condition IS NOT NEW.condition)
BEGIN
    UPDATE elevators SET
        open_alarms = open_alarms - 1,
        open_critical = open_critical - (OLD.severity = 'critical'),
        open_major = open_major - (OLD.severity = 'major'),
        trapped_alarms = trapped_alarms - (OLD.kind = 'trapped' AND OLD.condition = 'active')
    WHERE device_code = OLD.device_code AND OLD.status != 'resolved' AND OLD.merged_into IS NULL;
    UPDATE elevators SET
        open_alarms = open_alarms + 1,
        open_critical = open_critical + (NEW.severity = 'critical'),
        open_major = open_major + (NEW.severity = 'major'),
        trapped_alarms = trapped_alarms + (NEW.kind = 'trapped' AND NEW.condition = 'active')
    WHERE device_code = NEW.device_code AND NEW.status != 'resolved' AND NEW.merged_into IS NULL;
END;

CREATE TRIGGER alarms_lift_delete AFTER DELETE ON alarms
WHEN OLD.device_code IS NOT NULL AND OLD.status != 'resolved' AND OLD.merged_into IS NULL
BEGIN
    UPDATE elevators SET
        open_alarms = open_alarms - 1,
        open_critical = open_critical - (OLD.severity = 'critical'),
        open_major = open_major - (OLD.severity = 'major'),
        trapped_alarms = trapped_alarms - (OLD.kind = 'trapped' AND OLD.condition = 'active')
    WHERE device_code = OLD.device_code;
END;

-- --- layer 1: the district of a cylinder ---------------------------------------------------------------

CREATE TRIGGER cylinders_district_insert AFTER INSERT ON cylinders
BEGIN
    UPDATE cylinders SET district_code = coalesce(
        (SELECT v.district_code FROM vehicles v WHERE v.plate = NEW.vehicle_plate),
        (SELECT s.district_code FROM stations s WHERE s.station_code = NEW.owner_station))
    WHERE cylinder_code = NEW.cylinder_code;
END;

CREATE TRIGGER cylinders_district_update AFTER UPDATE OF vehicle_plate, owner_station ON cylinders
WHEN OLD.vehicle_plate IS NOT NEW.vehicle_plate OR OLD.owner_station IS NOT NEW.owner_station
BEGIN
    UPDATE cylinders SET district_code = coalesce(
        (SELECT v.district_code FROM vehicles v WHERE v.plate = NEW.vehicle_plate),
        (SELECT s.district_code FROM stations s WHERE s.station_code = NEW.owner_station))
    WHERE cylinder_code = NEW.cylinder_code;
END;

CREATE TRIGGER vehicles_cylinders_district AFTER UPDATE OF district_code ON vehicles
WHEN OLD.district_code IS NOT NEW.district_code
BEGIN
    UPDATE cylinders SET district_code = NEW.district_code WHERE vehicle_plate = NEW.plate;
END;

CREATE TRIGGER vehicles_cylinders_delete AFTER DELETE ON vehicles
BEGIN
    UPDATE cylinders SET district_code = (SELECT s.district_code FROM stations s WHERE s.station_code = cylinders.owner_station)
    WHERE vehicle_plate = OLD.plate;
END;

CREATE TRIGGER vehicles_cylinders_insert AFTER INSERT ON vehicles
BEGIN
    UPDATE cylinders SET district_code = NEW.district_code WHERE vehicle_plate = NEW.plate;
END;

CREATE TRIGGER stations_cylinders_district AFTER UPDATE OF district_code ON stations
WHEN OLD.district_code IS NOT NEW.district_code
BEGIN
    UPDATE cylinders SET district_code = NEW.district_code WHERE owner_station = NEW.station_code
        AND (vehicle_plate IS NULL OR NOT EXISTS (SELECT 1 FROM vehicles v WHERE v.plate = cylinders.vehicle_plate));
END;

CREATE TRIGGER stations_cylinders_insert AFTER INSERT ON stations
BEGIN
    UPDATE cylinders SET district_code = NEW.district_code WHERE owner_station = NEW.station_code
        AND (vehicle_plate IS NULL OR NOT EXISTS (SELECT 1 FROM vehicles v WHERE v.plate = cylinders.vehicle_plate));
END;

-- --- layer 2: counters per district (and company) ----------------------------------------------------

CREATE TRIGGER elevators_figures_insert AFTER INSERT ON elevators
BEGIN
    INSERT INTO figures (district_code, company, figure, value) VALUES
        (NEW.district_code, NEW.maintenance_company, 'lifts', 1),
        (NEW.district_code, NEW.maintenance_company, 'pilot', NEW.pilot),
        (NEW.district_code, NEW.maintenance_company, 'fitted', NEW.terminals > 0),
        (NEW.district_code, NEW.maintenance_company, 'pilot_fitted', NEW.pilot AND NEW.terminals > 0),
        (NEW.district_code, NEW.maintenance_company, 'online', NEW.terminals > 0 AND NEW.online_terminals > 0),
        (NEW.district_code, NEW.maintenance_company, 'open_alarms', NEW.open_alarms),
        (NEW.district_code, NEW.maintenance_company, 'trapped', NEW.trapped_alarms > 0)
    ON CONFLICT (district_code, company, figure) DO UPDATE SET value = value + excluded.value;
    INSERT INTO day_figures (district_code, company, figure, day, value) VALUES
        (NEW.district_code, NEW.maintenance_company, 'next_inspection', NEW.next_inspection, 1),
        (NEW.district_code, NEW.maintenance_company, 'maintenance_ref', coalesce(NEW.maintenance_ref, 'untracked'), 1)
    ON CONFLICT (figure, district_code, company, day) DO UPDATE SET value = value + excluded.value;
END;

CREATE TRIGGER elevators_figures_update AFTER UPDATE OF district_code, maintenance_company, pilot, next_inspection,
    terminals, tracked_since, online_terminals, last_visit_at, open_alarms, trapped_alarms ON elevators
WHEN OLD.district_code IS NOT NEW.district_code OR OLD.maintenance_company IS NOT NEW.maintenance_company
    OR OLD.pilot IS NOT NEW.pilot OR OLD.next_inspection IS NOT NEW.next_inspection
    OR OLD.terminals IS NOT NEW.terminals OR OLD.tracked_since IS NOT NEW.tracked_since
    OR (OLD.online_terminals > 0) IS NOT (NEW.online_terminals > 0) OR OLD.last_visit_at IS NOT NEW.last_visit_at
    OR OLD.open_alarms IS NOT NEW.open_alarms OR (OLD.trapped_alarms > 0) IS NOT (NEW.trapped_alarms > 0)
BEGIN
    INSERT INTO figures (district_code, company, figure, value) VALUES
        (OLD.district_code, OLD.maintenance_company, 'lifts', -1),
        (OLD.district_code, OLD.maintenance_company, 'pilot', -OLD.pilot),
        (OLD.district_code, OLD.maintenance_company, 'fitted', -(OLD.terminals > 0)),
        (OLD.district_code, OLD.maintenance_company, 'pilot_fitted', -(OLD.pilot AND OLD.terminals > 0)),
        (OLD.district_code, OLD.maintenance_company, 'online', -(OLD.terminals > 0 AND OLD.online_terminals > 0)),
        (OLD.district_code, OLD.maintenance_company, 'open_alarms', -OLD.open_alarms),
        (OLD.district_code, OLD.maintenance_company, 'trapped', -(OLD.trapped_alarms > 0)),
        (NEW.district_code, NEW.maintenance_company, 'lifts', 1),
        (NEW.district_code, NEW.maintenance_company, 'pilot', NEW.pilot),
        (NEW.district_code, NEW.maintenance_company, 'fitted', NEW.terminals > 0),
        (NEW.district_code, NEW.maintenance_company, 'pilot_fitted', NEW.pilot AND NEW.terminals > 0),
        (NEW.district_code, NEW.maintenance_company, 'online', NEW.terminals > 0 AND NEW.online_terminals > 0),
        (NEW.district_code, NEW.maintenance_company, 'open_alarms', NEW.open_alarms),
        (NEW.district_code, NEW.maintenance_company, 'trapped', NEW.trapped_alarms > 0)
    ON CONFLICT (district_code, company, figure) DO UPDATE SET value = value + excluded.value;
    INSERT INTO day_figures (district_code, company, figure, day, value) VALUES
        (OLD.district_code, OLD.maintenance_company, 'next_inspection', OLD.next_inspection, -1),
        (OLD.district_code, OLD.maintenance_company, 'maintenance_ref', coalesce(OLD.maintenance_ref, 'untracked'), -1),
        (NEW.district_code, NEW.maintenance_company, 'next_inspection', NEW.next_inspection, 1),
        (NEW.district_code, NEW.maintenance_company, 'maintenance_ref', coalesce(NEW.maintenance_ref, 'untracked'), 1)
    ON CONFLICT (figure, district_code, company, day) DO UPDATE SET value = value + excluded.value;
END;

CREATE TRIGGER elevators_figures_delete AFTER DELETE ON elevators
BEGIN
    INSERT INTO figures (district_code, company, figure, value) VALUES
        (OLD.district_code, OLD.maintenance_company, 'lifts', -1),
        (OLD.district_code, OLD.maintenance_company, 'pilot', -OLD.pilot),
        (OLD.district_code, OLD.maintenance_company, 'fitted', -(OLD.terminals > 0)),
        (OLD.district_code, OLD.maintenance_company, 'pilot_fitted', -(OLD.pilot AND OLD.terminals > 0)),
        (OLD.district_code, OLD.maintenance_company, 'online', -(OLD.terminals > 0 AND OLD.online_terminals > 0)),
        (OLD.district_code, OLD.maintenance_company, 'open_alarms', -OLD.open_alarms),
        (OLD.district_code, OLD.maintenance_company, 'trapped', -(OLD.trapped_alarms > 0))
    ON CONFLICT (district_code, company, figure) DO UPDATE SET value = value + excluded.value;
    INSERT INTO day_figures (district_code, company, figure, day, value) VALUES
        (OLD.district_code, OLD.maintenance_company, 'next_inspection', OLD.next_inspection, -1),
        (OLD.district_code, OLD.maintenance_company, 'maintenance_ref', coalesce(OLD.maintenance_ref, 'untracked'), -1)
    ON CONFLICT (figure, district_code, company, day) DO UPDATE SET value = value + excluded.value;
END;

CREATE TRIGGER stations_figures_insert AFTER INSERT ON stations
BEGIN
    INSERT INTO figures (district_code, company, figure, value) VALUES
        (NEW.district_code, '', 'stations', 1),
        (NEW.district_code, '', 'stations_connected', coalesce(NEW.scales > 0 AND NEW.scales <= NEW.online_scales, 0))
    ON CONFLICT (district_code, company, figure) DO UPDATE SET value = value + excluded.value;
END;

CREATE TRIGGER stations_figures_update AFTER UPDATE OF district_code, scales, online_scales ON stations
WHEN OLD.district_code IS NOT NEW.district_code OR OLD.scales IS NOT NEW.scales OR OLD.online_scales IS NOT NEW.online_scales
BEGIN
    INSERT INTO figures (district_code, company, figure, value) VALUES
        (OLD.district_code, '', 'stations', -1),
        (OLD.district_code, '', 'stations_connected', -coalesce(OLD.scales > 0 AND OLD.scales <= OLD.online_scales, 0)),
        (NEW.district_code, '', 'stations', 1),
        (NEW.district_code, '', 'stations_connected', coalesce(NEW.scales > 0 AND NEW.scales <= NEW.online_scales, 0))
    ON CONFLICT (district_code, company, figure) DO UPDATE SET value = value + excluded.value;
END;

CREATE TRIGGER stations_figures_delete AFTER DELETE ON stations
BEGIN
    INSERT INTO figures (district_code, company, figure, value) VALUES
        (OLD.district_code, '', 'stations', -1),
        (OLD.district_code, '', 'stations_connected', -coalesce(OLD.scales > 0 AND OLD.scales <= OLD.online_scales, 0))
    ON CONFLICT (district_code, company, figure) DO UPDATE SET value = value + excluded.value;
END;

CREATE TRIGGER vehicles_figures_insert AFTER INSERT ON vehicles
BEGIN
    INSERT INTO figures (district_code, company, figure, value) VALUES
        (NEW.district_code, '', 'vehicles', 1),
        (NEW.district_code, '', 'vehicles_valid', coalesce(NEW.certificate_status = 'valid', 0))
    ON CONFLICT (district_code, company, figure) DO UPDATE SET value = value + excluded.value;
END;

CREATE TRIGGER vehicles_figures_update AFTER UPDATE OF district_code, certificate_status ON vehicles
WHEN OLD.district_code IS NOT NEW.district_code OR OLD.certificate_status IS NOT NEW.certificate_status
BEGIN
    INSERT INTO figures (district_code, company, figure, value) VALUES
        (OLD.district_code, '', 'vehicles', -1),
        (OLD.district_code, '', 'vehicles_valid', -coalesce(OLD.certificate_status = 'valid', 0)),
        (NEW.district_code, '', 'vehicles', 1),
        (NEW.district_code, '', 'vehicles_valid', coalesce(NEW.certificate_status = 'valid', 0))
    ON CONFLICT (district_code, company, figure) DO UPDATE SET value = value + excluded.value;
END;

CREATE TRIGGER vehicles_figures_delete AFTER DELETE ON vehicles
BEGIN
    INSERT INTO figures (district_code, company, figure, value) VALUES
        (OLD.district_code, '', 'vehicles', -1),
        (OLD.district_code, '', 'vehicles_valid', -coalesce(OLD.certificate_status = 'valid', 0))
    ON CONFLICT (district_code, company, figure) DO UPDATE SET value = value + excluded.value;
END;

-- Cylinders count where their district is known (a cylinder of neither a known vehicle nor a known
-- station is in no district's figures, as in the recount). A new cylinder is counted when
-- cylinders_district_insert sets its district: through the update trigger below.
CREATE TRIGGER cylinders_figures_update AFTER UPDATE OF district_code, tag_uid, last_filled_at ON cylinders
WHEN OLD.district_code IS NOT NEW.district_code OR OLD.tag_uid IS NOT NEW.tag_uid
    OR OLD.last_filled_at IS NOT NEW.last_filled_at
BEGIN
    INSERT INTO figures (district_code, company, figure, value)
        SELECT OLD.district_code, '', 'cylinders', -1 WHERE OLD.district_code IS NOT NULL
        UNION ALL SELECT OLD.district_code, '', 'cylinders_tagged', -(OLD.tag_uid IS NOT NULL)
            WHERE OLD.district_code IS NOT NULL
        UNION ALL SELECT NEW.district_code, '', 'cylinders', 1 WHERE NEW.district_code IS NOT NULL
        UNION ALL SELECT NEW.district_code, '', 'cylinders_tagged', NEW.tag_uid IS NOT NULL
            WHERE NEW.district_code IS NOT NULL
    ON CONFLICT (district_code, company, figure) DO UPDATE SET value = value + excluded.value;
    INSERT INTO day_figures (district_code, company, figure, day, value)
        SELECT OLD.district_code, '', 'cylinder_last_fill', date(OLD.last_filled_at, 'unixepoch', '+8 hours'), -1
            WHERE OLD.district_code IS NOT NULL AND OLD.last_filled_at IS NOT NULL
        UNION ALL SELECT NEW.district_code, '', 'cylinder_last_fill', date(NEW.last_filled_at, 'unixepoch', '+8 hours'), 1
            WHERE NEW.district_code IS NOT NULL AND NEW.last_filled_at IS NOT NULL
    ON CONFLICT (figure, district_code, company, day) DO UPDATE SET value = value + excluded.value;
END;

CREATE TRIGGER cylinders_figures_delete AFTER DELETE ON cylinders WHEN OLD.district_code IS NOT NULL
BEGIN
    INSERT INTO figures (district_code, company, figure, value) VALUES
        (OLD.district_code, '', 'cylinders', -1),
        (OLD.district_code, '', 'cylinders_tagged', -(OLD.tag_uid IS NOT NULL))
    ON CONFLICT (district_code, company, figure) DO UPDATE SET value = value + excluded.value;
    INSERT INTO day_figures (district_code, company, figure, day, value)
        SELECT OLD.district_code, '', 'cylinder_last_fill', date(OLD.last_filled_at, 'unixepoch', '+8 hours'), -1
        WHERE OLD.last_filled_at IS NOT NULL
    ON CONFLICT (figure, district_code, company, day) DO UPDATE SET value = value + excluded.value;
END;

-- --- what is already there ------------------------------------------------------------------------------

UPDATE elevators SET
    terminals = (SELECT count(*) FROM terminals t WHERE t.device_code = elevators.device_code),
    tracked_since = (SELECT min(coalesce(t.installed_on, '')) FROM terminals t WHERE t.device_code = elevators.device_code),
    online_terminals = (SELECT count(*) FROM terminals t JOIN terminal_sessions ts ON ts.protocol = t.protocol
                        AND ts.terminal_id = t.terminal_id WHERE t.device_code = elevators.device_code AND ts.online = 1),
    last_visit_at = (SELECT max(v.ended_at) FROM maintenance_visits v WHERE v.device_code = elevators.device_code
                     AND v.started_at IS NOT NULL AND v.ended_at IS NOT NULL AND v.flags = ''),
    open_alarms = (SELECT count(*) FROM alarms a WHERE a.device_code = elevators.device_code
                   AND a.status != 'resolved' AND a.merged_into IS NULL),
    open_critical = (SELECT count(*) FROM alarms a WHERE a.device_code = elevators.device_code
                     AND a.status != 'resolved' AND a.merged_into IS NULL AND a.severity = 'critical'),
    open_major = (SELECT count(*) FROM alarms a WHERE a.device_code = elevators.device_code
                  AND a.status != 'resolved' AND a.merged_into IS NULL AND a.severity = 'major'),
    trapped_alarms = (SELECT count(*) FROM alarms a WHERE a.device_code = elevators.device_code
                      AND a.status != 'resolved' AND a.merged_into IS NULL AND a.kind = 'trapped' AND a.condition = 'active');
UPDATE stations SET online_scales = (
    SELECT count(*) FROM terminals t JOIN terminal_sessions ts ON ts.protocol = t.protocol
    AND ts.terminal_id = t.terminal_id WHERE t.station_code = stations.station_code AND t.device_code IS NULL
    AND ts.online = 1);
UPDATE cylinders SET district_code = coalesce(
    (SELECT v.district_code FROM vehicles v WHERE v.plate = cylinders.vehicle_plate),
    (SELECT s.district_code FROM stations s WHERE s.station_code = cylinders.owner_station));
-- (Those updates already went through the triggers above, but from an empty start: rebuild both tables.)
DELETE FROM figures;
DELETE FROM day_figures;
INSERT INTO figures (district_code, company, figure, value)
    SELECT district_code, maintenance_company, 'lifts', count(*) FROM elevators GROUP BY 1, 2
    UNION ALL SELECT district_code, maintenance_company, 'pilot', sum(pilot) FROM elevators GROUP BY 1, 2
    UNION ALL SELECT district_code, maintenance_company, 'fitted', sum(terminals > 0) FROM elevators GROUP BY 1, 2
    UNION ALL SELECT district_code, maintenance_company, 'pilot_fitted', sum(pilot AND terminals > 0) FROM elevators GROUP BY 1, 2
    UNION ALL SELECT district_code, maintenance_company, 'online', sum(terminals > 0 AND online_terminals > 0)
        FROM elevators GROUP BY 1, 2
    UNION ALL SELECT district_code, maintenance_company, 'open_alarms', sum(open_alarms) FROM elevators GROUP BY 1, 2
    UNION ALL SELECT district_code, maintenance_company, 'trapped', sum(trapped_alarms > 0) FROM elevators GROUP BY 1, 2
    UNION ALL SELECT district_code, '', 'stations', count(*) FROM stations GROUP BY 1
    UNION ALL SELECT district_code, '', 'stations_connected', sum(coalesce(scales > 0 AND scales <= online_scales, 0))
        FROM stations GROUP BY 1
    UNION ALL SELECT district_code, '', 'vehicles', count(*) FROM vehicles GROUP BY 1
    UNION ALL SELECT district_code, '', 'vehicles_valid', sum(coalesce(certificate_status = 'valid', 0)) FROM vehicles GROUP BY 1
    UNION ALL SELECT district_code, '', 'cylinders', count(*) FROM cylinders WHERE district_code IS NOT NULL GROUP BY 1
    UNION ALL SELECT district_code, '', 'cylinders_tagged', count(tag_uid) FROM cylinders WHERE district_code IS NOT NULL
        GROUP BY 1;
INSERT INTO day_figures (district_code, company, figure, day, value)
    SELECT district_code, maintenance_company, 'next_inspection', next_inspection, count(*) FROM elevators GROUP BY 1, 2, 4
    UNION ALL SELECT district_code, maintenance_company, 'maintenance_ref', coalesce(maintenance_ref, 'untracked'), count(*)
        FROM elevators GROUP BY 1, 2, 4
    UNION ALL SELECT district_code, '', 'cylinder_last_fill', date(last_filled_at, 'unixepoch', '+8 hours'), count(*)
        FROM cylinders WHERE district_code IS NOT NULL AND last_filled_at IS NOT NULL GROUP BY 1, 4;
-- (Rows inserted by INSERT ... SELECT above went through the roll-up triggers: the district totals are there.)
