"""Hundreds of ELink terminals on real sockets that send STATUS frames and remember which were ACKed, for
tests of what a stop or a backup under load keeps."""

from __future__ import annotations

import asyncio
import csv
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from conftest import fixture_bytes

from wuhai_iot.protocols import elink
from wuhai_iot.protocols.base import Discarded
from wuhai_iot.simulator.elink import ACK_FIELDS, login_frame

STATUS_BODY = fixture_bytes("elink/status_vendor_example.hex")[elink.HEADER_SIZE : -2]
FIRST_TIME = 1_764_400_000
_login_clocks: dict[str, int] = {}


def generate_census(folder: Path, lifts: int) -> list[tuple[str, str]]:
    """A generated census of ``lifts`` lifts in ``folder``; the (terminal id, key) of its ELink terminals."""
    subprocess.run([sys.executable, "-m", "wuhai_iot", "census", "generate", "--out", str(folder), "--lifts",
                    str(lifts), "--stations", "1", "--cylinders", "10", "--vehicles", "1"],
                   check=True, capture_output=True)  # fmt: skip
    with (folder / "terminals.csv").open(encoding="utf-8") as rows:
        return [(row["terminal_id"], row["key"]) for row in csv.DictReader(rows) if row["protocol"] == "elink"]


@dataclass
class StatusTerminal:
    """Logs in, then sends a STATUS every ``interval`` s (seq and device time counting up) until the
    platform closes the connection; ``acked`` holds the (seq, device time) of every accepted ACK."""

    terminal_id: str
    key: str
    acked: set[tuple[int, int]] = field(default_factory=set)
    sent: int = 0
    logged_in: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    def frame(self, type_code: int, seq: int, at: int, body: bytes) -> bytes:
        return elink.encode_frame(bytes.fromhex(self.terminal_id), type_code, seq, at, body)

    def login_frame(self) -> bytes:
        # A login is usable once: each login of a terminal carries a later device time than its last.
        clock = _login_clocks[self.terminal_id] = max(int(time.time()), _login_clocks.get(self.terminal_id, 0) + 1)
        return login_frame(bytes.fromhex(self.terminal_id), self.key, clock, 0, 30, firmware="EL200-13")

    async def run(self, port: int, interval: float, sending: asyncio.Event) -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            self.closed.set()
            return
        sent_at: dict[int, int] = {}
        receiving = asyncio.create_task(self._receive(reader, sent_at))
        try:
            writer.write(self.login_frame())
            await self.logged_in.wait()
            await sending.wait()
            seq = 1
            while not receiving.done() and not writer.is_closing():  # (uvloop raises RuntimeError on a closed one)
                at = FIRST_TIME + seq
                sent_at[seq] = at
                writer.write(self.frame(elink.STATUS, seq, at, STATUS_BODY))
                self.sent += 1
                seq += 1
                await asyncio.sleep(interval)
        except (ConnectionError, OSError, RuntimeError):  # (uvloop: RuntimeError writing to a closed transport)
            pass
        finally:
            await receiving
            writer.close()
            self.closed.set()

    async def _receive(self, reader: asyncio.StreamReader, sent_at: dict[int, int]) -> None:
        framer = elink.ElinkFramer()
        try:
            while data := await reader.read(65536):
                for frame in framer.feed(data):
                    if isinstance(frame, Discarded) or frame[13] != elink.ACK:
                        continue
                    acked_type, acked_seq, result = ACK_FIELDS.unpack_from(frame, elink.HEADER_SIZE)
                    if acked_type == elink.LOGIN and result == 0:
                        self.logged_in.set()
                    elif acked_type == elink.STATUS and result == 0:
                        self.acked.add((acked_seq, sent_at[acked_seq]))
        except ConnectionError:
            pass
        finally:
            self.logged_in.set()  # (a refused or cut login: let run() end)


def any_free_ports() -> str:
    """``[protocols.NAME] port = 0`` for every installed protocol: the OS picks, no vendor port is taken."""
    from wuhai_iot.plugins import protocols

    return "".join(f"[protocols.{name}]\nport = 0\n" for name in sorted(protocols()))


SERVE_CONFIG = """
[database]
path = "data/wuhai-iot.sqlite3"
[web]
port = 0
[rules]
tick_interval_s = 0
""" + any_free_ports()


async def start_serve(
    folder: Path, extra_config: str = "", *, log_file: Path | None = None
) -> tuple[asyncio.subprocess.Process, dict[str, int], Path]:
    """``wuhai-iot serve`` in a process of its own, its standard error in a file (a pipe nobody reads would
    fill and block it); returns the process, its bound ports and where its log is (``log_file`` when the
    extra configuration sends it there)."""
    import re

    config = folder / "wuhai-iot.toml"
    config.write_text(SERVE_CONFIG + extra_config, encoding="utf-8")
    log = folder / "serve.log"
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "wuhai_iot", "serve", "--config", str(config), stderr=output, stdout=output
        )
    ports: dict[str, int] = {}
    log = log_file or log
    try:
        async with asyncio.timeout(60):
            while "web" not in ports:
                text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
                for protocol, title in (("elink", "ELink-200"), ("lmt", "LMT-4"), ("gasfill", "GF-3")):
                    if match := re.search(title + r".* listening on 127\.0\.0\.1:(\d+)", text):
                        ports[protocol] = int(match.group(1))
                if match := re.search(r"web on https?://127\.0\.0\.1:(\d+)/", text):
                    ports["web"] = int(match.group(1))
                if process.returncode is not None:
                    output = (folder / "serve.log").read_text(encoding="utf-8", errors="replace")
                    raise AssertionError(f"serve exited before it was ready:\n{text}{output}")
                await asyncio.sleep(0.05)
    except BaseException:
        if process.returncode is None:  # (never leave a serve running behind a failed test)
            process.kill()
            await process.wait()
        raise
    return process, ports, log


async def import_census(folder: Path, config: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "wuhai_iot", "import", *map(str, sorted(folder.glob("*.csv"))), "--config", str(config),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, errors = await process.communicate()
    assert process.returncode == 0, errors.decode()
