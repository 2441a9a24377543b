"""A simulated JT/T 808 vehicle terminal (../shared/protocols/jt808.md), built on ``wuhai_iot.protocols.jt808``.

Without an authentication code it REGISTERs first and keeps the code it is given; it then AUTHENTICATEs.
Location records go through the outbox: sent at once while connected, kept while not (up to 10,000) and
sent after the next authentication as buffered batches (0x0704 type 1). It answers a LOCATION QUERY with
its last record.
"""

from __future__ import annotations

import struct
from typing import Any

from wuhai_iot.protocols import jt808
from wuhai_iot.protocols.base import Discarded
from wuhai_iot.simulator.device import AckOutcome, Outgoing, SimulatedDevice

BATCH_RECORDS = 12
"""Records per buffered batch (a record with the cylinder items is about 70 bytes; a body holds 1,023)."""
# 0x8001 results: 0 ok; 1 failed (not authenticated: authenticate again); 2 bad message, 3 not supported (final).
ACK_OUTCOMES = {0: AckOutcome.DONE, 1: AckOutcome.RELOGIN, 2: AckOutcome.DONE, 3: AckOutcome.DONE,
                4: AckOutcome.DONE}  # fmt: skip


class VehicleTerminal(SimulatedDevice):
    protocol_name = "jt808"
    default_heartbeat_s = float(jt808.HEARTBEAT_INTERVAL_S)
    buffer_limits = {"location": 10_000}

    def __init__(self, *args: Any, plate: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.plate = plate
        self.edition = 2019 if len(self.terminal_id) == 20 else 2013
        self.last_record: bytes | None = None
        self._framer = jt808.Jt808Framer()
        self._login_serial: int | None = None
        self._heartbeat_serials: set[int] = set()

    def _reset_parser(self) -> None:
        self._framer = jt808.Jt808Framer()

    def _frame(self, message_id: int, serial: int, body: bytes) -> bytes:
        return jt808.encode_frame(message_id, self.terminal_id, serial, body, self.edition)

    def login_frame(self, seq: int) -> bytes:
        self._login_serial = seq
        if self.key is None:
            return self._frame(jt808.REGISTER, seq, jt808.register_body(self.plate, edition=self.edition,
                                                                        device_id=self.terminal_id[-7:]))  # fmt: skip
        return self._frame(jt808.AUTHENTICATE, seq, jt808.authenticate_body(self.key, self.edition))

    def heartbeat_frame(self, seq: int) -> bytes:
        self._heartbeat_serials = {seq}
        return self._frame(jt808.HEARTBEAT, seq, b"")

    def report(self, record: bytes) -> None:
        """One location record (``jt808.location_record``): sent now, or kept for the next connection."""
        self.last_record = record
        serial = self.next_seq()
        self.enqueue(serial, self._frame(jt808.LOCATION, serial, record), "location", material=record)

    def report_batch(self, records: list[bytes]) -> None:
        """Records kept while out of coverage, sent now as one buffered batch (0x0704 type 1)."""
        self.last_record = records[-1]
        serial = self.next_seq()
        frame = self._frame(jt808.BATCH, serial, jt808.batch_body(records))
        self.enqueue(serial, frame, "location")

    def pack_buffered(self, items: list[Outgoing]) -> list[Outgoing]:
        """Records kept while offline go as buffered batches; anything already sent is resent as it was."""
        kept = [item for item in items if item.sent_at is None and item.material is not None]
        others = [item for item in items if item.sent_at is not None or item.material is None]
        packed = list(others)
        for start in range(0, len(kept), BATCH_RECORDS):
            records = [item.material for item in kept[start : start + BATCH_RECORDS]]
            serial = self.next_seq()
            frame = self._frame(jt808.BATCH, serial, jt808.batch_body(records))  # type: ignore[arg-type]
            packed.append(Outgoing(serial, frame, "location", created=kept[start].created, weight=len(records)))
        return packed

    def answers_received(self, data: bytes) -> None:
        for frame in self._framer.feed(data):
            if isinstance(frame, Discarded):
                self.stats.decode_errors += 1
                continue
            raw = jt808.unescape(frame[1:-1])
            message_id = struct.unpack_from(">H", raw)[0]
            body = raw[(17 if raw[2] & 0x40 else 12) : -1]
            if message_id == jt808.REGISTER_RESPONSE:
                self._registered(body)
            elif message_id == jt808.PLATFORM_RESPONSE:
                reply_serial, reply_id, result = struct.unpack(">HHB", body)
                self._responded(reply_serial, reply_id, result)
            elif message_id == jt808.LOCATION_QUERY and self.online and self.last_record is not None:
                query_serial = struct.unpack_from(">H", raw, 10 if not raw[2] & 0x40 else 15)[0]
                serial = self.next_seq()
                self._write(self._frame(jt808.LOCATION_REPLY, serial, struct.pack(">H", query_serial) + self.last_record))

    def _registered(self, body: bytes) -> None:
        reply_serial, result = struct.unpack_from(">HB", body)
        if reply_serial != self._login_serial:
            return
        if result != 0:
            self._login_answered(AckOutcome.REFUSED)
            return
        self.key = body[3:].decode("gb18030")
        self._write(self.login_frame(self.next_seq()))  # now AUTHENTICATE with the code

    def _responded(self, reply_serial: int, reply_id: int, result: int) -> None:
        if reply_id == jt808.AUTHENTICATE and reply_serial == self._login_serial:
            if result != 0:
                self.key = None  # a code the platform no longer knows: REGISTER again next time
            self._login_answered(AckOutcome.DONE if result == 0 else AckOutcome.REFUSED)
        elif reply_id == jt808.HEARTBEAT and reply_serial in self._heartbeat_serials:
            self._heartbeat_answered(ACK_OUTCOMES.get(result, AckOutcome.DONE))
        elif reply_id in (jt808.LOCATION, jt808.BATCH):
            self._acknowledged(reply_serial, ACK_OUTCOMES.get(result, AckOutcome.DONE), result == 0)

