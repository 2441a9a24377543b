"""``wuhai-iot demo``: starts a living city, shows a trapped alarm and a denied fill, stops on Ctrl-C."""

from __future__ import annotations

import asyncio
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from web_support import browser

from wuhai_iot.simulator.census import CensusSize
from wuhai_iot.simulator.demo import DemoOptions, run_demo

SMALL = ["--lifts", "20", "--stations", "3", "--cylinders", "300", "--vehicles", "20"]


def _query(database: Path, sql: str) -> list[tuple]:
    if not database.exists():
        return []
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute(sql).fetchall()
    except sqlite3.OperationalError:  # tables not created yet
        return []
    finally:
        conn.close()


def test_demo_shows_a_trapped_alarm_and_a_denied_fill_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    demo = subprocess.Popen(
        [sys.executable, "-m", "wuhai_iot", "demo", "--data", str(data), "--ports", "auto", *SMALL,
         "--scenario-seconds", "6"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    database = data / "wuhai-iot.sqlite3"
    try:
        deadline = time.monotonic() + 45
        began = time.time() - 5
        trapped: list[tuple] = []
        denied: list[tuple] = []
        while time.monotonic() < deadline and not (trapped and denied) and demo.poll() is None:
            time.sleep(0.5)
            # (the demo's history holds a year of both: only those of this run count)
            trapped = _query(database, f"SELECT device_code FROM alarms WHERE kind = 'trapped' AND raised_at > {began}")
            denied = _query(database, f"SELECT reason FROM fill_decisions WHERE permit = 0 AND decided_at > {began}")
        assert trapped and denied
        demo.send_signal(signal.SIGINT)
        output, _ = demo.communicate(timeout=20)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.communicate()
    assert demo.returncode == 0, output
    assert "the platform is at http://127.0.0.1:" in output
    logins = (data / "demo-logins.txt").read_text(encoding="utf-8").splitlines()
    assert {line.split("\t")[1] for line in logins} == {"admin", "district", "police", "transport", "station",
                                                        "maintenance", "expert"}  # fmt: skip
    for line in logins:
        name, role, password = line.split("\t")
        assert f"{name:<12} {role:<12} {password}" in output
    assert "demo stopped" in output
    assert _query(database, "SELECT count(*) FROM terminal_sessions WHERE online = 1") == [(0,)]


async def test_a_second_run_reuses_the_census_and_the_users(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    options = DemoOptions(data=tmp_path / "demo", size=CensusSize(lifts=5, stations=2, cylinders=50, vehicles=5),
                          port_offset=None, scenario_seconds=30, duration_s=0.2)  # fmt: skip
    await run_demo(options)
    first = capsys.readouterr().out
    census = (tmp_path / "demo" / "census" / "cylinders.csv").read_bytes()
    await run_demo(options)
    second = capsys.readouterr().out
    assert (tmp_path / "demo" / "census" / "cylinders.csv").read_bytes() == census
    logins = [line for line in first.splitlines() if line.startswith("  admin ")]
    assert logins and logins[0] in second.splitlines()
    users = _query(tmp_path / "demo" / "wuhai-iot.sqlite3", "SELECT count(*) FROM users")
    assert users == [(7,)]


async def test_the_demo_city_has_a_believable_maintenance_history(tmp_path: Path) -> None:
    """Most demo lifts were maintained within 15 days; a few fell behind and a few visits were short."""
    from wuhai_iot.config import load_config
    from wuhai_iot.elevators.queries import count_lifts
    from wuhai_iot.simulator.demo import import_census, prepare_census, seed_maintenance_history, write_config
    from wuhai_iot.storage import db

    config = load_config(write_config(tmp_path, None))
    census, paths = prepare_census(tmp_path, CensusSize(lifts=300, stations=2, cylinders=100, vehicles=10))
    await import_census(config, paths)
    seeded = await seed_maintenance_history(config, census)
    assert seeded > 300 and await seed_maintenance_history(config, census) == 0, "seeded once only"
    conn = await db.connect(config.database.path, migrate=False)
    try:
        counted = await count_lifts(conn, counts=["lifts", "fitted", "maintenance_overdue"])
        short = (await (await conn.execute("SELECT count(*) FROM maintenance_visits WHERE flags = 'short'")).fetchone())[0]
    finally:
        await conn.close()
    lifts = sum(c["lifts"] for c in counted.values())
    overdue = sum(c["maintenance_overdue"] for c in counted.values())
    assert lifts == 300 and 1 <= overdue <= 0.1 * lifts, overdue
    assert short >= 1


def test_ports_auto_gives_every_installed_protocol_a_port_the_system_picks(tmp_path: Path) -> None:
    from wuhai_iot.config import load_config
    from wuhai_iot.plugins import protocols
    from wuhai_iot.simulator.demo import write_config

    config = load_config(write_config(tmp_path, None))
    assert config.web.port == 0 and set(protocols()) <= set(config.protocols)
    assert all(config.protocols[name].port == 0 for name in protocols())
    shifted = load_config(write_config(tmp_path, 100))
    assert {name: shifted.protocols[name].port for name in protocols()} == {
        name: protocol.default_port + 100 for name, protocol in protocols().items()}


async def test_the_demo_publishes_its_progress_and_effect_and_its_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    options = DemoOptions(data=tmp_path / "demo", size=CensusSize(lifts=60, stations=3, cylinders=200, vehicles=20),
                          port_offset=None, scenario_seconds=30)  # fmt: skip
    stop = asyncio.Event()
    running = asyncio.create_task(run_demo(options, stop))
    try:
        printed = ""
        async with asyncio.timeout(60):
            while (found := re.search(r"the platform is at (http://127.0.0.1:\d+)/", printed)) is None:
                await asyncio.sleep(0.2)
                printed += capsys.readouterr().out
        site = found.group(1)
        logins = {line.split("\t")[0]: line.split("\t")[2]
                  for line in (tmp_path / "demo" / "demo-logins.txt").read_text(encoding="utf-8").splitlines()}
        async with aiohttp.ClientSession() as anonymous:
            async with anonymous.get(site + "/public.json") as answer:
                public = await answer.json()
        async with browser() as client:
            async with client.get(site + "/login") as page:
                csrf = re.search(r'name="csrf_token" value="([^"]+)"', await page.text())
            assert csrf is not None
            async with client.post(site + "/login", data={"name": "expert", "password": logins["expert"],
                                                          "csrf_token": csrf.group(1)}) as answer:  # fmt: skip
                assert answer.status == 200
            async with client.get(site + "/reports/evaluation?phase=pilot") as answer:
                evaluation = await answer.text()
            async with client.get(site + "/reports/installations") as answer:
                installations = await answer.text()
    finally:
        stop.set()
        await running
    city = public["areas"][0]
    assert public["plan"]["phases"][0]["phase"] == "pilot"
    assert sum(month["trapped"] != 0 for month in city["months"]) >= 6  # a count, or a range where it is small
    assert "试点阶段评估报告" in evaluation and "困人救援" in evaluation
    assert ">已验收</span>" in installations and ">验收后中断</span>" in installations
