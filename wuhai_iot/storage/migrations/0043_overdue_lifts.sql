-- The overdue lift lists in device code order (/lifts?overdue=1, the API's maintenance_overdue and
-- inspection_overdue filters) read every overdue lift on each request: the lifts overdue are a range of another
-- order (maintenance_ref, next_inspection), so a list in device code order built the list of all of them first
-- (some 5 SQLite steps per overdue lift: 150 -> 750 overdue lifts from 5,000 to 25,000 lifts).
--
-- Now the lifts overdue as of the fold boundaries of 0041 (day_figure_folds: maintenance_ref before the
-- 'maintenance_ref' boundary, today less the interval once folded; next_inspection before the 'next_inspection'
-- boundary, today) are kept in overdue_lifts, one row per kind ('maintenance', 'inspection', and 'any' for
-- either), keyed and indexed by device code, so a list reads a page of them in order (elevators/queries.py
-- re-checks each lift's flags for the day asked, and reads the lifts themselves when that day is after a
-- boundary). The triggers below keep the rows in the same transaction as a change of a lift (a visit, a
-- terminal fitted or removed, a census correction) and as a boundary moving forward, which adds the lifts
-- between the old boundary and the new one, read on the lifts' indexes. The comparisons are with the
-- boundaries only: no configuration in SQL.

CREATE TABLE overdue_lifts (
    kind TEXT NOT NULL CHECK (kind IN ('maintenance', 'inspection', 'any')),
    device_code TEXT NOT NULL,
    district_code TEXT NOT NULL,
    company TEXT NOT NULL,               -- the lift's maintenance company
    PRIMARY KEY (kind, device_code)
) WITHOUT ROWID;
CREATE INDEX overdue_lifts_district ON overdue_lifts (kind, district_code, device_code);
CREATE INDEX overdue_lifts_company ON overdue_lifts (kind, company, device_code);

-- Whether a lift (NEW or OLD) is overdue as of the boundaries, spelled out in each trigger:
--   maintenance: X.terminals > 0 AND X.maintenance_ref < (SELECT before FROM day_figure_folds WHERE figure = 'maintenance_ref')
--   inspection:  X.next_inspection < (SELECT before FROM day_figure_folds WHERE figure = 'next_inspection')

INSERT INTO overdue_lifts (kind, device_code, district_code, company)
SELECT kind, device_code, district_code, maintenance_company FROM (
    SELECT e.device_code, e.district_code, e.maintenance_company,
           e.terminals > 0 AND e.maintenance_ref < m.before AS maintenance, e.next_inspection < i.before AS inspection
    FROM elevators e, day_figure_folds m, day_figure_folds i
    WHERE m.figure = 'maintenance_ref' AND i.figure = 'next_inspection'
) JOIN (SELECT 'maintenance' AS kind UNION ALL SELECT 'inspection' UNION ALL SELECT 'any')
ON (kind = 'maintenance' AND maintenance) OR (kind = 'inspection' AND inspection)
    OR (kind = 'any' AND (maintenance OR inspection));

CREATE TRIGGER elevators_overdue_insert AFTER INSERT ON elevators
BEGIN
    INSERT INTO overdue_lifts (kind, device_code, district_code, company)
    SELECT 'maintenance', NEW.device_code, NEW.district_code, NEW.maintenance_company
    WHERE NEW.terminals > 0 AND NEW.maintenance_ref < (SELECT before FROM day_figure_folds WHERE figure = 'maintenance_ref');
    INSERT INTO overdue_lifts (kind, device_code, district_code, company)
    SELECT 'inspection', NEW.device_code, NEW.district_code, NEW.maintenance_company
    WHERE NEW.next_inspection < (SELECT before FROM day_figure_folds WHERE figure = 'next_inspection');
    INSERT INTO overdue_lifts (kind, device_code, district_code, company)
    SELECT 'any', NEW.device_code, NEW.district_code, NEW.maintenance_company
    WHERE (NEW.terminals > 0 AND NEW.maintenance_ref < (SELECT before FROM day_figure_folds WHERE figure = 'maintenance_ref'))
        OR NEW.next_inspection < (SELECT before FROM day_figure_folds WHERE figure = 'next_inspection');
END;

-- (maintenance_ref is generated from terminals, tracked_since and last_visit_at: an update of one of them)
CREATE TRIGGER elevators_overdue_update AFTER UPDATE OF device_code, district_code, maintenance_company, next_inspection,
    terminals, tracked_since, last_visit_at ON elevators
WHEN OLD.device_code IS NOT NEW.device_code OR OLD.district_code IS NOT NEW.district_code
    OR OLD.maintenance_company IS NOT NEW.maintenance_company
    OR (OLD.terminals > 0 AND OLD.maintenance_ref < (SELECT before FROM day_figure_folds WHERE figure = 'maintenance_ref'))
        IS NOT (NEW.terminals > 0 AND NEW.maintenance_ref < (SELECT before FROM day_figure_folds WHERE figure = 'maintenance_ref'))
    OR (OLD.next_inspection < (SELECT before FROM day_figure_folds WHERE figure = 'next_inspection'))
        IS NOT (NEW.next_inspection < (SELECT before FROM day_figure_folds WHERE figure = 'next_inspection'))
BEGIN
    DELETE FROM overdue_lifts WHERE kind IN ('maintenance', 'inspection', 'any') AND device_code = OLD.device_code;
    INSERT INTO overdue_lifts (kind, device_code, district_code, company)
    SELECT 'maintenance', NEW.device_code, NEW.district_code, NEW.maintenance_company
    WHERE NEW.terminals > 0 AND NEW.maintenance_ref < (SELECT before FROM day_figure_folds WHERE figure = 'maintenance_ref');
    INSERT INTO overdue_lifts (kind, device_code, district_code, company)
    SELECT 'inspection', NEW.device_code, NEW.district_code, NEW.maintenance_company
    WHERE NEW.next_inspection < (SELECT before FROM day_figure_folds WHERE figure = 'next_inspection');
    INSERT INTO overdue_lifts (kind, device_code, district_code, company)
    SELECT 'any', NEW.device_code, NEW.district_code, NEW.maintenance_company
    WHERE (NEW.terminals > 0 AND NEW.maintenance_ref < (SELECT before FROM day_figure_folds WHERE figure = 'maintenance_ref'))
        OR NEW.next_inspection < (SELECT before FROM day_figure_folds WHERE figure = 'next_inspection');
END;

CREATE TRIGGER elevators_overdue_delete AFTER DELETE ON elevators
BEGIN
    DELETE FROM overdue_lifts WHERE kind IN ('maintenance', 'inspection', 'any') AND device_code = OLD.device_code;
END;

-- A boundary moves forward only (figures.fold_statements); a lift it passes becomes overdue as of it.
CREATE TRIGGER day_figure_folds_backward BEFORE UPDATE OF before ON day_figure_folds WHEN NEW.before < OLD.before
BEGIN
    SELECT RAISE(ABORT, 'a fold boundary moves forward only');
END;

CREATE TRIGGER day_figure_folds_overdue AFTER UPDATE OF before ON day_figure_folds WHEN NEW.before > OLD.before
BEGIN
    INSERT OR IGNORE INTO overdue_lifts (kind, device_code, district_code, company)
    SELECT kind.name, e.device_code, e.district_code, e.maintenance_company
    FROM (SELECT 'maintenance' AS name UNION ALL SELECT 'any') kind, elevators e INDEXED BY elevators_maintenance_ref
    WHERE NEW.figure = 'maintenance_ref' AND e.terminals > 0
        AND e.maintenance_ref >= OLD.before AND e.maintenance_ref < NEW.before;
    INSERT OR IGNORE INTO overdue_lifts (kind, device_code, district_code, company)
    SELECT kind.name, e.device_code, e.district_code, e.maintenance_company
    FROM (SELECT 'inspection' AS name UNION ALL SELECT 'any') kind, elevators e INDEXED BY elevators_next_inspection
    WHERE NEW.figure = 'next_inspection' AND e.next_inspection >= OLD.before AND e.next_inspection < NEW.before;
END;
