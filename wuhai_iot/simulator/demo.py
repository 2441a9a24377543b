"""``wuhai-iot demo``: a living city in one command.

Creates a demo data directory (configuration, generated census, database), imports the census, creates
one demo user per role (passwords printed, and kept in ``demo-logins.txt`` so that a second run can
print them again), starts the platform in this process and simulated terminals that connect over real
TCP on 127.0.0.1 and speak all three protocols (``wuhai_iot.simulator.city``). Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import signal
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from wuhai_iot import logs
from wuhai_iot.clock import cst_today
from wuhai_iot.config import Config, LogConfig, load_config
from wuhai_iot.elevators.maintenance import VISIT_UPSERT
from wuhai_iot.plugins import protocols
from wuhai_iot.plugins.hookspecs import hookimpl
from wuhai_iot.registry.census import exit_status, import_files
from wuhai_iot.registry.users import UserError, add_user
from wuhai_iot.runner import run
from wuhai_iot.server import Platform
from wuhai_iot.simulator.census import (
    Census,
    CensusSize,
    generate_census,
    read_census,
    write_census,
)
from wuhai_iot.simulator.city import City
from wuhai_iot.simulator.history import (
    ALARM_HISTORY,
    DECISION_HISTORY,
    RESCUE_HISTORY,
    incident_history,
    maintenance_history,
    terminal_day_history,
)
from wuhai_iot.simulator.cli import add_size_options, size_from
from wuhai_iot.storage import db

DEFAULT_DIR = Path("wuhai-demo")
CONFIG_FILE = "wuhai-iot.toml"
LOGINS_FILE = "demo-logins.txt"
WEB_PORT = 8080
HOST = "127.0.0.1"


@dataclass(frozen=True)
class DemoOptions:
    data: Path = DEFAULT_DIR
    size: CensusSize = CensusSize()
    port_offset: int | None = 0
    """Added to every default port; None: every port chosen by the system."""
    scenario_seconds: float = 300.0
    duration_s: float | None = None
    """Stop by itself after this long (None: run until Ctrl-C)."""


def write_config(directory: Path, port_offset: int | None) -> Path:
    """The demo's configuration: database in the directory, web and protocols on 127.0.0.1."""
    defaults = {"web": WEB_PORT} | {name: protocol.default_port for name, protocol in protocols().items()}
    ports = {name: 0 if port_offset is None else port + port_offset for name, port in defaults.items()}
    lines = ["# Written by `wuhai-iot demo`.", "[database]", 'path = "wuhai-iot.sqlite3"', "",
             "[web]", f'host = "{HOST}"', f"port = {ports['web']}", ""]  # fmt: skip
    for protocol in sorted(ports.keys() - {"web"}):  # every installed protocol, plugins' too
        lines += [f"[protocols.{protocol}]", f'host = "{HOST}"', f"port = {ports[protocol]}", ""]
    lines += ["[subsidy]  # yuan per accepted terminal (/reports/installations)", "elevator = 1500",
              "filling_scale = 2000", ""]  # fmt: skip
    path = directory / CONFIG_FILE
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def prepare_census(directory: Path, size: CensusSize) -> tuple[Census, list[Path]]:
    """The census of an earlier run, or a new one."""
    census_dir = directory / "census"
    paths = sorted(census_dir.glob("*.csv"))
    if len(paths) == 6:
        return read_census(census_dir), paths
    census = generate_census(size)
    return census, write_census(census, census_dir)


def demo_users(census: Census) -> list[tuple[str, str, str | None, str | None]]:
    """(name, role, district, unit) of one user per role, scoped to things the census holds."""
    lpg = [s["station_code"] for s in census["stations"] if s["status"] == "active" and "LPG" in s["media"]]
    companies = sorted({lift["maintenance_company"] for lift in census["elevators"]})
    users: list[tuple[str, str, str | None, str | None]] = [
        ("admin", "admin", None, None),
        ("haibowan", "district", "150302", None),
        ("police", "police", None, None),
        ("transport", "transport", None, None),
        ("expert", "expert", None, None),
    ]
    if lpg:
        users.append(("station", "station", None, lpg[0]))
    if companies:
        users.append(("maintenance", "maintenance", None, companies[0]))
    return users


async def create_users(config: Config, census: Census, directory: Path) -> list[tuple[str, str, str]]:
    """(name, role, password) of every demo user; created once, their passwords kept in demo-logins.txt."""
    logins_file = directory / LOGINS_FILE
    if logins_file.exists():
        return [tuple(line.split("\t")) for line in logins_file.read_text(encoding="utf-8").splitlines()]  # type: ignore[misc]
    logins = []
    conn = await db.connect(config.database.path)
    try:
        for name, role, district, unit in demo_users(census):
            password = secrets.token_urlsafe(9)
            try:
                await add_user(conn, name, role, password, district=district, unit=unit, added_by="demo")
            except UserError as exc:
                print(f"demo user {name}: {exc}", file=sys.stderr)
                continue
            logins.append((name, role, password))
    finally:
        await conn.close()
    logins_file.write_text("".join(f"{n}\t{r}\t{p}\n" for n, r, p in logins), encoding="utf-8")
    logins_file.chmod(0o600)
    return logins


async def import_census(config: Config, paths: list[Path]) -> None:
    conn = await db.connect(config.database.path)
    try:
        reports = await import_files(conn, paths)
    finally:
        await conn.close()
    if exit_status(reports):
        for report in reports:
            print(report.summary(), file=sys.stderr)
        raise RuntimeError("the demo census did not import cleanly")


async def seed_maintenance_history(config: Config, census: Census) -> int:
    """The city's past maintenance visits, once (a second run keeps what the first one recorded)."""
    conn = await db.connect(config.database.path)
    try:
        if await (await conn.execute("SELECT 1 FROM maintenance_visits LIMIT 1")).fetchone() is not None:
            return 0
        rows = maintenance_history(census)
        await conn.executemany(VISIT_UPSERT, rows)
        await conn.commit()
        return len(rows)
    finally:
        await conn.close()


def demo_plan(today: date) -> list[tuple[str, str, str]]:
    """The plan of 2013 moved to this year: pilot 1 Sept – 31 Dec, rollout 1 Jan – 30 June, final acceptance
    1 July – 30 Dec (the pilot of the year that holds today, or of the year before until August)."""
    year = today.year if today.month >= 9 else today.year - 1
    return [("pilot", f"{year}-09-01", f"{year}-12-31"), ("rollout", f"{year + 1}-01-01", f"{year + 1}-06-30"),
            ("final", f"{year + 1}-07-01", f"{year + 1}-12-30")]


async def seed_history(config: Config, census: Census) -> None:
    """The city's past, once (a second run keeps what the first one recorded): a year of trapped passengers
    and fill decisions, the days each terminal reported, and the plan."""
    conn = await db.connect(config.database.path)
    try:
        if await (await conn.execute("SELECT 1 FROM plan_phases LIMIT 1")).fetchone() is not None:
            return
        alarms, rescues, decisions = incident_history(census)
        await conn.execute("BEGIN")
        await conn.executemany(ALARM_HISTORY, alarms)
        await conn.executemany(RESCUE_HISTORY, rescues)
        await conn.executemany(DECISION_HISTORY, decisions)
        await conn.executemany("INSERT OR IGNORE INTO terminal_days (protocol, terminal_id, day) VALUES (?, ?, ?)",
                               terminal_day_history(census))  # fmt: skip
        await conn.executemany("INSERT INTO plan_phases (phase, starts_on, ends_on, updated_at, updated_by)"
                               " VALUES (?, ?, ?, strftime('%s', 'now'), 'demo')", demo_plan(cst_today()))  # fmt: skip
        await conn.execute("COMMIT")
    finally:
        await conn.close()


async def run_demo(options: DemoOptions, stop: asyncio.Event | None = None) -> None:
    """Set up, run until ``stop`` is set (or ``duration_s`` passes), then stop everything."""
    directory = options.data.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    config = load_config(write_config(directory, options.port_offset))
    census, paths = prepare_census(directory, options.size)
    print(f"demo data in {directory}: {len(census['elevators'])} lifts, {len(census['stations'])} stations, "
          f"{len(census['cylinders'])} cylinders, {len(census['vehicles'])} vehicles", flush=True)  # fmt: skip
    await import_census(config, paths)
    await seed_maintenance_history(config, census)
    await seed_history(config, census)
    logins = await create_users(config, census, directory)
    stop = stop or asyncio.Event()
    async with Platform(config) as platform:
        city = City(census, HOST, platform.ports, cycle_s=options.scenario_seconds,
                    say=lambda text: print(text, flush=True))  # fmt: skip
        try:
            online = await city.start()
            print(f"\n{online} simulated terminals online; the platform is at http://{HOST}:{platform.ports['web']}/")
            print("terminals connect to " + ", ".join(f"{name} {HOST}:{platform.ports[name]}"
                                                      for name in ("elink", "lmt", "gasfill", "jt808")))  # fmt: skip
            print("demo logins (user / role / password):")
            for name, role, password in logins:
                print(f"  {name:<12} {role:<12} {password}")
            print("Ctrl-C stops everything.\n", flush=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), options.duration_s)
        finally:
            await city.stop()
    print("demo stopped", flush=True)


def demo_command(args: argparse.Namespace) -> int:
    options = DemoOptions(
        data=Path(args.data),
        size=size_from(args),
        port_offset=None if args.ports == "auto" else args.port_offset,
        scenario_seconds=args.scenario_seconds,
        duration_s=args.duration,
    )
    logs.configure(LogConfig(), "WARNING")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_demo(options, stop)

    run(main())
    return 0


@hookimpl
def register_commands(subparsers: "argparse._SubParsersAction[Any]") -> None:
    demo = subparsers.add_parser(
        "demo",
        help="a living demo city: census, users, the platform and simulated terminals on 127.0.0.1",
        description="Create a demo data directory, generate and import a Wuhai-like census, create a user "
        "per role (passwords printed), start the platform and simulated lifts and filling scales that "
        "connect over TCP and play trapped passengers, faults, an offline terminal, maintenance visits "
        "and fills (some denied). Ctrl-C stops everything.",
    )
    demo.add_argument("--data", default=str(DEFAULT_DIR), metavar="DIR", help=f"demo directory (default {DEFAULT_DIR})")
    add_size_options(demo, CensusSize())
    ports = demo.add_mutually_exclusive_group()
    ports.add_argument("--port-offset", type=int, default=0,
                       help="add this to every default port (web 8080, ELink 5701, LMT 5702, GF-3 5710, JT/T 808 5808)")  # fmt: skip
    ports.add_argument("--ports", choices=["auto"], help="auto: let the system choose every port (printed)")
    demo.add_argument("--scenario-seconds", type=float, default=300.0,
                      help="length of one scripted cycle of incidents (default 300; a few seconds for tests)")  # fmt: skip
    demo.add_argument("--duration", type=float, help="stop by itself after this many seconds")
    demo.set_defaults(handler=demo_command)
