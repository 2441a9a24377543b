"""Pages and API at city scale: p95 latency of the dashboard, the lift list and a cylinder trace.

The city: 5,000 lifts and 300,000 cylinders (the generated census), a year of alarms (with rescues),
maintenance visits and fills (a decision and a result each), 30 days of raw status messages and every
lift's latest state. History is written straight into the platform's tables before it starts (what a
year of running would have left there); then the running platform is asked over HTTP, as a logged-in
admin (pages, session cookie) and with an API token (JSON), one request at a time.

30 days of raw status at one message per lift every 30 s would be 432 million rows; the default here is
``--status-per-day 24`` per lift (3.6 million rows), which the figures say.

Target: p95 <= 100 ms for the dashboard, the lift list and a cylinder trace.

    python benchmarks/bench_pages.py [--lifts 5000 --cylinders 300000 --fills-per-cylinder 6 --requests 40]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import random
import re
import sqlite3
import tempfile
import time
from pathlib import Path

import aiohttp
from support import census_database, fresh_config, header, percentile

from wuhai_iot.elevators.state import STATE_UPSERT
from wuhai_iot.pipeline.ingest import MESSAGE_INSERT
from wuhai_iot.registry import users
from wuhai_iot.runner import run
from wuhai_iot.server import Platform
from wuhai_iot.simulator.census import CensusSize, read_census
from wuhai_iot.storage import db

TARGET_MS = 100.0
PASSWORD = "benchmark-password"
DAY_S = 86_400
YEAR_S = 365 * DAY_S
ALARM_KINDS = (("trapped", "critical", 0.1), ("door_fault", "minor", 0.3), ("power_lost", "major", 0.2),
               ("offline", "minor", 0.3), ("stopped_outside_zone", "major", 0.1))  # fmt: skip


def seed_history(database: Path, census_dir: Path, args: argparse.Namespace) -> dict[str, int]:
    """A year of history written into the platform's tables; returns row counts."""
    rng = random.Random(7)
    census = read_census(census_dir)
    lifts = [row["device_code"] for row in census["elevators"]]
    workers: dict[str, list[int]] = {}
    for worker in census["workers"]:
        workers.setdefault(worker["unit"], []).append(int(worker["card"]))
    companies = {row["device_code"]: row["maintenance_company"] for row in census["elevators"]}
    terminals = {row["device_code"]: (row["protocol"], row["terminal_id"]) for row in census["terminals"]
                 if row["device_code"]}  # fmt: skip
    now = time.time()
    conn = sqlite3.connect(database, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    counts: dict[str, int] = {}

    def insert(table: str, sql: str, rows: list[tuple]) -> None:
        conn.execute("BEGIN")
        conn.executemany(sql, rows)
        conn.execute("COMMIT")
        counts[table] = counts.get(table, 0) + len(rows)

    # Alarms: about ten a lift a year, all but the last days' resolved; a rescue for every trapped one.
    alarms, rescues = [], []
    kinds = [k for k, _, _ in ALARM_KINDS]
    weights = [w for _, _, w in ALARM_KINDS]
    severity = {k: s for k, s, _ in ALARM_KINDS}
    for alarm_id in range(1, len(lifts) * 10 + 1):
        lift, kind = rng.choice(lifts), rng.choices(kinds, weights)[0]
        raised = now - rng.uniform(0, YEAR_S)
        cleared = raised + rng.uniform(60, 3600)
        resolved = raised < now - 3 * DAY_S
        alarms.append((alarm_id, kind, severity[kind], lift, "device", "", "cleared", raised, raised, cleared,
                       cleared, "device", now, "resolved" if resolved else "raised", "admin" if resolved else None,
                       cleared + 600 if resolved else None))  # fmt: skip
        if kind == "trapped":
            arrival = rng.uniform(8, 40)
            rescues.append((alarm_id, lift, raised, raised + arrival * 60, "card", arrival, int(arrival > 30)))
    insert("alarms", "INSERT INTO alarms (id, kind, severity, device_code, sources, active_sources, condition, since,"
           " raised_at, updated_at, cleared_at, cleared_by, created_at, status, resolved_by, resolved_at)"
           " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", alarms)  # fmt: skip
    insert("rescues", "INSERT INTO rescues (alarm_id, device_code, raised_at, arrived_at, arrival_source,"
           " arrival_min, late) VALUES (?,?,?,?,?,?,?)", rescues)  # fmt: skip

    # Maintenance: a visit every 15 days for every lift, a year back.
    visits = []
    for lift in lifts:
        cards = workers.get(companies[lift]) or [0]
        start = now - rng.uniform(0, 15 * DAY_S)
        while start > now - YEAR_S:
            minutes = rng.uniform(25, 50)
            visits.append((len(visits) + 1, lift, rng.choice(cards), companies[lift], start, start + minutes * 60,
                           minutes, 31, ""))  # fmt: skip
            start -= 15 * DAY_S
    insert("maintenance_visits", "INSERT INTO maintenance_visits (id, device_code, card, worker_company, started_at,"
           " ended_at, duration_min, items, flags) VALUES (?,?,?,?,?,?,?,?,?)", visits)  # fmt: skip

    # Fills: a decision and a result each, spread over the year; 3 % denied.
    stations = {s["station_code"]: int(s["scales"]) for s in census["stations"]}
    operators = {code: (workers.get(code) or [0])[0] for code in stations}
    decisions, fills = [], []
    decision_id = 0
    for cylinder in census["cylinders"]:
        if not cylinder["tag_uid"] or cylinder["kind"] != "household_lpg":
            continue
        station = cylinder["owner_station"]
        tare = round(float(cylinder["tare_kg"]) * 1000)
        rated = round(float(cylinder["rated_fill_kg"]) * 1000)
        for _ in range(args.fills_per_cylinder):
            at = now - rng.uniform(0, YEAR_S)
            scale, seq, before = rng.randint(1, stations[station]), rng.randint(0, 255), tare + rng.randint(100, 1500)
            permit = rng.random() > 0.03
            decision_id += 1
            decisions.append((decision_id, at, int(station), scale, seq, cylinder["tag_uid"], cylinder["cylinder_code"],
                              operators[station], "LPG", before, int(permit), 0 if permit else rng.choice((2, 9, 10)),
                              tare + rated - before if permit else 0, "准许充装" if permit else "拒绝充装"))  # fmt: skip
            if permit:
                fills.append((int(station), scale, seq, cylinder["tag_uid"], cylinder["cylinder_code"], decision_id,
                              1, operators[station], before, tare + rated - rng.randint(0, 150), 90, 0, at + 90,
                              at + 91))  # fmt: skip
        if len(decisions) > 200_000:
            insert("fill_decisions", "INSERT INTO fill_decisions (id, decided_at, station_code, scale, request_seq,"
                   " tag, cylinder_code, operator_card, medium, gross_before_g, permit, reason, net_limit_g, message)"
                   " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", decisions)  # fmt: skip
            insert("fills", "INSERT OR IGNORE INTO fills (station_code, scale, request_seq, tag, cylinder_code,"
                   " decision_id, permitted, operator_card, gross_before_g, gross_after_g, duration_s, outcome,"
                   " ended_at, received_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", fills)  # fmt: skip
            decisions, fills = [], []
    if decisions:
        insert("fill_decisions", "INSERT INTO fill_decisions (id, decided_at, station_code, scale, request_seq,"
               " tag, cylinder_code, operator_card, medium, gross_before_g, permit, reason, net_limit_g, message)"
               " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", decisions)  # fmt: skip
        insert("fills", "INSERT OR IGNORE INTO fills (station_code, scale, request_seq, tag, cylinder_code,"
               " decision_id, permitted, operator_card, gross_before_g, gross_after_g, duration_s, outcome,"
               " ended_at, received_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", fills)  # fmt: skip

    # Each cylinder's newest fill, as the fill records keep it.
    conn.execute("UPDATE cylinders SET last_filled_at = (SELECT max(f.ended_at) FROM fills f"
                 " WHERE f.cylinder_code = cylinders.cylinder_code)")

    # 30 days of raw status (sparse: see the module's docstring) and every lift's latest state.
    step = DAY_S / args.status_per_day
    messages, states = [], []
    for lift in lifts:
        protocol, terminal = terminals[lift]
        at = now - 30 * DAY_S
        seq = 0
        while at < now:
            seq += 1
            record = {"event": "ElevatorStatus", "protocol": protocol, "terminal_id": terminal, "seq": seq,
                      "floor": rng.randint(1, 18), "direction": "stopped", "door": "closed", "running": False}  # fmt: skip
            messages.append((protocol, terminal, f"STATUS:{seq}:{int(at)}", "STATUS", seq, int(at), at,
                             json.dumps([record])))  # fmt: skip
            at += step
        states.append((lift, now - 20, now - 20, protocol, terminal, 3, "stopped", "closed", 0, 1, 0, 0.0, 0, 1, 1, 1,
                       0, "normal", 1000, 0))  # fmt: skip
        if len(messages) > 200_000:
            insert("messages", MESSAGE_INSERT, messages)
            messages = []
    insert("messages", MESSAGE_INSERT, messages)
    insert("elevator_state", STATE_UPSERT, states)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("ANALYZE")
    conn.close()
    return counts


async def timed(client: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    async with client.get(url, headers=headers) as answer:
        await answer.read()
        if answer.status != 200:
            raise RuntimeError(f"{url}: HTTP {answer.status}")
    return (time.perf_counter() - started) * 1000


async def main(args: argparse.Namespace) -> None:
    header("pages and API at city scale")
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(args.data or scratch)
        directory.mkdir(parents=True, exist_ok=True)
        database = directory / "seeded.sqlite3"
        census_dir = directory / "census"
        if not database.exists():  # --data keeps the seeded city between runs
            size = CensusSize(lifts=args.lifts, stations=30, cylinders=args.cylinders, vehicles=args.lifts)
            census_dir, template = await census_database(directory, size)
            started = time.monotonic()
            counts = seed_history(template, census_dir, args)
            print(f"   history written in {time.monotonic() - started:.0f} s: "
                  + ", ".join(f"{n:,} {table}" for table, n in counts.items()))  # fmt: skip
            conn = await db.connect(template)
            await users.add_user(conn, "bench", "admin", PASSWORD)
            await conn.close()
            template.rename(database)
        config = fresh_config(directory, database, "platform")
        conn = await db.connect(config.database.path)
        token = await users.create_token(conn, "bench")
        await conn.close()
        census = read_census(census_dir)
        traced = [c["cylinder_code"] for c in census["cylinders"] if c["kind"] == "household_lpg" and c["tag_uid"]]
        rng = random.Random(3)
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
                    "dashboard /": lambda: (f"{base}/", None),
                    "lift list /lifts": lambda: (f"{base}/lifts", None),
                    "cylinder trace /cylinders?q=": lambda: (f"{base}/cylinders?q={rng.choice(traced)}", None),
                    "rollout /rollout": lambda: (f"{base}/rollout", None),
                    "API /api/v1/elevators": lambda: (f"{base}/api/v1/elevators?limit=500", api),
                    "API /api/v1/cylinders/{code}": lambda: (f"{base}/api/v1/cylinders/{rng.choice(traced)}", api),
                    "API /api/v1/alarms?status=open": lambda: (f"{base}/api/v1/alarms?status=open", api),
                    "API /api/v1/coverage": lambda: (f"{base}/api/v1/coverage", api),
                }
                results = {}
                for name, make in cases.items():
                    await timed(client, *make())  # warm up
                    profiler = cProfile.Profile() if args.profile and args.profile in name else None
                    if profiler:
                        profiler.enable()
                    times = [await timed(client, *make()) for _ in range(args.requests)]
                    if profiler:
                        profiler.disable()
                        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
                    results[name] = (percentile(times, 0.5), percentile(times, 0.95))
                    print(f"   {name:<34} p50 {results[name][0]:7.1f} ms   p95 {results[name][1]:7.1f} ms")
    measured = ("dashboard /", "lift list /lifts", "cylinder trace /cylinders?q=")
    verdict = "met" if all(results[name][1] <= TARGET_MS for name in measured) else "MISSED"
    print("SUMMARY pages: p95 " + ", ".join(f"{name.split(' ')[0] if 'API' not in name else name} "
                                              f"{results[name][1]:.0f} ms" for name in results)
          + f" at {args.lifts} lifts, {args.cylinders} cylinders (target p95 <= {TARGET_MS:.0f} ms for dashboard,"
          f" lift list, cylinder trace: {verdict})")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lifts", type=int, default=5000)
    parser.add_argument("--cylinders", type=int, default=300_000)
    parser.add_argument("--fills-per-cylinder", type=int, default=6, help="fills per household cylinder in the year")
    parser.add_argument("--status-per-day", type=int, default=24, help="raw status messages per lift per day kept")
    parser.add_argument("--requests", type=int, default=40, help="requests per page")
    parser.add_argument("--data", metavar="DIR", help="keep the seeded city here and reuse it on the next run")
    parser.add_argument("--profile", metavar="NAME", help="cProfile the requests of the case whose name contains NAME")
    run(main(parser.parse_args()))
