"""Debugging a terminal: the platform records its frames to a frames file (``capture_dir``), and
``wuhai-iot replay`` sends such a file as the device did and prints the answers decoded."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from conftest import FIXTURES, import_census

from wuhai_iot.cli import main
from wuhai_iot.config import Config, ProtocolConfig
from wuhai_iot.plugins import protocols
from wuhai_iot.server import Platform
from wuhai_iot.storage import db


def _line(name: str) -> str:
    return (FIXTURES / "lmt" / name).read_bytes().decode("ascii").strip()


async def test_a_capture_replays_and_its_resends_are_stored_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = Config()
    config.database.path = tmp_path / "db.sqlite3"
    config.web.port = 0
    config.protocols = {name: ProtocolConfig(port=0) for name in protocols()}
    captures = tmp_path / "captures"
    config.protocols["lmt"] = ProtocolConfig(port=0, capture_dir=captures)
    await import_census(config.database.path)
    session = tmp_path / "session.frames"
    session.write_text(f"; an LMT terminal's start\n{_line('spec_login.line')}\n+0.2 {_line('spec_status.line')}\n",
                       encoding="utf-8")  # fmt: skip
    async with Platform(config) as platform:
        to = f"127.0.0.1:{platform.ports['lmt']}"
        status = await asyncio.to_thread(main, ["replay", str(session), "--to", to, "--protocol", "lmt", "--wait", "0.5"])
        out = capsys.readouterr().out
        assert status == 0, out
        assert f">  {_line('spec_login.line')}" in out
        answers = [line for line in out.splitlines() if line.startswith("<  ")]
        assert len(answers) == 2 and all("ACK,OK" in line for line in answers), out
        assert "terminal 861234567890123 seq 17" in answers[1]  # the answer names what it acknowledges
        # The platform recorded the connection: replaying the recording resends both frames.
        async with asyncio.timeout(5):
            while not list(captures.glob("lmt-*.frames")):
                await asyncio.sleep(0.05)
        (capture,) = captures.glob("lmt-*.frames")
        text = capture.read_text(encoding="utf-8")
        assert f" {_line('spec_status.line')}\n" in text and "\n< #LMT,861234567890123,17," in text
        assert "; terminal 861234567890123 logged in" in text
        status = await asyncio.to_thread(main, ["replay", str(capture), "--to", to, "--protocol", "lmt", "--wait", "0.5"])
        out = capsys.readouterr().out
        assert status == 0 and out.count("ACK,OK") == 2, out
    conn = await db.connect(config.database.path, migrate=False)
    rows = await conn.execute_fetchall("SELECT count(*) FROM messages WHERE protocol = 'lmt'")
    await conn.close()
    assert rows[0][0] == 1  # the status, stored once although sent twice


def test_replay_refuses_what_it_cannot_use(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frames = tmp_path / "x.frames"
    frames.write_text("zz\n", encoding="utf-8")
    assert main(["replay", str(frames), "--to", "127.0.0.1:1", "--protocol", "elink"]) == 2
    assert "line 1: not hex" in capsys.readouterr().err
    assert main(["replay", str(frames), "--to", "nowhere", "--protocol", "elink"]) == 2
    assert main(["replay", str(frames), "--to", "127.0.0.1:1", "--protocol", "nosuch"]) == 2
