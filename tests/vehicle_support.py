"""A JT/T 808 vehicle terminal for the vehicle tests, over a real TCP connection to the running platform,
and the vehicle scenario of device_fixtures/jt808/census."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from datetime import datetime

import pytest
from conftest import FIXTURES, TerminalClient
from filling_support import import_scenario

from wuhai_iot.config import Config
from wuhai_iot.protocols import jt808 as j
from wuhai_iot.server import Platform

SCENARIO = FIXTURES / "jt808" / "census"
BUS, TAXI, OLD_TAXI = "蒙L12345", "蒙LT2345", "蒙L·T1234"
BUS_PHONE, TAXI_PHONE, OLD_TAXI_PHONE = "013912345678", "013900000002", "00000000013900000003"
BUS_CODE = "A1B2C3D4"
STATION = (39.5071, 106.7248)
"""Station 150402 (CNG|LNG)."""
ROADSIDE = (39.6000, 106.8000)
"""Far from any station."""
TAGS = {
    "CNG-BUS-0201": "E28011606000020500000201",
    "CNG-BUS-0202": "E28011606000020500000202",
    "CNG-TAXI-0301": "E28011606000020500000301",
    "CNG-OK-0101": "E2806894000040001F2A0101",
}


async def import_vehicle_scenario(config: Config) -> None:
    from conftest import import_census

    await import_scenario(config)
    await import_census(config.database.path, sorted(SCENARIO.glob("*.csv")))


@pytest.fixture
async def platform(config: Config) -> AsyncIterator[Platform]:
    """The running platform with the census examples, the GF-3 scenario and the vehicle scenario."""
    config.rules.tick_interval_s = 0  # tests let time pass with vehicle_monitor(platform).advance(...)
    await import_vehicle_scenario(config)
    async with Platform(config) as running:
        yield running


class VehicleTerminal:
    """One vehicle's terminal: registers, authenticates, reports; checks every answer's header."""

    def __init__(self, client: TerminalClient, phone: str, edition: int) -> None:
        self.client = client
        self.phone = phone
        self.edition = edition
        self.serial = 0

    @classmethod
    async def connect(cls, platform: Platform, phone: str = BUS_PHONE, code: str | None = BUS_CODE) -> VehicleTerminal:
        """Connected and, when ``code`` is given, authenticated with it."""
        terminal = cls(await TerminalClient.connect(platform, "jt808"), phone, 2019 if len(phone) == 20 else 2013)
        if code is not None:
            assert await terminal.authenticate(code) == j.OK
        return terminal

    async def send(self, message_id: int, body: bytes) -> int:
        self.serial += 1
        await self.client.send(j.encode_frame(message_id, self.phone, self.serial, body, self.edition))
        return self.serial

    async def answer(self) -> tuple[int, bytes]:
        """The platform's next frame: message id and body (after checking phone and edition)."""
        raw = j.unescape((await self.client.receive())[1:-1])
        message_id = struct.unpack_from(">H", raw)[0]
        header = 17 if self.edition == 2019 else 12
        assert bool(raw[2] & 0x40) == (self.edition == 2019)
        phone = raw[5:15] if self.edition == 2019 else raw[4:10]
        assert phone.hex() == self.phone
        return message_id, raw[header:-1]

    async def response(self, serial: int, message_id: int) -> int:
        """The result of the PLATFORM RESPONSE to our message."""
        answer_id, body = await self.answer()
        assert answer_id == j.PLATFORM_RESPONSE
        reply_serial, reply_id, result = struct.unpack(">HHB", body)
        assert (reply_serial, reply_id) == (serial, message_id)
        return result

    async def register(self, plate: str) -> tuple[int, str]:
        serial = await self.send(j.REGISTER, j.register_body(plate, edition=self.edition))
        answer_id, body = await self.answer()
        assert answer_id == j.REGISTER_RESPONSE and struct.unpack_from(">H", body)[0] == serial
        return body[2], body[3:].decode("gb18030")

    async def authenticate(self, code: str) -> int:
        return await self.response(await self.send(j.AUTHENTICATE, j.authenticate_body(code, self.edition)), j.AUTHENTICATE)

    async def report(self, records: list[bytes], *, buffered: bool = False) -> None:
        """The records as live LOCATION reports, one by one, or as one buffered BATCH; each answered 0."""
        if buffered:
            assert await self.response(await self.send(j.BATCH, j.batch_body(records)), j.BATCH) == j.OK
            return
        for record in records:
            assert await self.response(await self.send(j.LOCATION, record), j.LOCATION) == j.OK

    async def close(self) -> None:
        await self.client.close()


def record(at: datetime, where: tuple[float, float] = ROADSIDE, **fields: object) -> bytes:
    return j.location_record(at, where[0], where[1], **fields)  # type: ignore[arg-type]
