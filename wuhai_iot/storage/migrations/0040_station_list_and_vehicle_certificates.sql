-- The station list and the vehicle list's "no valid certificate" filter read a bounded number of rows whatever
-- the size of the city.
--
-- A station's scales fitted and its open alarms as running facts on its row (as a lift's terminals and open
-- alarms are, 0021 and 0031): the station list (web/queries.py list_stations) counted both per listed station
-- on every request, the two costliest of its five look-ups a row (a full page of 100 stations cost ~2 ms more
-- than the small city's 31). Kept by the triggers below in the same transaction as the terminal or alarm that
-- moves them; tests/test_figures.py recounts them from the raw rows.
ALTER TABLE stations ADD COLUMN scales_installed INTEGER NOT NULL DEFAULT 0;  -- its gasfill terminals
ALTER TABLE stations ADD COLUMN open_alarms INTEGER NOT NULL DEFAULT 0;       -- not resolved, not merged

DROP VIEW station_facts;
CREATE VIEW station_facts AS
SELECT s.station_code,
    (SELECT count(*) FROM terminals t JOIN terminal_sessions ts ON ts.protocol = t.protocol
     AND ts.terminal_id = t.terminal_id WHERE t.station_code = s.station_code AND t.device_code IS NULL
     AND ts.online = 1) AS online_scales,
    (SELECT count(*) FROM terminals t WHERE t.station_code = s.station_code AND t.protocol = 'gasfill')
        AS scales_installed,
    (SELECT count(*) FROM alarms a WHERE a.station_code = s.station_code AND a.status != 'resolved'
     AND a.merged_into IS NULL) AS open_alarms
FROM stations s;

-- A station (re-)entering the registry finds its terminals and alarms already there. (A trigger of its own:
-- 0031's stations_facts_insert sets its scales online, which its figures count, and must keep running after
-- stations_figures_insert has added the station as inserted; this one moves no figure.)
CREATE TRIGGER stations_list_facts_insert AFTER INSERT ON stations
WHEN EXISTS (SELECT 1 FROM terminals t WHERE t.station_code = NEW.station_code
             UNION ALL SELECT 1 FROM alarms a WHERE a.station_code = NEW.station_code AND a.status != 'resolved'
                 AND a.merged_into IS NULL)
BEGIN
    UPDATE stations SET (scales_installed, open_alarms) = (
        SELECT scales_installed, open_alarms FROM station_facts f WHERE f.station_code = stations.station_code)
    WHERE station_code = NEW.station_code;
END;

-- A gasfill terminal fitted, moved to another station or removed.
CREATE TRIGGER terminals_station_scales_insert AFTER INSERT ON terminals
WHEN NEW.protocol = 'gasfill' AND NEW.station_code IS NOT NULL
BEGIN
    UPDATE stations SET scales_installed = scales_installed + 1 WHERE station_code = NEW.station_code;
END;

CREATE TRIGGER terminals_station_scales_update AFTER UPDATE OF protocol, station_code ON terminals
WHEN (OLD.protocol IS NOT NEW.protocol OR OLD.station_code IS NOT NEW.station_code)
    AND (OLD.protocol = 'gasfill' OR NEW.protocol = 'gasfill')
BEGIN
    UPDATE stations SET scales_installed = scales_installed - 1
    WHERE station_code = OLD.station_code AND OLD.protocol = 'gasfill';
    UPDATE stations SET scales_installed = scales_installed + 1
    WHERE station_code = NEW.station_code AND NEW.protocol = 'gasfill';
END;

CREATE TRIGGER terminals_station_scales_delete AFTER DELETE ON terminals
WHEN OLD.protocol = 'gasfill' AND OLD.station_code IS NOT NULL
BEGIN
    UPDATE stations SET scales_installed = scales_installed - 1 WHERE station_code = OLD.station_code;
END;

-- An alarm about a station (a cylinder at it, its scales) raised, resolved, merged into a flapping one, moved
-- or pruned. Alarm rows are rewritten on every repeat; only a change of what makes an alarm open counts.
CREATE TRIGGER alarms_station_insert AFTER INSERT ON alarms
WHEN NEW.station_code IS NOT NULL AND NEW.status != 'resolved' AND NEW.merged_into IS NULL
BEGIN
    UPDATE stations SET open_alarms = open_alarms + 1 WHERE station_code = NEW.station_code;
END;

CREATE TRIGGER alarms_station_update AFTER UPDATE OF status, merged_into, station_code ON alarms
WHEN (OLD.station_code IS NOT NULL OR NEW.station_code IS NOT NULL)
    AND ((OLD.status = 'resolved') IS NOT (NEW.status = 'resolved')
         OR (OLD.merged_into IS NULL) IS NOT (NEW.merged_into IS NULL) OR OLD.station_code IS NOT NEW.station_code)
BEGIN
    UPDATE stations SET open_alarms = open_alarms - 1
    WHERE station_code = OLD.station_code AND OLD.status != 'resolved' AND OLD.merged_into IS NULL;
    UPDATE stations SET open_alarms = open_alarms + 1
    WHERE station_code = NEW.station_code AND NEW.status != 'resolved' AND NEW.merged_into IS NULL;
END;

CREATE TRIGGER alarms_station_delete AFTER DELETE ON alarms
WHEN OLD.station_code IS NOT NULL AND OLD.status != 'resolved' AND OLD.merged_into IS NULL
BEGIN
    UPDATE stations SET open_alarms = open_alarms - 1 WHERE station_code = OLD.station_code;
END;

-- What is there already.
UPDATE stations SET (scales_installed, open_alarms) = (
    SELECT scales_installed, open_alarms FROM station_facts f WHERE f.station_code = stations.station_code);

-- Vehicles without a valid certificate (missing, or revoked: the vehicle list's certificate_invalid filter and
-- the fill decision's reason 8) as a running figure per district ('vehicles_no_certificate'), so that the
-- filtered list's total is read, not counted (it counted up to 1,000 matching vehicles a request). The view of
-- 0031 says what a vehicle counts for; its update triggers now also fire when the certificate number changes.
DROP VIEW vehicle_counts;
CREATE VIEW vehicle_counts AS
SELECT v.plate AS code, v.district_code, 'vehicles' AS figure, 1 AS value FROM vehicles v
UNION ALL SELECT v.plate, v.district_code, 'vehicles_valid', coalesce(v.certificate_status = 'valid', 0) FROM vehicles v
UNION ALL SELECT v.plate, v.district_code, 'vehicles_no_certificate',
    coalesce(coalesce(v.certificate_no, '') = '' OR v.certificate_status = 'revoked', 0) FROM vehicles v;

DROP TRIGGER vehicles_figures_before_update;
DROP TRIGGER vehicles_figures_update;

CREATE TRIGGER vehicles_figures_before_update BEFORE UPDATE OF district_code, certificate_status, certificate_no
    ON vehicles
WHEN OLD.district_code IS NOT NEW.district_code OR OLD.certificate_status IS NOT NEW.certificate_status
    OR OLD.certificate_no IS NOT NEW.certificate_no
BEGIN
    INSERT INTO figures (district_code, company, figure, value)
        SELECT district_code, '', figure, -value FROM vehicle_counts WHERE code = OLD.plate
    ON CONFLICT (district_code, company, figure) DO UPDATE SET value = value + excluded.value;
END;

CREATE TRIGGER vehicles_figures_update AFTER UPDATE OF district_code, certificate_status, certificate_no ON vehicles
WHEN OLD.district_code IS NOT NEW.district_code OR OLD.certificate_status IS NOT NEW.certificate_status
    OR OLD.certificate_no IS NOT NEW.certificate_no
BEGIN
    INSERT INTO figures (district_code, company, figure, value)
        SELECT district_code, '', figure, value FROM vehicle_counts WHERE code = NEW.plate
    ON CONFLICT (district_code, company, figure) DO UPDATE SET value = value + excluded.value;
END;

INSERT INTO figures (district_code, company, figure, value)
    SELECT district_code, '', 'vehicles_no_certificate',
        sum(coalesce(coalesce(certificate_no, '') = '' OR certificate_status = 'revoked', 0)) FROM vehicles
    GROUP BY district_code
ON CONFLICT (district_code, company, figure) DO UPDATE SET value = value + excluded.value;
