-- A filling station's figures per CST day, kept by triggers in the same transaction as the decision or fill
-- that moves them (as lift_daily and vehicle_daily are kept per lift and vehicle): the station list's "today"
-- and a station's page and API (fills per day, decisions by reason over up to 366 days) read a row per day
-- instead of counting every decision and fill of the window (a station of the city's benchmark: 15,000 fills
-- in 30 days, 45 ms a page). tests/test_figures.py recounts them from the raw rows.

-- Decisions by what was decided: permitted (permit 1, reason 0), or denied and why.
CREATE TABLE station_daily_decisions (
    station_code INTEGER NOT NULL,
    day TEXT NOT NULL,                   -- CST date of decided_at
    permit INTEGER NOT NULL,
    reason INTEGER NOT NULL,
    decisions INTEGER NOT NULL,
    PRIMARY KEY (station_code, day, permit, reason)
) WITHOUT ROWID;

-- Fill results: every result reported, the completed ones (outcome 0) and the gas they put in.
CREATE TABLE station_daily_fills (
    station_code INTEGER NOT NULL,
    day TEXT NOT NULL,                   -- CST date of ended_at
    fills INTEGER NOT NULL,
    completed INTEGER NOT NULL,
    net_g INTEGER NOT NULL,
    PRIMARY KEY (station_code, day)
) WITHOUT ROWID;

-- Recording a decision or a fill is one upsert each (the writer's thread, after the answer has gone out).
CREATE TRIGGER fill_decisions_station_daily_insert AFTER INSERT ON fill_decisions
BEGIN
    INSERT INTO station_daily_decisions (station_code, day, permit, reason, decisions)
        VALUES (NEW.station_code, date(NEW.decided_at, 'unixepoch', '+8 hours'), NEW.permit, NEW.reason, 1)
    ON CONFLICT (station_code, day, permit, reason) DO UPDATE SET decisions = decisions + 1;
END;

CREATE TRIGGER fills_station_daily_insert AFTER INSERT ON fills
BEGIN
    INSERT INTO station_daily_fills (station_code, day, fills, completed, net_g)
        VALUES (NEW.station_code, date(NEW.ended_at, 'unixepoch', '+8 hours'), 1, NEW.outcome = 0,
                iif(NEW.outcome = 0, NEW.gross_after_g - NEW.gross_before_g, 0))
    ON CONFLICT (station_code, day) DO UPDATE SET fills = fills + 1, completed = completed + excluded.completed,
        net_g = net_g + excluded.net_g;
END;

-- Records are not rewritten or deleted by the platform; should one be (by hand, or a future retention), its
-- day's figures follow, and a day left with nothing is dropped (as a recount has no row for it).
CREATE TRIGGER fill_decisions_station_daily_delete AFTER DELETE ON fill_decisions
BEGIN
    UPDATE station_daily_decisions SET decisions = decisions - 1 WHERE station_code = OLD.station_code
        AND day = date(OLD.decided_at, 'unixepoch', '+8 hours') AND permit = OLD.permit AND reason = OLD.reason;
    DELETE FROM station_daily_decisions WHERE station_code = OLD.station_code
        AND day = date(OLD.decided_at, 'unixepoch', '+8 hours') AND permit = OLD.permit AND reason = OLD.reason
        AND decisions = 0;
END;

CREATE TRIGGER fill_decisions_station_daily_update AFTER UPDATE OF station_code, decided_at, permit, reason
    ON fill_decisions
WHEN OLD.station_code IS NOT NEW.station_code OR OLD.permit IS NOT NEW.permit OR OLD.reason IS NOT NEW.reason
    OR date(OLD.decided_at, 'unixepoch', '+8 hours') IS NOT date(NEW.decided_at, 'unixepoch', '+8 hours')
BEGIN
    UPDATE station_daily_decisions SET decisions = decisions - 1 WHERE station_code = OLD.station_code
        AND day = date(OLD.decided_at, 'unixepoch', '+8 hours') AND permit = OLD.permit AND reason = OLD.reason;
    DELETE FROM station_daily_decisions WHERE station_code = OLD.station_code
        AND day = date(OLD.decided_at, 'unixepoch', '+8 hours') AND permit = OLD.permit AND reason = OLD.reason
        AND decisions = 0;
    INSERT INTO station_daily_decisions (station_code, day, permit, reason, decisions)
        VALUES (NEW.station_code, date(NEW.decided_at, 'unixepoch', '+8 hours'), NEW.permit, NEW.reason, 1)
    ON CONFLICT (station_code, day, permit, reason) DO UPDATE SET decisions = decisions + 1;
END;

CREATE TRIGGER fills_station_daily_delete AFTER DELETE ON fills
BEGIN
    UPDATE station_daily_fills SET fills = fills - 1, completed = completed - (OLD.outcome = 0),
        net_g = net_g - iif(OLD.outcome = 0, OLD.gross_after_g - OLD.gross_before_g, 0)
    WHERE station_code = OLD.station_code AND day = date(OLD.ended_at, 'unixepoch', '+8 hours');
    DELETE FROM station_daily_fills WHERE station_code = OLD.station_code
        AND day = date(OLD.ended_at, 'unixepoch', '+8 hours') AND fills = 0;
END;

CREATE TRIGGER fills_station_daily_update AFTER UPDATE OF station_code, ended_at, outcome, gross_before_g,
    gross_after_g ON fills
WHEN OLD.station_code IS NOT NEW.station_code OR OLD.outcome IS NOT NEW.outcome
    OR OLD.gross_before_g IS NOT NEW.gross_before_g OR OLD.gross_after_g IS NOT NEW.gross_after_g
    OR date(OLD.ended_at, 'unixepoch', '+8 hours') IS NOT date(NEW.ended_at, 'unixepoch', '+8 hours')
BEGIN
    UPDATE station_daily_fills SET fills = fills - 1, completed = completed - (OLD.outcome = 0),
        net_g = net_g - iif(OLD.outcome = 0, OLD.gross_after_g - OLD.gross_before_g, 0)
    WHERE station_code = OLD.station_code AND day = date(OLD.ended_at, 'unixepoch', '+8 hours');
    DELETE FROM station_daily_fills WHERE station_code = OLD.station_code
        AND day = date(OLD.ended_at, 'unixepoch', '+8 hours') AND fills = 0;
    INSERT INTO station_daily_fills (station_code, day, fills, completed, net_g)
        VALUES (NEW.station_code, date(NEW.ended_at, 'unixepoch', '+8 hours'), 1, NEW.outcome = 0,
                iif(NEW.outcome = 0, NEW.gross_after_g - NEW.gross_before_g, 0))
    ON CONFLICT (station_code, day) DO UPDATE SET fills = fills + 1, completed = completed + excluded.completed,
        net_g = net_g + excluded.net_g;
END;

-- What is already there.
INSERT INTO station_daily_decisions (station_code, day, permit, reason, decisions)
    SELECT station_code, date(decided_at, 'unixepoch', '+8 hours'), permit, reason, count(*) FROM fill_decisions
    GROUP BY 1, 2, 3, 4;
INSERT INTO station_daily_fills (station_code, day, fills, completed, net_g)
    SELECT station_code, date(ended_at, 'unixepoch', '+8 hours'), count(*), sum(outcome = 0),
        sum(iif(outcome = 0, gross_after_g - gross_before_g, 0)) FROM fills GROUP BY 1, 2;

-- A station's open alarms (the station list's column) are counted on this, whatever its alarms of the past.
CREATE INDEX alarms_station_open ON alarms (station_code)
    WHERE station_code IS NOT NULL AND status != 'resolved' AND merged_into IS NULL;
