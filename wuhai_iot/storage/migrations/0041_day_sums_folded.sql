-- "How many lifts are overdue" is a day figure summed over every day before a reference day (0021: the lifts
-- whose maintenance reference day, or next inspection, is before it). Those days reach back as far as the oldest
-- overdue lift and forward to the last inspection planned, so the sum read more rows the larger the city (until
-- every district has lifts on every day): x1.9 its rows from 5,000 to 25,000 lifts.
--
-- Now the days of a figure before a boundary day are kept folded into one sum per district and company, in the
-- same transaction as every change of a day figure (the triggers below), and a sum before any day reads that
-- sum and the days between the boundary and that day (storage/figures.py). The platform moves the boundary to
-- today at start and after every CST midnight (a write that adds one day's rows), so a sum reads at most as
-- many days as the rules' intervals (15 days back, 30 forward) whatever the size of the city. The boundary
-- only ever moves forward; '' (nothing folded yet) until the platform first starts.

CREATE TABLE day_figure_folds (
    figure TEXT PRIMARY KEY,
    before TEXT NOT NULL                 -- day_figures_folded holds the sum of this figure's days before this day
) WITHOUT ROWID;

CREATE TABLE day_figures_folded (
    figure TEXT NOT NULL,
    district_code TEXT NOT NULL,
    company TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (figure, district_code, company)
) WITHOUT ROWID;

INSERT INTO day_figure_folds (figure, before) VALUES ('maintenance_ref', ''), ('next_inspection', '');

-- (A figure that is not folded has no boundary: NULL, and the condition is not met.)
CREATE TRIGGER day_figures_fold_insert AFTER INSERT ON day_figures
WHEN NEW.day < (SELECT before FROM day_figure_folds WHERE figure = NEW.figure)
BEGIN
    INSERT INTO day_figures_folded (figure, district_code, company, value)
    VALUES (NEW.figure, NEW.district_code, NEW.company, NEW.value)
    ON CONFLICT (figure, district_code, company) DO UPDATE SET value = value + excluded.value;
END;

CREATE TRIGGER day_figures_fold_update AFTER UPDATE OF value ON day_figures
WHEN NEW.day < (SELECT before FROM day_figure_folds WHERE figure = NEW.figure)
BEGIN
    UPDATE day_figures_folded SET value = value + NEW.value - OLD.value
    WHERE figure = NEW.figure AND district_code = NEW.district_code AND company = NEW.company;
END;

CREATE TRIGGER day_figures_fold_delete AFTER DELETE ON day_figures
WHEN OLD.day < (SELECT before FROM day_figure_folds WHERE figure = OLD.figure)
BEGIN
    UPDATE day_figures_folded SET value = value - OLD.value
    WHERE figure = OLD.figure AND district_code = OLD.district_code AND company = OLD.company;
END;
