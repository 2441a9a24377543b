-- Indexes the rollout coverage needs at city scale (web/queries.py coverage, benchmarks/bench_pages.py).

-- Cylinders per vehicle and owner station (what their district is decided by) with their tags, counted on
-- the index alone in one pass for every district.
CREATE INDEX cylinders_district_keys ON cylinders (vehicle_plate, owner_station, tag_uid);

-- The same keys by cylinder code: the district of each cylinder filled in the window, read from the index.
CREATE INDEX cylinders_code_district_keys ON cylinders (cylinder_code, vehicle_plate, owner_station);

-- Fills by time: the cylinders filled in the last 30 days as one index range instead of a look-up per cylinder.
CREATE INDEX fills_ended ON fills (ended_at, cylinder_code);
