"""Bounded memory and connections whatever arrives (issue 15, items 2 and 4), through the real server.

Memory is measured on a server process of its own (its resident set from /proc), the connection
limits on the platform in the test's process; every figure asserted is named below.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from conftest import TerminalClient, import_census
from server_process import ServerProcess, write_config
from test_login_replay import elink_login

from wuhai_iot.config import Config
from wuhai_iot.pipeline.listener import LOGGED_FRAME_BYTES, UNKNOWN_PEER, FrameLog
from wuhai_iot.protocols.elink import encode_frame
from wuhai_iot.server import Platform

GARBAGE_CONNECTIONS, GARBAGE_BYTES = 100, 3 << 20
"""100 connections that each send 3 MB of garbage and close (they raised the RSS by 330 MB)."""
UNKNOWN_FRAMES, INVENTED_IDS = 100_000, 2_000
"""Well-formed ELink frames of an unknown type from invented terminal ids, without a login (+126 MB)."""
RSS_GROWTH_LIMIT_MB = 40
"""What either flood may add to the server's resident memory (the frame log alone may hold 8 MB here)."""
LOGIN_DEADLINE_S = 1.0
IDLE_MIN_S = 0.5


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def flood(port: int, data: bytes, chunk: int = 65536) -> None:
    """Send ``data`` on a new connection until it is sent or the platform hangs up; then close."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for start in range(0, len(data), chunk):
            writer.write(data[start : start + chunk])
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the RSS from /proc")
async def test_floods_before_login_leave_memory_bounded(tmp_path: Path) -> None:
    await import_census(tmp_path / "platform.sqlite3")
    server = await ServerProcess.start(write_config(tmp_path, "[limits]\nframe_log_mb = 8\n"))
    try:
        port = server.ports["elink"]
        await flood(port, b"\x00" * 1000)  # warm up (first connection, first log lines)
        before = rss_mb(server.pid)
        garbage = bytes(range(256)) * (GARBAGE_BYTES // 256)
        for start in range(0, GARBAGE_CONNECTIONS, 20):
            await asyncio.gather(*(flood(port, garbage) for _ in range(start, min(start + 20, GARBAGE_CONNECTIONS))))
        after_garbage = rss_mb(server.pid)

        frames_per_id = UNKNOWN_FRAMES // INVENTED_IDS
        ids = [bytes.fromhex(f"86990000{n:08d}") for n in range(INVENTED_IDS)]
        streams = [b"".join(encode_frame(bcd, 0x55, seq, 1764400000 + seq, b"\x01\x02") for seq in range(frames_per_id))
                   for bcd in ids]  # fmt: skip
        for start in range(0, len(streams), 50):
            await asyncio.gather(*(flood(port, stream) for stream in streams[start : start + 50]))
        after_frames = rss_mb(server.pid)
        status, health = await server.health()
        print(f"RSS {before:.0f} MB → {after_garbage:.0f} MB after {GARBAGE_CONNECTIONS} × {GARBAGE_BYTES >> 20} MB of"
              f" garbage → {after_frames:.0f} MB after {UNKNOWN_FRAMES} frames of {INVENTED_IDS} invented ids;"
              f" event loop worst held {health['loop_held_worst_ms']} ms")  # fmt: skip
        assert after_garbage - before <= RSS_GROWTH_LIMIT_MB
        assert after_frames - before <= RSS_GROWTH_LIMIT_MB
        assert status == 200
    finally:
        assert await server.stop() == 0


@pytest.fixture
async def limited(config: Config) -> Platform:
    await import_census(config.database.path)
    config.limits.login_deadline_s = LOGIN_DEADLINE_S
    config.limits.idle_min_s = IDLE_MIN_S
    config.limits.idle_intervals = 3
    config.limits.connections_per_address = 5
    config.limits.connections_per_listener = 12
    config.limits.loopback_unlimited = False
    async with Platform(config) as platform:
        yield platform  # type: ignore[misc]


async def connect_from(platform: Platform, address: str) -> TerminalClient:
    reader, writer = await asyncio.open_connection("127.0.0.1", platform.ports["elink"], local_addr=(address, 0))
    return TerminalClient(platform.protocols["elink"], reader, writer)


async def test_a_connection_that_never_logs_in_is_closed_at_the_login_deadline(limited: Platform) -> None:
    clients = [await TerminalClient.connect(limited, "elink") for _ in range(5)]
    opened = time.monotonic()

    async def trickle(client: TerminalClient) -> float:
        while True:  # one byte every 0.3 s, never a login
            try:
                await client.send(b"\x00")
            except ConnectionError:
                return time.monotonic() - opened
            try:
                if await asyncio.wait_for(client.reader.read(1), 0.3) == b"":
                    return time.monotonic() - opened
            except TimeoutError:
                pass

    closed_after = await asyncio.wait_for(asyncio.gather(*(trickle(c) for c in clients)), 10)
    assert all(LOGIN_DEADLINE_S - 0.1 <= s <= LOGIN_DEADLINE_S + 2 for s in closed_after), closed_after
    assert limited.listeners["elink"].counters.closed_before_login == 5


async def test_a_logged_in_connection_is_closed_after_three_of_its_intervals_of_silence(limited: Platform) -> None:
    client = await TerminalClient.connect(limited, "elink")
    bcd = bytes.fromhex("8613000100020003")
    clock = int(time.time())
    login = bytearray(elink_login(clock))  # its report interval: 1 s (bytes 28-29 of the frame)
    login = encode_frame(bcd, 0x01, 1, clock, bytes(login[20:28]) + (1).to_bytes(2, "big") + bytes(login[30:46]))
    await client.send(login)
    assert (await client.receive())[23] == 0
    for seq in range(2, 10):  # heartbeats every 0.5 s for 4 s: kept open
        await asyncio.sleep(0.5)
        await client.send(encode_frame(bcd, 0x02, seq, clock + seq, b"\x17"))
        silent = time.monotonic()
        assert (await client.receive())[23] == 0
    assert await client.closed_by_platform(timeout=10)
    assert 3 * 1 - 0.1 <= time.monotonic() - silent <= 3 * 1 + 2, "closed after 3 × its 1 s interval"


async def test_connections_per_address_and_per_listener(limited: Platform) -> None:
    first = [await connect_from(limited, "127.0.0.2") for _ in range(5)]
    sixth = await connect_from(limited, "127.0.0.2")
    assert await sixth.closed_by_platform(timeout=2), "a sixth connection from one address is refused"
    others = [await connect_from(limited, f"127.0.0.{n}") for n in (3, 3, 3, 4, 4, 4, 5)]
    assert len(limited.listeners["elink"].connections) == 12
    thirteenth = await connect_from(limited, "127.0.0.6")
    assert await thirteenth.closed_by_platform(timeout=2), "the listener holds 12 at most"
    await first[0].close()
    async with asyncio.timeout(2):
        while len(limited.listeners["elink"].connections) > 11:
            await asyncio.sleep(0.01)
    again = await connect_from(limited, "127.0.0.2")
    await again.send(elink_login(int(time.time())))
    assert (await again.receive())[23] == 0, "a closed connection frees its place"
    for client in [*first[1:], *others, again]:
        await client.close()
    assert limited.listeners["elink"].counters.connections_refused == 2


async def test_connections_without_a_peer_address_share_one_address_limit(platform: Platform) -> None:
    # In a reconnect storm the kernel may no longer report the peer of a socket reset before its turn came;
    # such connections once crashed the admission (an address that is not an IP, past the per-address limit).
    listener = platform.listeners["elink"]
    limit = listener.limits.connections_per_address
    assert [listener.admit(UNKNOWN_PEER) for _ in range(limit)] == [""] * limit
    assert listener.admit(UNKNOWN_PEER) == f"{limit} connections open from {UNKNOWN_PEER}, the most from one address"
    for _ in range(limit):
        listener.release(UNKNOWN_PEER)
    assert UNKNOWN_PEER not in listener.per_address


@settings(max_examples=100)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3000)), max_size=300), st.integers(2, 6))
def test_frame_log_counts_what_it_holds(frames: list[tuple[int, int]], per_terminal: int) -> None:
    """The frame log's byte count is what its records hold (whatever their sizes, the terminals and the
    records pushed out), and never more than its limit once a frame is added."""
    frame_log = FrameLog(per_terminal=per_terminal, max_bytes=12_000)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    for terminal, size in frames:
        frame_log.add("elink", str(terminal), "in", bytes(size), "STATUS", at)
        held = [record for log in frame_log._logs.values() for record in log]
        assert frame_log.bytes == len(frame_log._logs) * FrameLog.TERMINAL_OVERHEAD + sum(
            len(record[2]) + FrameLog.RECORD_OVERHEAD for record in held
        )
        assert frame_log.bytes <= 12_000
        assert all(len(record[2]) <= LOGGED_FRAME_BYTES for record in held)
