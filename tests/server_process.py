"""`wuhai-iot serve` in a process of its own, for the tests that kill it, starve its disk or measure it."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path

import aiohttp

from wuhai_iot.plugins import protocols
from wuhai_iot.protocols.base import Protocol

READY_PATTERNS = {
    "elink": r"ELink-200.* listening on 127\.0\.0\.1:(\d+)",
    "lmt": r"LMT-4.* listening on 127\.0\.0\.1:(\d+)",
    "gasfill": r"GF-3.* listening on 127\.0\.0\.1:(\d+)",
    "web": r"web on http://127\.0\.0\.1:(\d+)/",
}


def write_config(folder: Path, extra: str = "") -> Path:
    """A configuration with the database in ``folder`` and every port chosen by the OS."""
    config = folder / "wuhai-iot.toml"
    every_protocol = "".join(f"[protocols.{name}]\nport = 0\n" for name in sorted(protocols()))
    config.write_text('[database]\npath = "platform.sqlite3"\n[web]\nport = 0\n' + every_protocol + extra,
                      encoding="utf-8")  # fmt: skip
    return config


class ServerProcess:
    """A running ``wuhai-iot serve``; has ``ports`` and ``protocols`` like ``Platform``, so that the
    tests' terminal clients connect to it alike. Its log (standard error) is collected in ``log``."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.ports: dict[str, int] = {}
        self.protocols: dict[str, Protocol] = protocols()
        self.log: list[str] = []
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, config: Path, timeout: float = 60) -> ServerProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "wuhai_iot", "serve", "--config", str(config),
            stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        server = cls(process)
        assert process.stderr is not None
        async with asyncio.timeout(timeout):
            while "web" not in server.ports:
                line = (await process.stderr.readline()).decode(errors="replace")
                assert line, "serve exited before it was ready:\n" + "".join(server.log)
                server.log.append(line)
                for name, pattern in READY_PATTERNS.items():
                    if match := re.search(pattern, line):
                        server.ports[name] = int(match.group(1))
        server._reader = asyncio.create_task(server._collect())
        return server

    async def _collect(self) -> None:
        assert self.process.stderr is not None
        while line := await self.process.stderr.readline():
            self.log.append(line.decode(errors="replace"))

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['web']}"

    async def health(self) -> tuple[int, dict[str, object]]:
        async with aiohttp.ClientSession() as session, session.get(self.web_url + "/healthz") as response:
            return response.status, await response.json()

    def count(self, level: str) -> int:
        """Log lines of this level so far."""
        return sum(1 for line in self.log if f" {level} " in line or line.startswith(level))

    async def kill(self) -> None:
        """kill -9."""
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()
        if self._reader is not None:
            await self._reader

    async def stop(self) -> int:
        """SIGTERM and wait for a clean exit; the exit status."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        status = await asyncio.wait_for(self.process.wait(), 60)
        if self._reader is not None:
            await self._reader
        return status
