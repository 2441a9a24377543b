"""The auto port: every protocol on one port, recognised by a connection's first bytes (sniff)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from conftest import EXAMPLE, FIXTURES, import_census
from wuhai_iot.config import Config, ProtocolConfig
from wuhai_iot.plugins import protocols
from wuhai_iot.protocols.base import DecodeError, Discarded
from wuhai_iot.server import Platform
from wuhai_iot.testing import fixture_bytes

LOGINS = {
    "elink": FIXTURES / "elink" / "login_vendor_example.hex",
    "lmt": FIXTURES / "lmt" / "spec_login.line",
    "gasfill": FIXTURES / "gasfill" / "01_login_spec.hex",
    "jt808": FIXTURES / "jt808" / "01_register_spec.hex",
    "acme": EXAMPLE / "tests" / "fixtures" / "login.line",
}
"""A first frame of each protocol (the example vendor plugin's included)."""


@pytest.fixture
async def auto_platform(example_on_path: None, tmp_path: Path) -> Platform:
    config = Config()
    config.database.path = tmp_path / "db.sqlite3"
    config.web.port = 0
    config.protocols = {name: ProtocolConfig(port=0) for name in protocols()} | {"auto": ProtocolConfig(port=0)}
    await import_census(config.database.path)
    async with Platform(config) as platform:
        yield platform  # type: ignore[misc]


async def _first_answer(platform: Platform, name: str, reader: asyncio.StreamReader) -> bytes:
    framer = platform.protocols[name].new_framer()
    async with asyncio.timeout(5):
        while True:
            data = await reader.read(4096)
            assert data, f"{name}: the platform closed the connection"
            frames = [item for item in framer.feed(data) if not isinstance(item, Discarded)]
            if frames:
                return frames[0]


async def test_every_protocol_is_recognised_on_one_port_even_when_its_first_bytes_come_apart(
    auto_platform: Platform,
) -> None:
    platform = auto_platform
    assert set(LOGINS) <= set(platform.protocols), "every built-in protocol and the example are served"
    for name, path in LOGINS.items():
        frame = fixture_bytes(path)
        reader, writer = await asyncio.open_connection("127.0.0.1", platform.ports["auto"])
        writer.write(frame[:1])  # one byte: no protocol can tell yet
        await writer.drain()
        await asyncio.sleep(0.05)  # (let the byte arrive alone)
        writer.write(frame[1:])
        await writer.drain()
        answer = await _first_answer(platform, name, reader)
        protocol = platform.protocols[name]
        try:
            terminal = protocol.decode(answer, platform.started_at).terminal_id  # type: ignore[arg-type]
        except DecodeError as error:  # (an answer is usually of a type the platform does not take)
            terminal = error.terminal_id
        assert terminal == protocol.decode(frame, platform.started_at).terminal_id  # type: ignore[arg-type]
        assert platform.auto_listener is not None and platform.auto_listener.handed_over[name] == 1
        writer.close()


async def test_unknown_bytes_and_a_silent_connection_are_closed_with_a_log_line(
    auto_platform: Platform, caplog: pytest.LogCaptureFixture
) -> None:
    platform = auto_platform
    assert platform.auto_listener is not None
    platform.auto_listener.timeout_s = 0.3
    with caplog.at_level(logging.WARNING, logger="wuhai_iot.pipeline.sniffing"):
        reader, writer = await asyncio.open_connection("127.0.0.1", platform.ports["auto"])
        writer.write(b"GET / HTTP/1.1\r\n\r\n")
        async with asyncio.timeout(5):
            assert await reader.read() == b""
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", platform.ports["auto"])
        async with asyncio.timeout(5):
            assert await reader.read() == b""  # closed after the timeout, nothing sent
        writer.close()
    messages = [record.getMessage() for record in caplog.records]
    assert any("no protocol recognises its first bytes 47 45 54 20 2f" in m for m in messages), messages
    assert any("sent nothing within 0.3 s" in m for m in messages), messages
    assert platform.auto_listener.refused == 2 and not platform.auto_listener.handed_over
