"""ELink-200 elevator terminal, platform protocol v1.3 (binary, big-endian, CRC-16/CCITT-FALSE).

The vendor document is ../shared/protocols/elink.md; section numbers below refer to it.
"""

from __future__ import annotations

import functools
import struct
from datetime import UTC, datetime
from typing import NamedTuple

import construct as c

from wuhai_iot import events as ev
from wuhai_iot.plugins.hookspecs import hookimpl
from wuhai_iot.protocols.base import Binding, DecodeError, FixedLayout, Protocol, TerminalIdFormat
from wuhai_iot.protocols.blocks import LengthCrcFramer, crc16_ccitt_false, hmac_login_ok

MAGIC = b"EL"
VERSION = 1
MIN_LENGTH = 15
MAX_LENGTH = 1015
HEADER_SIZE = 20  # magic .. device time

LOGIN, HEARTBEAT, STATUS, FAULT, STATUS_BATCH = 0x01, 0x02, 0x10, 0x11, 0x12
MAINT_START, MAINT_END, COMMAND_REPLY = 0x20, 0x21, 0x30
ACK, COMMAND = 0x81, 0x90

TYPE_NAMES = {
    LOGIN: "LOGIN",
    HEARTBEAT: "HEARTBEAT",
    STATUS: "STATUS",
    FAULT: "FAULT",
    STATUS_BATCH: "STATUS_BATCH",
    MAINT_START: "MAINT_START",
    MAINT_END: "MAINT_END",
    COMMAND_REPLY: "COMMAND_REPLY",
}

# §4: terminal fault codes → canonical kinds (domain.md).
FAULT_KINDS = {
    1: "trapped",
    2: "door_open_moving",
    3: "overshoot_top",
    4: "overshoot_bottom",
    5: "overspeed",
    6: "stopped_outside_zone",
    7: "door_fault",
    8: "power_lost",
    9: "safety_circuit",
    10: "door_lock",
    11: "alarm_button",
    12: "reopening",
}
DIAGNOSTIC_CODES = range(200, 256)

DIRECTIONS = (ev.Direction.STOPPED, ev.Direction.UP, ev.Direction.DOWN)
DOORS = (ev.Door.CLOSED, ev.Door.OPENING, ev.Door.OPEN, ev.Door.CLOSING, ev.Door.UNKNOWN)
REPLY_RESULTS = ("done", "refused", "unsupported")
COMMAND_CODES = {
    ev.CommandCode.REPORT_STATUS: 1,
    ev.CommandCode.SET_INTERVAL: 2,
    ev.CommandCode.RESTART: 3,
    ev.CommandCode.SET_CLOCK: 4,
}

# §1 header.
Header = c.Struct(
    "magic" / c.Const(MAGIC),
    "version" / c.Int8ub,
    "length" / c.Int16ub,
    "terminal" / c.Bytes(8),
    "type" / c.Int8ub,
    "seq" / c.Int16ub,
    "time" / c.Int32ub,
)
# §3 status record.
StatusRecord = c.Struct(
    "floor" / c.Int8sb,
    "direction" / c.Int8ub,
    "door" / c.Int8ub,
    "flags" / c.Int16ub,
    "speed" / c.Int16ub,
    "load" / c.Int8ub,
    "trips" / c.Int32ub,
)
BatchSample = c.Struct("time" / c.Int32ub, *StatusRecord.subcons)
Bodies: dict[int, c.Construct] = {
    LOGIN: c.Struct(
        "firmware" / c.PaddedString(8, "ascii"),
        "interval" / c.Int16ub,
        "auth" / c.Bytes(16),
    ),
    HEARTBEAT: c.Struct("csq" / c.Int8ub),
    STATUS: StatusRecord,
    FAULT: c.Struct("code" / c.Int8ub, "state" / c.Int8ub, "floor" / c.Int8sb, "flags" / c.Int16ub),
    STATUS_BATCH: c.Struct("count" / c.Int8ub, "samples" / c.Array(c.this.count, BatchSample)),
    MAINT_START: c.Struct("card" / c.Int32ub),
    MAINT_END: c.Struct("card" / c.Int32ub, "items" / c.Int8ub),
    COMMAND_REPLY: c.Struct("command_seq" / c.Int16ub, "result" / c.Int8ub, "data" / c.GreedyBytes),
}
FIXED_BODY_SIZES = {
    LOGIN: 26,
    HEARTBEAT: 1,
    STATUS: 12,
    FAULT: 5,
    MAINT_START: 4,
    MAINT_END: 5,
}
AckBody = c.Struct("acked_type" / c.Int8ub, "acked_seq" / c.Int16ub, "result" / c.Int8ub)
LoginAckBody = c.Struct(*AckBody.subcons, "platform_time" / c.Int32ub)
ACK_BODY_SIZE, LOGIN_ACK_BODY_SIZE = AckBody.sizeof(), LoginAckBody.sizeof()

# A lift's status and its ACK come thousands a second: read and written through ``struct`` layouts
# derived from the definitions above. The framer has already checked magic, version, length and CRC,
# so the compiled parsers of the rarer types only ever see frames of the exact size they expect.
_header = FixedLayout(Header)
_status_record = FixedLayout(StatusRecord)
_batch_sample = FixedLayout(BatchSample)
_ack = FixedLayout(c.Struct(*Header.subcons, *AckBody.subcons))
_login_ack = FixedLayout(c.Struct(*Header.subcons, *LoginAckBody.subcons))
_messages = {
    code: c.Struct(*Header.subcons, *body.subcons).compile()
    for code, body in Bodies.items()
    if code not in (STATUS, STATUS_BATCH)
}


crc16 = crc16_ccitt_false


class ElinkWire(NamedTuple):
    """What an answer to an ELink frame needs from it (a tuple: one per status frame, thousands a second)."""

    type_code: int
    terminal_bcd: bytes
    time_raw: int
    auth: bytes = b""


class ElinkFramer(LengthCrcFramer):
    """Cuts frames at the ``EL`` magic; on a bad CRC, length or version drops one byte (§1)."""

    marker = MAGIC
    length_at = 3
    length_range = range(MIN_LENGTH, MAX_LENGTH + 1)
    length_adds = 7
    crc = crc16_ccitt_false
    crc_from = 2

    def check_header(self, buf: bytes | bytearray, start: int) -> str:
        version = buf[start + 2]
        return "" if version == VERSION else f"unknown version {version}"


_new_status = ev.positional_factory(ev.ElevatorStatus)
"""ElevatorStatus(protocol, terminal_id, seq, device_time, received_at, floor, direction, door, running,
door_zone, occupied, speed_mps, load_pct, power, safety_circuit, door_lock, overload, mode, trip_count)"""


@functools.lru_cache(maxsize=1024)
def _time(raw: int) -> datetime | None:
    """A device time (0: the terminal's clock is not set). Thousands of terminals report the same few
    seconds, so the datetimes (immutable) are shared."""
    return datetime.fromtimestamp(raw, UTC) if raw else None


def _status(
    terminal: str, seq: int, device_time: datetime | None, received_at: datetime,
    floor: int, direction: int, door: int, flags: int, speed: int, load: int, trips: int,
) -> ev.ElevatorStatus:
    """A status record (§3) and the header fields of its event."""
    if direction > 2 or door > 4:
        raise ValueError(f"direction {direction} or door {door} out of range")
    if flags & 0x08:
        mode = "inspection"
    elif flags & 0x10:
        mode = "fire"
    elif flags & 0x200:
        mode = "independent"
    else:
        mode = "normal"
    return _new_status(
        "elink", terminal, seq, device_time, received_at,
        None if floor == -128 else floor,  # floor
        DIRECTIONS[direction],
        DOORS[door],
        bool(flags & 0x01),  # running
        bool(flags & 0x02),  # door_zone
        bool(flags & 0x04),  # occupied
        speed / 1000,  # speed_mps
        None if load == 255 else load,  # load_pct
        bool(flags & 0x20),  # power
        bool(flags & 0x80),  # safety_circuit
        bool(flags & 0x100),  # door_lock
        bool(flags & 0x40),  # overload
        mode,
        trips,  # trip_count
    )  # fmt: skip


def _read_header(frame: bytes) -> tuple[int, str, int, ElinkWire]:
    """Body length, terminal id, seq and wire details of a whole frame; DecodeError when it is none."""
    if len(frame) < HEADER_SIZE + 2 or frame[:2] != MAGIC:
        raise DecodeError("not an ELink frame")
    length = (frame[3] << 8) | frame[4]
    if len(frame) != 7 + length or crc16(frame[2 : 5 + length]) != int.from_bytes(frame[-2:], "big"):
        raise DecodeError("length or CRC does not match")
    _magic, _version, _length, terminal_bcd, code, seq, time_raw = _header.unpack(frame)
    terminal = terminal_bcd.hex()
    if not terminal.isdigit():
        raise DecodeError(f"terminal id {terminal} is not packed BCD")
    return length, terminal, seq, ElinkWire(code, terminal_bcd, time_raw)


class ElinkProtocol(Protocol):
    name = "elink"
    title = "ELink-200 v1.3"
    default_port = 5701
    login_signs_device_time = True
    terminal_id_format = TerminalIdFormat("[0-9]{16}", "16 digits (an ELink terminal id, §1)", "16 位数字")
    binds_to = Binding.LIFT
    commands = frozenset(COMMAND_CODES)

    def sniff(self, first_bytes: bytes) -> bool | None:
        """Magic ``EL`` and version 1 (§1)."""
        if len(first_bytes) < 3:
            return None if MAGIC.startswith(first_bytes) else False
        return first_bytes[:2] == MAGIC and first_bytes[2] == VERSION

    def new_framer(self) -> ElinkFramer:
        return ElinkFramer()

    def decode(self, frame: bytes, received_at: datetime) -> ev.Message:
        length, terminal, seq, wire = _read_header(frame)
        code, time_raw = wire.type_code, wire.time_raw
        name = TYPE_NAMES.get(code)
        if name is None:
            raise DecodeError(
                f"unsupported message type 0x{code:02x}",
                terminal_id=terminal, seq=seq, wire=wire, unsupported=True,
            )  # fmt: skip
        device_time = _time(time_raw)
        try:
            events, wire = self._decode_body(code, frame, length - MIN_LENGTH, terminal, seq, device_time,
                                             received_at, wire)  # fmt: skip
        except (ValueError, c.ConstructError, IndexError, struct.error) as exc:
            raise DecodeError(f"bad {name} body: {exc}", terminal_id=terminal, seq=seq, wire=wire) from None
        if code in (LOGIN, HEARTBEAT):
            dedup = None
        else:
            # A terminal without a clock sends time 0; its resends are recognised within the UTC day.
            clock = str(time_raw) if time_raw else f"0@{received_at.date().isoformat()}"
            dedup = f"{clock}:{code}:{seq}"  # (time first: see ``Message.dedup_key``)
        return ev.Message(
            protocol=self.name,
            terminal_id=terminal,
            type=name,
            seq=seq,
            device_time=device_time,
            received_at=received_at,
            events=events,
            dedup_key=dedup,
            wire=wire,
        )

    def _decode_body(
        self, code: int, frame: bytes, size: int,
        terminal: str, seq: int, device_time: datetime | None, received_at: datetime, wire: ElinkWire,
    ) -> tuple[list[ev.Event], ElinkWire]:
        """Events from the body of a whole, checked ``frame``; the body is ``size`` bytes."""
        expected = FIXED_BODY_SIZES.get(code)
        if expected is not None and size != expected:
            raise ValueError(f"{size} bytes, expected {expected}")
        if code == STATUS:
            return [_status(terminal, seq, device_time, received_at, *_status_record.unpack(frame, HEADER_SIZE))], wire
        if code == STATUS_BATCH:
            count = frame[HEADER_SIZE]
            if not 1 <= count <= 60 or size != 1 + _batch_sample.size * count:
                raise ValueError(f"count {count} does not fit {size} bytes")
            samples: list[ev.Event] = []
            for offset in range(HEADER_SIZE + 1, HEADER_SIZE + size, _batch_sample.size):
                sample_time, *record = _batch_sample.unpack(frame, offset)
                samples.append(_status(terminal, seq, _time(sample_time) or received_at, received_at, *record))
            return samples, wire
        head = {"protocol": self.name, "terminal_id": terminal, "seq": seq, "device_time": device_time,
                "received_at": received_at}  # fmt: skip
        fields = _messages[code].parse(frame[:-2])
        if code == LOGIN:
            wire = wire._replace(auth=fields.auth)
            return [ev.Login(**head, firmware=fields.firmware, report_interval_s=fields.interval)], wire
        if code == HEARTBEAT:
            return [ev.Heartbeat(**head, signal=None if fields.csq == 99 else fields.csq)], wire
        if code == FAULT:
            if fields.state > 1:
                raise ValueError(f"fault state {fields.state}")
            floor = None if fields.floor == -128 else fields.floor
            if fields.code in DIAGNOSTIC_CODES:
                return [ev.TerminalDiagnostic(**head, code=fields.code, active=bool(fields.state))], wire
            kind = FAULT_KINDS.get(fields.code, "unknown_fault")
            fault = ev.ElevatorFault(
                **head, kind=kind, vendor_code=str(fields.code), active=bool(fields.state), floor=floor
            )
            return [fault], wire
        if code == MAINT_START:
            return [ev.MaintenanceStart(**head, card=fields.card)], wire
        if code == MAINT_END:
            return [ev.MaintenanceEnd(**head, card=fields.card, items=fields["items"])], wire
        # COMMAND_REPLY
        if fields.result > 2:
            raise ValueError(f"command result {fields.result}")
        reply = ev.CommandReply(
            **head,
            command_seq=fields.command_seq,
            result=REPLY_RESULTS[fields.result],
            data=bytes(fields.data),
        )
        return [reply], wire

    def verify_login(self, message: ev.Message, key: str | None) -> bool:
        """§2: auth = first 16 bytes of HMAC-SHA256(key, terminal id BCD + device time)."""
        wire: ElinkWire = message.wire  # type: ignore[assignment]
        return hmac_login_ok(key, wire.terminal_bcd + wire.time_raw.to_bytes(4, "big"), wire.auth)

    def encode_reply(self, message: ev.Message, reply: ev.Reply, seq: int, now: datetime) -> bytes:
        if not isinstance(reply, ev.Ack):
            raise TypeError(f"ELink has no answer of kind {type(reply).__name__}")
        wire: ElinkWire = message.wire  # type: ignore[assignment]
        return self._ack(wire.terminal_bcd, wire.type_code, message.seq, reply.result, seq, now)

    def header_error(self, frame: bytes, reason: str) -> DecodeError | None:
        try:
            _length, terminal, seq, wire = _read_header(frame)
        except DecodeError:
            return None
        return DecodeError(reason, terminal_id=terminal, seq=seq, wire=wire)

    def encode_error(self, error: DecodeError, seq: int, now: datetime) -> bytes | None:
        if error.terminal_id is None or error.seq is None or error.wire is None:
            return None
        wire: ElinkWire = error.wire  # type: ignore[assignment]
        result = ev.AckResult.UNSUPPORTED if error.unsupported else ev.AckResult.BAD_CONTENT
        return self._ack(wire.terminal_bcd, wire.type_code, error.seq, result, seq, now)

    def encode_command(self, terminal_id: str, command: ev.TerminalCommand, seq: int, now: datetime) -> bytes:
        body = bytes([COMMAND_CODES[command.code]])
        if command.code is ev.CommandCode.SET_INTERVAL:
            if command.argument is None or not 5 <= command.argument <= 3600:
                raise ValueError("report interval must be 5..3600 s")
            body += command.argument.to_bytes(2, "big")
        elif command.code is ev.CommandCode.SET_CLOCK:
            clock = int(now.timestamp()) if command.argument is None else command.argument
            body += clock.to_bytes(4, "big")
        return encode_frame(bytes.fromhex(terminal_id), COMMAND, seq, int(now.timestamp()), body)

    def _ack(
        self, terminal: bytes, acked_type: int, acked_seq: int, result: int, seq: int, now: datetime
    ) -> bytes:
        clock = int(now.timestamp())
        if acked_type == LOGIN:
            length = MIN_LENGTH + LOGIN_ACK_BODY_SIZE
            frame = _login_ack.pack(VERSION, length, terminal, ACK, seq % 65536, clock, acked_type, acked_seq,
                                    int(result), clock)  # fmt: skip
        else:
            length = MIN_LENGTH + ACK_BODY_SIZE
            frame = _ack.pack(VERSION, length, terminal, ACK, seq % 65536, clock, acked_type, acked_seq, int(result))
        return frame + crc16(frame[2:]).to_bytes(2, "big")


def encode_frame(terminal_bcd: bytes, type_code: int, seq: int, time_raw: int, body: bytes) -> bytes:
    """Build a whole ELink frame (used for the platform's answers and by simulated terminals)."""
    length = MIN_LENGTH + len(body)
    frame = _header.pack(VERSION, length, terminal_bcd, type_code, seq % 65536, time_raw) + body
    return frame + crc16(frame[2:]).to_bytes(2, "big")


@hookimpl
def register_protocols() -> list[Protocol]:
    return [ElinkProtocol()]
