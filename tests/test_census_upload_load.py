"""A large census upload through the web page does not stall the platform (issue 15, item 6).

A 58 MB cylinders file used to hold the event loop for 22-37 s (parsed and checked in it) and the
database's write lock for the whole file (one transaction): ELink ACKs stopped for 21 s and fill
decisions for 10 s. Here a smaller file (CYLINDERS rows) goes up while a lift sends a status every
20 ms and a filling post asks for decisions; both are measured, and the server's own loop probe.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from pathlib import Path

import aiohttp
from conftest import import_census
from filling_support import Controller, import_scenario
from lift_support import LIFT, LiftTerminal
from server_process import ServerProcess, write_config

from wuhai_iot.config import Config
from wuhai_iot.registry import users
from wuhai_iot.simulator.census import CensusSize, generate_census, write_census
from wuhai_iot.storage import db
from wuhai_iot.web.auth import csrf_for

CYLINDERS = 60_000
ACK_LIMIT_S = 3.0
"""The slowest status ACK while the file is imported: well inside the terminals' 10 s before they resend, and
a seventh of the 21-s stall this guards against. Quiet 2-core machine: 0.23-0.32 s alone, 0.56 s once in a
clean-clone CI run; 1.41 s on a machine at load 10 while the loop was held 24 ms at most (the writer thread
waiting for a core), so the platform's own share is asserted by LOOP_HELD_LIMIT_MS."""
DECISION_LIMIT_S = 0.5
"""The slowest fill decision meanwhile (controllers give up after 3 s)."""
LOOP_HELD_LIMIT_MS = 50.0


async def test_a_large_census_upload_keeps_acks_and_decisions_flowing(tmp_path: Path) -> None:
    census = write_census(generate_census(CensusSize(lifts=50, cylinders=CYLINDERS)), tmp_path / "census")
    cylinders = next(path for path in census if path.name == "cylinders.csv")
    config = Config()
    config.database.path = tmp_path / "platform.sqlite3"
    # The generated city's registry but its cylinders (uploaded below), then the filling scenario on top.
    await import_census(config.database.path, [p for p in census if p.stem not in ("cylinders", "terminals")])
    await import_scenario(config)
    conn = await db.connect(config.database.path)
    try:
        await users.add_user(conn, "admin", "admin", "correct horse 9")
    finally:
        await conn.close()

    server = await ServerProcess.start(write_config(tmp_path))
    try:
        lift = await LiftTerminal.connect(server, LIFT)  # type: ignore[arg-type]
        controller = await Controller.connect(server)  # type: ignore[arg-type]
        uploading = asyncio.Event()
        done = asyncio.Event()
        acks: list[float] = []
        decisions: list[float] = []

        async def statuses() -> None:
            await uploading.wait()
            while not done.is_set():
                sent = time.monotonic()
                await lift.status(int(time.time()), floor=3)
                acks.append(time.monotonic() - sent)
                await asyncio.sleep(0.02)

        async def fills() -> None:
            await uploading.wait()
            while not done.is_set():
                asked = time.monotonic()
                decision = await controller.request("LPG-OK-0001", 14_000)
                decisions.append(time.monotonic() - asked)
                assert decision.permit
                await asyncio.sleep(0.1)

        async def upload() -> str:
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
                async with client.get(server.web_url + "/login") as page:
                    csrf = re.search(r'name="csrf_token" value="([^"]+)"', await page.text())
                assert csrf is not None
                form = {"name": "admin", "password": "correct horse 9", "csrf_token": csrf.group(1)}
                async with client.post(server.web_url + "/login", data=form, allow_redirects=False) as answer:
                    assert answer.status == 302
                session = next(c.value for c in client.cookie_jar if c.key == "wuhai_session")
                data = aiohttp.FormData()
                data.add_field("csrf_token", csrf_for(session))
                data.add_field("files", cylinders.read_bytes(), filename="cylinders.csv", content_type="text/csv")
                uploading.set()
                started = time.monotonic()
                async with client.post(server.web_url + "/census", data=data) as answer:
                    assert answer.status == 200
                    html = await answer.text()
                print(f"{CYLINDERS} cylinders uploaded and imported in {time.monotonic() - started:.1f} s")
                done.set()
                return html

        html, _, _ = await asyncio.wait_for(asyncio.gather(upload(), statuses(), fills()), 300)
        assert "拒绝 0 行" in html, "every row imported"
        _, health = await server.health()
        print(f"during the import: {len(acks)} ACKs, slowest {max(acks) * 1000:.0f} ms; {len(decisions)} decisions,"
              f" slowest {max(decisions) * 1000:.0f} ms; event loop worst lag {health['loop_lag_worst_ms']} ms,"
              f" held {health['loop_held_worst_ms']} ms")  # fmt: skip
        assert max(acks) <= ACK_LIMIT_S
        assert max(decisions) <= DECISION_LIMIT_S
        assert float(health["loop_held_worst_ms"]) <= LOOP_HELD_LIMIT_MS  # type: ignore[arg-type]
        await lift.client.close()
        await controller.close()
    finally:
        assert await server.stop() == 0
    with sqlite3.connect(tmp_path / "platform.sqlite3") as check:
        assert check.execute("SELECT count(*) FROM cylinders").fetchone()[0] >= CYLINDERS
