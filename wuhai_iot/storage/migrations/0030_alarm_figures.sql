-- Running figures of alarms (see 0021 and storage/figures.py): the open alarms by severity that every page's
-- header and the dashboard show, and the alarms raised per CST day by kind and severity that the dashboard's
-- 14-day chart and the monthly report count. Both used to be counted on the alarm index per request, so
-- their cost grew with the city.
--
-- An alarm counts in the scope the alarm lists filter it by (alarms/queries.py): the district of its lift,
-- station or vehicle, and its lift's maintenance company ('' for other subjects). That scope is kept on the
-- alarm row (counted_district: '' when its subject is in no district, NULL until first set), so that the
-- triggers below know what to take away when an alarm changes, and a subject's census correction only
-- rewrites its own alarms' scope, which moves their counts through the same trigger.

ALTER TABLE alarms ADD COLUMN counted_district TEXT;
ALTER TABLE alarms ADD COLUMN counted_company TEXT;

-- Flagged maintenance visits (too short, no card ...) are the exception: /maintenance pages them by id on
-- this index instead of reading every visit to find them.
CREATE INDEX maintenance_visits_flagged ON maintenance_visits (id) WHERE flags != '';

-- The scope of each alarm, said once (alarms/queries.py's _DISTRICT says the same for the lists).
CREATE VIEW alarm_scope AS
SELECT a.id, coalesce(e.district_code, s.district_code, v.district_code, '') AS district_code,
       coalesce(e.maintenance_company, '') AS company
FROM alarms a LEFT JOIN elevators e ON e.device_code = a.device_code
LEFT JOIN stations s ON s.station_code = a.station_code LEFT JOIN vehicles v ON v.plate = a.plate;

CREATE TRIGGER alarms_scope_insert AFTER INSERT ON alarms
BEGIN
    UPDATE alarms SET (counted_district, counted_company) = (SELECT district_code, company FROM alarm_scope
                                                            WHERE id = NEW.id) WHERE id = NEW.id;
END;

CREATE TRIGGER alarms_scope_update AFTER UPDATE OF device_code, station_code, plate ON alarms
WHEN OLD.device_code IS NOT NEW.device_code OR OLD.station_code IS NOT NEW.station_code OR OLD.plate IS NOT NEW.plate
BEGIN
    UPDATE alarms SET (counted_district, counted_company) = (SELECT district_code, company FROM alarm_scope
                                                            WHERE id = NEW.id) WHERE id = NEW.id;
END;

-- A subject entering or leaving the registry, or moving district or company, re-scopes its own alarms.
CREATE TRIGGER elevators_alarms_insert AFTER INSERT ON elevators
BEGIN
    UPDATE alarms SET (counted_district, counted_company) = (SELECT district_code, company FROM alarm_scope s
                                                            WHERE s.id = alarms.id) WHERE device_code = NEW.device_code;
END;

CREATE TRIGGER elevators_alarms_update AFTER UPDATE OF district_code, maintenance_company ON elevators
WHEN OLD.district_code IS NOT NEW.district_code OR OLD.maintenance_company IS NOT NEW.maintenance_company
BEGIN
    UPDATE alarms SET (counted_district, counted_company) = (SELECT district_code, company FROM alarm_scope s
                                                            WHERE s.id = alarms.id) WHERE device_code = NEW.device_code;
END;

CREATE TRIGGER elevators_alarms_delete AFTER DELETE ON elevators
BEGIN
    UPDATE alarms SET (counted_district, counted_company) = (SELECT district_code, company FROM alarm_scope s
                                                            WHERE s.id = alarms.id) WHERE device_code = OLD.device_code;
END;

CREATE TRIGGER stations_alarms_insert AFTER INSERT ON stations
BEGIN
    UPDATE alarms SET (counted_district, counted_company) = (SELECT district_code, company FROM alarm_scope s
                                                            WHERE s.id = alarms.id) WHERE station_code = NEW.station_code;
END;

CREATE TRIGGER stations_alarms_update AFTER UPDATE OF district_code ON stations
WHEN OLD.district_code IS NOT NEW.district_code
BEGIN
    UPDATE alarms SET (counted_district, counted_company) = (SELECT district_code, company FROM alarm_scope s
                                                            WHERE s.id = alarms.id) WHERE station_code = NEW.station_code;
END;

CREATE TRIGGER stations_alarms_delete AFTER DELETE ON stations
BEGIN
    UPDATE alarms SET (counted_district, counted_company) = (SELECT district_code, company FROM alarm_scope s
                                                            WHERE s.id = alarms.id) WHERE station_code = OLD.station_code;
END;

CREATE TRIGGER vehicles_alarms_insert AFTER INSERT ON vehicles
BEGIN
    UPDATE alarms SET (counted_district, counted_company) = (SELECT district_code, company FROM alarm_scope s
                                                            WHERE s.id = alarms.id) WHERE plate = NEW.plate;
END;

CREATE TRIGGER vehicles_alarms_update AFTER UPDATE OF district_code ON vehicles
WHEN OLD.district_code IS NOT NEW.district_code
BEGIN
    UPDATE alarms SET (counted_district, counted_company) = (SELECT district_code, company FROM alarm_scope s
                                                            WHERE s.id = alarms.id) WHERE plate = NEW.plate;
END;

CREATE TRIGGER vehicles_alarms_delete AFTER DELETE ON vehicles
BEGIN
    UPDATE alarms SET (counted_district, counted_company) = (SELECT district_code, company FROM alarm_scope s
                                                            WHERE s.id = alarms.id) WHERE plate = OLD.plate;
END;

-- The counters: 'open:<severity>' (not resolved, not merged into a flapping alarm) per district and company,
-- and 'alarms:<kind>:<severity>' per CST day raised (not merged). An alarm row is rewritten on every repeat
-- of its condition; only a change of what it counts for moves a counter.
CREATE TRIGGER alarms_figures_update AFTER UPDATE OF counted_district, counted_company, status, merged_into,
    severity, kind, raised_at ON alarms
WHEN OLD.counted_district IS NOT NEW.counted_district OR OLD.counted_company IS NOT NEW.counted_company
    OR (OLD.status = 'resolved') IS NOT (NEW.status = 'resolved') OR (OLD.merged_into IS NULL) IS NOT (NEW.merged_into IS NULL)
    OR OLD.severity IS NOT NEW.severity OR OLD.kind IS NOT NEW.kind
    OR date(OLD.raised_at, 'unixepoch', '+8 hours') IS NOT date(NEW.raised_at, 'unixepoch', '+8 hours')
BEGIN
    INSERT INTO figures (district_code, company, figure, value)
        SELECT OLD.counted_district, OLD.counted_company, 'open:' || OLD.severity, -1
            WHERE OLD.counted_district IS NOT NULL AND OLD.status != 'resolved' AND OLD.merged_into IS NULL
        UNION ALL SELECT NEW.counted_district, NEW.counted_company, 'open:' || NEW.severity, 1
            WHERE NEW.counted_district IS NOT NULL AND NEW.status != 'resolved' AND NEW.merged_into IS NULL
    ON CONFLICT (district_code, company, figure) DO UPDATE SET value = value + excluded.value;
    INSERT INTO day_figures (district_code, company, figure, day, value)
        SELECT OLD.counted_district, OLD.counted_company, 'alarms:' || OLD.kind || ':' || OLD.severity,
               date(OLD.raised_at, 'unixepoch', '+8 hours'), -1
            WHERE OLD.counted_district IS NOT NULL AND OLD.merged_into IS NULL
        UNION ALL SELECT NEW.counted_district, NEW.counted_company, 'alarms:' || NEW.kind || ':' || NEW.severity,
               date(NEW.raised_at, 'unixepoch', '+8 hours'), 1
            WHERE NEW.counted_district IS NOT NULL AND NEW.merged_into IS NULL
    ON CONFLICT (figure, district_code, company, day) DO UPDATE SET value = value + excluded.value;
END;

CREATE TRIGGER alarms_figures_delete AFTER DELETE ON alarms WHEN OLD.counted_district IS NOT NULL
BEGIN
    INSERT INTO figures (district_code, company, figure, value)
        SELECT OLD.counted_district, OLD.counted_company, 'open:' || OLD.severity, -1
        WHERE OLD.status != 'resolved' AND OLD.merged_into IS NULL
    ON CONFLICT (district_code, company, figure) DO UPDATE SET value = value + excluded.value;
    INSERT INTO day_figures (district_code, company, figure, day, value)
        SELECT OLD.counted_district, OLD.counted_company, 'alarms:' || OLD.kind || ':' || OLD.severity,
               date(OLD.raised_at, 'unixepoch', '+8 hours'), -1
        WHERE OLD.merged_into IS NULL
    ON CONFLICT (figure, district_code, company, day) DO UPDATE SET value = value + excluded.value;
END;

-- What is already there (through the triggers above).
UPDATE alarms SET (counted_district, counted_company) = (SELECT district_code, company FROM alarm_scope s
                                                        WHERE s.id = alarms.id);

-- Open alarms in the order staff work through them (alarms/queries.py MOST_URGENT_FIRST, the dashboard's
-- 30 most urgent), and the passengers trapped now (the banner on every page): read in order on these,
-- stopping after the rows shown, instead of sorting every open alarm or walking every alarm.
CREATE INDEX alarms_most_urgent ON alarms (kind != 'trapped', CASE severity WHEN 'critical' THEN 0 WHEN 'major' THEN 1
    ELSE 2 END, status != 'raised', raised_at DESC, id DESC) WHERE status != 'resolved';
CREATE INDEX alarms_trapped_now ON alarms (raised_at)
    WHERE kind = 'trapped' AND status != 'resolved' AND condition = 'active' AND merged_into IS NULL;
