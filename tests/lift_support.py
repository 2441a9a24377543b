"""Simulated ELink-200 lift terminals for the monitoring tests: timed sequences over real loopback TCP."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite
from conftest import FIXTURES, TerminalClient

from wuhai_iot.protocols.elink import encode_frame
from wuhai_iot.protocols.lmt import cst_text, encode_line
from wuhai_iot.server import Platform

LIFT = "31101503022012000101"
"""Census lift with ELink terminal 8613000100020003 (key kkkk...), rated 1.75 m/s, 海勃湾区."""
LIFT_2 = "31101503042010000044"
"""About 20.7 km from LIFT; same maintenance company."""
LIFT_3 = "33101503032013000007"
"""Maintained by another company."""
TERMINALS = {LIFT: ("8613000100020003", b"k" * 16), LIFT_2: ("8613000100020044", None),
             LIFT_3: ("8613000100020007", None)}  # fmt: skip
CARD_READERS = {LIFT: "861000000000101", LIFT_2: "861000000000044", LIFT_3: "861000000000007"}
"""Keyless LMT-4 terminals registered for the maintenance tests (LMT carries the card swipes there)."""
CARD = 123456
"""张某, 乌海市某电梯工程有限公司, certificate valid to 2028-01-31."""

_login_clocks: dict[str, int] = {}
"""The device time of each terminal's last login in this test run."""

DOORS = {"closed": 0, "opening": 1, "open": 2, "closing": 3, "unknown": 4}


def start_of_sequence() -> int:
    """A device time an hour ago: frames look as if buffered by the terminal, the platform clock is real."""
    return int(time.time()) - 3600


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


async def register_extra_terminals(path: Any) -> None:
    """ELink terminals for the second and third census lifts (the census has LMT/none there)."""
    from wuhai_iot.storage import db

    conn = await db.connect(path)
    try:
        for device_code in (LIFT_2, LIFT_3):
            terminal_id, _ = TERMINALS[device_code]
            await conn.execute(
                "INSERT OR IGNORE INTO terminals (protocol, terminal_id, device_code, updated_at)"
                " VALUES ('elink', ?, ?, '2026-11-01T00:00:00Z')",
                (terminal_id, device_code),
            )
        for device_code, terminal_id in CARD_READERS.items():
            await conn.execute(
                "INSERT OR IGNORE INTO terminals (protocol, terminal_id, device_code, updated_at)"
                " VALUES ('lmt', ?, ?, '2026-11-01T00:00:00Z')",
                (terminal_id, device_code),
            )
    finally:
        await conn.close()


def status_body(line: dict[str, Any]) -> bytes:
    running = line.get("running", False)
    flags = (0x01 * running | 0x02 * line.get("zone", True) | 0x04 * line.get("occupied", False)
             | 0x20 * line.get("power", True) | 0x80 | 0x100)  # fmt: skip
    direction = 1 if running else 0
    speed = round(line.get("speed", 0.0) * 1000)
    return (bytes([line.get("floor", 1) & 0xFF, direction, DOORS[line.get("door", "closed")]])
            + flags.to_bytes(2, "big") + speed.to_bytes(2, "big") + bytes([30]) + (100).to_bytes(4, "big"))  # fmt: skip


class LiftTerminal:
    """One logged-in ELink terminal that sends frames and waits for each ACK (so each is committed)."""

    def __init__(self, client: TerminalClient, bcd: bytes) -> None:
        self.client = client
        self.bcd = bcd
        self.seq = 1
        self.last_device_time = 0

    @classmethod
    async def connect(cls, platform: Platform, device_code: str = LIFT) -> LiftTerminal:
        terminal_id, key = TERMINALS[device_code]
        bcd = bytes.fromhex(terminal_id)
        # A login is usable once: the next one of the same terminal must carry a later device time.
        clock = _login_clocks[terminal_id] = max(int(time.time()), _login_clocks.get(terminal_id, 0) + 1)
        auth = hmac.new(key, bcd + clock.to_bytes(4, "big"), hashlib.sha256).digest()[:16] if key else bytes(16)
        client = await TerminalClient.connect(platform, "elink")
        await client.send(encode_frame(bcd, 0x01, 0, clock, b"EL200-13\x00\x1e" + auth))
        answer = await client.receive()
        assert answer[13] == 0x81 and answer[23] == 0, f"login refused: {answer.hex(' ')}"
        return cls(client, bcd)

    async def send(self, type_code: int, device_time: int, body: bytes) -> None:
        self.seq += 1
        await self.client.send(encode_frame(self.bcd, type_code, self.seq, device_time, body))
        answer = await self.client.receive()
        assert answer[13] == 0x81 and answer[23] == 0, f"not accepted: {answer.hex(' ')}"
        self.last_device_time = max(self.last_device_time, device_time)

    async def status(self, device_time: int, **line: Any) -> None:
        await self.send(0x10, device_time, status_body(line))

    async def fault(self, device_time: int, code: int, active: bool, floor: int = 1) -> None:
        await self.send(0x11, device_time, bytes([code, int(active), floor & 0xFF]) + (0x01A2).to_bytes(2, "big"))

    async def maintenance_start(self, device_time: int, card: int = CARD) -> None:
        await self.send(0x20, device_time, card.to_bytes(4, "big"))

    async def maintenance_end(self, device_time: int, card: int = CARD, items: int = 31) -> None:
        await self.send(0x21, device_time, card.to_bytes(4, "big") + bytes([items]))

    async def heartbeat(self, device_time: int) -> None:
        await self.send(0x02, device_time, bytes([20]))

    async def batch(self, device_time: int, samples: list[tuple[int, dict[str, Any]]]) -> None:
        """A STATUS_BATCH sent at ``device_time`` holding (sample time, status line) records."""
        body = bytes([len(samples)]) + b"".join(t.to_bytes(4, "big") + status_body(line) for t, line in samples)
        await self.send(0x12, device_time, body)

    async def frame(self, line: dict[str, Any], t0: int) -> None:
        """Send one line of a sequence file (see device_fixtures/sequences/README.md)."""
        line = dict(line)
        moment = t0 + line.pop("t")
        if "fault" in line:
            await self.fault(moment, line["fault"], line["active"])
        elif "maint_start" in line:
            await self.maintenance_start(moment, line["maint_start"])
        elif "maint_end" in line:
            await self.maintenance_end(moment, line["maint_end"], line.get("items", 31))
        elif "heartbeat" in line:
            await self.heartbeat(moment)
        elif "batch" in line:
            await self.batch(moment, [(t0 + sample.pop("t"), sample) for sample in map(dict, line["batch"])])
        elif not {"end", "late_s"} & line.keys():
            await self.status(moment, **line)

    async def replay(self, name: str, t0: int, tick: Callable[[datetime], Awaitable[None]] | None = None) -> None:
        """Send a sequence file with device times t0 + offset, one frame after the other. ``tick``: let the
        platform's tick run before each frame at the platform time the lift's clock shows the frame's time
        (what a live terminal gets), and at the sequence's end line."""
        for line in sequence(name):
            if tick is not None and self.last_device_time:
                await tick(self.platform_time(t0 + line["t"]))
            await self.frame(line, t0)

    def platform_time(self, device_time: float) -> datetime:
        """The platform clock at which the lift's own clock shows ``device_time`` (frames are sent now)."""
        return datetime.now(UTC) + timedelta(seconds=device_time - self.last_device_time)

    async def close(self) -> None:
        await self.client.close()


async def alarm_rows(database: aiosqlite.Connection, kind: str | None = None) -> list[tuple[Any, ...]]:
    """(kind, raised_at, cleared_at) of the alarms not merged, oldest first; times as device seconds."""
    sql = "SELECT kind, raised_at, cleared_at FROM alarms WHERE merged_into IS NULL"
    params: tuple[Any, ...] = ()
    if kind:
        sql += " AND kind = ?"
        params = (kind,)
    rows = await (await database.execute(sql + " ORDER BY id", params)).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


class CardReader:
    """An LMT-4 terminal at a lift, used for maintenance card swipes (MS / ME lines)."""

    def __init__(self, client: TerminalClient, terminal_id: str) -> None:
        self.client = client
        self.terminal_id = terminal_id
        self.seq = 1

    @classmethod
    async def connect(cls, platform: Platform, device_code: str = LIFT) -> CardReader:
        reader = cls(await TerminalClient.connect(platform, "lmt"), CARD_READERS[device_code])
        await reader.send(int(time.time()), "LOGIN", "fw=LMT-4.1;iv=30")
        return reader

    async def send(self, device_time: int, type_: str, payload: str) -> None:
        self.seq += 1
        line = encode_line(self.terminal_id, self.seq, cst_text(at(device_time)), type_, payload)
        await self.client.send(line)
        answer = await self.client.receive()
        assert b",ACK,OK" in answer, f"not accepted: {answer!r}"

    async def maintenance_start(self, device_time: int, card: int = CARD) -> None:
        await self.send(device_time, "MS", f"card={card:08d}")

    async def maintenance_end(self, device_time: int, card: int = CARD, items: int = 31) -> None:
        await self.send(device_time, "ME", f"card={card:08d};items={items}")

    async def close(self) -> None:
        await self.client.close()


SEQUENCES = FIXTURES / "sequences"
LATE_S = 7200
"""How late the "late" variants arrive (device_fixtures/sequences/README.md)."""


def sequence(name: str) -> list[dict[str, Any]]:
    """The lines of a sequence file (comments left out)."""
    text = (SEQUENCES / name).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def sequence_end(lines: list[dict[str, Any]]) -> int:
    """Where the terminal's clock stands when a sequence is over: its end line, else 60 s after its last record."""
    ends = [line["t"] for line in lines if "end" in line]
    return ends[0] if ends else max(line["t"] for line in lines) + 60


def records(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records a sequence holds, whatever the delivery (batches unpacked, heartbeats and ends left out)."""
    found: list[dict[str, Any]] = []
    for line in lines:
        if "batch" in line:
            found += line["batch"]
        elif not {"heartbeat", "end", "late_s"} & line.keys():
            found.append(line)
    return found


def late_variant(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every record as its own frame in the same order, LATE_S after it happened, then a heartbeat at the end."""
    return [{"t": 0, "late_s": LATE_S}, *records(lines), {"t": sequence_end(lines), "heartbeat": True}]


def batch_variant(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """After an outage: the records in device-time order, status records in STATUS_BATCH frames (at most
    60, sent when the connection is back), other messages as their own frames, then a heartbeat."""
    end = sequence_end(lines)
    out: list[dict[str, Any]] = []
    for record in sorted(records(lines), key=lambda line: line["t"]):
        if {"fault", "maint_start", "maint_end"} & record.keys():
            out.append(record)
        elif out and "batch" in out[-1] and len(out[-1]["batch"]) < 60:
            out[-1]["batch"].append(record)
        else:
            out.append({"t": end, "batch": [record]})
    return [*out, {"t": end, "heartbeat": True}]


def variant_text(name: str, kind: str) -> str:
    """The text of a sequence's ``late`` or ``batch`` variant file."""
    lines = sequence(name)
    first = (SEQUENCES / name).read_text(encoding="utf-8").splitlines()[0]
    header = {"late": f"# Late: {first.lstrip('# ')}",
              "batch": f"# Batch after an outage: {first.lstrip('# ')}"}[kind]  # fmt: skip
    variant = late_variant(lines) if kind == "late" else batch_variant(lines)
    return "\n".join([header, *(json.dumps(line, ensure_ascii=False) for line in variant)]) + "\n"


def base_sequences() -> list[str]:
    return sorted(path.name for path in SEQUENCES.glob("*.jsonl") if path.name.count(".") == 1)


def variant_name(name: str, kind: str) -> str:
    return f"{Path(name).stem}.{kind}.jsonl"
