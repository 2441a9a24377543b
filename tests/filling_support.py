"""A simulated GF-3 controller for the filling tests: frames built and answers parsed with the codec's
own construct structures, over a real TCP connection to the running platform."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from conftest import FIXTURES, TerminalClient, import_census

from wuhai_iot import events as ev
from wuhai_iot.config import Config
from wuhai_iot.protocols.gasfill import (
    ACK,
    FILL_DECISION,
    FILL_REQUEST,
    FILL_RESULT,
    LOGIN,
    TAG_INFO,
    TAG_QUERY,
    AckBody,
    Bodies,
    FillDecisionBody,
    TagInfoBody,
    encode_frame,
)
from wuhai_iot.server import Platform

SCENARIO = FIXTURES / "gasfill" / "census"
MEDIUM_CODES = {word: code for code, word in ev.MEDIA.items()}

LPG_STATION, CNG_STATION, EXPIRED_STATION = 150301, 150402, 150309
OPERATOR = {LPG_STATION: 9001, CNG_STATION: 9002, EXPIRED_STATION: 9003}
OTHER_STATION_OPERATOR = 9004
TAGS = {
    "LPG-OK-0001": "E004000000000001",
    "LPG-BLACK-0002": "E004000000000002",
    "LPG-SCRAP-0003": "E004000000000003",
    "LPG-OLD-0004": "E004000000000004",
    "LPG-INSP-0005": "E004000000000005",
    "LPG-OTHER-0006": "E004000000000006",
    "LPG-FILL-0007": "E004000000000007",
    "CNG-OK-0101": "E2806894000040001F2A0101",
    "CNG-REV-0102": "E2806894000040001F2A0102",
    "CNG-NOCERT-0103": "E2806894000040001F2A0103",
    "CNG-GONE-0104": "E2806894000040001F2A0104",
}
LPG_FULL_G = 28_000  # tare 13.5 kg + rated 14.5 kg
LPG_TARE_G = 13_500
CNG_FULL_G = 76_000  # tare 62.0 kg + rated 14.0 kg


async def import_scenario(config: Config) -> None:
    """The census examples, then the fill-decision scenario of device_fixtures/gasfill/census."""
    await import_census(config.database.path)
    await import_census(config.database.path, sorted(SCENARIO.glob("*.csv")))


@pytest.fixture
async def platform(config: Config) -> AsyncIterator[Platform]:
    """The running platform with the census examples and the filling scenario imported."""
    await import_scenario(config)
    async with Platform(config) as running:
        yield running


_login_clocks: dict[tuple[int, int], int] = {}


@dataclass(frozen=True)
class Decision:
    request_seq: int
    permit: bool
    reason: int
    net_limit_g: int
    cylinder_code: str
    message: str


class Controller:
    """One filling post: logs in, asks, reports, queries — and checks the header of every answer."""

    def __init__(self, client: TerminalClient, station: int, scale: int) -> None:
        self.client = client
        self.station = station
        self.scale = scale
        self.seq = 0

    @classmethod
    async def connect(
        cls, platform: Platform, station: int = LPG_STATION, scale: int = 1, key: str | None = None
    ) -> Controller:
        controller = cls(await TerminalClient.connect(platform, "gasfill"), station, scale)
        # A login is usable once: the next one of the same controller must carry a later clock.
        clock = _login_clocks[(station, scale)] = max(int(time.time()), _login_clocks.get((station, scale), 0) + 1)
        material = station.to_bytes(4, "little") + bytes([scale]) + clock.to_bytes(4, "little")
        auth = hmac.new(key.encode(), material, hashlib.sha256).digest()[:16] if key else bytes(16)
        body = Bodies[LOGIN].build({"firmware": "GF-3.2.1", "clock": clock, "auth": auth})
        assert await controller.ack(await controller.send(LOGIN, body)) == 0
        return controller

    async def send(self, cmd: int, body: bytes, seq: int | None = None) -> int:
        if seq is None:
            self.seq = (self.seq + 1) % 256
            seq = self.seq
        await self.client.send(encode_frame(self.station, self.scale, cmd, seq, body))
        return seq

    async def answer(self, cmd: int) -> bytes:
        frame = await self.client.receive()
        assert frame[3] == cmd, f"expected CMD 0x{cmd:02x}: {frame.hex(' ')}"
        assert int.from_bytes(frame[5:9], "little") == self.station and frame[9] == self.scale
        return frame[10:-3]

    async def ack(self, seq: int) -> int:
        """The result of the ACK for our message ``seq``."""
        ack = AckBody.parse(await self.answer(ACK))
        assert ack.seq == seq
        return ack.result

    async def request(
        self, cylinder: str, gross_g: int, *, card: int | None = None, medium: str = "LPG", tag: str | None = None
    ) -> Decision:
        body = Bodies[FILL_REQUEST].build(
            {
                "tag": bytes.fromhex(tag or TAGS[cylinder]),
                "gross_before": gross_g,
                "operator_card": OPERATOR[self.station] if card is None else card,
                "medium": MEDIUM_CODES[medium],
            }
        )
        seq = await self.send(FILL_REQUEST, body)
        answer = FillDecisionBody.parse(await self.answer(FILL_DECISION))
        assert answer.request_seq == seq
        message = answer.message.decode()
        assert len(answer.message) <= 60
        return Decision(seq, answer.decision == 0, answer.reason, answer.net_limit, answer.cylinder_code, message)

    def result_frame_body(
        self,
        cylinder: str,
        request_seq: int,
        before_g: int,
        after_g: int,
        *,
        outcome: int = 0,
        ended_at: int | None = None,
        duration_s: int = 90,
    ) -> bytes:
        return Bodies[FILL_RESULT].build(
            {
                "request_seq": request_seq,
                "tag": bytes.fromhex(TAGS[cylinder]),
                "gross_before": before_g,
                "gross_after": after_g,
                "duration": duration_s,
                "outcome": outcome,
                "end_time": int(time.time()) if ended_at is None else ended_at,
            }
        )

    async def result(self, cylinder: str, request_seq: int, before_g: int, after_g: int, **options: int) -> int:
        """Report a fill; the ACK's result (0 once stored)."""
        body = self.result_frame_body(cylinder, request_seq, before_g, after_g, **options)
        return await self.ack(await self.send(FILL_RESULT, body))

    async def query(self, tag: str) -> dict[str, object]:
        await self.send(TAG_QUERY, Bodies[TAG_QUERY].build({"tag": bytes.fromhex(tag)}))
        info = TagInfoBody.parse(await self.answer(TAG_INFO))
        return {key: info[key] for key in ("found", "cylinder_code", "medium", "next_inspection", "status", "owner_station")}

    async def close(self) -> None:
        await self.client.close()
