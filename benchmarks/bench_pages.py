"""Pages and API lists: p95 latency at two registry sizes in one run, and their ratio.

Every page an officer opens and every API list is asked, one request at a time, as a logged-in admin
(pages, session cookie) and with an API token (JSON), on two platforms: the city (``--lifts``,
``--cylinders``: 5,000 lifts and 300,000 cylinders by default) and one ``--factor`` times larger (five by
default), each with the same history per lift and per cylinder — alarms (with rescues), maintenance visits
and fills over ``--history-days``, raw status messages and every lift's latest state — written straight into
the platform's tables before it starts (what running would have left there). The headline figure is the
p95 ratio large/small per page: a page whose cost does not grow with the city stays near 1.

``--province`` measures one platform of 100,000 lifts, 2,000,000 cylinders and 20,000 vehicles with a
year of history instead (slow to seed).

Each size is measured in a process of its own, started after the seeding: its resident memory, printed
before the platform starts and after every page has been asked, is the platform's (with the benchmark's
HTTP client), not what the seeding left behind.

Targets: ratio <= 1.5 for every page; p95 <= 100 ms for every page at the sizes measured.

    python benchmarks/bench_pages.py [--lifts 5000 --cylinders 300000 --factor 5 --requests 40]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import multiprocessing
import json
import pstats
import random
import re
import sqlite3
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import aiohttp
from support import census_database, fresh_config, header, percentile, rss_bytes

from wuhai_iot.elevators.state import STATE_UPSERT
from wuhai_iot.pipeline.ingest import MESSAGE_INSERT
from wuhai_iot.registry import users
from wuhai_iot.runner import run
from wuhai_iot.server import Platform
from wuhai_iot.simulator.census import CensusSize, read_census
from wuhai_iot.storage import db

TARGET_MS = 100.0
TARGET_RATIO = 1.5
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
    window_s = args.history_days * DAY_S
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
    for alarm_id in range(1, round(len(lifts) * 10 * window_s / YEAR_S) + 1):
        lift, kind = rng.choice(lifts), rng.choices(kinds, weights)[0]
        raised = now - rng.uniform(0, window_s)
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
        while start > now - window_s:
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
        for _ in range(round(args.fills_per_cylinder * window_s / YEAR_S)):
            at = now - rng.uniform(0, window_s)
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
        at = now - min(30, args.history_days) * DAY_S
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


async def seeded(directory: Path, lifts: int, cylinders: int, args: argparse.Namespace) -> tuple[Path, Path]:
    """A census of this size with its history, seeded once into ``directory`` (kept there with ``--data``)."""
    database = directory / "seeded.sqlite3"
    census_dir = directory / "census"
    if not database.exists():
        size = CensusSize(lifts=lifts, stations=max(30, lifts // 160), cylinders=cylinders, vehicles=max(50, lifts // 5))
        census_dir, template = await census_database(directory, size)
        started = time.monotonic()
        counts = seed_history(template, census_dir, args)
        print(f"   history of {args.history_days} days written in {time.monotonic() - started:.0f} s: "
              + ", ".join(f"{n:,} {table}" for table, n in counts.items()))  # fmt: skip
        conn = await db.connect(template)
        await users.add_user(conn, "bench", "admin", PASSWORD)
        await conn.close()
        template.rename(database)
    return database, census_dir


def measure_in_own_process(directory: Path, database: Path, lifts: int, args: argparse.Namespace
                           ) -> tuple[dict[str, tuple[float, float]], tuple[int, int]]:  # fmt: skip
    """``measure`` in a process of its own (started for it): its resident memory is the platform's, not
    what seeding or the other size left in this one."""
    return run(measure(directory, database, lifts, args))


async def measure(directory: Path, database: Path, lifts: int, args: argparse.Namespace
                  ) -> tuple[dict[str, tuple[float, float]], tuple[int, int]]:  # fmt: skip
    """p50 and p95 (ms) of every page and API list on a platform of this size, and the resident memory of
    this process (bytes) before the platform starts and once every page has been asked."""
    config = fresh_config(directory, database, "platform")
    conn = await db.connect(config.database.path)
    token = await users.create_token(conn, "bench")
    some_lift = (await (await conn.execute("SELECT device_code FROM elevators ORDER BY device_code LIMIT 1"
                                           " OFFSET ?", (lifts // 2,))).fetchone())[0]  # fmt: skip
    some_station = (await (await conn.execute("SELECT station_code FROM stations LIMIT 1")).fetchone())[0]
    some_plate = (await (await conn.execute("SELECT plate FROM vehicles LIMIT 1 OFFSET ?",
                                            (lifts // 10,))).fetchone())[0]  # fmt: skip
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
                "/cylinders?code=": lambda: (f"{base}/cylinders?code={rng.choice(traced)}", None),
                "/vehicles?plate=": lambda: (f"{base}/vehicles?plate={some_plate}", None),
                "/rollout": lambda: (f"{base}/rollout", None),
                "/reports/monthly": lambda: (f"{base}/reports/monthly?month={month}", None),
                "/audit": lambda: (f"{base}/audit", None),
                "API elevators (500)": lambda: (f"{base}/api/v1/elevators?limit=500", api),
                "API elevators overdue": lambda: (f"{base}/api/v1/elevators?maintenance_overdue=true", api),
                "API cylinder": lambda: (f"{base}/api/v1/cylinders/{rng.choice(traced)}", api),
                "API alarms open": lambda: (f"{base}/api/v1/alarms?status=open", api),
                "API visits": lambda: (f"{base}/api/v1/maintenance/visits", api),
                "API rescues": lambda: (f"{base}/api/v1/rescues", api),
                "API coverage": lambda: (f"{base}/api/v1/coverage", api),
            }
            results = {}
            for name, make in cases.items():
                try:
                    await timed(client, *make())  # warm up
                except NotServed:
                    print(f"   {name:<24} not served by this platform")
                    continue
                profiler = cProfile.Profile() if args.profile and args.profile in name else None
                if profiler:
                    profiler.enable()
                times = [await timed(client, *make()) for _ in range(args.requests)]
                if profiler:
                    profiler.disable()
                    pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
                results[name] = (percentile(times, 0.5), percentile(times, 0.95))
                print(f"   {name:<24} p50 {results[name][0]:7.1f} ms   p95 {results[name][1]:7.1f} ms")
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
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as own:
                results.append(await asyncio.get_running_loop().run_in_executor(
                    own, measure_in_own_process, directory, database, lifts, args))  # fmt: skip
    worst_p95 = max(p95 for measured, _ in results for _, p95 in measured.values())
    if len(results) == 1:
        print(f"SUMMARY pages: worst p95 {worst_p95:.0f} ms at {args.lifts} lifts, {args.cylinders} cylinders"
              f" (target p95 <= {TARGET_MS:.0f} ms: {'met' if worst_p95 <= TARGET_MS else 'MISSED'})")  # fmt: skip
        return
    (small, small_rss), (large, large_rss) = results
    print(f"-- p95 ratio, {sizes[1][0]:,} lifts against {sizes[0][0]:,} (and the p50 ratio, steadier on a busy machine)")
    ratios = {name: large[name][1] / small[name][1] for name in small if name in large}
    for name, ratio in ratios.items():
        print(f"   {name:<24} x{ratio:4.2f}   ({small[name][1]:.1f} -> {large[name][1]:.1f} ms)   p50"
              f" x{large[name][0] / small[name][0]:4.2f}   ({small[name][0]:.1f} -> {large[name][0]:.1f} ms)")  # fmt: skip
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
    parser.add_argument("--requests", type=int, default=40, help="requests per page")
    parser.add_argument("--data", metavar="DIR", help="keep the seeded cities here and reuse them on the next run")
    parser.add_argument("--profile", metavar="NAME", help="cProfile the requests of the case whose name contains NAME")
    run(main(parser.parse_args()))
