-- The platform's own alarms (the disk of its database filling up, storage/disk.py): such an alarm names the
-- part of the platform in `system` ('disk') instead of a lift, cylinder, station or vehicle. It has no
-- district, so the roles scoped to a district, company or station never see it (alarms/system.py).
-- The CHECK that an alarm has a subject gains "or a system" in place, as 0017 did for a plate: SQLite cannot
-- alter a CHECK, and rebuilding the table would drop the running figures' triggers on it (0021).
ALTER TABLE alarms ADD COLUMN system TEXT;
PRAGMA writable_schema = ON;
UPDATE sqlite_master SET sql = replace(sql, 'OR plate IS NOT NULL)', 'OR plate IS NOT NULL OR system IS NOT NULL)')
    WHERE type = 'table' AND name = 'alarms';
PRAGMA writable_schema = RESET;
CREATE INDEX alarms_system ON alarms (system, raised_at) WHERE system IS NOT NULL;

-- A platform alarm counts in no running figure (0030): those are the city's equipment alarms per district and
-- company, which the header, the dashboard's chart and the reports show to everyone who reads the city. The
-- scope of such an alarm is NULL, which the figures' triggers leave uncounted (web/pages.py adds the open
-- platform alarms to the header of those who may see them).
DROP VIEW alarm_scope;
CREATE VIEW alarm_scope AS
SELECT a.id, CASE WHEN a.system IS NULL THEN coalesce(e.district_code, s.district_code, v.district_code, '') END
           AS district_code,
       coalesce(e.maintenance_company, '') AS company
FROM alarms a LEFT JOIN elevators e ON e.device_code = a.device_code
LEFT JOIN stations s ON s.station_code = a.station_code LEFT JOIN vehicles v ON v.plate = a.plate;
