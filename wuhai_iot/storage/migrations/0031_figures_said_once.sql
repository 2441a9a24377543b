-- The running figures of 0021, each said once. 0021's triggers spelled out the same "facts of a lift" and
-- "what a row counts for" in several places (SQL triggers share no function). Here:
--
-- * the facts of a lift and of a station recounted from the raw tables (terminals, the last completed visit,
--   open alarms ...) are the views lift_facts and station_facts, a cylinder's district is cylinder_district,
--   and every trigger that recounts them reads the view (UPDATE ... SET (columns) = (SELECT ... FROM it));
--   the counts a lift's alarms and sessions move by one stay increments (0021);
-- * what a lift, station or vehicle row counts for in `figures` and `day_figures` is a view over its table
--   (*_counts, lift_day_counts). A BEFORE trigger takes the row's contribution away while the row still
--   holds its old values, an AFTER trigger adds the new one: the contribution is written once instead of
--   once for OLD and once for NEW in each of three triggers. Cylinders keep 0021's triggers on OLD and NEW:
--   they are imported by the hundred thousand and a fill moves them, and reading a view before and after
--   each change cost a census import of 100,000 cylinders a quarter more CPU (8.5 s against 10.5 s).
--
-- The figures themselves do not change (tests/test_figures.py recounts them); only how they are kept.

DROP TRIGGER terminals_lift_insert;
DROP TRIGGER terminals_lift_update;
DROP TRIGGER terminals_lift_delete;
DROP TRIGGER elevators_facts_insert;
DROP TRIGGER visits_lift_insert;
DROP TRIGGER visits_lift_update;
DROP TRIGGER visits_lift_delete;
DROP TRIGGER stations_facts_insert;
DROP TRIGGER terminals_station_insert;
DROP TRIGGER terminals_station_update;
DROP TRIGGER terminals_station_delete;
DROP TRIGGER cylinders_district_insert;
DROP TRIGGER cylinders_district_update;
DROP TRIGGER elevators_figures_insert;
DROP TRIGGER elevators_figures_update;
DROP TRIGGER elevators_figures_delete;
DROP TRIGGER stations_figures_insert;
DROP TRIGGER stations_figures_update;
DROP TRIGGER stations_figures_delete;
DROP TRIGGER vehicles_figures_insert;
DROP TRIGGER vehicles_figures_update;
DROP TRIGGER vehicles_figures_delete;

-- --- facts, recounted from the raw tables -----------------------------------------------------------------

CREATE VIEW lift_facts AS
SELECT e.device_code,
    (SELECT count(*) FROM terminals t WHERE t.device_code = e.device_code) AS terminals,
    (SELECT min(coalesce(t.installed_on, '')) FROM terminals t WHERE t.device_code = e.device_code) AS tracked_since,
    (SELECT count(*) FROM terminals t JOIN terminal_sessions ts ON ts.protocol = t.protocol
     AND ts.terminal_id = t.terminal_id WHERE t.device_code = e.device_code AND ts.online = 1) AS online_terminals,
    (SELECT max(v.ended_at) FROM maintenance_visits v WHERE v.device_code = e.device_code
     AND v.started_at IS NOT NULL AND v.ended_at IS NOT NULL AND v.flags = '') AS last_visit_at,
    (SELECT count(*) FROM alarms a WHERE a.device_code = e.device_code AND a.status != 'resolved'
     AND a.merged_into IS NULL) AS open_alarms,
    (SELECT count(*) FROM alarms a WHERE a.device_code = e.device_code AND a.status != 'resolved'
     AND a.merged_into IS NULL AND a.severity = 'critical') AS open_critical,
    (SELECT count(*) FROM alarms a WHERE a.device_code = e.device_code AND a.status != 'resolved'
     AND a.merged_into IS NULL AND a.severity = 'major') AS open_major,
    (SELECT count(*) FROM alarms a WHERE a.device_code = e.device_code AND a.status != 'resolved'
     AND a.merged_into IS NULL AND a.kind = 'trapped' AND a.condition = 'active') AS trapped_alarms
FROM elevators e;

CREATE VIEW station_facts AS
SELECT s.station_code,
    (SELECT count(*) FROM terminals t JOIN terminal_sessions ts ON ts.protocol = t.protocol
     AND ts.terminal_id = t.terminal_id WHERE t.station_code = s.station_code AND t.device_code IS NULL
     AND ts.online = 1) AS online_scales
FROM stations s;

-- A cylinder's district: its vehicle's, else its owner station's.
CREATE VIEW cylinder_district AS
SELECT c.cylinder_code, coalesce((SELECT v.district_code FROM vehicles v WHERE v.plate = c.vehicle_plate),
                                 (SELECT s.district_code FROM stations s WHERE s.station_code = c.owner_station))
    AS district_code
FROM cylinders c;

CREATE TRIGGER terminals_lift_insert AFTER INSERT ON terminals WHEN NEW.device_code IS NOT NULL
BEGIN
    UPDATE elevators SET (terminals, tracked_since, online_terminals) = (
        SELECT terminals, tracked_since, online_terminals FROM lift_facts f WHERE f.device_code = elevators.device_code)
    WHERE device_code = NEW.device_code;
END;

CREATE TRIGGER terminals_lift_update AFTER UPDATE OF device_code, installed_on ON terminals
WHEN OLD.device_code IS NOT NEW.device_code OR OLD.installed_on IS NOT NEW.installed_on
BEGIN
    UPDATE elevators SET (terminals, tracked_since, online_terminals) = (
        SELECT terminals, tracked_since, online_terminals FROM lift_facts f WHERE f.device_code = elevators.device_code)
    WHERE device_code IN (OLD.device_code, NEW.device_code);
END;

CREATE TRIGGER terminals_lift_delete AFTER DELETE ON terminals WHEN OLD.device_code IS NOT NULL
BEGIN
    UPDATE elevators SET (terminals, tracked_since, online_terminals) = (
        SELECT terminals, tracked_since, online_terminals FROM lift_facts f WHERE f.device_code = elevators.device_code)
    WHERE device_code = OLD.device_code;
END;

-- Completed maintenance visits without a flag (only those restart the 15-day count; whole-row upserts, and
-- the retention's deletes).
CREATE TRIGGER visits_lift_insert AFTER INSERT ON maintenance_visits
WHEN NEW.started_at IS NOT NULL AND NEW.ended_at IS NOT NULL AND NEW.flags = ''
BEGIN
    UPDATE elevators SET last_visit_at = (SELECT last_visit_at FROM lift_facts f WHERE f.device_code = elevators.device_code)
    WHERE device_code = NEW.device_code;
END;

CREATE TRIGGER visits_lift_update AFTER UPDATE OF started_at, ended_at, device_code, flags ON maintenance_visits
WHEN OLD.started_at IS NOT NEW.started_at OR OLD.ended_at IS NOT NEW.ended_at OR OLD.device_code IS NOT NEW.device_code
    OR OLD.flags IS NOT NEW.flags
BEGIN
    UPDATE elevators SET last_visit_at = (SELECT last_visit_at FROM lift_facts f WHERE f.device_code = elevators.device_code)
    WHERE device_code IN (OLD.device_code, NEW.device_code);
END;

CREATE TRIGGER visits_lift_delete AFTER DELETE ON maintenance_visits
WHEN OLD.started_at IS NOT NULL AND OLD.ended_at IS NOT NULL AND OLD.flags = ''
BEGIN
    UPDATE elevators SET last_visit_at = (SELECT last_visit_at FROM lift_facts f WHERE f.device_code = elevators.device_code)
    WHERE device_code = OLD.device_code;
END;

-- A lift (re-)entering the registry finds its terminals, sessions, alarms and visits already there.
CREATE TRIGGER elevators_facts_insert AFTER INSERT ON elevators
WHEN EXISTS (SELECT 1 FROM terminals t WHERE t.device_code = NEW.device_code
             UNION ALL SELECT 1 FROM alarms a WHERE a.device_code = NEW.device_code
             UNION ALL SELECT 1 FROM maintenance_visits v WHERE v.device_code = NEW.device_code)
BEGIN
    UPDATE elevators SET (terminals, tracked_since, online_terminals, last_visit_at, open_alarms, open_critical,
                          open_major, trapped_alarms) = (
        SELECT terminals, tracked_since, online_terminals, last_visit_at, open_alarms, open_critical, open_major,
               trapped_alarms FROM lift_facts f WHERE f.device_code = elevators.device_code)
    WHERE device_code = NEW.device_code;
END;

CREATE TRIGGER stations_facts_insert AFTER INSERT ON stations
WHEN EXISTS (SELECT 1 FROM terminals t WHERE t.station_code = NEW.station_code)
BEGIN
    UPDATE stations SET online_scales = (SELECT online_scales FROM station_facts f WHERE f.station_code = stations.station_code)
    WHERE station_code = NEW.station_code;
END;

-- A gasfill terminal fitted, moved (a census correction) or removed moves its online session with it.
CREATE TRIGGER terminals_station_insert AFTER INSERT ON terminals
WHEN NEW.station_code IS NOT NULL AND NEW.device_code IS NULL
BEGIN
    UPDATE stations SET online_scales = (SELECT online_scales FROM station_facts f WHERE f.station_code = stations.station_code)
    WHERE station_code = NEW.station_code;
END;

CREATE TRIGGER terminals_station_update AFTER UPDATE OF station_code, device_code ON terminals
WHEN OLD.station_code IS NOT NEW.station_code OR OLD.device_code IS NOT NEW.device_code
BEGIN
    UPDATE stations SET online_scales = (SELECT online_scales FROM station_facts f WHERE f.station_code = stations.station_code)
    WHERE station_code IN (OLD.station_code, NEW.station_code);
END;

CREATE TRIGGER terminals_station_delete AFTER DELETE ON terminals WHEN OLD.station_code IS NOT NULL
BEGIN
    UPDATE stations SET online_scales = (SELECT online_scales FROM station_facts f WHERE f.station_code = stations.station_code)
    WHERE station_code = OLD.station_code;
END;

CREATE TRIGGER cylinders_district_insert AFTER INSERT ON cylinders
BEGIN
    UPDATE cylinders SET district_code = (SELECT district_code FROM cylinder_district d WHERE d.cylinder_code = NEW.cylinder_code)
    WHERE cylinder_code = NEW.cylinder_code;
END;

CREATE TRIGGER cylinders_district_update AFTER UPDATE OF vehicle_plate, owner_station ON cylinders
WHEN OLD.vehicle_plate IS NOT NEW.vehicle_plate OR OLD.owner_station IS NOT NEW.owner_station
BEGIN
    UPDATE cylinders SET district_code = (SELECT district_code FROM cylinder_district d WHERE d.cylinder_code = NEW.cylinder_code)
    WHERE cylinder_code = NEW.cylinder_code;
END;

-- --- what each row counts for ---------------------------------------------------------------------------------

CREATE VIEW lift_counts AS
SELECT e.device_code AS code, e.district_code, e.maintenance_company AS company, f.figure,
    CASE f.figure WHEN 'lifts' THEN 1 WHEN 'pilot' THEN e.pilot WHEN 'fitted' THEN e.terminals > 0
        WHEN 'pilot_fitted' THEN e.pilot AND e.terminals > 0 WHEN 'online' THEN e.terminals > 0 AND e.online_terminals > 0
        WHEN 'open_alarms' THEN e.open_alarms WHEN 'trapped' THEN e.trapped_alarms > 0 END AS value
FROM elevators e, (SELECT 'lifts' AS figure UNION ALL SELECT 'pilot' UNION ALL SELECT 'fitted' UNION ALL SELECT 'pilot_fitted'
                   UNION ALL SELECT 'online' UNION ALL SELECT 'open_alarms' UNION ALL SELECT 'trapped') f;

CREATE VIEW lift_day_counts AS
SELECT e.device_code AS code, e.district_code, e.maintenance_company AS company, 'next_inspection' AS figure,
    e.next_inspection AS day FROM elevators e
UNION ALL SELECT e.device_code, e.district_code, e.maintenance_company, 'maintenance_ref',
    coalesce(e.maintenance_ref, 'untracked') FROM elevators e;

CREATE VIEW station_counts AS
SELECT s.station_code AS code, s.district_code, 'stations' AS figure, 1 AS value FROM stations s
UNION ALL SELECT s.station_code, s.district_code, 'stations_connected',
    coalesce(s.scales > 0 AND s.scales <= s.online_scales, 0) FROM stations s;

CREATE VIEW vehicle_counts AS
SELECT v.plate AS code, v.district_code, 'vehicles' AS figure, 1 AS value FROM vehicles v
UNION ALL SELECT v.plate, v.district_code, 'vehicles_valid', coalesce(v.certificate_status = 'valid', 0) FROM vehicles v;

-- Lifts: per district and maintenance company (the roll-up triggers of 0021 add the district's total).
CREATE TRIGGER elevators_figures_insert AFTER INSERT ON elevators
BEGIN
    INSERT INTO figures (district_code, company, figure, value)
        SELECT district_code, company, figure, value FROM lift_counts WHERE code = NEW.device_code
    ON CONFLICT (district_code, company, figure) DO UPDATE SET value = value + excluded.value;
    INSERT INTO day_figures (district_code, company, figure, day, value)
        SELECT district_code, company, figure, day, 1 FROM lift_day_counts WHERE code = NEW.device_code
    ON CONFLICT (figure, district_code, company, day) DO UPDATE SET value = value + excluded.value;
END;

CREATE TRIGGER elevators_figures_before_update BEFORE UPDATE OF district_code, maintenance_company, pilot,
    next_inspection, terminals, tracked_since, online_terminals, last_visit_at, open_alarms, trapped_alarms ON elevators
WHEN OLD.district_code IS NOT NEW.district_code OR OLD.maintenance_company IS NOT NEW.maintenance_company
    OR OLD.pilot IS NOT NEW.pilot OR OLD.next_inspection IS NOT NEW.next_inspection
    OR OLD.terminals IS NOT NEW.terminals OR OLD.tracked_since IS NOT NEW.tracked_since
    OR (OLD.online_terminals > 0) IS NOT (NEW.online_terminals > 0) OR OLD.last_visit_at IS NOT NEW.last_visit_at
    OR OLD.open_alarms IS NOT NEW.open_alarms OR (OLD.trapped_alarms > 0) IS NOT (NEW.trapped_alarms > 0)
BEGIN
    INSERT INTO figures (district_code, company, figure, value)
        SELECT district_code, company, figure, -value FROM lift_counts WHERE code = OLD.device_code
    ON CONFLICT (district_code, company, figure) DO UPDATE SET value = value + excluded.value;
    INSERT INTO day_figures (district_code, company, figure, day, value)
        SELECT district_code, company, figure, day, -1 FROM lift_day_counts WHERE code = OLD.device_code
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
    INSERT INTO figures (district_code, company, figure, value)
        SELECT district_code, company, figure, value FROM lift_counts WHERE code = NEW.device_code
    ON CONFLICT (district_code, company, figure) DO UPDATE SET value = value + excluded.value;
    INSERT INTO day_figures (district_code, company, figure, day, value)
        SELECT district_code, company, figure, day, 1 FROM lift_day_counts WHERE code = NEW.device_code
    ON CONFLICT (figure, district_code, company, day) DO UPDATE SET value = value + excluded.value;
END;

CREATE TRIGGER elevators_figures_delete BEFORE DELETE ON elevators
BEGIN
    INSERT INTO figures (district_code, company, figure, value)
        SELECT district_code, company, figure, -value FROM lift_counts WHERE code = OLD.device_code
    ON CONFLICT (district_code, company, figure) DO UPDATE SET value = value + excluded.value;
    INSERT INTO day_figures (district_code, company, figure, day, value)
        SELECT district_code, company, figure, day, -1 FROM lift_day_counts WHERE code = OLD.device_code
    ON CONFLICT (figure, district_code, company, day) DO UPDATE SET value = value + excluded.value;
END;

-- Stations, vehicles and cylinders: per district.
CREATE TRIGGER stations_figures_insert AFTER INSERT ON stations
BEGIN
    INSERT INTO figures (district_code, company, figure, value)
        SELECT district_code, '', figure, value FROM station_counts WHERE code = NEW.station_code
    ON CONFLICT (district_code, company, figure) DO UPDATE SET value = value + excluded.value;
END;

CREATE TRIGGER stations_figures_before_update BEFORE UPDATE OF district_code, scales, online_scales ON stations
WHEN OLD.district_code IS NOT NEW.district_code OR OLD.scales IS NOT NEW.scales OR OLD.online_scales IS NOT NEW.online_scales
BEGIN
    INSERT INTO figures (district_code, company, figure, value)
        SELECT district_code, '', figure, -value FROM station_counts WHERE code = OLD.station_code
    ON CONFLICT (district_code, company, figure) DO UPDATE SET value = value + excluded.value;
END;

CREATE TRIGGER stations_figures_update AFTER UPDATE OF district_code, scales, online_scales ON stations
WHEN OLD.district_code IS NOT NEW.district_code OR OLD.scales IS NOT NEW.scales OR OLD.online_scales IS NOT NEW.online_scales
BEGIN
    INSERT INTO figures (district_code, company, figure, value)
        SELECT district_code, '', figure, value FROM station_counts WHERE code = NEW.station_code
    ON CONFLICT (district_code, company, figure) DO UPDATE SET value = value + excluded.value;
END;

CREATE TRIGGER stations_figures_delete BEFORE DELETE ON stations
BEGIN
    INSERT INTO figures (district_code, company, figure, value)
        SELECT district_code, '', figure, -value FROM station_counts WHERE code = OLD.station_code
    ON CONFLICT (district_code, company, figure) DO UPDATE SET value = value + excluded.value;
END;

CREATE TRIGGER vehicles_figures_insert AFTER INSERT ON vehicles
BEGIN
    INSERT INTO figures (district_code, company, figure, value)
        SELECT district_code, '', figure, value FROM vehicle_counts WHERE code = NEW.plate
    ON CONFLICT (district_code, company, figure) DO UPDATE SET value = value + excluded.value;
END;

CREATE TRIGGER vehicles_figures_before_update BEFORE UPDATE OF district_code, certificate_status ON vehicles
WHEN OLD.district_code IS NOT NEW.district_code OR OLD.certificate_status IS NOT NEW.certificate_status
BEGIN
    INSERT INTO figures (district_code, company, figure, value)
        SELECT district_code, '', figure, -value FROM vehicle_counts WHERE code = OLD.plate
    ON CONFLICT (district_code, company, figure) DO UPDATE SET value = value + excluded.value;
END;

CREATE TRIGGER vehicles_figures_update AFTER UPDATE OF district_code, certificate_status ON vehicles
WHEN OLD.district_code IS NOT NEW.district_code OR OLD.certificate_status IS NOT NEW.certificate_status
BEGIN
    INSERT INTO figures (district_code, company, figure, value)
        SELECT district_code, '', figure, value FROM vehicle_counts WHERE code = NEW.plate
    ON CONFLICT (district_code, company, figure) DO UPDATE SET value = value + excluded.value;
END;

CREATE TRIGGER vehicles_figures_delete BEFORE DELETE ON vehicles
BEGIN
    INSERT INTO figures (district_code, company, figure, value)
        SELECT district_code, '', figure, -value FROM vehicle_counts WHERE code = OLD.plate
    ON CONFLICT (district_code, company, figure) DO UPDATE SET value = value + excluded.value;
END;

-- --- reading the figures in a handful of rows -----------------------------------------------------------------

-- The figures of a scope without a district (the city, a maintenance company) were read through the primary
-- keys, which start with the district (figures) or put it before the company (day_figures): every district's
-- and company's rows were walked, and there are more companies as the city grows. These put the company first.
CREATE INDEX figures_by_company ON figures (company, figure, district_code, value);
CREATE INDEX day_figures_by_company ON day_figures (company, figure, day, district_code, value);

-- A day counter that comes back to zero is dropped: a lift's maintenance reference day moves with every visit,
-- and "overdue" sums the days before a date, so kept zeros would make that sum read every day there ever was.
CREATE TRIGGER day_figures_drop_zero AFTER UPDATE OF value ON day_figures WHEN NEW.value = 0
BEGIN
    DELETE FROM day_figures WHERE figure = NEW.figure AND district_code = NEW.district_code
        AND company = NEW.company AND day = NEW.day;
END;
DELETE FROM day_figures WHERE value = 0;

-- Open alarms newest first (the alarm list's default, the API's ?status=open) stop after a page on this
-- instead of walking back through every alarm until enough open ones are found.
CREATE INDEX alarms_open_newest ON alarms (id) WHERE status != 'resolved';
