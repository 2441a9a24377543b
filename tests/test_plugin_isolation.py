"""A protocol whose own code raises loses only the frame it was given: never the connection's other
frames, other connections or the server. Logged once (then with a count), counted in /metrics."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from conftest import FIXTURES, TerminalClient, import_census

from wuhai_iot import events as ev
from wuhai_iot.config import Config, ProtocolConfig
from wuhai_iot.plugins import get_plugin_manager, hookimpl, protocols
from wuhai_iot.protocols.lmt import LmtProtocol
from wuhai_iot.server import Platform
from wuhai_iot.storage import db
from wuhai_iot.web.metrics import exposition


class FlakyProtocol(LmtProtocol):
    """LMT, with a decoder bug: a line containing ``boom`` raises."""

    name = "flaky"
    title = "LMT with a decoder bug"

    def decode(self, frame: bytes, received_at: datetime) -> ev.Message:
        if b"boom" in frame:
            raise KeyError("boom")
        return super().decode(frame, received_at)


class FlakyPlugin:
    @hookimpl
    def register_protocols(self) -> list[FlakyProtocol]:
        return [FlakyProtocol()]


@pytest.fixture
def flaky_plugin() -> Iterator[None]:
    get_plugin_manager.cache_clear()
    get_plugin_manager().register(FlakyPlugin(), name="flaky-plugin")
    yield
    get_plugin_manager.cache_clear()


async def test_a_decoder_that_raises_loses_only_that_frame(
    flaky_plugin: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = Config()
    config.database.path = tmp_path / "db.sqlite3"
    config.web.port = 0
    config.protocols = {name: ProtocolConfig(port=0) for name in protocols()}
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
