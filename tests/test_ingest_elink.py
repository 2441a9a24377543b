"""ELink-200 end to end: real sockets on loopback, the real platform, a real SQLite file."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools

import aiosqlite
import pytest
from conftest import TerminalClient, fixture_bytes, import_census

from wuhai_iot import events as ev
from wuhai_iot.config import Config
from wuhai_iot.pipeline import listener
from wuhai_iot.protocols.elink import ElinkProtocol, encode_frame
from wuhai_iot.server import Platform

TERMINAL = "8613000100020003"
BCD = bytes.fromhex(TERMINAL)
KEY = b"k" * 16
LOGIN = fixture_bytes("elink/login_vendor_example.hex")
STATUS = fixture_bytes("elink/status_vendor_example.hex")
elink = ElinkProtocol()


def ack_fields(frame: bytes) -> tuple[int, int, int]:
    """(acknowledged type, acknowledged seq, result) of an ACK frame."""
    assert frame[13] == 0x81, f"not an ACK: {frame.hex(' ')}"
    return frame[20], int.from_bytes(frame[21:23], "big"), frame[23]


def login_frame(terminal: bytes = BCD, key: bytes | None = KEY, clock: int = 1764400000) -> bytes:
    auth = hmac.new(key, terminal + clock.to_bytes(4, "big"), hashlib.sha256).digest()[:16] if key else bytes(16)
    return encode_frame(terminal, 0x01, 1, clock, b"EL200-13\x00\x1e" + auth)


def status_frame(seq: int, clock: int, floor: int, flags: int = 0x01A5) -> bytes:
    body = bytes([floor & 0xFF, 1, 0]) + flags.to_bytes(2, "big") + (1500).to_bytes(2, "big")
    return encode_frame(BCD, 0x10, seq, clock, body + bytes([35]) + (7).to_bytes(4, "big"))


_clock = itertools.count(1764400000)
"""Each login of a test a second later than the one before (a login is usable once)."""


async def logged_in(platform: Platform, login: bytes | None = None) -> TerminalClient:
    client = await TerminalClient.connect(platform, "elink")
    await client.send(login or login_frame(clock=next(_clock)))
    assert ack_fields(await client.receive()) == (0x01, 1, 0)
    return client


async def count(database: aiosqlite.Connection, sql: str, *params: object) -> int:
    row = await (await database.execute(sql, params)).fetchone()
    return row[0]


async def test_vendor_examples_end_to_end(platform: Platform, database: aiosqlite.Connection) -> None:
    client = await logged_in(platform, LOGIN)
    await client.send(STATUS)
    assert ack_fields(await client.receive()) == (0x10, 2, 0)
    row = await (await database.execute("SELECT * FROM elevator_state")).fetchone()
    assert row["device_code"] == "31101503022012000101"
    assert (row["floor"], row["direction"], row["door"], row["running"], row["occupied"]) == (7, "up", "closed", 1, 1)
    assert (row["speed_mps"], row["load_pct"], row["trip_count"], row["at"]) == (1.5, 35, 123456, 1764400005)
    stored = await (await database.execute("SELECT type, seq, device_time, frame FROM messages")).fetchall()
    assert [(r["type"], r["seq"], r["device_time"]) for r in stored] == [("STATUS", 2, 1764400005)]
    assert stored[0]["frame"] == STATUS, "the frame is kept exactly as received"
    session = await (await database.execute("SELECT * FROM terminal_sessions")).fetchone()
    assert (session["terminal_id"], session["online"], session["firmware"]) == (TERMINAL, 1, "EL200-13")
    await client.close()


async def test_resend_after_lost_ack_is_stored_once(platform: Platform, database: aiosqlite.Connection) -> None:
    client = await logged_in(platform)
    await client.send(STATUS)
    await client.receive()
    await client.close()
    # The ACK was "lost": the terminal reconnects and resends the same message.
    again = await logged_in(platform)
    await again.send(STATUS)
    assert ack_fields(await again.receive()) == (0x10, 2, 0)
    assert await count(database, "SELECT count(*) FROM messages") == 1
    await again.close()


async def test_split_merged_and_garbage(platform: Platform, database: aiosqlite.Connection) -> None:
    client = await TerminalClient.connect(platform, "elink")
    for byte in LOGIN:
        await client.send(bytes([byte]))
    assert ack_fields(await client.receive())[2] == 0
    corrupted = bytearray(status_frame(3, 1764400010, 8))
    corrupted[21] ^= 0x55
    burst = b"\x00junk" + status_frame(4, 1764400020, 9) + bytes(corrupted) + status_frame(5, 1764400030, 10)
    await client.send(burst)
    acks = sorted([ack_fields(await client.receive())[1] for _ in range(2)])
    assert acks == [4, 5]
    assert await count(database, "SELECT count(*) FROM messages") == 2
    assert await count(database, "SELECT floor FROM elevator_state") == 10
    await client.close()


async def test_oversized_length_does_not_stall_the_stream(platform: Platform) -> None:
    client = await logged_in(platform)
    await client.send(b"EL\x01\xff\xff" + b"\x00" * 40 + STATUS)
    assert ack_fields(await client.receive()) == (0x10, 2, 0)
    await client.close()


async def test_current_state_is_newest_by_device_time(platform: Platform, database: aiosqlite.Connection) -> None:
    client = await logged_in(platform)
    await client.send(status_frame(10, 1764400100, 5))
    await client.receive()
    await client.send(status_frame(11, 1764400050, 2))  # an older sample resent late
    await client.receive()
    assert await count(database, "SELECT floor FROM elevator_state") == 5
    await client.close()


async def test_batch_is_stored_and_acknowledged_once(platform: Platform, database: aiosqlite.Connection) -> None:
    client = await logged_in(platform)
    batch = fixture_bytes("elink/status_batch_3.hex")
    await client.send(batch + batch)
    assert [ack_fields(await client.receive()) for _ in range(2)] == [(0x12, 8, 0), (0x12, 8, 0)]
    assert await count(database, "SELECT count(*) FROM messages WHERE type = 'STATUS_BATCH'") == 1
    assert await count(database, "SELECT floor FROM elevator_state") == 2
    await client.close()


async def test_a_burst_is_paced_and_every_message_acknowledged_once(
    platform: Platform, database: aiosqlite.Connection
) -> None:
    """Far more frames in one write than may wait for their commit (reading pauses and resumes)."""
    client = await logged_in(platform)
    burst = 5 * listener.MAX_UNACKNOWLEDGED
    heartbeat = encode_frame(BCD, 0x02, 9999, 1764400000, bytes([20]))
    await client.send(b"".join(status_frame(seq, 1764400000 + seq, 3) for seq in range(burst)) + heartbeat)
    acks = [ack_fields(await client.receive()) for _ in range(burst + 1)]
    assert sorted(seq for kind, seq, result in acks if kind == 0x10 and result == 0) == list(range(burst))
    assert (0x02, 9999, 0) in acks
    assert await count(database, "SELECT count(*) FROM messages WHERE type = 'STATUS'") == burst
    await client.close()


async def test_a_message_that_cannot_be_stored_is_not_acknowledged_and_its_resend_is(
    platform: Platform, database: aiosqlite.Connection
) -> None:
    client = await logged_in(platform)
    await database.execute("ALTER TABLE messages RENAME TO messages_away")
    await client.send(STATUS)
    with pytest.raises(TimeoutError):
        await client.receive(timeout=0.5)
    await database.execute("ALTER TABLE messages_away RENAME TO messages")
    await client.send(STATUS)  # the terminal's resend
    assert ack_fields(await client.receive()) == (0x10, 2, 0)
    assert await count(database, "SELECT count(*) FROM messages WHERE type = 'STATUS'") == 1
    await client.close()


async def test_unknown_terminal_gets_result_2_and_is_closed(platform: Platform) -> None:
    client = await TerminalClient.connect(platform, "elink")
    await client.send(login_frame(bytes.fromhex("8613000199999999"), key=None))
    assert ack_fields(await client.receive()) == (0x01, 1, 2)
    assert await client.closed_by_platform()


async def test_wrong_auth_gets_result_3_and_is_closed(platform: Platform) -> None:
    client = await TerminalClient.connect(platform, "elink")
    await client.send(login_frame(key=b"wrong-key-000000"))
    answer = await client.receive()
    assert ack_fields(answer) == (0x01, 1, 3)
    assert len(answer) == 7 + 15 + 8, "a LOGIN ACK carries the platform time whatever the result"
    assert await client.closed_by_platform()


async def test_messages_before_login_get_result_4(platform: Platform, database: aiosqlite.Connection) -> None:
    client = await TerminalClient.connect(platform, "elink")
    await client.send(STATUS)
    assert ack_fields(await client.receive()) == (0x10, 2, 4)
    assert await count(database, "SELECT count(*) FROM messages") == 0
    await client.send(LOGIN)
    assert ack_fields(await client.receive())[2] == 0
    await client.close()


async def test_bad_content_and_unsupported_type(platform: Platform) -> None:
    client = await logged_in(platform)
    await client.send(fixture_bytes("elink/status_bad_direction.hex") + fixture_bytes("elink/unsupported_type_0x55.hex"))
    assert ack_fields(await client.receive()) == (0x10, 14, 1)
    assert ack_fields(await client.receive()) == (0x55, 13, 5)
    await client.send(STATUS)
    assert ack_fields(await client.receive()) == (0x10, 2, 0), "the connection goes on"
    await client.close()


async def test_command_out_and_reply_in(platform: Platform, database: aiosqlite.Connection) -> None:
    client = await logged_in(platform)
    seq = await platform.send_command("elink", TERMINAL, ev.TerminalCommand(ev.CommandCode.SET_INTERVAL, 60), "tester")
    command = await client.receive()
    assert command[13] == 0x90 and int.from_bytes(command[14:16], "big") == seq
    assert command[20:23] == bytes([2, 0, 60])
    reply = encode_frame(BCD, 0x30, 20, 1764400200, seq.to_bytes(2, "big") + b"\x00")
    await client.send(reply)
    assert ack_fields(await client.receive()) == (0x30, 20, 0)
    row = await (await database.execute("SELECT code, argument, status, requested_by FROM commands")).fetchone()
    assert tuple(row) == ("set_interval", 60, "done", "tester")
    await client.close()


class Recording:
    """A consumer that keeps the classes of the events it is given (``events``: the ones it takes, if it says)."""

    def __init__(self, events: tuple[type[ev.Event], ...] | None = None) -> None:
        if events is not None:
            self.events = events
        self.given: list[list[type[ev.Event]]] = []

    def consume(self, terminal: object, events: list[ev.Event]) -> list:
        self.given.append([type(event) for event in events])
        return []


async def test_a_consumer_is_given_the_messages_holding_an_event_it_takes(platform: Platform) -> None:
    client = await logged_in(platform)
    replies, statuses, every = Recording((ev.CommandReply,)), Recording((ev.ElevatorStatus,)), Recording()
    platform.ingest.consumers.append(replies)  # (added while serving: the consumers are looked at again)
    await client.send(status_frame(30, 1764400300, 3))
    assert ack_fields(await client.receive()) == (0x10, 30, 0)
    platform.ingest.consumers += [statuses, every]
    await client.send(status_frame(31, 1764400301, 4))
    assert ack_fields(await client.receive()) == (0x10, 31, 0)
    await client.send(encode_frame(BCD, 0x30, 32, 1764400302, (7).to_bytes(2, "big") + b"\x00"))
    assert ack_fields(await client.receive()) == (0x30, 32, 0)
    assert replies.given == [[ev.CommandReply]]
    assert statuses.given == [[ev.ElevatorStatus]]
    assert every.given == [[ev.ElevatorStatus], [ev.CommandReply]]
    await client.close()


async def test_a_bad_frame_does_not_hurt_other_connections(platform: Platform) -> None:
    good = await logged_in(platform)
    bad = await TerminalClient.connect(platform, "elink")
    await bad.send(b"EL\x01\x00\x10" + b"\xff" * 30)
    await good.send(STATUS)
    assert ack_fields(await good.receive()) == (0x10, 2, 0)
    await asyncio.gather(good.close(), bad.close())


async def test_session_goes_offline_on_disconnect(platform: Platform, database: aiosqlite.Connection) -> None:
    client = await logged_in(platform)
    await client.close()
    for _ in range(100):
        if await count(database, "SELECT online FROM terminal_sessions") == 0:
            break
        await asyncio.sleep(0.02)
    assert await count(database, "SELECT online FROM terminal_sessions") == 0


async def test_recent_frames_are_kept_for_debugging(platform: Platform) -> None:
    client = await logged_in(platform)
    await client.send(b"garbage" + STATUS)
    await client.receive()
    recent = platform.frame_log.recent("elink", TERMINAL)
    assert [(r.direction, r.note) for r in recent[:3]] == [("out", "ACCEPTED"), ("in", "STATUS"), ("in", "discarded: no frame start")]
    assert recent[1].data == STATUS
    await client.close()


async def test_an_idle_connection_is_closed(config: Config) -> None:
    await import_census(config.database.path)
    config.limits.idle_min_s = config.limits.idle_intervals = 0.01  # (its report interval is 30 s)
    async with Platform(config) as running:
        client = await logged_in(running)
        assert await client.closed_by_platform(timeout=5)
