"""Clock sanity (docs/time.md): a device time more than 10 minutes ahead of the platform, or before the
terminal's installation date, never becomes event time. The record is dated on receipt, the terminal is
flagged "clock wrong" (lift page, API, /metrics) and the next record on a sane clock wins. Each protocol
through the real ingest path: ELink and LMT statuses, a GF-3 fill result's end time."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import aiosqlite
import pytest
from conftest import TerminalClient
from filling_support import LPG_FULL_G, LPG_STATION, Controller
from filling_support import platform as filling_platform  # noqa: F401 - the fixture
from lift_support import LIFT, LiftTerminal, alarm_rows
from test_ingest_lmt import SECRET, TERMINAL, answer, login_line
from web_support import add_user, base_url, token_for

from wuhai_iot.protocols.lmt import cst_text, encode_line
from wuhai_iot.server import Platform

LMT_LIFT = "31101503042010000044"
"""The census lift with the LMT terminal 861234567890123, installed 2026-11-02."""


@pytest.fixture
async def admin(platform: Platform) -> AsyncIterator[Any]:
    """GET a path as the supervisor: (status, JSON or text)."""
    await add_user(platform, "admin", role="admin")
    token = await token_for(platform, "admin")
    async with aiohttp.ClientSession() as session:

        async def get(path: str) -> tuple[int, Any]:
            headers = {"Authorization": f"Bearer {token}"}
            async with session.get(base_url(platform) + path, headers=headers) as reply:
                body = await reply.json() if reply.content_type == "application/json" else await reply.text()
                return reply.status, body

        yield get


def clock_wrong_gauge(metrics: str, protocol: str) -> float:
    found = re.search(rf'^wuhai_terminals_clock_wrong{{protocol="{protocol}"}} (\S+)$', metrics, re.M)
    assert found, metrics
    return float(found.group(1))


async def test_elink_time_0xffffffff_never_becomes_the_lifts_time(
    platform: Platform, database: aiosqlite.Connection, admin: Any
) -> None:
    lift = await LiftTerminal.connect(platform)
    now = int(time.time())
    await lift.status(now - 100)  # a lift in service: its clock is known
    await lift.status(0xFFFFFFFF, door="open")  # acknowledged (stored as received)
    status, detail = await admin(f"/api/v1/elevators/{LIFT}")
    assert status == 200
    assert detail["last_status"]["at"] < datetime.now(UTC).isoformat()  # not 2106
    (terminal,) = detail["terminals"]
    assert terminal["clock_wrong"] is True and terminal["clock_wrong_device_time"].startswith("2106-02-07")
    assert clock_wrong_gauge((await admin("/metrics"))[1], "elink") == 1
    status, page = await admin(f"/lifts/{LIFT}")
    assert status == 200 and "时钟错误" in page
    # 65 s of "stopped outside the zone, occupied, doors closed" on the sane clock: trapped, as on a healthy lift.
    for offset in range(0, 66, 5):
        await lift.status(now - 70 + offset, zone=False, occupied=True)
    rows = await alarm_rows(database, "trapped")
    assert rows == [("trapped", now - 70 + 40, None)]
    status, detail = await admin(f"/api/v1/elevators/{LIFT}")
    assert detail["terminals"][0]["clock_wrong"] is False  # the next sane frame cleared the flag
    assert detail["last_status"]["at"].startswith(datetime.fromtimestamp(now - 5, UTC).isoformat()[:19])
    assert clock_wrong_gauge((await admin("/metrics"))[1], "elink") == 0
    stored = await (await database.execute("SELECT count(*) FROM messages WHERE device_time IS NULL")).fetchone()
    assert stored[0] == 1  # the bad frame is kept, without a device time
    await lift.close()


async def lmt_terminal(platform: Platform) -> TerminalClient:
    client = await TerminalClient.connect(platform, "lmt")
    await client.send(login_line(SECRET, time_text=cst_text(datetime.now(UTC))))
    assert answer(await client.receive())[2] == "ACK"
    return client


async def send_lmt(client: TerminalClient, seq: int, time_text: str, payload: str) -> None:
    await client.send(encode_line(TERMINAL, seq, time_text, "ST", payload))
    assert answer(await client.receive())[3].startswith("OK"), "not acknowledged"


async def test_lmt_time_in_2099_or_before_installation_is_dated_on_receipt(
    platform: Platform, database: aiosqlite.Connection, admin: Any
) -> None:
    client = await lmt_terminal(platform)
    trapped = "fl=3;dir=S;door=C;run=0;dz=0;occ=1;spd=0.00;mode=N;pwr=1"
    now = int(time.time())
    await send_lmt(client, 2, cst_text(datetime.fromtimestamp(now - 100, UTC)), "fl=1;dir=S;door=O;run=0;dz=1;occ=0")
    await send_lmt(client, 3, "20990101000000", "fl=2;dir=S;door=O;run=0;dz=1;occ=0")
    status, detail = await admin(f"/api/v1/elevators/{LMT_LIFT}")
    assert detail["last_status"]["at"] < datetime.now(UTC).isoformat() and detail["last_status"]["floor"] == 2
    assert detail["terminals"][0]["clock_wrong_device_time"].startswith("2098-12-31T16:00:00")
    assert clock_wrong_gauge((await admin("/metrics"))[1], "lmt") == 1
    for seq, offset in enumerate(range(0, 66, 5), start=4):
        await send_lmt(client, seq, cst_text(datetime.fromtimestamp(now - 70 + offset, UTC)), trapped)
    assert await alarm_rows(database, "trapped") == [("trapped", now - 70 + 40, None)]
    assert clock_wrong_gauge((await admin("/metrics"))[1], "lmt") == 0
    # Before the terminal's installation date (2026-11-02): a wrong clock too.
    await send_lmt(client, 30, "20260101080000", "fl=5;dir=S;door=O;run=0;dz=1;occ=0")
    status, detail = await admin(f"/api/v1/elevators/{LMT_LIFT}")
    assert detail["terminals"][0]["clock_wrong_device_time"].startswith("2026-01-01T00:00:00")
    assert detail["last_status"]["floor"] == 5 and detail["last_status"]["at"] > "2026-11"
    await client.close()


async def test_gasfill_result_end_time_ahead_is_dated_on_receipt(
    filling_platform: Platform, database: aiosqlite.Connection  # noqa: F811
) -> None:
    post = await Controller.connect(filling_platform)
    decision = await post.request("LPG-FILL-0007", 14_000)
    before = time.time()
    ahead = int(before) + 3600  # an hour ahead: more than 10 minutes
    assert await post.result("LPG-FILL-0007", decision.request_seq, 14_000, LPG_FULL_G, ended_at=ahead) == 0
    (ended_at,) = await (await database.execute("SELECT ended_at FROM fills")).fetchone()
    assert before <= ended_at <= time.time()
    flagged = await (await database.execute(
        "SELECT terminal_id, clock_wrong_device_time FROM terminal_sessions WHERE clock_wrong_at IS NOT NULL"
    )).fetchall()  # fmt: skip
    assert [tuple(row) for row in flagged] == [(f"{LPG_STATION}-1", ahead)]
    await post.close()
