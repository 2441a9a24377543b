"""LMT-4 end to end: real sockets on loopback, the real platform, a real SQLite file."""

from __future__ import annotations

import functools
import hashlib
import hmac
import operator
from datetime import UTC, datetime

import aiosqlite
from conftest import FIXTURES, TerminalClient

from wuhai_iot import events as ev
from wuhai_iot.protocols.lmt import encode_line
from wuhai_iot.server import Platform

TERMINAL = "861234567890123"
SECRET = "secret-lmt-key01"


def line(name: str) -> bytes:
    return (FIXTURES / "lmt" / name).read_bytes()


LOGIN, STATUS = line("spec_login.line"), line("spec_status.line")


def answer(frame: bytes) -> tuple[str, int, str, str]:
    """(terminal, seq, type, payload) of a platform line, after checking its framing and checksum."""
    text = frame.decode("ascii")
    assert text.startswith("#LMT,") and text.endswith("\r\n"), text
    body, checksum = text[1:-2].split("*")
    assert f"{functools.reduce(operator.xor, body.encode(), 0):02X}" == checksum
    _, terminal, seq, time_text, type_, payload = body.split(",")
    assert len(time_text) == 14 and time_text.isdigit()
    return terminal, int(seq), type_, payload


def login_line(secret: str, terminal: str = TERMINAL, time_text: str = "20261129090000") -> bytes:
    key = hmac.new(secret.encode(), (terminal + time_text).encode(), hashlib.sha256).hexdigest()[:32]
    return encode_line(terminal, 1, time_text, "LOGIN", f"fw=LMT-4.1;iv=30;key={key}")


async def logged_in(platform: Platform, login: bytes = LOGIN) -> TerminalClient:
    client = await TerminalClient.connect(platform, "lmt")
    await client.send(login)
    terminal, seq, type_, payload = answer(await client.receive())
    assert (terminal, seq, type_, payload[:5]) == (TERMINAL, 1, "ACK", "OK;t=")
    return client


async def count(database: aiosqlite.Connection, sql: str, *params: object) -> int:
    row = await (await database.execute(sql, params)).fetchone()
    return row[0]


async def test_spec_examples_end_to_end(platform: Platform, database: aiosqlite.Connection) -> None:
    client = await logged_in(platform)
    await client.send(STATUS + line("spec_trap_raised.line") + line("spec_maint_start.line"))
    assert [answer(await client.receive())[1:] for _ in range(3)] == [(17, "ACK", "OK"), (18, "ACK", "OK"),
                                                                      (19, "ACK", "OK")]  # fmt: skip
    stored = await (await database.execute("SELECT type, seq, device_time FROM messages ORDER BY seq")).fetchall()
    cst_0830 = int(datetime(2026, 11, 29, 0, 30, tzinfo=UTC).timestamp())  # 08:30:00 in UTC+8
    assert [tuple(row) for row in stored] == [("ST", 17, cst_0830), ("EV", 18, cst_0830), ("MS", 19, cst_0830)]
    state = await (await database.execute("SELECT * FROM elevator_state")).fetchone()
    assert state["device_code"] == "31101503042010000044"
    assert (state["floor"], state["direction"], state["door"], state["running"]) == (12, "up", "closed", 1)
    assert (state["speed_mps"], state["load_pct"], state["at"]) == (1.5, 40, cst_0830)
    session = await (await database.execute("SELECT * FROM terminal_sessions")).fetchone()
    assert (session["terminal_id"], session["online"], session["firmware"]) == (TERMINAL, 1, "LMT-4.1")
    await client.close()


async def test_resent_line_is_stored_once(platform: Platform, database: aiosqlite.Connection) -> None:
    client = await logged_in(platform)
    await client.send(STATUS)
    await client.receive()
    await client.close()
    # The ACK was "lost": after a reconnect the terminal resends the line unchanged.
    again = await logged_in(platform, login_line(SECRET))  # (a later login: each is usable once)
    await again.send(STATUS)
    assert answer(await again.receive())[1:] == (17, "ACK", "OK")
    assert await count(database, "SELECT count(*) FROM messages") == 1
    await again.close()


async def test_bad_lines_are_answered_err_and_the_stream_goes_on(
    platform: Platform, database: aiosqlite.Connection
) -> None:
    client = await logged_in(platform)
    over_long = encode_line(TERMINAL, 60, "20261129083100", "ST", "fl=1;pad=" + "x" * 700)
    heartbeat = encode_line(TERMINAL, 61, "20261129083200", "HB").replace(b"\r\n", b"\n")
    burst = (line("bad_checksum.line") + over_long + b"modem noise\r\n" + line("unsupported_type.line")
             + line("status_bad_direction.line") + heartbeat)  # fmt: skip
    await client.send(burst)
    answers = [answer(await client.receive())[1:] for _ in range(5)]
    assert answers == [(17, "ACK", "ERR"), (60, "ACK", "ERR"), (41, "ACK", "ERR"), (42, "ACK", "ERR"),
                       (61, "ACK", "OK")]  # fmt: skip
    assert await count(database, "SELECT count(*) FROM messages") == 0
    await client.close()


async def test_wrong_key_gets_auth_and_is_closed(platform: Platform) -> None:
    client = await TerminalClient.connect(platform, "lmt")
    await client.send(login_line("secret-lmt-key02"))
    assert answer(await client.receive())[1:] == (1, "ACK", "AUTH")
    assert await client.closed_by_platform()


async def test_unknown_terminal_gets_unknown_and_is_closed(platform: Platform) -> None:
    client = await TerminalClient.connect(platform, "lmt")
    await client.send(login_line(SECRET, terminal="869999999999999"))
    assert answer(await client.receive()) == ("869999999999999", 1, "ACK", "UNKNOWN")
    assert await client.closed_by_platform()


async def test_lines_before_login_get_login(platform: Platform, database: aiosqlite.Connection) -> None:
    client = await TerminalClient.connect(platform, "lmt")
    await client.send(STATUS)
    assert answer(await client.receive())[1:] == (17, "ACK", "LOGIN")
    assert await count(database, "SELECT count(*) FROM messages") == 0
    await client.send(login_line(SECRET))
    seq, type_, payload = answer(await client.receive())[1:]
    assert (seq, type_, payload[:5]) == (1, "ACK", "OK;t=")
    await client.close()


async def test_command_out_and_reply_in(platform: Platform, database: aiosqlite.Connection) -> None:
    client = await logged_in(platform)
    seq = await platform.send_command("lmt", TERMINAL, ev.TerminalCommand(ev.CommandCode.SET_INTERVAL, 60), "tester")
    assert answer(await client.receive()) == (TERMINAL, seq, "CMD", "iv=60")
    await client.send(encode_line(TERMINAL, 20, "20261129083300", "RS", f"cmd={seq};res=OK"))
    assert answer(await client.receive())[1:] == (20, "ACK", "OK")
    row = await (await database.execute("SELECT code, argument, status, requested_by FROM commands")).fetchone()
    assert tuple(row) == ("set_interval", 60, "done", "tester")
    await client.close()
