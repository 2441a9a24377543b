"""Debugging a terminal: the running platform records its frames to a frames file (``wuhai-iot capture``
for one terminal, ``capture_dir`` for every connection of a protocol), ``wuhai-iot replay`` sends such a
file as the device did and prints the answers decoded, and ``decode --file`` decodes it."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from pathlib import Path

import pytest
from conftest import FIXTURES, TerminalClient, import_census, run_cli

from wuhai_iot.cli import main
from wuhai_iot.config import Config, ProtocolConfig
from wuhai_iot.plugins import protocols
from wuhai_iot.protocols.lmt import checksum, encode_line
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
        # Its LOGIN was used once: replayed as it is, it is refused (replay protection, SECURITY.md) ...
        status = await asyncio.to_thread(main, ["replay", str(capture), "--to", to, "--protocol", "lmt", "--wait", "0.5"])
        out = capsys.readouterr().out
        assert status == 1 and "ACK,AUTH" in out and "ACK,OK" not in out, out
        # ... until staff let the terminal's next login in, as for a terminal whose clock went back.
        cli_config = tmp_path / "cli.toml"
        cli_config.write_text(f'[database]\npath = "{config.database.path}"\n', encoding="utf-8")
        allow = ["terminals", "allow-login", "lmt", "861234567890123", "--config", str(cli_config)]
        assert await asyncio.to_thread(main, allow) == 0
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


LMT_TERMINAL = "861234567890123"


def _signed_login(time_text: str) -> str:
    """The LMT terminal's LOGIN at another device time, signed with its census key (a login is usable once)."""
    key = hmac.new(b"secret-lmt-key01", (LMT_TERMINAL + time_text).encode(), hashlib.sha256).hexdigest()[:32]
    return encode_line(LMT_TERMINAL, 1, time_text, "LOGIN", f"fw=LMT-4.1;iv=30;key={key}").decode("ascii").strip()


def _relined(line: str, old: str, new: str) -> str:
    """An LMT line with ``old`` replaced by ``new`` and its checksum made right again."""
    body = line[1 : line.rindex("*")].replace(old, new)
    return f"#{body}*{checksum(body.encode()):02X}"


async def _open_capture(platform: Platform, capture_id: int) -> None:
    """Until the platform has taken capture ``capture_id`` up (the command waits for the same)."""
    async with asyncio.timeout(10):
        while capture_id not in (platform.capture_requests.recording if platform.capture_requests else {}):
            await asyncio.sleep(0.05)


async def test_capture_a_terminal_on_the_running_platform_then_decode_and_replay_it(
    platform: Platform, tmp_path: Path
) -> None:
    config_file = tmp_path / "wuhai-iot.toml"
    config_file.write_text(f'[database]\npath = "{platform.config.database.path}"\n', encoding="utf-8")
    login, status = _line("spec_login.line") + "\r\n", _line("spec_status.line") + "\r\n"
    bad = (FIXTURES / "lmt" / "bad_checksum.line").read_bytes()
    later_status = _relined(_line("spec_status.line"), ",17,", ",18,") + "\r\n"
    terminal = await TerminalClient.connect(platform, "lmt")
    await terminal.send(login.encode())
    assert b"ACK,OK" in await terminal.receive()

    # Asked while the terminal is connected: the file begins with the LOGIN of its connection.
    frames_file = tmp_path / "field" / "lift-44.frames"
    status_code, out, err = await run_cli("capture", "start", "lmt", LMT_TERMINAL, "--minutes", "5",
                                          "--out", str(frames_file), "--config", str(config_file))  # fmt: skip
    assert status_code == 0, err
    assert f"capture 1: lmt terminal {LMT_TERMINAL} until " in out and str(frames_file) in out
    assert "recording:" in out  # the command waited for the platform to pick it up
    assert (await run_cli("capture", "start", "lmt", LMT_TERMINAL, "--config", str(config_file)))[0] == 1  # busy
    await terminal.send(status.encode() + bad)
    assert {b"ACK,OK" in answer for answer in [await terminal.receive(), await terminal.receive()]} == {True, False}
    await terminal.close()
    # It reconnects (with a later LOGIN): its next connection is recorded from its LOGIN on, into the same file.
    relogin = _signed_login("20261129083100")
    terminal = await TerminalClient.connect(platform, "lmt")
    await terminal.send(relogin.encode() + b"\r\n")
    assert b"ACK,OK" in await terminal.receive()
    await terminal.send(later_status.encode())
    assert b"ACK,OK" in await terminal.receive()

    status_code, out, err = await run_cli("capture", "stop", "1", "--config", str(config_file))
    assert (status_code, out) == (0, f"capture 1 ended: 5 frames in {frames_file}\n"), err
    await terminal.send(status.encode())  # after the end: not recorded
    assert b"ACK,OK" in await terminal.receive()
    await terminal.close()
    status_code, out, _ = await run_cli("capture", "list", "--config", str(config_file))
    assert out.startswith(f"1\tlmt {LMT_TERMINAL}\tended ") and f"\t5 frames\t{frames_file}" in out

    text = frames_file.read_text(encoding="utf-8")
    sent = [line.split(" ", 1)[1] for line in text.splitlines() if line.startswith("+")]
    assert sent == [_line("spec_login.line"), _line("spec_status.line"), bad.decode().strip(), relogin,
                    later_status.strip()]  # fmt: skip
    # (the first LOGIN was answered before the capture began)
    assert text.count("\n< #LMT,") == 4 and ", logged in before the capture: its LOGIN first\n+0.000 #LMT," in text
    assert len([line for line in text.splitlines() if line.startswith("; connection from ")]) == 3  # 2 in, 1 closed
    assert f"; terminal {LMT_TERMINAL} logged in" in text and text.endswith("; capture ended\n")

    status_code, out, _ = await run_cli("decode", "lmt", "--file", str(frames_file))
    assert status_code == 1 and out.count(f"lmt LOGIN terminal {LMT_TERMINAL}") == 2  # (1: the bad checksum)
    assert "invalid frame (terminal 861234567890123, seq 17): checksum" in out
    # Replayed as the device sent it (its logins were used: staff let the terminal in once, SECURITY.md):
    # every answer decoded, the resends stored once.
    assert (await run_cli("terminals", "allow-login", "lmt", LMT_TERMINAL, "--config", str(config_file)))[0] == 0
    status_code, out, err = await run_cli("replay", str(frames_file), "--to", f"127.0.0.1:{platform.ports['lmt']}",
                                          "--protocol", "lmt", "--wait", "0.5")  # fmt: skip
    assert status_code == 0, err
    assert out.count("<  ") == 5 and out.count("ACK,OK") == 4
    conn = await db.connect(platform.config.database.path, migrate=False)
    rows = await conn.execute_fetchall("SELECT seq FROM messages WHERE protocol = 'lmt' ORDER BY seq")
    audit_rows = await conn.execute_fetchall("SELECT action, object_id FROM audit_log WHERE action LIKE 'capture.%'")
    await conn.close()
    assert [row[0] for row in rows] == [17, 18]
    assert [tuple(row) for row in audit_rows] == [("capture.start", f"lmt:{LMT_TERMINAL}"),
                                                  ("capture.stop", f"lmt:{LMT_TERMINAL}")]  # fmt: skip


async def test_a_capture_asked_before_the_terminal_connects_and_what_cannot_be_captured(
    platform: Platform, tmp_path: Path
) -> None:
    config_file = tmp_path / "wuhai-iot.toml"
    config_file.write_text(f'[database]\npath = "{platform.config.database.path}"\n', encoding="utf-8")
    # An unknown terminal: its LOGIN is refused, but recorded (that is what a vendor needs to see).
    status_code, out, _ = await run_cli("capture", "start", "lmt", "869999999999999", "--config", str(config_file))
    assert status_code == 0 and "is not in the census" in out and "recording:" in out
    default_file = Path(out.split(" to ", 1)[1].split("\n", 1)[0])
    assert default_file.parent == platform.config.database.path.parent / "captures"
    unknown = _relined(_line("spec_login.line"), LMT_TERMINAL, "869999999999999")
    terminal = await TerminalClient.connect(platform, "lmt")
    await terminal.send(unknown.encode() + b"\r\n")
    assert b",ACK,UNKNOWN*" in await terminal.receive() and await terminal.closed_by_platform()
    await terminal.close()
    assert (await run_cli("capture", "stop", "1", "--config", str(config_file)))[0] == 0
    assert "869999999999999,1," in default_file.read_text(encoding="utf-8")
    assert (await run_cli("capture", "stop", "1", "--config", str(config_file)))[0] == 1  # over already
    # Refused before anything is asked of the platform: unknown protocol, an id of another format.
    assert (await run_cli("capture", "start", "nosuch", "1", "--config", str(config_file)))[0] == 2
    status_code, _, err = await run_cli("capture", "start", "lmt", "abc", "--config", str(config_file))
    assert status_code == 2 and "'abc' is not 15 digits" in err
    # A file the platform cannot write: the command says why.
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("", encoding="utf-8")
    status_code, _, err = await run_cli("capture", "start", "lmt", LMT_TERMINAL, "--out", str(blocker / "x.frames"),
                                        "--config", str(config_file))  # fmt: skip
    assert status_code == 1 and "the platform cannot record it: cannot write" in err
