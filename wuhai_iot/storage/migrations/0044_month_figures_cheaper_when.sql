-- The triggers of 0039 that keep month_figures from day_figures cost every day_figures write 4-6 µs more in the
-- writer, also the writes of figures they do not keep (a lift's online seconds, with every status it reports):
-- their WHEN's `figure IN (...)` list is built into a temporary table each time it is evaluated, and updating a
-- month's value rewrote its entry in month_figures_by_figure, which held the value. The same conditions as
-- comparisons, and the index without the value (it finds the fitted lifts' months; their values are read from
-- the table): 1.5-2 µs on a write of another figure, 4-5 µs on one of these.
DROP TRIGGER day_figures_months_insert;
DROP TRIGGER day_figures_months_update;
DROP TRIGGER day_figures_months_delete;

CREATE TRIGGER day_figures_months_insert AFTER INSERT ON day_figures
WHEN NEW.company = '' AND (NEW.figure = 'rescues' OR NEW.figure = 'rescues:arrived' OR NEW.figure = 'fills_permitted'
    OR NEW.figure = 'fitted_on' OR NEW.figure GLOB 'alarms:*' OR NEW.figure GLOB 'visits:*'
    OR NEW.figure GLOB 'fills_denied:*')
BEGIN
    INSERT INTO month_figures (month, figure, district_code, value)
        VALUES (substr(NEW.day, 1, 7), NEW.figure, NEW.district_code, NEW.value)
    ON CONFLICT (month, figure, district_code) DO UPDATE SET value = value + excluded.value;
END;

CREATE TRIGGER day_figures_months_update AFTER UPDATE OF value ON day_figures
WHEN NEW.company = '' AND NEW.value IS NOT OLD.value
    AND (NEW.figure = 'rescues' OR NEW.figure = 'rescues:arrived' OR NEW.figure = 'fills_permitted'
    OR NEW.figure = 'fitted_on' OR NEW.figure GLOB 'alarms:*' OR NEW.figure GLOB 'visits:*'
    OR NEW.figure GLOB 'fills_denied:*')
BEGIN
    UPDATE month_figures SET value = value + NEW.value - OLD.value
    WHERE month = substr(NEW.day, 1, 7) AND figure = NEW.figure AND district_code = NEW.district_code;
END;

CREATE TRIGGER day_figures_months_delete AFTER DELETE ON day_figures
WHEN OLD.company = '' AND OLD.value != 0
    AND (OLD.figure = 'rescues' OR OLD.figure = 'rescues:arrived' OR OLD.figure = 'fills_permitted'
    OR OLD.figure = 'fitted_on' OR OLD.figure GLOB 'alarms:*' OR OLD.figure GLOB 'visits:*'
    OR OLD.figure GLOB 'fills_denied:*')
BEGIN
    UPDATE month_figures SET value = value - OLD.value
    WHERE month = substr(OLD.day, 1, 7) AND figure = OLD.figure AND district_code = OLD.district_code;
END;

DROP INDEX month_figures_by_figure;
CREATE INDEX month_figures_by_figure ON month_figures (figure, month, district_code);
