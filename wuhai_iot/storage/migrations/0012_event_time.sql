-- Event time (docs/time.md): terminals whose clock showed an impossible time, and latest states dated on
-- receipt (the next record on a sane clock replaces them even when its time is a little earlier).
ALTER TABLE terminal_sessions ADD COLUMN clock_wrong_at REAL;            -- received at; NULL: clock sane
ALTER TABLE terminal_sessions ADD COLUMN clock_wrong_device_time REAL;   -- the impossible device time it showed
ALTER TABLE elevator_state ADD COLUMN dated_on_receipt INTEGER NOT NULL DEFAULT 0;
-- Rescue: the staff's dispatch entry (who was sent, when, entered by whom).
ALTER TABLE rescues ADD COLUMN dispatched_at REAL;
ALTER TABLE rescues ADD COLUMN dispatched_to TEXT;
ALTER TABLE rescues ADD COLUMN dispatched_by TEXT;
CREATE INDEX rescues_late ON rescues (late, raised_at);
-- Only a visit with no flag is maintenance (domain.md): the index of each lift's last one says so.
DROP INDEX maintenance_visits_completed;
CREATE INDEX maintenance_visits_completed ON maintenance_visits (device_code, ended_at)
    WHERE started_at IS NOT NULL AND ended_at IS NOT NULL AND flags = '';
