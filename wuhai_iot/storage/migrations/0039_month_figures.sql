-- The reports' figures per CST month: the evaluation report and the public page sum a phase's or a year's
-- alarms, rescues, maintenance visits, fill decisions and fitted lifts. Summed from day_figures (a row per
-- district and day) that read 330,000 SQLite steps a report at the province, more as the window grows. Kept here
-- from day_figures' totals (company '') by triggers, in the same transaction as the change that moves them
-- (storage/figures.py reads them: a row per district and month, and the days of a window's partial months from
-- day_figures). tests/test_figures.py recounts them from day_figures.
CREATE TABLE month_figures (
    month TEXT NOT NULL,                 -- 'YYYY-MM' (CST), or '' for "unknown, long ago" (fitted_on)
    figure TEXT NOT NULL,
    district_code TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (month, figure, district_code)
) WITHOUT ROWID;

-- The lifts fitted before a month (every month before it) are read on this.
CREATE INDEX month_figures_by_figure ON month_figures (figure, month, district_code, value);

-- (The figures kept per month: the same condition in each trigger, on NEW or OLD.)
CREATE TRIGGER day_figures_months_insert AFTER INSERT ON day_figures
WHEN NEW.company = '' AND (NEW.figure IN ('rescues', 'rescues:arrived', 'fills_permitted', 'fitted_on')
    OR NEW.figure GLOB 'alarms:*' OR NEW.figure GLOB 'visits:*' OR NEW.figure GLOB 'fills_denied:*')
BEGIN
    INSERT INTO month_figures (month, figure, district_code, value)
        VALUES (substr(NEW.day, 1, 7), NEW.figure, NEW.district_code, NEW.value)
    ON CONFLICT (month, figure, district_code) DO UPDATE SET value = value + excluded.value;
END;

CREATE TRIGGER day_figures_months_update AFTER UPDATE OF value ON day_figures
WHEN NEW.company = '' AND NEW.value IS NOT OLD.value
    AND (NEW.figure IN ('rescues', 'rescues:arrived', 'fills_permitted', 'fitted_on')
    OR NEW.figure GLOB 'alarms:*' OR NEW.figure GLOB 'visits:*' OR NEW.figure GLOB 'fills_denied:*')
BEGIN
    UPDATE month_figures SET value = value + NEW.value - OLD.value
    WHERE month = substr(NEW.day, 1, 7) AND figure = NEW.figure AND district_code = NEW.district_code;
END;

CREATE TRIGGER day_figures_months_delete AFTER DELETE ON day_figures
WHEN OLD.company = '' AND OLD.value != 0
    AND (OLD.figure IN ('rescues', 'rescues:arrived', 'fills_permitted', 'fitted_on')
    OR OLD.figure GLOB 'alarms:*' OR OLD.figure GLOB 'visits:*' OR OLD.figure GLOB 'fills_denied:*')
BEGIN
    UPDATE month_figures SET value = value - OLD.value
    WHERE month = substr(OLD.day, 1, 7) AND figure = OLD.figure AND district_code = OLD.district_code;
END;

-- A month back at zero is dropped (as a recount has no row for it).
CREATE TRIGGER month_figures_drop_zero AFTER UPDATE OF value ON month_figures WHEN NEW.value = 0
BEGIN
    DELETE FROM month_figures WHERE month = NEW.month AND figure = NEW.figure AND district_code = NEW.district_code;
END;

-- What is already there.
INSERT INTO month_figures (month, figure, district_code, value)
    SELECT substr(day, 1, 7), figure, district_code, sum(value) FROM day_figures
    WHERE company = '' AND (figure IN ('rescues', 'rescues:arrived', 'fills_permitted', 'fitted_on')
        OR figure GLOB 'alarms:*' OR figure GLOB 'visits:*' OR figure GLOB 'fills_denied:*')
    GROUP BY 1, 2, 3 HAVING sum(value) != 0;
