"""`wuhai-iot import` then `wuhai-iot serve` as a new user runs them, stopped by SIGTERM."""

from __future__ import annotations

import asyncio
import re
import signal
import sqlite3
import sys
from pathlib import Path

from conftest import CENSUS, cli_in_process, fixture_bytes

CONFIG = """
[database]
path = "data/platform.sqlite3"

[web]
port = 0

[protocols.elink]
port = 0
[protocols.lmt]
port = 0
[protocols.gasfill]
port = 0
[protocols.jt808]
port = 0
"""


async def run(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "wuhai_iot", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode or 0, output.decode()


async def test_import_serve_ingest_and_stop_cleanly(tmp_path: Path) -> None:
    config = tmp_path / "wuhai-iot.toml"
    config.write_text(CONFIG, encoding="utf-8")
    status, output = await run("import", *map(str, sorted(CENSUS.glob("*.csv"))), "--config", str(config))
    assert status == 0, output

    status, printed, _ = cli_in_process("serve", "--print-config", "--config", str(config))
    assert status == 0 and f'path = "{tmp_path / "data" / "platform.sqlite3"}"' in printed

    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "wuhai_iot", "serve", "--config", str(config),
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert server.stderr is not None
    ports: dict[str, int] = {}
    async with asyncio.timeout(60):
        while "web" not in ports:
            line = (await server.stderr.readline()).decode()
            assert line, "serve exited before it was ready"
            if match := re.search(r"ELink-200.* listening on 127\.0\.0\.1:(\d+)", line):
                ports["elink"] = int(match.group(1))
            if match := re.search(r"web on http://127\.0\.0\.1:(\d+)/", line):
                ports["web"] = int(match.group(1))

    reader, writer = await asyncio.open_connection("127.0.0.1", ports["elink"])
    writer.write(fixture_bytes("elink/login_vendor_example.hex") + fixture_bytes("elink/status_vendor_example.hex"))
    answers = b""
    async with asyncio.timeout(10):
        while answers.count(b"EL\x01") < 2:
            answers += await reader.read(1024)

    server.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(server.wait(), 30) == 0
    assert await reader.read() == b"", "connections are closed on shutdown"
    writer.close()

    with sqlite3.connect(tmp_path / "data" / "platform.sqlite3") as db:
        assert db.execute("SELECT floor FROM elevator_state").fetchone() == (7,)
        assert db.execute("SELECT online FROM terminal_sessions").fetchone() == (0,)
