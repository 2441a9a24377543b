"""A protocol whose own code raises loses only the frame it was given: never the connection's other
frames, other connections or the server. Logged once (then with a count), counted in /metrics, and
answered as bad content where the protocol can read the frame's header (``Protocol.header_error``)."""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from conftest import FIXTURES, TerminalClient, import_census, platform_config

from wuhai_iot import events as ev
from wuhai_iot.plugins import get_plugin_manager, hookimpl
from wuhai_iot.protocols import jt808
from wuhai_iot.protocols.lmt import LmtProtocol, encode_line
from wuhai_iot.server import Platform
from wuhai_iot.storage import db
from wuhai_iot.web.metrics import exposition


class DecoderBug:
    """A decoder bug for a protocol it is mixed into: a frame containing ``boom`` raises (its header is the
    protocol's, so it can be answered)."""

    def decode(self, frame: bytes, received_at: datetime) -> ev.Message:
        if b"boom" in frame:
            raise KeyError("boom")
        return super().decode(frame, received_at)  # type: ignore[misc, no-any-return]


class FlakyProtocol(DecoderBug, LmtProtocol):
    name = "flaky"
    title = "LMT with a decoder bug"


class FlakyJt808Protocol(DecoderBug, jt808.Jt808Protocol):
    name = "flaky808"
    title = "JT/T 808 with a decoder bug"


class FlakyPlugin:
    @hookimpl
    def register_protocols(self) -> list[jt808.Jt808Protocol | LmtProtocol]:
        return [FlakyProtocol(), FlakyJt808Protocol()]


@pytest.fixture
def flaky_plugin() -> Iterator[None]:
    get_plugin_manager.cache_clear()
    get_plugin_manager().register(FlakyPlugin(), name="flaky-plugin")
    yield
    get_plugin_manager.cache_clear()


async def test_a_decoder_that_raises_loses_only_that_frame(
    flaky_plugin: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = platform_config(tmp_path)  # (after flaky_plugin: with its port)
    await import_census(config.database.path)
    bad_checksum = (FIXTURES / "lmt" / "bad_checksum.line").read_bytes()
    async with Platform(config) as platform:
        flaky = await TerminalClient.connect(platform, "flaky")
        other = await TerminalClient.connect(platform, "flaky")
        with caplog.at_level(logging.ERROR, logger="wuhai_iot.pipeline.listener"):
            for _ in range(3):
                await flaky.send(b"#LMT,boom\r\n")
            await flaky.send(bad_checksum)  # the frame after the crashes is handled: answered ERR
            assert b",ACK,ERR*" in await flaky.receive()
            await other.send(bad_checksum)  # another connection of the same protocol is unaffected
            assert b",ACK,ERR*" in await other.receive()
        crashes = [r for r in caplog.records if "flaky decoder raised" in r.getMessage()]
        assert len(crashes) == 1 and crashes[0].exc_info is not None  # once, with its traceback
        assert platform.listeners["flaky"].counters.plugin_errors == 3
        conn = await db.connect(config.database.path, migrate=False)
        text = await exposition(platform, conn)
        await conn.close()
        assert 'wuhai_plugin_errors_total{protocol="flaky"} 3' in text
        assert 'wuhai_plugin_errors_total{protocol="lmt"} 0' in text
        await flaky.close()
        await other.close()


async def test_a_frame_the_decoder_fails_on_is_answered_bad_content_and_its_neighbours_go_on(
    flaky_plugin: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = platform_config(tmp_path)  # (after flaky_plugin: with its port)
    terminal, lift = "861234567890123", "31101503042010000044"
    flaky_terminals = tmp_path / "terminals-flaky.csv"
    flaky_terminals.write_text(f"protocol,terminal_id,device_code,key\nflaky,{terminal},{lift},\n", encoding="utf-8")
    await import_census(config.database.path)
    await import_census(config.database.path, [flaky_terminals])
    login = (FIXTURES / "lmt" / "spec_login.line").read_bytes()
    status = (FIXTURES / "lmt" / "spec_status.line").read_bytes()  # seq 17
    crashes = [encode_line(terminal, seq, "20261129083010", "ST", "fl=3;boom=1") for seq in (40, 41)]
    async with Platform(config) as platform:
        client = await TerminalClient.connect(platform, "flaky")
        await client.send(login)
        assert b",ACK,OK;t=" in await client.receive()
        with caplog.at_level(logging.ERROR, logger="wuhai_iot.pipeline.listener"):
            await client.send(crashes[0] + status + crashes[1])  # one segment: the status between two crashes
            answers = {int(answer.split(b",")[2]): answer for answer in [await client.receive() for _ in range(3)]}
        # Each crash answered bad content (LMT's ERR, naming its seq); the status between stored and acknowledged.
        assert sorted(answers) == [17, 40, 41]
        assert b",ACK,ERR*" in answers[40] and b",ACK,ERR*" in answers[41] and b",ACK,OK*" in answers[17]
        crash_logs = [r for r in caplog.records if "flaky decoder raised" in r.getMessage()]
        assert len(crash_logs) == 1  # logged once
        assert platform.listeners["flaky"].counters.plugin_errors == 2
        notes = {record.note for record in platform.frame_log.recent("flaky", terminal)}
        assert {"decoder raised KeyError('boom')", "bad content answer", "ST", "ACCEPTED"} <= notes
        await client.close()
    conn = await db.connect(config.database.path, migrate=False)
    rows = await conn.execute_fetchall("SELECT seq FROM messages WHERE protocol = 'flaky'")
    await conn.close()
    assert [row[0] for row in rows] == [17]


async def test_a_jt808_frame_the_decoder_fails_on_is_answered_bad_message(flaky_plugin: None, tmp_path: Path) -> None:
    """JT/T 808 reads the header of a frame its decoder failed on: answered 0x8001 result 2 (bad message) naming
    the frame's serial and message id, and the next frame is answered as usual."""
    config = platform_config(tmp_path)  # (after flaky_plugin: with its port)
    phone = "013912345678"
    crash = jt808.encode_frame(jt808.LOCATION, phone, 40, b"boom" + bytes(24), 2013)
    heartbeat = jt808.encode_frame(jt808.HEARTBEAT, phone, 41, b"", 2013)
    async with Platform(config) as platform:
        client = await TerminalClient.connect(platform, "flaky808")
        await client.send(crash + heartbeat)
        answers = [jt808.unescape((await client.receive())[1:-1]) for _ in range(2)]
        await client.close()
    replies = [(raw[4:10].hex(), struct.unpack_from(">HHB", raw, 12)) for raw in answers]
    assert replies == [(phone, (40, jt808.LOCATION, jt808.BAD_MESSAGE)),
                       (phone, (41, jt808.HEARTBEAT, jt808.FAILED))]  # (not authenticated)  # fmt: skip
    assert platform.listeners["flaky808"].counters.plugin_errors == 1
