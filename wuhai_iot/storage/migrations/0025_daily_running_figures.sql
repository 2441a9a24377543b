-- Running figures per district and CST day for the monthly report (see 0021 and storage/figures.py): the
-- lifts' online seconds, and the fill decisions (permitted, and denied by reason). Each counts in the district
-- its lift or station was in when it happened.

CREATE TRIGGER lift_daily_online_insert AFTER INSERT ON lift_daily WHEN NEW.online_s != 0
BEGIN
    INSERT INTO day_figures (district_code, company, figure, day, value)
        SELECT e.district_code, '', 'online_s', NEW.day, NEW.online_s FROM elevators e WHERE e.device_code = NEW.device_code
    ON CONFLICT (figure, district_code, company, day) DO UPDATE SET value = value + excluded.value;
END;

CREATE TRIGGER lift_daily_online_update AFTER UPDATE OF online_s ON lift_daily WHEN NEW.online_s != OLD.online_s
BEGIN
    INSERT INTO day_figures (district_code, company, figure, day, value)
        SELECT e.district_code, '', 'online_s', NEW.day, NEW.online_s - OLD.online_s FROM elevators e
        WHERE e.device_code = NEW.device_code
    ON CONFLICT (figure, district_code, company, day) DO UPDATE SET value = value + excluded.value;
END;

CREATE TRIGGER lift_daily_online_delete AFTER DELETE ON lift_daily WHEN OLD.online_s != 0
BEGIN
    INSERT INTO day_figures (district_code, company, figure, day, value)
        SELECT e.district_code, '', 'online_s', OLD.day, -OLD.online_s FROM elevators e WHERE e.device_code = OLD.device_code
    ON CONFLICT (figure, district_code, company, day) DO UPDATE SET value = value + excluded.value;
END;

CREATE TRIGGER fill_decisions_figures AFTER INSERT ON fill_decisions
BEGIN
    INSERT INTO day_figures (district_code, company, figure, day, value)
        SELECT s.district_code, '', CASE WHEN NEW.permit THEN 'fills_permitted' ELSE 'fills_denied:' || NEW.reason END,
               date(NEW.decided_at, 'unixepoch', '+8 hours'), 1
        FROM stations s WHERE s.station_code = NEW.station_code
    ON CONFLICT (figure, district_code, company, day) DO UPDATE SET value = value + excluded.value;
END;

INSERT INTO day_figures (district_code, company, figure, day, value)
    SELECT e.district_code, '', 'online_s', d.day, sum(d.online_s) FROM lift_daily d
    JOIN elevators e ON e.device_code = d.device_code GROUP BY e.district_code, d.day HAVING sum(d.online_s) != 0;
INSERT INTO day_figures (district_code, company, figure, day, value)
    SELECT s.district_code, '', CASE WHEN d.permit THEN 'fills_permitted' ELSE 'fills_denied:' || d.reason END,
           date(d.decided_at, 'unixepoch', '+8 hours'), count(*)
    FROM fill_decisions d JOIN stations s ON s.station_code = d.station_code GROUP BY 1, 3, 4;
