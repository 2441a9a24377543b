-- Indexes the pages and the JSON API need at city scale (benchmarks/bench_pages.py).

-- Denied fill requests by reason over a window, per station (dashboard, station list): a few per cent of the
-- decisions, found by station for the whole city and for a district alike.
CREATE INDEX fill_decisions_denied ON fill_decisions (station_code, decided_at, reason) WHERE permit = 0;

-- Each lift's last completed maintenance visit (lifts.py: the maintenance overdue rule), read as the first
-- entry of the lift's range instead of every visit of its year.
CREATE INDEX maintenance_visits_completed ON maintenance_visits (device_code, ended_at)
    WHERE started_at IS NOT NULL AND ended_at IS NOT NULL;
