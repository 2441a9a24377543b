-- Arrival times per district and CST month raised, by the minute (the tenths of rescue_arrivals, migration 0037,
-- counted ten at a time), kept by triggers in the same transaction as the counts per tenth. The public page and
-- the evaluation report rank a month's or a phase's arrival times: they read these (some 40 rows a district and
-- month), then the tenths of only the minutes where a percentile or the arrival limit falls, instead of every
-- tenth (some 320 rows a district and month: 12,000 rows a year at the province).
CREATE TABLE rescue_arrival_minutes (
    month TEXT NOT NULL,                 -- 'YYYY-MM', CST
    district_code TEXT NOT NULL,
    minute INTEGER NOT NULL,             -- tenths / 10: the tenths 10 × minute to 10 × minute + 9
    rescues INTEGER NOT NULL,
    PRIMARY KEY (month, district_code, minute)
) WITHOUT ROWID;

CREATE TRIGGER rescue_arrivals_minutes_insert AFTER INSERT ON rescue_arrivals
BEGIN
    INSERT INTO rescue_arrival_minutes (month, district_code, minute, rescues)
        VALUES (NEW.month, NEW.district_code, NEW.tenths / 10, NEW.rescues)
    ON CONFLICT (month, district_code, minute) DO UPDATE SET rescues = rescues + excluded.rescues;
END;

CREATE TRIGGER rescue_arrivals_minutes_update AFTER UPDATE OF rescues ON rescue_arrivals
WHEN NEW.rescues IS NOT OLD.rescues
BEGIN
    UPDATE rescue_arrival_minutes SET rescues = rescues + NEW.rescues - OLD.rescues
    WHERE month = NEW.month AND district_code = NEW.district_code AND minute = NEW.tenths / 10;
END;

-- (rescue_arrivals_drop_zero deletes a tenth back at zero: nothing left to take away then.)
CREATE TRIGGER rescue_arrivals_minutes_delete AFTER DELETE ON rescue_arrivals WHEN OLD.rescues != 0
BEGIN
    UPDATE rescue_arrival_minutes SET rescues = rescues - OLD.rescues
    WHERE month = OLD.month AND district_code = OLD.district_code AND minute = OLD.tenths / 10;
END;

CREATE TRIGGER rescue_arrival_minutes_drop_zero AFTER UPDATE OF rescues ON rescue_arrival_minutes WHEN NEW.rescues = 0
BEGIN
    DELETE FROM rescue_arrival_minutes WHERE month = NEW.month AND district_code = NEW.district_code
        AND minute = NEW.minute;
END;

-- What is already there.
INSERT INTO rescue_arrival_minutes (month, district_code, minute, rescues)
    SELECT month, district_code, tenths / 10, sum(rescues) FROM rescue_arrivals GROUP BY 1, 2, 3 HAVING sum(rescues) != 0;
