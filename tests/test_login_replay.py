"""A device LOGIN is usable once (issue 15, item 3): ELink, LMT and GF-3, through the real platform.

The HMAC of a LOGIN covers the terminal and its device time, so a captured LOGIN used to log anyone in
for ever and take over the lift's session. Now a login whose device time is not later than the last
accepted one for that terminal is refused (result 3 / ``AUTH``) and its connection closed; a newer
connection of the terminal keeps the session and the older one is closed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from conftest import TerminalClient
from filling_support import Controller, import_scenario
from test_ingest_lmt import SECRET, answer, login_line

from wuhai_iot import events as ev
from wuhai_iot.config import Config
from wuhai_iot.protocols.elink import encode_frame
from wuhai_iot.protocols.gasfill import LOGIN as GF_LOGIN
from wuhai_iot.protocols.gasfill import Bodies
from wuhai_iot.protocols.lmt import cst_text
from wuhai_iot.server import Platform

TERMINAL = "8613000100020003"
BCD = bytes.fromhex(TERMINAL)
KEY = b"k" * 16
DAY = 86_400
YEAR_2100 = 4_102_444_800


def cst_login_text(seconds: float) -> str:
    return cst_text(datetime.fromtimestamp(seconds, UTC))


def elink_login(clock: int) -> bytes:
    auth = hmac.new(KEY, BCD + clock.to_bytes(4, "big"), hashlib.sha256).digest()[:16]
    return encode_frame(BCD, 0x01, 1, clock, b"EL200-13\x00\x1e" + auth)


async def elink_result(platform: Platform, login: bytes) -> tuple[int, TerminalClient]:
    client = await TerminalClient.connect(platform, "elink")
    await client.send(login)
    ack = await client.receive()
    assert ack[13] == 0x81 and ack[20] == 0x01
    return ack[23], client


async def test_elink_captured_or_older_logins_are_refused(platform: Platform) -> None:
    now = int(time.time())
    captured = elink_login(now - 5)
    result, lift = await elink_result(platform, captured)
    assert result == 0
    # The captured LOGIN replayed on a second connection: refused and closed; the real lift keeps its session.
    result, thief = await elink_result(platform, captured)
    assert result == 3 and await thief.closed_by_platform()
    seq = await platform.send_command("elink", TERMINAL, ev.TerminalCommand(ev.CommandCode.REPORT_STATUS))
    command = await lift.receive()
    assert command[13] == 0x90 and int.from_bytes(command[14:16], "big") == seq
    # Older device times (an hour, thirty days), an unset clock (0) and one far ahead (2100): refused.
    for clock in (now - 3600, now - 30 * DAY, 0, YEAR_2100):
        result, other = await elink_result(platform, elink_login(clock))
        assert result == 3, clock
        assert await other.closed_by_platform()
    await lift.close()
    assert platform.ingest.logins_replayed == 5


async def test_newer_connection_keeps_the_session(platform: Platform) -> None:
    now = int(time.time())
    result, older = await elink_result(platform, elink_login(now - 10))
    assert result == 0
    result, newer = await elink_result(platform, elink_login(now - 9))
    assert result == 0
    assert await older.closed_by_platform(), "the older connection is closed when the terminal logs in again"
    await platform.send_command("elink", TERMINAL, ev.TerminalCommand(ev.CommandCode.REPORT_STATUS))
    assert (await newer.receive())[13] == 0x90
    await newer.close()


async def test_lmt_login_30_days_old_is_refused(platform: Platform) -> None:
    now = time.time()
    accepted = await TerminalClient.connect(platform, "lmt")
    await accepted.send(login_line(SECRET, time_text=cst_login_text(now - 60)))
    assert answer(await accepted.receive())[3].startswith("OK")
    replay = await TerminalClient.connect(platform, "lmt")
    await replay.send(login_line(SECRET, time_text=cst_login_text(now - 30 * DAY)))
    assert answer(await replay.receive())[3] == "AUTH"
    assert await replay.closed_by_platform()
    await accepted.close()


async def test_gasfill_login_a_year_old_is_refused(config: Config) -> None:
    await import_scenario(config)
    async with Platform(config) as platform:
        controller = await Controller.connect(platform, scale=2, key="station-150301-k")
        old = int(time.time()) - 365 * DAY
        material = (150301).to_bytes(4, "little") + bytes([2]) + old.to_bytes(4, "little")
        auth = hmac.new(b"station-150301-k", material, hashlib.sha256).digest()[:16]
        replay = Controller(await TerminalClient.connect(platform, "gasfill"), 150301, 2)
        seq = await replay.send(GF_LOGIN, Bodies[GF_LOGIN].build({"firmware": "GF-3.2.1", "clock": old, "auth": auth}))
        assert await replay.ack(seq) == 3
        assert await replay.client.closed_by_platform()
        assert (await controller.request("LPG-OK-0001", 14_000)).permit, "the real controller goes on"
        await controller.close()


async def test_staff_let_a_terminal_with_a_reset_clock_in(platform: Platform, tmp_path: Path) -> None:
    now = int(time.time())
    result, lift = await elink_result(platform, elink_login(now))
    assert result == 0
    await lift.close()
    reset = elink_login(now - 3 * DAY)  # its clock went back three days, and it cannot set it itself
    result, lift = await elink_result(platform, reset)
    assert result == 3
    config = tmp_path / "cli.toml"
    config.write_text(f'[database]\npath = "{platform.config.database.path}"\n', encoding="utf-8")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "wuhai_iot", "terminals", "allow-login", "elink", TERMINAL, "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()
    result, lift = await elink_result(platform, reset)
    assert result == 0, "after allow-login the next LOGIN is accepted whatever its time"
    await lift.close()
    result, again = await elink_result(platform, reset)
    assert result == 3, "and the rule applies again from that login on"
