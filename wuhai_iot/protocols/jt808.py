"""JT/T 808 vehicle terminals, the Wuhai vehicle-cylinder profile (binary, big-endian, 0x7E framing).

The contract is ../shared/protocols/jt808.md; section numbers below refer to it. Both header editions
(2013 and 2019) are read; the platform answers in the edition and with the phone number the terminal
used. A message split into packets (§1) is reassembled by the framer, which hands the decoder the
packets' frames back to back; the decoder reads such a run of frames as the one message.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import NamedTuple

import construct as c

from wuhai_iot import events as ev
from wuhai_iot.plugins.hookspecs import hookimpl
from wuhai_iot.protocols.base import (
    Binding,
    DecodeError,
    Discarded,
    FixedLayout,
    Framer,
    Protocol,
    Reassembled,
    TerminalIdFormat,
)
from wuhai_iot.protocols.blocks import xor_checksum

FLAG, ESCAPE = 0x7E, 0x7D
FLAG_BYTE = b"\x7e"
MAX_FRAME = 1100
"""Longest frame (un-escaped, between the flags) a receiver accepts (§1)."""
MAX_BODY = 1023
SPLIT_TIMEOUT_S = 60.0
MAX_PENDING_SPLIT_BYTES = 1 << 20
"""Bytes of unfinished split messages one connection may hold; beyond it the oldest is dropped."""
HEARTBEAT_INTERVAL_S = 60
CST = timezone(timedelta(hours=8), "CST")

TERMINAL_RESPONSE, HEARTBEAT, UNREGISTER = 0x0001, 0x0002, 0x0003
REGISTER, AUTHENTICATE = 0x0100, 0x0102
LOCATION, LOCATION_REPLY, BATCH = 0x0200, 0x0201, 0x0704
PLATFORM_RESPONSE, REGISTER_RESPONSE, LOCATION_QUERY = 0x8001, 0x8100, 0x8201

TYPE_NAMES = {
    TERMINAL_RESPONSE: "TERMINAL_RESPONSE",
    HEARTBEAT: "HEARTBEAT",
    UNREGISTER: "UNREGISTER",
    REGISTER: "REGISTER",
    AUTHENTICATE: "AUTHENTICATE",
    LOCATION: "LOCATION",
    LOCATION_REPLY: "LOCATION_REPLY",
    BATCH: "BATCH",
}

# §4 PLATFORM RESPONSE results.
OK, FAILED, BAD_MESSAGE, NOT_SUPPORTED = 0, 1, 2, 3
ACK_RESULTS = {
    ev.AckResult.ACCEPTED: OK,
    ev.AckResult.BAD_CONTENT: BAD_MESSAGE,
    ev.AckResult.UNSUPPORTED: NOT_SUPPORTED,
    ev.AckResult.UNKNOWN_TERMINAL: FAILED,
    ev.AckResult.AUTH_FAILED: FAILED,
    ev.AckResult.NOT_LOGGED_IN: FAILED,
}
PLATFORM_NAMES = {
    PLATFORM_RESPONSE: "PLATFORM_RESPONSE",
    REGISTER_RESPONSE: "REGISTER_RESPONSE",
    LOCATION_QUERY: "LOCATION_QUERY",
}
TERMINAL_RESULTS = {0: "done", 1: "refused", 2: "refused", 3: "unsupported"}

# §5 alarm bits the platform acts on, and status bits.
ALARM_EMERGENCY, ALARM_OVERSPEED, ALARM_UNDER_VOLTAGE, ALARM_POWER_CUT = 0, 1, 7, 8
ALARM_STOLEN, ALARM_COLLISION = 26, 29
STATUS_ACC, STATUS_FIXED, STATUS_SOUTH, STATUS_WEST = 0, 1, 2, 3

# §5 extra items.
ITEM_ODOMETER, ITEM_SIGNAL, ITEM_SATELLITES = 0x01, 0x30, 0x31
ITEM_PRESSURE, ITEM_GAS, ITEM_TAGS = 0xF1, 0xF2, 0xF3
SENSOR_FAULT = 0xFFFF

# --- §1 header and §3/§4 bodies, described once in construct ---

# The header's properties word: bits 0-9 body length, 10-12 encryption, 13 split, 14 2019 edition.
_head_2013 = FixedLayout(c.Struct("message_id" / c.Int16ub, "properties" / c.Int16ub, "phone" / c.Bytes(6),
                                  "serial" / c.Int16ub))  # fmt: skip
_head_2019 = FixedLayout(c.Struct("message_id" / c.Int16ub, "properties" / c.Int16ub, "version" / c.Int8ub,
                                  "phone" / c.Bytes(10), "serial" / c.Int16ub))  # fmt: skip


def _register_body(maker: int, model: int, device_id: int) -> c.Struct:
    return c.Struct(
        "province" / c.Int16ub,
        "city" / c.Int16ub,
        "maker" / c.PaddedString(maker, "ascii"),
        "model" / c.PaddedString(model, "ascii"),
        "device_id" / c.PaddedString(device_id, "ascii"),
        "plate_colour" / c.Int8ub,
        "plate" / c.GreedyString("gb18030"),
    )


RegisterBody = {2013: _register_body(5, 20, 7), 2019: _register_body(11, 30, 30)}
Authenticate2019Body = c.Struct(
    "code" / c.PascalString(c.Int8ub, "gb18030"),
    "imei" / c.PaddedString(15, "ascii"),
    "software" / c.PaddedString(20, "ascii"),
)
TerminalResponseBody = c.Struct("reply_serial" / c.Int16ub, "reply_id" / c.Int16ub, "result" / c.Int8ub)
PlatformResponseBody = c.Struct("reply_serial" / c.Int16ub, "reply_id" / c.Int16ub, "result" / c.Int8ub)
RegisterResponseBody = c.Struct(
    "reply_serial" / c.Int16ub,
    "result" / c.Int8ub,
    "auth_code" / c.GreedyString("gb18030"),
)
LocationFixed = c.Struct(
    "alarm_flags" / c.Int32ub,
    "status_flags" / c.Int32ub,
    "latitude" / c.Int32ub,
    "longitude" / c.Int32ub,
    "altitude" / c.Int16ub,
    "speed" / c.Int16ub,
    "course" / c.Int16ub,
    "time" / c.Bytes(6),
)
BatchHead = c.Struct("count" / c.Int16ub, "type" / c.Int8ub)

_location = FixedLayout(LocationFixed)
_platform_response = FixedLayout(PlatformResponseBody)
"""The answer to every stored message (an ACK): ``struct``, 1 µs, where construct's build took 34."""
_register_bodies = {edition: body.compile() for edition, body in RegisterBody.items()}
_authenticate_2019 = Authenticate2019Body.compile()


@dataclass(frozen=True, slots=True)
class Jt808Wire:
    """What an answer to a JT/T 808 message (and the AUTHENTICATE check) needs from it."""

    message_id: int
    phone: str
    """The terminal's phone number as its BCD digits (12 or 20): the terminal id."""
    edition: int
    """2013 or 2019 (header property bit 14)."""
    version: int = 0
    auth_code: str = ""


class Header(NamedTuple):
    """A frame's header, read twice a frame (by the framer, which checks it, and the decoder): a tuple, built
    in a microsecond, where a frozen dataclass of these fields took five."""

    message_id: int
    body_length: int
    encryption: int
    split: bool
    edition: int
    version: int
    phone: str
    serial: int
    packet_count: int
    packet_index: int
    size: int
    """Bytes of the header itself."""


# --- check code and escaping (§1) ---


def escape(data: bytes) -> bytes:
    return data.replace(b"\x7d", b"\x7d\x01").replace(b"\x7e", b"\x7d\x02")


def unescape(data: bytes) -> bytes:
    """The un-escaped bytes; ValueError when an 0x7D is followed by anything but 0x01/0x02."""
    index = data.find(ESCAPE)
    if index < 0:
        return data
    while index >= 0:
        if index + 1 >= len(data) or data[index + 1] not in (1, 2):
            raise ValueError(f"0x7d at offset {index} not followed by 0x01 or 0x02")
        index = data.find(ESCAPE, index + 2)
    return data.replace(b"\x7d\x02", b"\x7e").replace(b"\x7d\x01", b"\x7d")


def bcd_digits(data: bytes) -> str:
    digits = data.hex()
    if not digits.isdigit():
        raise ValueError(f"{digits} is not packed BCD")
    return digits


def read_frame(content: bytes) -> tuple[Header, bytes]:
    """Header and body of one frame's content (the bytes between its flags, still escaped).

    ValueError says why the frame is invalid (escaping, size, body length, check code)."""
    raw = unescape(content)
    if len(raw) > MAX_FRAME:
        raise ValueError(f"frame of {len(raw)} bytes (un-escaped), over {MAX_FRAME}")
    if len(raw) < 13:
        raise ValueError(f"frame of {len(raw)} bytes, too short for a header and a check code")
    properties = (raw[2] << 8) | raw[3]
    edition = 2019 if properties & 0x4000 else 2013
    if edition == 2019:
        if len(raw) < 18:
            raise ValueError(f"frame of {len(raw)} bytes, too short for a 2019 header")
        message_id, _, version, phone, serial = _head_2019.unpack(raw)
        size = 17
    else:
        message_id, _, phone, serial = _head_2013.unpack(raw)
        version, size = 0, 12
    count = index = 0
    split = bool(properties & 0x2000)
    if split:
        if len(raw) < size + 5:
            raise ValueError("frame too short for its packet count and index")
        count, index = struct.unpack_from(">HH", raw, size)
        size += 4
    body_length = properties & 0x3FF
    if len(raw) != size + body_length + 1:
        raise ValueError(f"body length {body_length} disagrees with the {len(raw) - size - 1} bytes present")
    if xor_checksum(raw[:-1]) != raw[-1]:
        raise ValueError(f"check code 0x{raw[-1]:02x}, computed 0x{xor_checksum(raw[:-1]):02x}")
    terminal = bcd_digits(phone)
    header = Header(message_id, body_length, (properties >> 10) & 7, split, edition, version, terminal, serial,
                    count, index, size)  # fmt: skip
    if split and not 1 <= index <= count:
        raise ValueError(f"packet index {index} outside 1..{count}")
    return header, raw[size:-1]


class Jt808Framer(Framer):
    """Cuts the stream at 0x7E flags, drops invalid frames and reassembles split messages (§1, §7).

    A frame runs from a flag to the next one. Bytes before a flag, and a frame with bad escaping, size, body
    length or check code, are discarded (counted). A bad frame's closing flag is its own when another flag
    follows it; when data follows instead, that flag was an unescaped 0x7E inside a body, or this frame's
    start was lost: it opens the next frame, so that a good frame after a broken one is never lost. Every
    byte is handed on once. A packet of a split message is handed on alone (it is answered at once); the
    packet that completes its message is handed on as ``Reassembled``, carrying all of the message's packets
    back to back in index order. ``clock`` (monotonic seconds) times out unfinished split messages.
    """

    max_buffered = 2 * MAX_FRAME + 1
    """(Copies of split packets kept for reassembly are bounded apart: MAX_PENDING_SPLIT_BYTES.)"""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._buffer = bytearray()
        self._clock = clock
        self._pending: dict[tuple[int, int, int], _PendingSplit] = {}
        self._pending_bytes = 0

    def buffered(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes | Discarded]:
        out: list[bytes | Discarded] = []
        if self._pending:
            self._expire(out, self._clock())
        buf = self._buffer
        buf += data
        pos = 0
        while pos < len(buf):
            if buf[pos] != FLAG:
                start = buf.find(FLAG, pos)
                start = len(buf) if start < 0 else start
                out.append(Discarded(bytes(buf[pos:start]), "no frame start"))
                pos = start
                continue
            end = buf.find(FLAG, pos + 1)
            if end < 0:
                break
            if end == pos + 1:
                out.append(Discarded(FLAG_BYTE, "empty frame"))  # two flags in a row: the second opens
                pos = end
                continue
            frame = bytes(buf[pos : end + 1])
            reason = self._frame(frame, out)
            if reason is None:
                pos = end + 1
            elif end + 1 == len(buf):
                break  # whether its closing flag opens the next frame shows with the next byte
            elif buf[end + 1] == FLAG:
                out.append(Discarded(frame, reason))
                pos = end + 1
            else:
                out.append(Discarded(frame[:-1], reason))
                pos = end  # the flag opens the next frame
        del buf[:pos]
        if len(buf) > 2 * MAX_FRAME + 1:
            out.append(Discarded(bytes(buf), f"no closing flag within {MAX_FRAME} bytes"))
            buf.clear()
        return out

    def _frame(self, frame: bytes, out: list[bytes | Discarded]) -> str | None:
        """Hand a frame on (or keep a split packet for its message); the reason when it is invalid."""
        try:
            header, _ = read_frame(frame[1:-1])
        except ValueError as exc:
            return str(exc)
        if header.packet_count <= 1:
            out.append(frame)
            return None
        first_serial = (header.serial - header.packet_index + 1) % 65536
        key = (header.message_id, header.packet_count, first_serial)
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = _PendingSplit(self._clock(), {})
        self._pending_bytes += len(frame) - len(pending.packets.get(header.packet_index, b""))
        pending.packets[header.packet_index] = frame
        if len(pending.packets) == header.packet_count:
            del self._pending[key]
            self._pending_bytes -= sum(len(packet) for packet in pending.packets.values())
            out.append(Reassembled(frame, b"".join(pending.packets[index] for index in sorted(pending.packets))))
            return None
        out.append(frame)
        while self._pending_bytes > MAX_PENDING_SPLIT_BYTES:
            self._drop(next(iter(self._pending)), out, "split messages over the connection's limit")
        return None

    def _expire(self, out: list[bytes | Discarded], now: float) -> None:
        for key in [key for key, pending in self._pending.items() if now - pending.started > SPLIT_TIMEOUT_S]:
            self._drop(key, out, f"split message incomplete after {SPLIT_TIMEOUT_S:.0f} s")

    def _drop(self, key: tuple[int, int, int], out: list[bytes | Discarded], reason: str) -> None:
        """Forget a split message's packets (they were handed on as they came: no byte is discarded)."""
        pending = self._pending.pop(key)
        self._pending_bytes -= sum(len(packet) for packet in pending.packets.values())
        kept = ", ".join(str(index) for index in sorted(pending.packets))
        out.append(Discarded(b"", f"{reason} (packets {kept} of {key[1]})"))


@dataclass(slots=True)
class _PendingSplit:
    started: float
    packets: dict[int, bytes]


# --- decoding (§3, §5) ---


def _time(raw: bytes) -> datetime | None:
    """BCD ``YYMMDDhhmmss`` in China Standard Time; None when the terminal has no fix time (§7)."""
    digits = bcd_digits(raw)
    if digits == "000000000000" or digits[2:4] == "00":
        return None
    try:
        local = datetime(2000 + int(digits[0:2]), int(digits[2:4]), int(digits[4:6]), int(digits[6:8]),
                         int(digits[8:10]), int(digits[10:12]), tzinfo=CST)  # fmt: skip
    except ValueError as exc:
        raise ValueError(f"time {digits}: {exc}") from None
    return local.astimezone(UTC)


def _tags(value: bytes) -> tuple[str, ...]:
    count, offset, tags = value[0], 1, []
    for _ in range(count):
        size = value[offset]
        uid = value[offset + 1 : offset + 1 + size]
        if len(uid) != size or not size:
            raise ValueError("tag list runs past its item")
        tags.append(uid.hex().upper())
        offset += 1 + size
    if offset != len(value):
        raise ValueError("bytes after the tag list")
    return tuple(tags)


def decode_location(record: bytes, head: dict[str, object], buffered: bool = False) -> ev.VehiclePosition:
    """One §5 location record as a normalised position."""
    if len(record) < _location.size:
        raise ValueError(f"location record of {len(record)} bytes, shorter than {_location.size}")
    alarm, status, lat, lon, altitude, speed, course, raw_time = _location.unpack(record)
    items: dict[str, object] = {}
    extra: list[tuple[int, bytes]] = []
    offset = _location.size
    while offset < len(record):
        if offset + 2 > len(record):
            raise ValueError(f"extra item at offset {offset} has no length")
        item, size = record[offset], record[offset + 1]
        value = record[offset + 2 : offset + 2 + size]
        if len(value) != size:
            raise ValueError(f"extra item 0x{item:02x} of {size} bytes runs past the record")
        offset += 2 + size
        if item == ITEM_ODOMETER and size == 4:
            items["odometer_km"] = int.from_bytes(value, "big") / 10
        elif item == ITEM_SIGNAL and size == 1:
            items["signal"] = value[0]
        elif item == ITEM_SATELLITES and size == 1:
            items["satellites"] = value[0]
        elif item in (ITEM_PRESSURE, ITEM_GAS) and size == 2:
            raw = int.from_bytes(value, "big")
            reading = "pressure" if item == ITEM_PRESSURE else "gas"
            if raw == SENSOR_FAULT:
                items[f"{reading}_fault"] = True
            else:
                items["pressure_mpa" if item == ITEM_PRESSURE else "gas_lel_pct"] = raw / (100 if item == ITEM_PRESSURE else 10)
        elif item == ITEM_TAGS and size >= 1:
            try:
                items["tags"] = _tags(value)
            except (ValueError, IndexError):
                extra.append((item, value))  # a reader's malformed list: kept, never rejected
        else:
            extra.append((item, value))
    return ev.VehiclePosition(
        **head,  # type: ignore[arg-type]
        device_time=_time(raw_time),
        alarm_flags=alarm,
        status_flags=status,
        latitude=(-lat if status & (1 << STATUS_SOUTH) else lat) / 1e6,
        longitude=(-lon if status & (1 << STATUS_WEST) else lon) / 1e6,
        altitude_m=altitude,
        speed_kmh=speed / 10,
        course=course,
        acc_on=bool(status & (1 << STATUS_ACC)),
        fixed=bool(status & (1 << STATUS_FIXED)),
        extra_items=tuple(extra),
        buffered=buffered,
        **items,  # type: ignore[arg-type]
    )


def _batch(body: bytes, head: dict[str, object]) -> list[ev.VehiclePosition]:
    if len(body) < 3:
        raise ValueError("batch too short for its count and type")
    count, kind = struct.unpack_from(">HB", body)
    if count < 1:
        raise ValueError("batch of 0 records")
    if kind not in (0, 1):
        raise ValueError(f"batch type {kind}, expected 0 or 1")
    records, offset = [], 3
    for number in range(1, count + 1):
        if offset + 2 > len(body):
            raise ValueError(f"batch says {count} records, has {number - 1}")
        (size,) = struct.unpack_from(">H", body, offset)
        record = body[offset + 2 : offset + 2 + size]
        if len(record) != size:
            raise ValueError(f"record {number} of {size} bytes runs past the batch")
        records.append(decode_location(record, head, buffered=kind == 1))
        offset += 2 + size
    if offset != len(body):
        raise ValueError(f"{len(body) - offset} bytes after the batch's {count} records")
    return records


def _packets(frame: bytes) -> list[bytes]:
    """The contents (between flags) of one frame or of a split message's frames given back to back."""
    if len(frame) < 2 or frame[0] != FLAG or frame[-1] != FLAG:
        raise DecodeError("not a JT/T 808 frame (0x7e ... 0x7e)")
    return [part for part in frame[1:-1].split(FLAG_BYTE) if part]


def _reassemble(contents: list[bytes]) -> tuple[Header, bytes]:
    """Header of the last packet and the whole body of a split message."""
    packets = [read_frame(content) for content in contents]
    first = packets[0][0]
    bodies = []
    for number, (header, body) in enumerate(packets, 1):
        if not header.split or header.message_id != first.message_id or header.phone != first.phone:
            raise ValueError(f"frame {number} is not a packet of the same message")
        if header.packet_count != len(packets) or header.packet_index != number:
            raise ValueError(f"packet {header.packet_index}/{header.packet_count} where {number}/{len(packets)} belongs")
        if header.serial != (first.serial + number - 1) % 65536:
            raise ValueError(f"packet {number} has serial {header.serial}, not consecutive")
        bodies.append(body)
    return packets[-1][0], b"".join(bodies)


def _dedup(time_: datetime | None, header: Header, extra: str = "") -> str:
    leading = str(int(time_.timestamp())) if time_ else "-"
    return f"{leading}:{header.message_id}:{header.serial}{extra}"


class Jt808Protocol(Protocol):
    name = "jt808"
    title = "JT/T 808-2013/2019 vehicle terminal, Wuhai vehicle-cylinder profile"
    default_port = 5808
    terminal_id_format = TerminalIdFormat(
        r"\d{12}|\d{20}", "a JT/T 808 phone number (12 or 20 digits)", "终端手机号（12 位或 20 位数字）"
    )
    binds_to = Binding.VEHICLE
    commands = frozenset({ev.CommandCode.REPORT_STATUS})
    login_without_key = False  # (a terminal without a code REGISTERs for one)

    def sniff(self, first_bytes: bytes) -> bool | None:
        """A flag, then a terminal message id (0x00xx, 0x01xx, 0x02xx or 0x07xx)."""
        if len(first_bytes) < 2:
            return None if first_bytes in (b"", FLAG_BYTE) else False
        return first_bytes[0] == FLAG and first_bytes[1] in (0x00, 0x01, 0x02, 0x07)

    def new_framer(self) -> Jt808Framer:
        return Jt808Framer()

    def decode(self, frame: bytes, received_at: datetime) -> ev.Message:
        contents = _packets(frame)
        if not contents:
            raise DecodeError("empty frame")
        try:
            if len(contents) == 1:
                header, body = read_frame(contents[0])
            else:
                header, body = _reassemble(contents)
        except (ValueError, struct.error) as exc:
            raise DecodeError(str(exc)) from None
        terminal, serial = header.phone, header.serial
        wire = Jt808Wire(header.message_id, terminal, header.edition, header.version)
        if header.encryption:
            raise DecodeError(f"encrypted body (method {header.encryption})", terminal_id=terminal, seq=serial,
                              wire=wire, unsupported=True)  # fmt: skip
        name = TYPE_NAMES.get(header.message_id)
        if name is None:
            raise DecodeError(f"unsupported message id 0x{header.message_id:04x}", terminal_id=terminal,
                              seq=serial, wire=wire, unsupported=True)  # fmt: skip
        head: dict[str, object] = dict(protocol=self.name, terminal_id=terminal, seq=serial, received_at=received_at)
        if header.split and len(contents) == 1 and header.packet_count > 1:
            # One packet of a split message: answered at once, decoded with the others (§1).
            packet = ev.Heartbeat(**head, device_time=None)  # type: ignore[arg-type]
            return ev.Message(self.name, terminal, f"{name}_PACKET", serial, None, received_at, [packet], None, wire)
        try:
            events, wire, dedup = self._decode_body(header, body, head, wire)
        except (ValueError, IndexError, struct.error, c.ConstructError, UnicodeDecodeError) as exc:
            raise DecodeError(f"bad {name} body: {exc}", terminal_id=terminal, seq=serial, wire=wire) from None
        times = [event.device_time for event in events if event.device_time is not None]
        return ev.Message(
            protocol=self.name,
            terminal_id=terminal,
            type=name,
            seq=serial,
            device_time=max(times) if times else None,
            received_at=received_at,
            events=events,
            dedup_key=dedup,
            wire=wire,
        )

    def _decode_body(
        self, header: Header, body: bytes, head: dict[str, object], wire: Jt808Wire
    ) -> tuple[list[ev.Event], Jt808Wire, str | None]:
        """The body's events, the wire details to keep and the dedup key (None: not stored)."""
        code = header.message_id
        if code in (LOCATION, LOCATION_REPLY):
            record = body
            if code == LOCATION_REPLY:
                if len(body) < 2:
                    raise ValueError("no reply serial")
                record = body[2:]
            position = decode_location(record, head)
            return [position], wire, _dedup(position.device_time, header)
        if code == BATCH:
            records = _batch(body, head)
            return list(records), wire, _dedup(records[0].device_time, header, f":{len(records)}")
        if code == HEARTBEAT:
            return [ev.Heartbeat(**head, device_time=None)], wire, None  # type: ignore[arg-type]
        if code == TERMINAL_RESPONSE:
            fields = TerminalResponseBody.parse(body)
            if len(body) != TerminalResponseBody.sizeof():
                raise ValueError(f"{len(body)} bytes, expected {TerminalResponseBody.sizeof()}")
            reply = ev.CommandReply(
                **head,  # type: ignore[arg-type]
                device_time=None,
                command_seq=fields.reply_serial,
                result=TERMINAL_RESULTS.get(fields.result, "refused"),
                data=bytes([fields.result]) + fields.reply_id.to_bytes(2, "big"),
            )
            return [reply], wire, f"-:{code}:{header.serial}:{fields.reply_id}:{fields.reply_serial}"
        if code == UNREGISTER:
            return [ev.Unregister(**head, device_time=None)], wire, None  # type: ignore[arg-type]
        if code == REGISTER:
            fields = _register_bodies[header.edition].parse(body)
            register = ev.Register(
                **head,  # type: ignore[arg-type]
                device_time=None,
                province=fields.province,
                city=fields.city,
                maker=fields.maker,
                model=fields.model,
                device_id=fields.device_id,
                plate_colour=fields.plate_colour,
                plate=fields.plate.rstrip("\x00"),
            )
            return [register], wire, None
        # AUTHENTICATE
        if header.edition == 2019:
            fields = _authenticate_2019.parse(body)
            code_text, firmware = fields.code, fields.software
        else:
            code_text, firmware = body.decode("gb18030"), ""
        code_text = code_text.rstrip("\x00")  # §7: some firmware pads the code with NULs
        wire = Jt808Wire(wire.message_id, wire.phone, wire.edition, wire.version, code_text)
        login = ev.Login(**head, device_time=None, firmware=firmware, report_interval_s=HEARTBEAT_INTERVAL_S)  # type: ignore[arg-type]
        return [login], wire, None

    def verify_login(self, message: ev.Message, key: str | None) -> bool:
        """The code must be the one the census gave or the platform issued; without one, refused."""
        wire: Jt808Wire = message.wire  # type: ignore[assignment]
        return bool(key) and wire.auth_code == key

    def encode_reply(self, message: ev.Message, reply: ev.Reply, seq: int, now: datetime) -> bytes:
        wire: Jt808Wire = message.wire  # type: ignore[assignment]
        if isinstance(reply, ev.Ack):
            return platform_response(wire, message.seq, ACK_RESULTS[reply.result], seq)
        if isinstance(reply, ev.Registration):
            body = RegisterResponseBody.build(
                {"reply_serial": message.seq, "result": reply.result,
                 "auth_code": reply.auth_code if reply.result == 0 else ""}
            )  # fmt: skip
            return encode_frame(REGISTER_RESPONSE, wire.phone, seq, body, wire.edition, wire.version)
        raise TypeError(f"JT/T 808 has no answer of kind {type(reply).__name__}")

    def header_error(self, frame: bytes, reason: str) -> DecodeError | None:
        """The header of the frame's last packet: the one an answer names (a split message's earlier packets
        were answered as they came, as ``decode`` does)."""
        try:
            header, _ = read_frame(_packets(frame)[-1])
        except (DecodeError, ValueError, IndexError, struct.error):
            return None
        wire = Jt808Wire(header.message_id, header.phone, header.edition, header.version)
        return DecodeError(reason, terminal_id=header.phone, seq=header.serial, wire=wire)

    def encode_error(self, error: DecodeError, seq: int, now: datetime) -> bytes | None:
        if error.seq is None or error.wire is None:
            return None  # the header cannot be trusted (bad check code, length or escaping): stay silent
        wire: Jt808Wire = error.wire  # type: ignore[assignment]
        return platform_response(wire, error.seq, NOT_SUPPORTED if error.unsupported else BAD_MESSAGE, seq)

    def encode_command(self, terminal_id: str, command: ev.TerminalCommand, seq: int, now: datetime) -> bytes:
        if command.code != ev.CommandCode.REPORT_STATUS:
            raise ValueError(f"JT/T 808 terminals take only a location query, not {command.code.value}")
        return encode_frame(LOCATION_QUERY, terminal_id, seq, b"", 2019 if len(terminal_id) == 20 else 2013, 1)

    def describe(self, frame: bytes) -> list[str]:
        """The header fields of each frame, for ``wuhai-iot decode``."""
        lines = []
        for content in _packets(frame):
            try:
                header, body = read_frame(content)
            except ValueError as exc:
                lines.append(f"frame of {len(content)} bytes (escaped): {exc}")
                continue
            raw = unescape(content)
            lines.append(
                f"message id 0x{header.message_id:04x} ({_name(header.message_id)})"
                f" · {header.edition} edition" + (f" version {header.version}" if header.edition == 2019 else "")
                + f" · body {header.body_length} bytes · encryption {header.encryption}"
                + f" · phone {header.phone} · serial {header.serial}"
                + (f" · packet {header.packet_index}/{header.packet_count}" if header.split else "")
                + f" · check code 0x{raw[-1]:02x} ok · {len(content) - len(raw)} bytes escaped"
            )
            if header.message_id in (LOCATION, LOCATION_REPLY) and not header.split:
                record = body[2:] if header.message_id == LOCATION_REPLY else body
                alarm, status = struct.unpack_from(">II", record)
                lines.append(f"  alarm bits {_bits(alarm) or 'none'} · status bits {_bits(status) or 'none'}")
            elif header.message_id == PLATFORM_RESPONSE and len(body) == PlatformResponseBody.sizeof():
                answer = PlatformResponseBody.parse(body)
                lines.append(f"  reply serial {answer.reply_serial} · reply id 0x{answer.reply_id:04x}"
                             f" ({_name(answer.reply_id)}) · result {answer.result}")  # fmt: skip
            elif header.message_id == REGISTER_RESPONSE and len(body) >= 3:
                answer = RegisterResponseBody.parse(body)
                lines.append(f"  reply serial {answer.reply_serial} · result {answer.result}"
                             f" · authentication code {answer.auth_code!r}")  # fmt: skip
        return lines


def _name(message_id: int) -> str:
    return TYPE_NAMES.get(message_id) or PLATFORM_NAMES.get(message_id) or "not in the profile"


def _bits(value: int) -> str:
    return ",".join(str(bit) for bit in range(32) if value >> bit & 1)


# --- encoding (§4, and the terminal side for simulators and tests) ---


def encode_frame(
    message_id: int,
    phone: str,
    serial: int,
    body: bytes,
    edition: int = 2013,
    version: int = 1,
    packet: tuple[int, int] | None = None,
) -> bytes:
    """One whole escaped frame; ``packet`` = (count, index) for a packet of a split message."""
    if len(body) > MAX_BODY:
        raise ValueError(f"body of {len(body)} bytes is over {MAX_BODY}: split it (encode_split)")
    digits = 20 if edition == 2019 else 12
    if not phone.isdigit() or len(phone) > digits:
        raise ValueError(f"phone number {phone!r} is not at most {digits} digits")
    properties = len(body) | (0x4000 if edition == 2019 else 0) | (0x2000 if packet else 0)
    phone_bcd = bytes.fromhex(phone.zfill(digits))
    if edition == 2019:
        head = _head_2019.pack(message_id, properties, version, phone_bcd, serial % 65536)
    else:
        head = _head_2013.pack(message_id, properties, phone_bcd, serial % 65536)
    if packet:
        head += struct.pack(">HH", *packet)
    raw = head + body
    return FLAG_BYTE + escape(raw + bytes([xor_checksum(raw)])) + FLAG_BYTE


def encode_split(
    message_id: int, phone: str, first_serial: int, body: bytes, packet_size: int = MAX_BODY, edition: int = 2013
) -> list[bytes]:
    """A long body as packets of at most ``packet_size`` bytes, with consecutive serials."""
    chunks = [body[offset : offset + packet_size] for offset in range(0, len(body), packet_size)] or [b""]
    return [
        encode_frame(message_id, phone, first_serial + number, chunk, edition, packet=(len(chunks), number + 1))
        for number, chunk in enumerate(chunks)
    ]


def platform_response(wire: Jt808Wire, reply_serial: int, result: int, seq: int) -> bytes:
    body = _platform_response.pack(reply_serial, wire.message_id, result)
    return encode_frame(PLATFORM_RESPONSE, wire.phone, seq, body, wire.edition, wire.version)


def register_body(
    plate: str,
    *,
    province: int = 15,
    city: int = 300,
    maker: str = "WHGAS",
    model: str = "VT-808C",
    device_id: str = "T000001",
    plate_colour: int = 1,
    edition: int = 2013,
) -> bytes:
    return RegisterBody[edition].build(
        {"province": province, "city": city, "maker": maker, "model": model, "device_id": device_id,
         "plate_colour": plate_colour, "plate": plate}
    )  # fmt: skip


def authenticate_body(code: str, edition: int = 2013, imei: str = "860000000000001", software: str = "1.0") -> bytes:
    if edition == 2019:
        return Authenticate2019Body.build({"code": code, "imei": imei, "software": software})
    return code.encode("gb18030")


def bcd_time(at: datetime | None) -> bytes:
    """A time as §5 BCD in China Standard Time (None: no fix time, all zeros)."""
    if at is None:
        return bytes(6)
    return bytes.fromhex(at.astimezone(CST).strftime("%y%m%d%H%M%S"))


def location_record(
    at: datetime | None,
    latitude: float,
    longitude: float,
    *,
    speed_kmh: float = 0.0,
    course: int = 0,
    altitude_m: int = 1090,
    acc_on: bool = True,
    fixed: bool = True,
    alarm_flags: int = 0,
    odometer_km: float | None = None,
    pressure_mpa: float | None = None,
    gas_lel_pct: float | None = None,
    tags: tuple[str, ...] | None = None,
    extra_items: tuple[tuple[int, bytes], ...] = (),
) -> bytes:
    """A §5 location record (a pressure or gas reading of ``-1`` is sent as the sensor-fault value)."""
    status = (1 << STATUS_ACC if acc_on else 0) | (1 << STATUS_FIXED if fixed else 0)
    status |= (1 << STATUS_SOUTH if latitude < 0 else 0) | (1 << STATUS_WEST if longitude < 0 else 0)
    record = _location.pack(alarm_flags, status, round(abs(latitude) * 1e6), round(abs(longitude) * 1e6),
                            altitude_m, round(speed_kmh * 10), course, bcd_time(at))  # fmt: skip
    if odometer_km is not None:
        record += bytes([ITEM_ODOMETER, 4]) + round(odometer_km * 10).to_bytes(4, "big")
    if pressure_mpa is not None:
        raw = SENSOR_FAULT if pressure_mpa < 0 else round(pressure_mpa * 100)
        record += bytes([ITEM_PRESSURE, 2]) + raw.to_bytes(2, "big")
    if gas_lel_pct is not None:
        raw = SENSOR_FAULT if gas_lel_pct < 0 else round(gas_lel_pct * 10)
        record += bytes([ITEM_GAS, 2]) + raw.to_bytes(2, "big")
    if tags is not None:
        value = bytes([len(tags)]) + b"".join(bytes([len(bytes.fromhex(t))]) + bytes.fromhex(t) for t in tags)
        record += bytes([ITEM_TAGS, len(value)]) + value
    for item, value in extra_items:
        record += bytes([item, len(value)]) + value
    return record


def batch_body(records: list[bytes], buffered: bool = True) -> bytes:
    return struct.pack(">HB", len(records), 1 if buffered else 0) + b"".join(
        struct.pack(">H", len(record)) + record for record in records
    )


@hookimpl
def register_protocols() -> list[Protocol]:
    return [Jt808Protocol()]
