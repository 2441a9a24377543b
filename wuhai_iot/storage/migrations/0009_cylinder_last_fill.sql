-- Each cylinder's newest fill, kept with it by the fill records (filling/records.py): "cylinders filled in
-- the last 30 days" of the rollout figures becomes part of the one pass over the cylinders' district keys,
-- instead of a month of fills (about 140,000 at city scale) looked up one by one.
ALTER TABLE cylinders ADD COLUMN last_filled_at REAL;
UPDATE cylinders SET last_filled_at = (SELECT max(f.ended_at) FROM fills f WHERE f.cylinder_code = cylinders.cylinder_code);
DROP INDEX cylinders_district_keys;
CREATE INDEX cylinders_district_keys ON cylinders (vehicle_plate, owner_station, tag_uid, last_filled_at);
DROP INDEX cylinders_code_district_keys;
