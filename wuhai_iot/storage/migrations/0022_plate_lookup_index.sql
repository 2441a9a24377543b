-- A typed plate is looked up without its dot, spaces or dashes (filling/trace.py, registered_plate): an index
-- on that same expression, so that the look-up does not read every vehicle.
CREATE INDEX vehicles_plate_typed ON vehicles (replace(replace(replace(replace(upper(plate), '·', ''), '.', ''), ' ', ''), '-', ''));
