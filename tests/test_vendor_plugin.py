"""Protocols come through register_protocols: built-in ones, and a vendor's added by an entry point."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import import_census

from wuhai_iot.config import Config, ProtocolConfig
from wuhai_iot.plugins import get_plugin_manager, protocols
from wuhai_iot.server import Platform
from wuhai_iot.storage import db

VENDOR = Path(__file__).parent / "data" / "vendor_plugin"


def test_builtin_protocols_register_through_the_hook() -> None:
    # register_protocols: ELink, LMT and GF-3 are contributed exactly as a vendor's would be.
    names = set(protocols())
    assert {"elink"} <= names
    implementers = {impl.plugin_name for impl in get_plugin_manager().hook.register_protocols.get_hookimpls()}
    assert "wuhai_iot.protocols.elink" in implementers


@pytest.fixture
def vendor_on_path(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make the example vendor package importable and its entry point visible, as `pip install` would."""
    monkeypatch.syspath_prepend(str(VENDOR))
    get_plugin_manager.cache_clear()
    yield
    get_plugin_manager.cache_clear()


def test_vendor_protocol_is_decoded_by_the_cli() -> None:
    line = b"ACME T-1 7 1764400000 FLOOR -2 RUN\n"
    env = {**os.environ, "PYTHONPATH": str(VENDOR)}
    result = subprocess.run(
        [sys.executable, "-m", "wuhai_iot", "decode", "acme", line.hex()],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "acme FLOOR terminal T-1 seq 7" in result.stdout
    assert '"floor": -2' in result.stdout


async def test_vendor_protocol_served_end_to_end(vendor_on_path: None, tmp_path: Path) -> None:
    config = Config()
    config.database.path = tmp_path / "db.sqlite3"
    config.web.port = 0
    config.protocols = {name: ProtocolConfig(port=0) for name in protocols()}
    assert "acme" in config.protocols
    terminals = tmp_path / "terminals-acme.csv"
    terminals.write_text("protocol,terminal_id,device_code\nacme,T-1,31101503022012000101\n", encoding="utf-8")
    await import_census(config.database.path)
    await import_census(config.database.path, [terminals])  # the census knows the vendor's protocol
    conn = await db.connect(config.database.path)
    async with Platform(config) as platform:
        reader, writer = await asyncio.open_connection("127.0.0.1", platform.ports["acme"])
        writer.write(b"ACME T-1 1 1764400000 LOGIN v1\nACME T-1 2 1764400005 FLOOR -1 STOP\n")
        assert await asyncio.wait_for(reader.readline(), 5) == b"OK 1\r\n"
        assert await asyncio.wait_for(reader.readline(), 5) == b"OK 2\r\n"
        writer.close()
        row = await (await conn.execute("SELECT floor, running FROM elevator_state")).fetchone()
        assert tuple(row) == (-1, 0)
    await conn.close()
