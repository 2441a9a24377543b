"""Simulated ELink-200 lift terminals for the monitoring tests: timed sequences over real loopback TCP."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta
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
        clock = int(time.time())
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

    async def replay(self, name: str, t0: int) -> None:
        """Send a sequence from device_fixtures/sequences/ with device times t0 + offset."""
        for text in (FIXTURES / "sequences" / name).read_text(encoding="utf-8").splitlines():
            if not text.strip() or text.lstrip().startswith("#"):
                continue
            line = json.loads(text)
            moment = t0 + line.pop("t")
            if "fault" in line:
                await self.fault(moment, line["fault"], line["active"])
            else:
                await self.status(moment, **line)

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
