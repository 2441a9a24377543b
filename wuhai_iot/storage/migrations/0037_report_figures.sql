-- The reports' running figures: rescues per district and day with their arrival times (the monthly report, the
-- public page), maintenance visits per district and day and lifts by the day they were fitted (the public page),
-- and the terminals' runs of days with data (the installations report).

-- Running figures of rescues per district and CST day raised (see 0021, 0030 and storage/figures.py): the
-- monthly report's rescues, late ones and arrival times read a month of these (a few hundred rows) instead of
-- every rescue of the month (8,000 at the province, more as the city grows).
--
-- A rescue counts in the district of its lift, as the rescue lists scope it (elevators/rescue.py): kept on the
-- rescue row (counted_district: '' when its lift is in no district, NULL until first set), as alarms keep
-- theirs (0030), so that a lift's census correction re-scopes its own rescues and moves their counts.
-- The figures, per (district, day): 'rescues' (raised), 'rescues:arrived', 'rescues:arrival_cmin' (the sum of
-- the arrivals' minutes, in hundredths: arrival_min is stored to two decimals, so the sum stays exact) and
-- 'rescues:late'.

ALTER TABLE rescues ADD COLUMN counted_district TEXT;

CREATE VIEW rescue_day_counts AS
SELECT r.alarm_id, r.counted_district AS district_code, date(r.raised_at, 'unixepoch', '+8 hours') AS day, f.figure,
    CASE f.figure WHEN 'rescues' THEN 1 WHEN 'rescues:arrived' THEN r.arrival_min IS NOT NULL
        WHEN 'rescues:arrival_cmin' THEN CAST(round(r.arrival_min * 100) AS INTEGER) WHEN 'rescues:late' THEN r.late != 0
    END AS value
FROM rescues r, (SELECT 'rescues' AS figure UNION ALL SELECT 'rescues:arrived' UNION ALL SELECT 'rescues:arrival_cmin'
                 UNION ALL SELECT 'rescues:late') f
WHERE r.counted_district IS NOT NULL;

-- Arrival times per district and CST month raised, rounded up to a tenth of a minute (a few hundred values a
-- month, whatever the number of rescues): the public page's median and 90th percentile are read from these.
CREATE TABLE rescue_arrivals (
    month TEXT NOT NULL,                 -- 'YYYY-MM', CST
    district_code TEXT NOT NULL,
    tenths INTEGER NOT NULL,             -- the arrival time in tenths of a minute, rounded up
    rescues INTEGER NOT NULL,
    PRIMARY KEY (month, district_code, tenths)
) WITHOUT ROWID;

CREATE VIEW rescue_arrival_counts AS
SELECT r.alarm_id, r.counted_district AS district_code, strftime('%Y-%m', r.raised_at + 8 * 3600, 'unixepoch') AS month,
    (CAST(round(r.arrival_min * 100) AS INTEGER) + 9) / 10 AS tenths
FROM rescues r WHERE r.counted_district IS NOT NULL AND r.arrival_min IS NOT NULL;

CREATE TRIGGER rescue_arrivals_drop_zero AFTER UPDATE OF rescues ON rescue_arrivals WHEN NEW.rescues = 0
BEGIN
    DELETE FROM rescue_arrivals WHERE month = NEW.month AND district_code = NEW.district_code AND tenths = NEW.tenths;
END;

CREATE TRIGGER rescues_scope_insert AFTER INSERT ON rescues
BEGIN
    UPDATE rescues SET counted_district = coalesce((SELECT e.district_code FROM elevators e
                                                    WHERE e.device_code = NEW.device_code), '')
    WHERE alarm_id = NEW.alarm_id;
END;

CREATE TRIGGER rescues_scope_update AFTER UPDATE OF device_code ON rescues WHEN OLD.device_code IS NOT NEW.device_code
BEGIN
    UPDATE rescues SET counted_district = coalesce((SELECT e.district_code FROM elevators e
                                                    WHERE e.device_code = NEW.device_code), '')
    WHERE alarm_id = NEW.alarm_id;
END;

-- A lift entering or leaving the registry, or moving district, re-scopes its own rescues.
CREATE TRIGGER elevators_rescues_insert AFTER INSERT ON elevators
BEGIN
    UPDATE rescues SET counted_district = NEW.district_code WHERE device_code = NEW.device_code;
END;

CREATE TRIGGER elevators_rescues_update AFTER UPDATE OF district_code ON elevators
WHEN OLD.district_code IS NOT NEW.district_code
BEGIN
    UPDATE rescues SET counted_district = NEW.district_code WHERE device_code = NEW.device_code;
END;

CREATE TRIGGER elevators_rescues_delete AFTER DELETE ON elevators
BEGIN
    UPDATE rescues SET counted_district = '' WHERE device_code = OLD.device_code;
END;

-- A rescue's contribution taken away while the row holds its old values, the new one added after (0031).
CREATE TRIGGER rescues_figures_before_update BEFORE UPDATE OF counted_district, raised_at, arrival_min, late ON rescues
WHEN OLD.counted_district IS NOT NEW.counted_district OR OLD.raised_at IS NOT NEW.raised_at
    OR OLD.arrival_min IS NOT NEW.arrival_min OR OLD.late IS NOT NEW.late
BEGIN
    INSERT INTO day_figures (district_code, company, figure, day, value)
        SELECT district_code, '', figure, day, -value FROM rescue_day_counts WHERE alarm_id = OLD.alarm_id AND value != 0
    ON CONFLICT (figure, district_code, company, day) DO UPDATE SET value = value + excluded.value;
    INSERT INTO rescue_arrivals (month, district_code, tenths, rescues)
        SELECT month, district_code, tenths, -1 FROM rescue_arrival_counts WHERE alarm_id = OLD.alarm_id
    ON CONFLICT (month, district_code, tenths) DO UPDATE SET rescues = rescues + excluded.rescues;
END;

CREATE TRIGGER rescues_figures_update AFTER UPDATE OF counted_district, raised_at, arrival_min, late ON rescues
WHEN OLD.counted_district IS NOT NEW.counted_district OR OLD.raised_at IS NOT NEW.raised_at
    OR OLD.arrival_min IS NOT NEW.arrival_min OR OLD.late IS NOT NEW.late
BEGIN
    INSERT INTO day_figures (district_code, company, figure, day, value)
        SELECT district_code, '', figure, day, value FROM rescue_day_counts WHERE alarm_id = NEW.alarm_id AND value != 0
    ON CONFLICT (figure, district_code, company, day) DO UPDATE SET value = value + excluded.value;
    INSERT INTO rescue_arrivals (month, district_code, tenths, rescues)
        SELECT month, district_code, tenths, 1 FROM rescue_arrival_counts WHERE alarm_id = NEW.alarm_id
    ON CONFLICT (month, district_code, tenths) DO UPDATE SET rescues = rescues + excluded.rescues;
END;

CREATE TRIGGER rescues_figures_delete BEFORE DELETE ON rescues WHEN OLD.counted_district IS NOT NULL
BEGIN
    INSERT INTO day_figures (district_code, company, figure, day, value)
        SELECT district_code, '', figure, day, -value FROM rescue_day_counts WHERE alarm_id = OLD.alarm_id AND value != 0
    ON CONFLICT (figure, district_code, company, day) DO UPDATE SET value = value + excluded.value;
    INSERT INTO rescue_arrivals (month, district_code, tenths, rescues)
        SELECT month, district_code, tenths, -1 FROM rescue_arrival_counts WHERE alarm_id = OLD.alarm_id
    ON CONFLICT (month, district_code, tenths) DO UPDATE SET rescues = rescues + excluded.rescues;
END;

-- What is already there (through the triggers above).
UPDATE rescues SET counted_district = coalesce((SELECT e.district_code FROM elevators e
                                                WHERE e.device_code = rescues.device_code), '');

-- Maintenance visits per district and CST day begun (ended, for an end without a start), in the district of
-- their lift as the lift lists scope it: 'visits:verified' (begun and ended, no flag) and 'visits:flagged'. A
-- visit is written whole on each change (maintenance/visits); a lift moving district moves its visits' counts.
CREATE VIEW visit_day_counts AS
SELECT v.id, v.device_code, e.district_code,
    date(coalesce(v.started_at, v.ended_at), 'unixepoch', '+8 hours') AS day,
    CASE WHEN v.flags != '' THEN 'visits:flagged' ELSE 'visits:verified' END AS figure
FROM maintenance_visits v JOIN elevators e ON e.device_code = v.device_code
WHERE coalesce(v.started_at, v.ended_at) IS NOT NULL
    AND (v.flags != '' OR (v.started_at IS NOT NULL AND v.ended_at IS NOT NULL));

CREATE TRIGGER visits_figures_insert AFTER INSERT ON maintenance_visits
BEGIN
    INSERT INTO day_figures (district_code, company, figure, day, value)
        SELECT district_code, '', figure, day, 1 FROM visit_day_counts WHERE id = NEW.id
    ON CONFLICT (figure, district_code, company, day) DO UPDATE SET value = value + excluded.value;
END;

CREATE TRIGGER visits_figures_before_update BEFORE UPDATE OF device_code, started_at, ended_at, flags ON maintenance_visits
WHEN OLD.device_code IS NOT NEW.device_code OR OLD.started_at IS NOT NEW.started_at OR OLD.ended_at IS NOT NEW.ended_at
    OR OLD.flags IS NOT NEW.flags
BEGIN
    INSERT INTO day_figures (district_code, company, figure, day, value)
        SELECT district_code, '', figure, day, -1 FROM visit_day_counts WHERE id = OLD.id
    ON CONFLICT (figure, district_code, company, day) DO UPDATE SET value = value + excluded.value;
END;

CREATE TRIGGER visits_figures_update AFTER UPDATE OF device_code, started_at, ended_at, flags ON maintenance_visits
WHEN OLD.device_code IS NOT NEW.device_code OR OLD.started_at IS NOT NEW.started_at OR OLD.ended_at IS NOT NEW.ended_at
    OR OLD.flags IS NOT NEW.flags
BEGIN
    INSERT INTO day_figures (district_code, company, figure, day, value)
        SELECT district_code, '', figure, day, 1 FROM visit_day_counts WHERE id = NEW.id
    ON CONFLICT (figure, district_code, company, day) DO UPDATE SET value = value + excluded.value;
END;

CREATE TRIGGER visits_figures_delete BEFORE DELETE ON maintenance_visits
BEGIN
    INSERT INTO day_figures (district_code, company, figure, day, value)
        SELECT district_code, '', figure, day, -1 FROM visit_day_counts WHERE id = OLD.id
    ON CONFLICT (figure, district_code, company, day) DO UPDATE SET value = value + excluded.value;
END;

CREATE TRIGGER elevators_visits_insert AFTER INSERT ON elevators
WHEN EXISTS (SELECT 1 FROM maintenance_visits v WHERE v.device_code = NEW.device_code)
BEGIN
    INSERT INTO day_figures (district_code, company, figure, day, value)
        SELECT district_code, '', figure, day, count(*) FROM visit_day_counts WHERE device_code = NEW.device_code
        GROUP BY figure, day
    ON CONFLICT (figure, district_code, company, day) DO UPDATE SET value = value + excluded.value;
END;

CREATE TRIGGER elevators_visits_before_update BEFORE UPDATE OF district_code ON elevators
WHEN OLD.district_code IS NOT NEW.district_code
BEGIN
    INSERT INTO day_figures (district_code, company, figure, day, value)
        SELECT district_code, '', figure, day, -count(*) FROM visit_day_counts WHERE device_code = OLD.device_code
        GROUP BY figure, day
    ON CONFLICT (figure, district_code, company, day) DO UPDATE SET value = value + excluded.value;
END;

CREATE TRIGGER elevators_visits_update AFTER UPDATE OF district_code ON elevators
WHEN OLD.district_code IS NOT NEW.district_code
BEGIN
    INSERT INTO day_figures (district_code, company, figure, day, value)
        SELECT district_code, '', figure, day, count(*) FROM visit_day_counts WHERE device_code = NEW.device_code
        GROUP BY figure, day
    ON CONFLICT (figure, district_code, company, day) DO UPDATE SET value = value + excluded.value;
END;

CREATE TRIGGER elevators_visits_delete BEFORE DELETE ON elevators
BEGIN
    INSERT INTO day_figures (district_code, company, figure, day, value)
        SELECT district_code, '', figure, day, -count(*) FROM visit_day_counts WHERE device_code = OLD.device_code
        GROUP BY figure, day
    ON CONFLICT (figure, district_code, company, day) DO UPDATE SET value = value + excluded.value;
END;

INSERT INTO day_figures (district_code, company, figure, day, value)
    SELECT district_code, '', figure, day, count(*) FROM visit_day_counts GROUP BY district_code, figure, day
ON CONFLICT (figure, district_code, company, day) DO UPDATE SET value = value + excluded.value;

-- Fitted lifts by the CST day their first terminal was installed ('fitted_on'; '' when a terminal's date is not
-- recorded), per district and maintenance company (rolled up by 0021): the public page's lifts fitted by the
-- end of each month, and the time they could have been online. Kept by triggers of their own that fire only
-- when a lift's terminals, its first installation day, district or company change (not on its alarms and
-- visits, which lift_day_counts' triggers follow).
-- (On insert, the row as inserted: elevators_facts_insert then counts its terminals through the update triggers.)
CREATE TRIGGER elevators_fitted_insert AFTER INSERT ON elevators
BEGIN
    INSERT INTO day_figures (district_code, company, figure, day, value)
        SELECT NEW.district_code, NEW.maintenance_company, 'fitted_on', NEW.tracked_since, 1 WHERE NEW.terminals > 0
    ON CONFLICT (figure, district_code, company, day) DO UPDATE SET value = value + excluded.value;
END;

CREATE TRIGGER elevators_fitted_before_update BEFORE UPDATE OF terminals, tracked_since, district_code,
    maintenance_company ON elevators
WHEN (OLD.terminals > 0) IS NOT (NEW.terminals > 0) OR OLD.tracked_since IS NOT NEW.tracked_since
    OR OLD.district_code IS NOT NEW.district_code OR OLD.maintenance_company IS NOT NEW.maintenance_company
BEGIN
    INSERT INTO day_figures (district_code, company, figure, day, value)
        SELECT OLD.district_code, OLD.maintenance_company, 'fitted_on', OLD.tracked_since, -1 WHERE OLD.terminals > 0
    ON CONFLICT (figure, district_code, company, day) DO UPDATE SET value = value + excluded.value;
END;

CREATE TRIGGER elevators_fitted_update AFTER UPDATE OF terminals, tracked_since, district_code,
    maintenance_company ON elevators
WHEN (OLD.terminals > 0) IS NOT (NEW.terminals > 0) OR OLD.tracked_since IS NOT NEW.tracked_since
    OR OLD.district_code IS NOT NEW.district_code OR OLD.maintenance_company IS NOT NEW.maintenance_company
BEGIN
    INSERT INTO day_figures (district_code, company, figure, day, value)
        SELECT NEW.district_code, NEW.maintenance_company, 'fitted_on', NEW.tracked_since, 1 WHERE NEW.terminals > 0
    ON CONFLICT (figure, district_code, company, day) DO UPDATE SET value = value + excluded.value;
END;

CREATE TRIGGER elevators_fitted_delete BEFORE DELETE ON elevators WHEN OLD.terminals > 0
BEGIN
    INSERT INTO day_figures (district_code, company, figure, day, value)
        VALUES (OLD.district_code, OLD.maintenance_company, 'fitted_on', OLD.tracked_since, -1)
    ON CONFLICT (figure, district_code, company, day) DO UPDATE SET value = value + excluded.value;
END;

INSERT INTO day_figures (district_code, company, figure, day, value)
    SELECT district_code, maintenance_company, 'fitted_on', tracked_since, count(*) FROM elevators WHERE terminals > 0
    GROUP BY district_code, maintenance_company, tracked_since
ON CONFLICT (figure, district_code, company, day) DO UPDATE SET value = value + excluded.value;

-- The installations report (publishing/installations.py) judges a terminal by its runs of consecutive CST days
-- with valid data. Recounting them from terminal_days read every day each terminal ever reported (a year at the
-- province: 36 million rows) on every request. The runs are kept here as days are recorded (a handful of rows
-- per terminal: one per gap), so a page reads the runs of its own terminals only. Runs hold every recorded day;
-- the report clips them at the terminal's installation date.
CREATE TABLE terminal_runs (
    protocol TEXT NOT NULL,
    terminal_id TEXT NOT NULL,
    first_day TEXT NOT NULL,
    last_day TEXT NOT NULL,
    PRIMARY KEY (protocol, terminal_id, first_day)
) WITHOUT ROWID;

-- A day joins the run that ends the day before and the one that starts the day after (one run when both
-- exist), or starts a run of its own.
CREATE TRIGGER terminal_days_runs_insert AFTER INSERT ON terminal_days
BEGIN
    UPDATE terminal_runs SET last_day = coalesce((SELECT n.last_day FROM terminal_runs n WHERE n.protocol = NEW.protocol
                                                  AND n.terminal_id = NEW.terminal_id AND n.first_day = date(NEW.day, '+1 day')),
                                                 NEW.day)
    WHERE protocol = NEW.protocol AND terminal_id = NEW.terminal_id AND last_day = date(NEW.day, '-1 day');
    DELETE FROM terminal_runs WHERE protocol = NEW.protocol AND terminal_id = NEW.terminal_id
        AND first_day = date(NEW.day, '+1 day') AND EXISTS (SELECT 1 FROM terminal_runs p WHERE p.protocol = NEW.protocol
            AND p.terminal_id = NEW.terminal_id AND p.first_day < NEW.day AND p.last_day > NEW.day);
    UPDATE terminal_runs SET first_day = NEW.day
    WHERE protocol = NEW.protocol AND terminal_id = NEW.terminal_id AND first_day = date(NEW.day, '+1 day');
    INSERT INTO terminal_runs (protocol, terminal_id, first_day, last_day)
        SELECT NEW.protocol, NEW.terminal_id, NEW.day, NEW.day WHERE NOT EXISTS (SELECT 1 FROM terminal_runs r
            WHERE r.protocol = NEW.protocol AND r.terminal_id = NEW.terminal_id AND r.first_day <= NEW.day
            AND r.last_day >= NEW.day);
END;

-- A day taken away splits its run in two (or shortens it, or removes it).
CREATE TRIGGER terminal_days_runs_delete AFTER DELETE ON terminal_days
BEGIN
    INSERT INTO terminal_runs (protocol, terminal_id, first_day, last_day)
        SELECT protocol, terminal_id, date(OLD.day, '+1 day'), last_day FROM terminal_runs
        WHERE protocol = OLD.protocol AND terminal_id = OLD.terminal_id AND first_day <= OLD.day AND last_day > OLD.day;
    UPDATE terminal_runs SET last_day = date(OLD.day, '-1 day')
    WHERE protocol = OLD.protocol AND terminal_id = OLD.terminal_id AND first_day < OLD.day AND last_day >= OLD.day;
    DELETE FROM terminal_runs WHERE protocol = OLD.protocol AND terminal_id = OLD.terminal_id AND first_day = OLD.day;
END;

-- What is already there: runs are islands of days whose date minus their rank is the same.
INSERT INTO terminal_runs (protocol, terminal_id, first_day, last_day)
    SELECT protocol, terminal_id, min(day), max(day) FROM (
        SELECT protocol, terminal_id, day,
               julianday(day) - row_number() OVER (PARTITION BY protocol, terminal_id ORDER BY day) AS island
        FROM terminal_days)
    GROUP BY protocol, terminal_id, island;

-- The installations list pages by installing unit and terminal on this.
CREATE INDEX terminals_installer ON terminals (coalesce(installer, ''), protocol, terminal_id);
