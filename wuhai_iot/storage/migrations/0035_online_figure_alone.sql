-- A lift's terminal going on or off line moves one running figure: 'online' of the lift's district and company
-- (and, by 0021's roll-up, of the district). 0031's triggers took the lift's whole contribution away and added
-- it back (seven figures and two day figures, each rolled up: some forty upserts), which made recording a
-- login cost 0.46 ms of the writer's thread: a fleet of 20,000 logging in at once after a restart spent 9 s
-- there alone. Now a change of nothing but whether a lift has a terminal online updates that one figure
-- (0.05 ms a login); any other change, with or without it, still goes through 0031's triggers, which read
-- every figure of the lift from lift_counts. The figures themselves do not change (tests/test_figures.py
-- recounts them).

DROP TRIGGER elevators_figures_before_update;
DROP TRIGGER elevators_figures_update;

CREATE TRIGGER elevators_figures_before_update BEFORE UPDATE OF district_code, maintenance_company, pilot,
    next_inspection, terminals, tracked_since, last_visit_at, open_alarms, trapped_alarms ON elevators
WHEN OLD.district_code IS NOT NEW.district_code OR OLD.maintenance_company IS NOT NEW.maintenance_company
    OR OLD.pilot IS NOT NEW.pilot OR OLD.next_inspection IS NOT NEW.next_inspection
    OR OLD.terminals IS NOT NEW.terminals OR OLD.tracked_since IS NOT NEW.tracked_since
    OR OLD.last_visit_at IS NOT NEW.last_visit_at
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
    terminals, tracked_since, last_visit_at, open_alarms, trapped_alarms ON elevators
WHEN OLD.district_code IS NOT NEW.district_code OR OLD.maintenance_company IS NOT NEW.maintenance_company
    OR OLD.pilot IS NOT NEW.pilot OR OLD.next_inspection IS NOT NEW.next_inspection
    OR OLD.terminals IS NOT NEW.terminals OR OLD.tracked_since IS NOT NEW.tracked_since
    OR OLD.last_visit_at IS NOT NEW.last_visit_at
    OR OLD.open_alarms IS NOT NEW.open_alarms OR (OLD.trapped_alarms > 0) IS NOT (NEW.trapped_alarms > 0)
BEGIN
    INSERT INTO figures (district_code, company, figure, value)
        SELECT district_code, company, figure, value FROM lift_counts WHERE code = NEW.device_code
    ON CONFLICT (district_code, company, figure) DO UPDATE SET value = value + excluded.value;
    INSERT INTO day_figures (district_code, company, figure, day, value)
        SELECT district_code, company, figure, day, 1 FROM lift_day_counts WHERE code = NEW.device_code
    ON CONFLICT (figure, district_code, company, day) DO UPDATE SET value = value + excluded.value;
END;

-- Only whether a terminal is online changed (the case the triggers above leave out): lift_counts' 'online' is
-- "terminals > 0 AND online_terminals > 0".
CREATE TRIGGER elevators_online_update AFTER UPDATE OF online_terminals ON elevators
WHEN (OLD.online_terminals > 0) IS NOT (NEW.online_terminals > 0)
    AND OLD.district_code IS NEW.district_code AND OLD.maintenance_company IS NEW.maintenance_company
    AND OLD.pilot IS NEW.pilot AND OLD.next_inspection IS NEW.next_inspection
    AND OLD.terminals IS NEW.terminals AND OLD.tracked_since IS NEW.tracked_since
    AND OLD.last_visit_at IS NEW.last_visit_at
    AND OLD.open_alarms IS NEW.open_alarms AND (OLD.trapped_alarms > 0) IS (NEW.trapped_alarms > 0)
BEGIN
    INSERT INTO figures (district_code, company, figure, value)
        VALUES (NEW.district_code, NEW.maintenance_company, 'online',
                (NEW.terminals > 0 AND NEW.online_terminals > 0) - (OLD.terminals > 0 AND OLD.online_terminals > 0))
    ON CONFLICT (district_code, company, figure) DO UPDATE SET value = value + excluded.value;
END;
