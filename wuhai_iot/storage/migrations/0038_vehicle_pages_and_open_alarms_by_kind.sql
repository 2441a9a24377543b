-- Pages whose cost grew with the city: /metrics' open alarms per kind, the vehicle list and its filters, and
-- the stations drawn on a vehicle's page.
--
-- Open alarms per kind as a running figure ('open_kind:<kind>', per district and company like 'open:<severity>'
-- of 0030): /metrics' wuhai_alarms_open counted every open alarm on each scrape, so its cost grew with the city.
-- The two triggers of 0030 that move the alarm figures are replaced by the same ones moving this figure too.

DROP TRIGGER alarms_figures_update;
DROP TRIGGER alarms_figures_delete;

CREATE TRIGGER alarms_figures_update AFTER UPDATE OF counted_district, counted_company, status, merged_into,
    severity, kind, raised_at ON alarms
WHEN OLD.counted_district IS NOT NEW.counted_district OR OLD.counted_company IS NOT NEW.counted_company
    OR (OLD.status = 'resolved') IS NOT (NEW.status = 'resolved') OR (OLD.merged_into IS NULL) IS NOT (NEW.merged_into IS NULL)
    OR OLD.severity IS NOT NEW.severity OR OLD.kind IS NOT NEW.kind
    OR date(OLD.raised_at, 'unixepoch', '+8 hours') IS NOT date(NEW.raised_at, 'unixepoch', '+8 hours')
BEGIN
    INSERT INTO figures (district_code, company, figure, value)
        SELECT OLD.counted_district, OLD.counted_company, 'open:' || OLD.severity, -1
            WHERE OLD.counted_district IS NOT NULL AND OLD.status != 'resolved' AND OLD.merged_into IS NULL
        UNION ALL SELECT OLD.counted_district, OLD.counted_company, 'open_kind:' || OLD.kind, -1
            WHERE OLD.counted_district IS NOT NULL AND OLD.status != 'resolved' AND OLD.merged_into IS NULL
        UNION ALL SELECT NEW.counted_district, NEW.counted_company, 'open:' || NEW.severity, 1
            WHERE NEW.counted_district IS NOT NULL AND NEW.status != 'resolved' AND NEW.merged_into IS NULL
        UNION ALL SELECT NEW.counted_district, NEW.counted_company, 'open_kind:' || NEW.kind, 1
            WHERE NEW.counted_district IS NOT NULL AND NEW.status != 'resolved' AND NEW.merged_into IS NULL
    ON CONFLICT (district_code, company, figure) DO UPDATE SET value = value + excluded.value;
    INSERT INTO day_figures (district_code, company, figure, day, value)
        SELECT OLD.counted_district, OLD.counted_company, 'alarms:' || OLD.kind || ':' || OLD.severity,
               date(OLD.raised_at, 'unixepoch', '+8 hours'), -1
            WHERE OLD.counted_district IS NOT NULL AND OLD.merged_into IS NULL
        UNION ALL SELECT NEW.counted_district, NEW.counted_company, 'alarms:' || NEW.kind || ':' || NEW.severity,
               date(NEW.raised_at, 'unixepoch', '+8 hours'), 1
            WHERE NEW.counted_district IS NOT NULL AND NEW.merged_into IS NULL
    ON CONFLICT (figure, district_code, company, day) DO UPDATE SET value = value + excluded.value;
END;

CREATE TRIGGER alarms_figures_delete AFTER DELETE ON alarms WHEN OLD.counted_district IS NOT NULL
BEGIN
    INSERT INTO figures (district_code, company, figure, value)
        SELECT OLD.counted_district, OLD.counted_company, 'open:' || OLD.severity, -1
        WHERE OLD.status != 'resolved' AND OLD.merged_into IS NULL
        UNION ALL SELECT OLD.counted_district, OLD.counted_company, 'open_kind:' || OLD.kind, -1
        WHERE OLD.status != 'resolved' AND OLD.merged_into IS NULL
    ON CONFLICT (district_code, company, figure) DO UPDATE SET value = value + excluded.value;
    INSERT INTO day_figures (district_code, company, figure, day, value)
        SELECT OLD.counted_district, OLD.counted_company, 'alarms:' || OLD.kind || ':' || OLD.severity,
               date(OLD.raised_at, 'unixepoch', '+8 hours'), -1
        WHERE OLD.merged_into IS NULL
    ON CONFLICT (figure, district_code, company, day) DO UPDATE SET value = value + excluded.value;
END;

-- What is open already (on the open alarms' index; a company's rows add to its district's '' row through the
-- rollup trigger of 0021).
INSERT INTO figures (district_code, company, figure, value)
    SELECT counted_district, counted_company, 'open_kind:' || kind, count(*) FROM alarms
    WHERE status != 'resolved' AND merged_into IS NULL AND counted_district IS NOT NULL
    GROUP BY counted_district, counted_company, kind
ON CONFLICT (district_code, company, figure) DO UPDATE SET value = value + excluded.value;

-- The vehicle list (vehicles/queries.py) pages in plate order and reads only what its filters match: a
-- district's vehicles in plate order (the district index gains the plate), those without a valid certificate
-- (missing or revoked, as the fill decision's reason 8 says), and the plates of the open vehicle alarms
-- (also each listed vehicle's count of them, without walking its resolved alarms).
DROP INDEX vehicles_district;
CREATE INDEX vehicles_district ON vehicles (district_code, plate);
CREATE INDEX vehicles_certificate_invalid ON vehicles (plate)
    WHERE coalesce(certificate_no, '') = '' OR certificate_status = 'revoked';
CREATE INDEX vehicles_district_certificate_invalid ON vehicles (district_code, plate)
    WHERE coalesce(certificate_no, '') = '' OR certificate_status = 'revoked';
CREATE INDEX alarms_vehicles_open ON alarms (plate) WHERE plate IS NOT NULL AND status != 'resolved';

-- A vehicle's page draws the licensed stations near its track: read on their latitude, not every station.
CREATE INDEX stations_latitude ON stations (latitude) WHERE latitude IS NOT NULL;
