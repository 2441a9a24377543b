"""The platform on a bad day, through the real server process: a database that cannot be written, kill -9.

The disk is "filled" by lowering the server's file-size limit (``RLIMIT_FSIZE``, set from outside with
``prlimit``): every write past the limit fails as on a full disk (EFBIG), reads go on, and raising the
limit again is the disk getting space back — no privileges, no mock, the real SQLite file.
"""

from __future__ import annotations

import asyncio
import resource
import sqlite3
import sys
import time
from pathlib import Path

import pytest
from filling_support import Controller, import_scenario
from lift_support import LIFT, LiftTerminal, status_body
from server_process import ServerProcess, write_config

from wuhai_iot.config import Config
from wuhai_iot.protocols.elink import STATUS, encode_frame

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prlimit is Linux's")

LOOP_HELD_LIMIT_MS = 50.0
"""The platform's own work never holds the event loop longer than this (the worst lag of the server's own
probe, bounded by the CPU time the loop's thread used meanwhile: this machine is shared)."""
LOG_LINES_LIMIT = 40
"""Log lines the server may write while its disk is full, whatever the traffic (one per kind of error)."""


def fill_disk(pid: int) -> None:
    """Every write past the first byte of any file fails from now on, as on a full disk."""
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (1, resource.RLIM_INFINITY))


def free_disk(pid: int) -> None:
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


async def wait_for_health(server: ServerProcess, status: int, timeout: float = 20) -> dict[str, object]:
    async with asyncio.timeout(timeout):
        while True:
            got, body = await server.health()
            if got == status:
                return body
            await asyncio.sleep(0.05)


async def test_full_disk_denies_fills_withholds_acks_and_recovers_without_restart(tmp_path: Path) -> None:
    config = Config()
    config.database.path = tmp_path / "platform.sqlite3"
    await import_scenario(config)
    server = await ServerProcess.start(write_config(tmp_path))
    try:
        controller = await Controller.connect(server)  # type: ignore[arg-type]
        lift = await LiftTerminal.connect(server, LIFT)  # type: ignore[arg-type]
        assert (await controller.request("LPG-OK-0001", 14_000)).permit
        await lift.status(int(time.time()), floor=3)  # (acknowledged)
        assert (await server.health())[0] == 200

        fill_disk(server.pid)
        lines_before = len(server.log)
        # A full disk for a while under traffic: every fill is denied with reason 99 ...
        decisions = [await controller.request("LPG-OK-0001", 14_000) for _ in range(150)]
        assert {(d.permit, d.reason) for d in decisions} == {(False, 99)}
        # ... a status is not acknowledged (the terminal will resend it) ...
        full_at = int(time.time())
        status_seq = lift.seq + 1
        status = encode_frame(lift.bcd, STATUS, status_seq, full_at, status_body({"floor": 5}))
        await lift.client.send(status)
        with pytest.raises(TimeoutError):
            await lift.client.receive(timeout=2.0)
        # ... /healthz says why, and the log does not flood.
        body = await wait_for_health(server, 503)
        assert "writer: cannot commit" in str(body["reason"]), body
        for _ in range(100):
            await controller.request("LPG-OK-0001", 14_000)
        assert len(server.log) - lines_before <= LOG_LINES_LIMIT, "".join(server.log[lines_before:])

        free_disk(server.pid)
        await wait_for_health(server, 200)
        await lift.client.send(status)  # the terminal resends what was not acknowledged
        assert (await lift.client.receive())[23] == 0
        assert (await controller.request("LPG-OK-0001", 14_000)).permit
        _, body = await server.health()
        print(f"event loop: worst lag {body['loop_lag_worst_ms']} ms, held {body['loop_held_worst_ms']} ms")
        assert float(body["loop_held_worst_ms"]) <= LOOP_HELD_LIMIT_MS  # type: ignore[arg-type]
        await controller.close()
        await lift.client.close()
    finally:
        free_disk(server.pid)
        status = await server.stop()
        print("".join(server.log[-60:]))
        assert status == 0

    with sqlite3.connect(tmp_path / "platform.sqlite3") as db:
        # Every decision answered has its record (those made while the disk was full were kept and
        # committed once it had room), and the status stored once.
        reasons = db.execute("SELECT reason, count(*) FROM fill_decisions GROUP BY reason ORDER BY reason").fetchall()
        assert reasons == [(0, 2), (99, 250)]
        assert db.execute("SELECT count(*) FROM messages WHERE protocol = 'elink' AND device_time = ? AND seq = ?",
                          (full_at, status_seq)).fetchone() == (1,)  # fmt: skip
