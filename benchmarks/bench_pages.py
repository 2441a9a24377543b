"""Pages and API lists: p95 latency at two registry sizes in one run, and their ratio.

Every page an officer or admin opens and every API answer is asked, one request at a time, as a logged-in admin
(pages, session cookie) and with an API token (JSON), on two platforms: the city (``--lifts``,
``--cylinders``: 5,000 lifts and 300,000 cylinders by default) and one ``--factor`` times larger (five by
default), each with the same history per lift and per cylinder written straight into the platform's tables
before it starts (what running would have left there). The headline figure is the p95 ratio large/small per
page: a page whose cost does not grow with the city stays near 1.

``--province`` measures one platform of 100,000 lifts, 2,000,000 cylinders, 20,000 vehicles and 625
stations with a year of history instead.

The history is what the platform's retention (``[retention]``) would keep of ``--history-days`` of running:

- records, kept ``records_years`` (4) years, so all of a year: about ten alarms a lift a year (a rescue
  for every trapped passenger; all but the last three days' resolved), a maintenance visit every 15 days
  for every lift, and ``--fills-per-cylinder`` fills a year (6: one every two months) for every tagged
  household cylinder, each with its fill decision (3 % denied); every cylinder's newest fill;
- raw status messages and vehicle track points, kept ``raw_status_days`` (7): the last 7 days only, and
  sparse, ``--status-per-day`` a lift and a vehicle (24, hourly; a live lift reports every 30 s, 120 times
  more). No page reads raw status rows (the lift page's recent frames are in memory), so only the size of
  the database file stands for them;
- the days each terminal sent valid data (``terminal_days``, what the installations report judges), every
  day of the history since its installation but for one terminal in 29, silent for ten days;
- every lift's latest state. Not seeded: the daily online time of lifts and vehicles (written by a running
  platform; the pages read its per-day running figures, a handful of rows whatever their number).

Seeding writes in bulk: each table is one ``INSERT ... SELECT`` run inside SQLite (no Python per row), its
indexes built once after the rows; the running figures come out as the triggers keep them (the few
triggers that recount per row are replaced by one grouped statement from the same rows). ``--data DIR``
keeps the imported census and the seeded database for the next run.

The pages are timed once the platform has finished starting (``caught_up``; ``--just-started``: at once), each
``--requests`` times (100: the p95 is the fifth slowest, which one pause of the machine does not decide as it
decided the second slowest of 40).

Each size is measured in a process of its own, started after the seeding: its resident memory, printed
before the platform starts and after every page has been asked, is the platform's (with the benchmark's
HTTP client), not what the seeding left behind.

Targets: ratio <= 1.5 for every page; p95 <= 100 ms for every page at the sizes measured.

    python benchmarks/bench_pages.py [--lifts 5000 --cylinders 300000 --factor 5 --requests 100]
    nice -n 10 python benchmarks/bench_pages.py --province --data DIR --seed-only   # then, not niced:
    python benchmarks/bench_pages.py --province --data DIR
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import multiprocessing
import os
import pstats
import random
import re
import shutil
import sqlite3
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import aiohttp
from support import census_database, fresh_config, header, percentile, rss_bytes

from wuhai_iot.config import Config, RetentionConfig
from wuhai_iot.elevators.plugin import monitoring
from wuhai_iot.registry import users
from wuhai_iot.runner import run
from wuhai_iot.server import Platform
from wuhai_iot.simulator.census import CensusSize
from wuhai_iot.storage import db
from wuhai_iot.vehicles.monitor import vehicle_monitor
from wuhai_iot.web.auth import WEB_DB_KEY

TARGET_MS = 100.0
TARGET_RATIO = 1.5
STEP_GRAIN = 100
"""SQLite VM instructions per call of the progress handler that counts a request's steps."""
PASSWORD = "benchmark-password"
DAY_S = 86_400
YEAR_S = 365 * DAY_S
RAW_STATUS_DAYS = RetentionConfig.raw_status_days

def _uniform(low: str, high: str) -> str:
    """SQL for a random real in [low, high), drawn by SQLite per row (no Python call per row)."""
    return f"(({low}) + (({high}) - ({low})) * ((random() & 9223372036854775807) % 1000000007) / 1000000007.0)"


def _randint(low: str, high: str) -> str:
    """SQL for a random integer in [low, high], drawn by SQLite per row."""
    return f"(({low}) + (random() & 9223372036854775807) % (({high}) - ({low}) + 1))"


SEEDED = ("alarms", "rescues", "maintenance_visits", "fill_decisions", "fills", "messages", "elevator_state",
          "vehicle_track")  # fmt: skip


def seed_history(database: Path, args: argparse.Namespace) -> dict[str, int]:
    """The history written into the platform's tables (see the module's docstring); returns row counts.

    Written in bulk: each table is one ``INSERT ... SELECT`` that SQLite runs without Python per row (a
    row's random values are drawn once into a temporary table, then copied in time order, as the platform
    would have written them). The running-figure triggers fire as for the platform's own writes, so the
    figures agree with the rows."""
    now = time.time()
    window_s = args.history_days * DAY_S
    raw_s = min(args.history_days, RAW_STATUS_DAYS) * DAY_S
    conn = sqlite3.connect(database, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")  # a seeding that fails is started again from the census
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-1000000")  # 1 GB: the province's indexes stay cached while they grow
    conn.execute("PRAGMA temp_store=FILE")
    counts: dict[str, int] = {}
    triggers = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").fetchall())

    def step(table: str, *statements: str, **values: float) -> None:
        """Run ``statements`` in one transaction; a seeded table's indexes are dropped first and built again
        after (sorting once instead of inserting millions of keys at random places)."""
        started = time.monotonic()
        conn.execute("BEGIN")
        before = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] if table in SEEDED else 0
        indexes = [row for row in conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'"
                                                " AND tbl_name = ? AND sql IS NOT NULL", (table,))]  # fmt: skip
        for name, _ in indexes:
            conn.execute(f"DROP INDEX {name}")
        for statement in statements + tuple(sql for _, sql in indexes):
            conn.execute(statement, {name: value for name, value in values.items() if f":{name}" in statement})
        if table in SEEDED:
            counts[table] = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] - before
        conn.execute("COMMIT")
        print(f"      {table}: {counts.get(table, 0):,} rows in {time.monotonic() - started:.0f} s", flush=True)

    # Every lift numbered (a random lift is a point read), with its terminal; each company's cards numbered.
    step("(numbering)",
         "CREATE TEMP TABLE lift (n INTEGER PRIMARY KEY, device_code TEXT, company TEXT, protocol TEXT,"
         " terminal_id TEXT, phase REAL)",
         "INSERT INTO lift SELECT row_number() OVER (ORDER BY e.device_code) - 1, e.device_code,"
         f" e.maintenance_company, t.protocol, t.terminal_id, {_uniform('0', '15 * 86400')} FROM elevators e"
         " JOIN terminals t ON t.device_code = e.device_code WHERE t.protocol IN ('elink', 'lmt')"
         " GROUP BY e.device_code",
         "CREATE TEMP TABLE crew (company TEXT, n INTEGER, card INTEGER, PRIMARY KEY (company, n))",
         "INSERT INTO crew SELECT unit, row_number() OVER (PARTITION BY unit ORDER BY card) - 1, card FROM workers"
         " WHERE role = 'maintenance'",
         "CREATE TEMP TABLE crew_size (company TEXT PRIMARY KEY, n INTEGER)",
         "INSERT INTO crew_size SELECT company, count(*) FROM crew GROUP BY company",
         "CREATE TEMP TABLE kind (low INTEGER, high INTEGER, kind TEXT, severity TEXT)",
         "INSERT INTO kind VALUES (0, 0, 'trapped', 'critical'), (1, 3, 'door_fault', 'minor'),"
         " (4, 5, 'power_lost', 'major'), (6, 8, 'offline', 'minor'), (9, 9, 'stopped_outside_zone', 'major')",
         "CREATE TEMP TABLE station_operator (station_code INTEGER PRIMARY KEY, card INTEGER, scales INTEGER)",
         "INSERT INTO station_operator SELECT s.station_code, coalesce((SELECT min(card) FROM workers w"
         " WHERE w.unit = CAST(s.station_code AS TEXT)), 0), max(1, coalesce(s.scales, 1)) FROM stations s")  # fmt: skip
    lifts = conn.execute("SELECT count(*) FROM lift").fetchone()[0]

    # Alarms: about ten a lift a year, all but the last three days' resolved; a rescue for every trapped one.
    step("alarms",
         "CREATE TEMP TABLE drawn AS WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < :alarms)"
         f" SELECT {_randint('0', ':lifts - 1')} AS lift, {_randint('0', '9')} AS pick,"
         f" {_uniform(':now - :window', ':now')} AS raised, {_uniform('60', '3600')} AS lasted FROM k",
         "INSERT INTO alarms (kind, severity, device_code, sources, active_sources, condition, since, raised_at,"
         " updated_at, cleared_at, cleared_by, created_at, status, resolved_by, resolved_at)"
         " SELECT kind.kind, kind.severity, lift.device_code, 'device', '', 'cleared', d.raised, d.raised,"
         " d.raised + d.lasted, d.raised + d.lasted, 'device', :now,"
         " iif(d.raised < :now - 3 * 86400, 'resolved', 'raised'), iif(d.raised < :now - 3 * 86400, 'admin', NULL),"
         " iif(d.raised < :now - 3 * 86400, d.raised + d.lasted + 600, NULL)"
         " FROM drawn d JOIN kind ON d.pick BETWEEN kind.low AND kind.high JOIN lift ON lift.n = d.lift"
         " ORDER BY d.raised",
         "DROP TABLE drawn",
         alarms=round(lifts * 10 * window_s / YEAR_S), lifts=lifts, now=now, window=window_s)  # fmt: skip
    step("rescues",
         "INSERT INTO rescues (alarm_id, device_code, raised_at, arrived_at, arrival_source, arrival_min, late)"
         " SELECT id, device_code, raised_at, raised_at + arrival * 60, 'card', arrival, arrival > 30"
         f" FROM (SELECT id, device_code, raised_at, {_uniform('8', '40')} AS arrival FROM alarms"
         " WHERE kind = 'trapped' ORDER BY raised_at)")  # fmt: skip

    # Maintenance: a visit every 15 days for every lift, by one of its company's cards. The trigger that keeps
    # each lift's last visit (a recount per row) waits; its value is set once per lift from the same rows.
    step("maintenance_visits",
         "DROP TRIGGER visits_lift_insert",
         "CREATE TEMP TABLE drawn AS WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i < :visits)"
         " SELECT lift.device_code, lift.company, :now - lift.phase - k.i * 15 * 86400 AS started,"
         f" {_uniform('25', '50')} AS minutes, coalesce((SELECT crew.card FROM crew WHERE crew.company = lift.company"
         f" AND crew.n = {_randint('0', 'crew_size.n - 1')}), 0) AS card"
         " FROM lift JOIN k LEFT JOIN crew_size ON crew_size.company = lift.company WHERE started > :now - :window",
         "INSERT INTO maintenance_visits (device_code, card, worker_company, started_at, ended_at, duration_min,"
         " items, flags) SELECT device_code, card, company, started, started + minutes * 60, minutes, 31, ''"
         " FROM drawn ORDER BY started",
         "DROP TABLE drawn",
         "UPDATE elevators SET last_visit_at = visited.at FROM (SELECT device_code, max(ended_at) AS at"
         " FROM maintenance_visits WHERE started_at IS NOT NULL AND ended_at IS NOT NULL AND flags = ''"
         " GROUP BY device_code) AS visited WHERE elevators.device_code = visited.device_code",
         triggers["visits_lift_insert"],
         visits=window_s // (15 * DAY_S) + 1, now=now, window=window_s)  # fmt: skip

    # Fills: every tagged household cylinder filled --fills-per-cylinder times a year at its own station, a
    # decision and a result each; 3 % denied (reasons 2, 9, 10). Then each cylinder's newest fill. The daily
    # figures of decisions and of newest fills (per day and district) and of decisions and fills (per day and
    # station) are added at the end, from the same rows, rather than by their triggers row by row (the census
    # had no fills: no newest fill is replaced).
    step("fill_decisions",
         "DROP TRIGGER fill_decisions_figures",
         "DROP TRIGGER fill_decisions_station_daily_insert",
         "CREATE TEMP TABLE drawn AS WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < :fills)"
         " SELECT c.cylinder_code AS code, c.tag_uid AS tag, c.owner_station AS station, o.card AS card,"
         f" {_randint('1', 'o.scales')} AS scale, {_randint('0', '255')} AS seq,"
         f" {_uniform(':now - :window', ':now')} AS at,"
         f" CAST(round(c.tare_kg * 1000) AS INTEGER) + {_randint('100', '1500')} AS before,"
         " CAST(round((c.tare_kg + c.rated_fill_kg) * 1000) AS INTEGER) AS full,"
         f" {_randint('0', '99')} >= 3 AS permit, {_randint('0', '2')} AS denial, {_randint('0', '150')} AS short"
         " FROM cylinders c JOIN k JOIN station_operator o ON o.station_code = c.owner_station"
         " WHERE c.kind = 'household_lpg' AND c.tag_uid IS NOT NULL",
         "CREATE TEMP TABLE decision AS SELECT * FROM drawn ORDER BY at",
         "DROP TABLE drawn",
         "INSERT INTO fill_decisions (id, decided_at, station_code, scale, request_seq, tag, cylinder_code,"
         " operator_card, medium, gross_before_g, permit, reason, net_limit_g, message)"
         " SELECT rowid, at, station, scale, seq, tag, code, card, 'LPG', before, permit,"
         " iif(permit, 0, CASE denial WHEN 0 THEN 2 WHEN 1 THEN 9 ELSE 10 END), iif(permit, full - before, 0),"
         " iif(permit, '准许充装', '拒绝充装') FROM decision",
         "INSERT INTO day_figures (district_code, company, figure, day, value) SELECT s.district_code, '',"
         " iif(d.permit, 'fills_permitted', 'fills_denied:' || d.reason), date(d.decided_at, 'unixepoch',"
         " '+8 hours'), count(*) FROM fill_decisions d JOIN stations s ON s.station_code = d.station_code"
         " GROUP BY 1, 3, 4 ON CONFLICT (figure, district_code, company, day) DO UPDATE SET value = value"
         " + excluded.value",
         "INSERT INTO station_daily_decisions (station_code, day, permit, reason, decisions) SELECT station_code,"
         " date(decided_at, 'unixepoch', '+8 hours'), permit, reason, count(*) FROM fill_decisions GROUP BY 1, 2, 3, 4",
         triggers["fill_decisions_figures"],
         triggers["fill_decisions_station_daily_insert"],
         fills=round(args.fills_per_cylinder * window_s / YEAR_S), now=now, window=window_s)  # fmt: skip
    step("fills",
         "DROP TRIGGER fills_station_daily_insert",
         "INSERT OR IGNORE INTO fills (station_code, scale, request_seq, tag, cylinder_code, decision_id, permitted,"
         " operator_card, gross_before_g, gross_after_g, duration_s, outcome, ended_at, received_at)"
         " SELECT station, scale, seq, tag, code, rowid, 1, card, before, full - short, 90, 0, at + 90, at + 91"
         " FROM decision WHERE permit",
         "INSERT INTO station_daily_fills (station_code, day, fills, completed, net_g) SELECT station_code,"
         " date(ended_at, 'unixepoch', '+8 hours'), count(*), sum(outcome = 0), sum(iif(outcome = 0, gross_after_g"
         " - gross_before_g, 0)) FROM fills GROUP BY 1, 2",
         triggers["fills_station_daily_insert"],
         "DROP TRIGGER cylinders_figures_update",
         "UPDATE cylinders SET last_filled_at = newest.at FROM (SELECT code, max(at) + 90 AS at FROM decision"
         " WHERE permit GROUP BY code) AS newest WHERE cylinders.cylinder_code = newest.code",
         "INSERT INTO day_figures (district_code, company, figure, day, value) SELECT district_code, '',"
         " 'cylinder_last_fill', date(last_filled_at, 'unixepoch', '+8 hours'), count(*) FROM cylinders"
         " WHERE district_code IS NOT NULL AND last_filled_at IS NOT NULL GROUP BY 1, 4"
         " ON CONFLICT (figure, district_code, company, day) DO UPDATE SET value = value + excluded.value",
         triggers["cylinders_figures_update"],
         "DROP TABLE decision")  # fmt: skip

    # Raw status for the days the retention keeps, --status-per-day a lift, and every lift's latest state.
    step("messages",
         "WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i < :count - 1)"
         " INSERT OR IGNORE INTO messages (protocol, terminal_id, dedup_key, type, seq, device_time, received_at,"
         " frame) SELECT protocol, terminal_id, CAST(CAST(at AS INTEGER) AS TEXT) || ':' || device_code || ':'"
         " || (i + 1), 'STATUS', i + 1, CAST(at AS INTEGER), at, randomblob(64)"
         " FROM (SELECT lift.*, k.i, :start + k.i * :step + lift.phase % :step AS at FROM k JOIN lift)"
         " ORDER BY at",
         count=round(raw_s / DAY_S * args.status_per_day), start=now - raw_s, step=DAY_S / args.status_per_day)
    step("elevator_state",
         "INSERT INTO elevator_state (device_code, at, received_at, protocol, terminal_id, floor, direction, door,"
         " running, door_zone, occupied, speed_mps, load_pct, power, safety_circuit, door_lock, overload, mode,"
         f" trip_count) SELECT device_code, :at, :at, protocol, terminal_id, {_randint('1', '18')}, 'stopped',"
         " 'closed', 0, 1, 0, 0.0, 0, 1, 1, 1, 0, 'normal', 1000 FROM lift",
         at=now - 20)  # fmt: skip
    # Vehicles: each one's track for the days the retention keeps, --status-per-day points a day.
    step("vehicle_track",
         "WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i < :count - 1)"
         " INSERT INTO vehicle_track (plate, at, latitude, longitude, speed_kmh, course, status, alarm_flags,"
         f" pressure_mpa) SELECT plate, :start + k.i * :step, 39.65 + {_uniform('0', '0.1')},"
         f" 106.8 + {_uniform('0', '0.1')}, {_uniform('0', '60')}, {_randint('0', '359')}, 3, 0,"
         f" {_uniform('5', '20')} FROM k JOIN vehicles ORDER BY plate, 2",
         count=round(raw_s / DAY_S * args.status_per_day), start=now - raw_s, step=DAY_S / args.status_per_day)
    started = time.monotonic()
    conn.execute("BEGIN")
    counts["terminal_days"] = seed_terminal_days(conn, args.history_days, now)
    conn.execute("COMMIT")
    print(f"      terminal_days: {counts['terminal_days']:,} rows in {time.monotonic() - started:.0f} s", flush=True)
    started = time.monotonic()
    conn.execute("ANALYZE")
    conn.execute("PRAGMA journal_mode=WAL")
    print(f"      ANALYZE in {time.monotonic() - started:.0f} s", flush=True)
    conn.close()
    return counts


SILENT_EVERY = 29
"""One terminal in this many fell silent ten days ago (the installations report lists it as lapsed or pending)."""


def seed_terminal_days(conn: sqlite3.Connection, days: int, now: float) -> int:
    """``terminal_days`` (the installations and evaluation reports read them): every terminal with an
    installation date sent valid data on each CST day from it (at most ``days`` back) until yesterday, but one
    in SILENT_EVERY, silent for the last ten days. Returns the rows written."""
    before = conn.execute("SELECT count(*) FROM terminal_days").fetchone()[0]
    # The trigger that extends each terminal's run of days row by row waits; the runs are counted once after.
    runs = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'terminal_days_runs_insert'").fetchone()
    if runs:
        conn.execute("DROP TRIGGER terminal_days_runs_insert")
    conn.execute(
        "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < :days)"
        " INSERT OR IGNORE INTO terminal_days (protocol, terminal_id, day)"
        " SELECT t.protocol, t.terminal_id, date(:now - k.i * 86400, 'unixepoch', '+8 hours') AS day"
        " FROM terminals t JOIN k WHERE t.installed_on IS NOT NULL AND day >= t.installed_on"
        f" AND NOT (t.rowid % {SILENT_EVERY} = 3 AND k.i <= 10) ORDER BY t.protocol, t.terminal_id, day",
        {"days": days, "now": now},
    )  # fmt: skip
    if runs:
        conn.execute("DELETE FROM terminal_runs")
        conn.execute("INSERT INTO terminal_runs (protocol, terminal_id, first_day, last_day) SELECT protocol, terminal_id,"
                     " min(day), max(day) FROM (SELECT protocol, terminal_id, day, julianday(day) - row_number() OVER"
                     " (PARTITION BY protocol, terminal_id ORDER BY day) AS island FROM terminal_days)"
                     " GROUP BY protocol, terminal_id, island")  # fmt: skip
        conn.execute(runs[0])
    return conn.execute("SELECT count(*) FROM terminal_days").fetchone()[0] - before


def prepare_reports(database: Path, history_days: int) -> None:
    """What the reports need in a copy seeded before they were measured: the days terminals sent data, and
    a plan whose pilot phase covers the history (the evaluation report of a phase without dates is a 404)."""
    conn = sqlite3.connect(database, isolation_level=None)
    try:
        if conn.execute("SELECT NOT EXISTS (SELECT 1 FROM terminal_days)").fetchone()[0]:
            conn.execute("BEGIN")
            seed_terminal_days(conn, history_days, time.time())
            conn.execute("COMMIT")
        today = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 8 * 3600))
        starts = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 8 * 3600 - history_days * DAY_S))
        conn.execute("INSERT OR IGNORE INTO plan_phases (phase, starts_on, ends_on, updated_at, updated_by)"
                     " VALUES ('pilot', ?, ?, ?, 'bench')", (starts, today, time.time()))  # fmt: skip
    finally:
        conn.close()


class NotServed(RuntimeError):
    """The platform has no such page (a feature of a later release)."""


async def timed(client: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    async with client.get(url, headers=headers) as answer:
        await answer.read()
        if answer.status == 404 and answer.content_type == "application/json" and "/api/" in url:
            body = await answer.json()
            if body.get("error") == "not found":
                raise NotServed(url)
        if answer.status != 200:
            raise RuntimeError(f"{url}: HTTP {answer.status}")
    return (time.perf_counter() - started) * 1000


async def caught_up(platform: Platform) -> None:
    """Let the platform finish starting before its pages are timed: retention brought up to date, then the writer
    idle.

    The seeded history ends when it was seeded; by the time it is measured (hours or days later) its oldest raw
    status messages and track points have aged past ``raw_status_days``, which a running platform deletes as they
    age. Started on the copy, it deletes them all in its first seconds, five times as many at five times the
    size: the larger platform's first pages then shared the machine with that catch-up, and their p95 (not their
    p50 or their SQLite steps) was up to three times the smaller one's. The pages of a platform that has just
    started are not the headline (``--just-started`` times them)."""
    while await monitoring(platform).prune_step():
        pass
    while await vehicle_monitor(platform).prune_step():
        pass
    while platform.writer.backlog:
        await asyncio.sleep(0.1)


async def seeded(directory: Path, lifts: int, cylinders: int, args: argparse.Namespace) -> tuple[Path, Path]:
    """A census of this size with its history, seeded once into ``directory`` (kept there with ``--data``)."""
    database = directory / "seeded.sqlite3"
    imported = directory / "census.sqlite3"  # the census alone, kept: a new history does not import it again
    census_dir = directory / "census"
    if not database.exists():
        if not imported.exists():
            size = CensusSize(lifts=lifts, stations=max(30, lifts // 160), cylinders=cylinders,
                              vehicles=max(50, lifts // 5))  # fmt: skip
            _, template = await census_database(directory, size)
            template.rename(imported)
        template = directory / "template.sqlite3"
        shutil.copyfile(imported, template)
        started = time.monotonic()
        counts = seed_history(template, args)
        print(f"   history of {args.history_days} days written in {time.monotonic() - started:.0f} s: "
              + ", ".join(f"{n:,} {table}" for table, n in counts.items()))  # fmt: skip
        conn = await db.connect(template)
        await users.add_user(conn, "bench", "admin", PASSWORD)
        await conn.close()
        template.rename(database)
    return database, census_dir


def measure_in_own_process(directory: Path, database: Path, lifts: int, args: argparse.Namespace
                           ) -> tuple[dict[str, tuple[float, float, int]], tuple[int, int]]:  # fmt: skip
    """``measure`` in a process of its own (started for it): its resident memory is the platform's, not
    what seeding or the other size left in this one."""
    return run(measure(directory, database, lifts, args))


async def measure(directory: Path, database: Path, lifts: int, args: argparse.Namespace
                  ) -> tuple[dict[str, tuple[float, float, int]], tuple[int, int]]:  # fmt: skip
    """p50 and p95 (ms) and the median SQLite steps of every page and API answer on a platform of this size,
    and the resident memory of this process (bytes) before the platform starts and once every page has been
    asked."""
    # A copy of its own (several runs may measure the same --data at once), migrated by the platform's release.
    config = fresh_config(directory, database, f"platform-{os.getpid()}")
    # The public page's figures are read afresh for every request (served, they are cached up to a minute: the
    # request that reads them again pays what is measured here), and one client may ask as often as it likes.
    config.public.cache_s = 0
    config.public.requests_per_minute = 1_000_000
    try:
        return await _measure(config, lifts, args)
    finally:
        for left in config.database.path.parent.glob(config.database.path.name + "*"):  # (-wal, the journal ...)
            left.unlink(missing_ok=True)


async def _measure(config: Config, lifts: int, args: argparse.Namespace
                   ) -> tuple[dict[str, tuple[float, float, int]], tuple[int, int]]:  # fmt: skip
    conn = await db.connect(config.database.path)
    await conn.close()
    prepare_reports(config.database.path, args.history_days)
    conn = await db.connect(config.database.path)
    token = await users.create_token(conn, "bench")
    some_lift = (await (await conn.execute("SELECT device_code FROM elevators ORDER BY device_code LIMIT 1"
                                           " OFFSET ?", (lifts // 2,))).fetchone())[0]  # fmt: skip
    some_station = (await (await conn.execute("SELECT station_code FROM stations LIMIT 1")).fetchone())[0]
    some_plate = (await (await conn.execute("SELECT plate FROM vehicles LIMIT 1 OFFSET ?",
                                            (lifts // 10,))).fetchone())[0]  # fmt: skip
    # (The middle alarm and rescue; a small city's history may have no rescue: then its case is not asked.)
    some_alarm, some_rescue = [row[0] if row else None for row in [await (await conn.execute(
        f"SELECT {key} FROM {table} ORDER BY {key} LIMIT 1 OFFSET (SELECT count(*) / 2 FROM {table})")).fetchone()
        for key, table in (("id", "alarms"), ("alarm_id", "rescues"))]]  # fmt: skip
    traced = [row[0] for row in await conn.execute_fetchall(
        "SELECT cylinder_code FROM cylinders WHERE kind = 'household_lpg' AND tag_uid IS NOT NULL"
        " ORDER BY random() LIMIT 2000")]  # fmt: skip
    await conn.close()
    rss_before = rss_bytes()
    rng = random.Random(3)
    month = time.strftime("%Y-%m")
    async with Platform(config) as platform:
        base = f"http://127.0.0.1:{platform.ports['web']}"
        api = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
            async with client.get(f"{base}/login") as page:
                csrf = re.search(r'name="csrf_token" value="([^"]+)"', await page.text())
            assert csrf is not None
            async with client.post(f"{base}/login", data={"name": "bench", "password": PASSWORD,
                                                          "csrf_token": csrf.group(1)}) as answer:  # fmt: skip
                await answer.read()
            cases = {
                "/ (dashboard)": lambda: (f"{base}/", None),
                "/lifts": lambda: (f"{base}/lifts", None),
                "/lifts?overdue=1": lambda: (f"{base}/lifts?overdue=1", None),
                "/lifts/{code}": lambda: (f"{base}/lifts/{some_lift}", None),
                "/alarms": lambda: (f"{base}/alarms", None),
                "/rescues": lambda: (f"{base}/rescues", None),
                "/maintenance": lambda: (f"{base}/maintenance", None),
                "/inspections": lambda: (f"{base}/inspections", None),
                "/stations": lambda: (f"{base}/stations", None),
                "/stations/{code}": lambda: (f"{base}/stations/{some_station}", None),
                "/cylinders?q=": lambda: (f"{base}/cylinders?q={rng.choice(traced)}", None),
                "/vehicles?plate=": lambda: (f"{base}/vehicles?plate={some_plate}", None),
                "/rollout": lambda: (f"{base}/rollout", None),
                "/reports/monthly": lambda: (f"{base}/reports/monthly?month={month}", None),
                "/reports/monthly.csv": lambda: (f"{base}/reports/monthly.csv?month={month}", None),
                "/reports/installations": lambda: (f"{base}/reports/installations", None),
                "/reports/installations.csv": lambda: (f"{base}/reports/installations.csv", None),
                "/reports/installations.xlsx": lambda: (f"{base}/reports/installations.xlsx", None),
                "/reports/evaluation": lambda: (f"{base}/reports/evaluation?phase=pilot", None),
                "/reports/evaluation.xlsx": lambda: (f"{base}/reports/evaluation.xlsx?phase=pilot", None),
                "/public": lambda: (f"{base}/public", None),
                "/public.json": lambda: (f"{base}/public.json", None),
                "/audit": lambda: (f"{base}/audit", None),
                "API elevators (500)": lambda: (f"{base}/api/v1/elevators?limit=500", api),
                "API elevators overdue": lambda: (f"{base}/api/v1/elevators?maintenance_overdue=true", api),
                "API cylinder": lambda: (f"{base}/api/v1/cylinders/{rng.choice(traced)}", api),
                "API stations": lambda: (f"{base}/api/v1/stations", api),
                "API station": lambda: (f"{base}/api/v1/stations/{some_station}", api),
                "API alarms open": lambda: (f"{base}/api/v1/alarms?status=open", api),
                "API visits": lambda: (f"{base}/api/v1/maintenance/visits", api),
                "API rescues": lambda: (f"{base}/api/v1/rescues", api),
                "API coverage": lambda: (f"{base}/api/v1/coverage", api),
                "/alarms/{id}": lambda: (f"{base}/alarms/{some_alarm}", None),
                "/vehicles": lambda: (f"{base}/vehicles", None),
                "/vehicles?alarm=1": lambda: (f"{base}/vehicles?alarm=1", None),
                "/vehicles?offline=1": lambda: (f"{base}/vehicles?offline=1", None),
                "/vehicles?no certificate": lambda: (f"{base}/vehicles?certificate_invalid=1", None),
                "/vehicles?district=": lambda: (f"{base}/vehicles?district=150304", None),
                "/cylinders": lambda: (f"{base}/cylinders", None),
                "/census": lambda: (f"{base}/census", None),
                "/users": lambda: (f"{base}/users", None),
                "/plan": lambda: (f"{base}/plan", None),
                "/system": lambda: (f"{base}/system", None),
                "/metrics": lambda: (f"{base}/metrics", api),
                "API elevator": lambda: (f"{base}/api/v1/elevators/{some_lift}", api),
                "API alarm": lambda: (f"{base}/api/v1/alarms/{some_alarm}", api),
                "API rescue": lambda: (f"{base}/api/v1/rescues/{some_rescue}", api),
                "API vehicles (500)": lambda: (f"{base}/api/v1/vehicles?limit=500", api),
                "API vehicles alarm": lambda: (f"{base}/api/v1/vehicles?alarm=true", api),
                "API vehicle": lambda: (f"{base}/api/v1/vehicles/{some_plate}", api),
                "API vehicle track": lambda: (f"{base}/api/v1/vehicles/{some_plate}/track", api),
                "API me": lambda: (f"{base}/api/v1/me", api),
            }
            if some_rescue is None:
                del cases["API rescue"]
            if not args.just_started:
                await caught_up(platform)
            # The SQLite VM steps each request costs the pages' read connection (a progress handler counting in
            # hundreds): a cost that a busy machine does not blur, unlike the times.
            vm_steps = [0]

            def count_steps() -> int:
                vm_steps[0] += STEP_GRAIN
                return 0

            await platform._runner.app[WEB_DB_KEY].set_progress_handler(count_steps, STEP_GRAIN)  # type: ignore[union-attr]
            results = {}
            for name, make in cases.items():
                if (args.cases and not any(part in name for part in args.cases.split(","))) or (
                        args.skip and any(part in name for part in args.skip.split(","))):
                    continue
                try:
                    await timed(client, *make())  # warm up
                except NotServed:
                    print(f"   {name:<24} not served by this platform")
                    continue
                profiler = cProfile.Profile() if args.profile and args.profile in name else None
                if profiler:
                    profiler.enable()
                times, steps = [], []
                for _ in range(args.requests):
                    vm_steps[0] = 0
                    times.append(await timed(client, *make()))
                    steps.append(vm_steps[0])
                if profiler:
                    profiler.disable()
                    pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
                results[name] = (percentile(times, 0.5), percentile(times, 0.95), int(percentile(steps, 0.5)))
                print(f"   {name:<24} p50 {results[name][0]:7.1f} ms   p95 {results[name][1]:7.1f} ms"
                      f"   {results[name][2]:>9,} SQLite steps")  # fmt: skip
        rss_after = rss_bytes()
    print(f"   resident memory of the measuring process: {rss_before / 2**20:.0f} MiB before the platform started,"
          f" {rss_after / 2**20:.0f} MiB with it after every page")  # fmt: skip
    return results, (rss_before, rss_after)


async def main(args: argparse.Namespace) -> None:
    header("pages and API lists at two registry sizes")
    if args.province:
        args.lifts, args.cylinders, args.factor, args.history_days = 100_000, 2_000_000, 1, 365
    sizes = [(args.lifts, args.cylinders)] + ([(args.lifts * args.factor, args.cylinders * args.factor)]
                                              if args.factor > 1 else [])  # fmt: skip
    with tempfile.TemporaryDirectory() as scratch:
        results = []
        for lifts, cylinders in sizes:
            directory = Path(args.data or scratch) / f"{lifts}-lifts"
            directory.mkdir(parents=True, exist_ok=True)
            print(f"-- {lifts:,} lifts, {cylinders:,} cylinders")
            database, _ = await seeded(directory, lifts, cylinders, args)
            if args.seed_only:
                continue
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as own:
                results.append(await asyncio.get_running_loop().run_in_executor(
                    own, measure_in_own_process, directory, database, lifts, args))  # fmt: skip
    if args.seed_only:
        return
    worst_p95 = max(p95 for measured, _ in results for _, p95, _ in measured.values())
    if len(results) == 1:
        print(f"SUMMARY pages: worst p95 {worst_p95:.0f} ms at {args.lifts} lifts, {args.cylinders} cylinders"
              f" (target p95 <= {TARGET_MS:.0f} ms: {'met' if worst_p95 <= TARGET_MS else 'MISSED'})")  # fmt: skip
        return
    (small, small_rss), (large, large_rss) = results
    print(f"-- p95 ratio, {sizes[1][0]:,} lifts against {sizes[0][0]:,} (and the p50 ratio, steadier on a busy machine;"
          " the SQLite steps' ratio, which load does not change)")  # fmt: skip
    ratios = {name: large[name][1] / small[name][1] for name in small if name in large}
    for name, ratio in ratios.items():
        print(f"   {name:<24} x{ratio:4.2f}   ({small[name][1]:.1f} -> {large[name][1]:.1f} ms)   p50"
              f" x{large[name][0] / small[name][0]:4.2f}   ({small[name][0]:.1f} -> {large[name][0]:.1f} ms)   steps"
              f" x{max(large[name][2], STEP_GRAIN) / max(small[name][2], STEP_GRAIN):4.2f}")  # fmt: skip
    print(f"   resident memory with the platform, after every page: {small_rss[1] / 2**20:.0f} ->"
          f" {large_rss[1] / 2**20:.0f} MiB (x{large_rss[1] / small_rss[1]:.2f})")  # fmt: skip
    worst = max(ratios, key=ratios.__getitem__)
    verdict = "met" if ratios[worst] <= TARGET_RATIO and worst_p95 <= TARGET_MS else "MISSED"
    print(f"SUMMARY pages: p95 ratio x{args.factor} registry: worst {worst} x{ratios[worst]:.2f}, median"
          f" x{sorted(ratios.values())[len(ratios) // 2]:.2f}; worst p95 {worst_p95:.0f} ms (targets ratio <="
          f" {TARGET_RATIO}, p95 <= {TARGET_MS:.0f} ms: {verdict})")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lifts", type=int, default=5000)
    parser.add_argument("--cylinders", type=int, default=300_000)
    parser.add_argument("--factor", type=int, default=5, help="the second platform's size against the first (1: one)")
    parser.add_argument("--province", action="store_true",
                        help="one platform of 100,000 lifts, 2,000,000 cylinders, a year of history")
    parser.add_argument("--history-days", type=int, default=30, help="days of history per lift and cylinder")
    parser.add_argument("--fills-per-cylinder", type=int, default=6, help="fills per household cylinder in a year")
    parser.add_argument("--status-per-day", type=int, default=24, help="raw status messages per lift per day kept")
    parser.add_argument("--requests", type=int, default=100, help="requests per page")
    parser.add_argument("--just-started", action="store_true",
                        help="time the pages at once, while the platform catches up with its start (see caught_up)")
    parser.add_argument("--data", metavar="DIR", help="keep the seeded cities here and reuse them on the next run")
    parser.add_argument("--seed-only", action="store_true",
                        help="seed the sizes into --data and stop (seeding can run niced, the measurement not)")
    parser.add_argument("--profile", metavar="NAME", help="cProfile the requests of the case whose name contains NAME")
    parser.add_argument("--cases", metavar="PARTS", help="only the cases whose name contains one of these (comma-separated)")
    parser.add_argument("--skip", metavar="PARTS", help="not the cases whose name contains one of these (comma-separated)")
    run(main(parser.parse_args()))
