-- Police and transport read vehicle alarms alone, newest first (/api/v1/alarms): an index of the vehicle
-- alarms by id, so that such a page reads its own rows, not every lift alarm raised since.
CREATE INDEX alarms_vehicles ON alarms (id) WHERE plate IS NOT NULL;
