"""GF-3 filling-scale controller, platform protocol v3.2 (binary, little-endian, CRC-16/MODBUS).

The vendor document is ../shared/protocols/gasfill.md; section numbers below refer to it.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from datetime import UTC, datetime

import construct as c

from wuhai_iot import events as ev
from wuhai_iot.plugins.hookspecs import hookimpl
from wuhai_iot.protocols.base import Binding, DecodeError, Protocol, TerminalIdFormat
from wuhai_iot.protocols.blocks import LengthCrcFramer, crc16_modbus, hmac_login_ok

STX, ETX = 0x02, 0x03
MIN_LENGTH = 7  # CMD .. SCALE, empty body
MAX_LENGTH = 512
HEADER_SIZE = 10  # STX .. SCALE
HEARTBEAT_INTERVAL_S = 30  # §2: the controller sends HEARTBEAT every 30 s

LOGIN, HEARTBEAT, FILL_REQUEST, FILL_RESULT, TAG_QUERY = 0x01, 0x02, 0x10, 0x11, 0x12
ACK, FILL_DECISION, TAG_INFO = 0x80, 0x90, 0x91

TYPE_NAMES = {
    LOGIN: "LOGIN",
    HEARTBEAT: "HEARTBEAT",
    FILL_REQUEST: "FILL_REQUEST",
    FILL_RESULT: "FILL_RESULT",
    TAG_QUERY: "TAG_QUERY",
}

# §3 ACK result codes; UNSUPPORTED has no code of its own: an unknown CMD is "bad content".
ACK_RESULTS = {
    ev.AckResult.ACCEPTED: 0,
    ev.AckResult.BAD_CONTENT: 1,
    ev.AckResult.UNSUPPORTED: 1,
    ev.AckResult.UNKNOWN_TERMINAL: 2,
    ev.AckResult.AUTH_FAILED: 3,
    ev.AckResult.NOT_LOGGED_IN: 4,
}
MEDIUM_CODES = {word: code for code, word in ev.MEDIA.items()}
OUTCOMES = range(4)
TAG_SIZES = range(4, 17)
CYLINDER_CODE_SIZE = 20
MAX_DISPLAY_MESSAGE = 60
MAX_SCALE = 64
"""Scales of one station (the census's ``stations.scales`` allows as many)."""
TERMINAL_ID = re.compile(r"([0-9]+)-([0-9]+)")

# §1 header. The framer has already checked STX, LEN, CRC and ETX, and decode() checks every body's
# exact size (a tag's length byte included) first, so the compiled parsers only see what they expect.
Header = c.Struct(
    "stx" / c.Const(bytes([STX])),
    "length" / c.Int16ul,
    "cmd" / c.Int8ul,
    "seq" / c.Int8ul,
    "station" / c.Int32ul,
    "scale" / c.Int8ul,
)
Tag = c.Prefixed(c.Int8ul, c.GreedyBytes)
Bodies: dict[int, c.Construct] = {
    LOGIN: c.Struct(
        "firmware" / c.PaddedString(8, "ascii"),
        "clock" / c.Int32ul,
        "auth" / c.Bytes(16),
    ),
    HEARTBEAT: c.Struct("status" / c.Int8ul),
    FILL_REQUEST: c.Struct(
        "tag" / Tag,
        "gross_before" / c.Int32ul,
        "operator_card" / c.Int32ul,
        "medium" / c.Int8ul,
    ),
    FILL_RESULT: c.Struct(
        "request_seq" / c.Int8ul,
        "tag" / Tag,
        "gross_before" / c.Int32ul,
        "gross_after" / c.Int32ul,
        "duration" / c.Int16ul,
        "outcome" / c.Int8ul,
        "end_time" / c.Int32ul,
    ),
    TAG_QUERY: c.Struct("tag" / Tag),
}
FIXED_BODY_SIZES = {LOGIN: 28, HEARTBEAT: 1}
# Bodies with a tag: (offset of the tag's length byte, bytes after the tag).
TAG_LAYOUTS = {FILL_REQUEST: (0, 9), FILL_RESULT: (1, 15), TAG_QUERY: (0, 0)}

AckBody = c.Struct("cmd" / c.Int8ul, "seq" / c.Int8ul, "result" / c.Int8ul)
FillDecisionBody = c.Struct(
    "request_seq" / c.Int8ul,
    "decision" / c.Int8ul,
    "reason" / c.Int16ul,
    "net_limit" / c.Int32ul,
    "cylinder_code" / c.PaddedString(CYLINDER_CODE_SIZE, "ascii"),
    "message" / c.Prefixed(c.Int8ul, c.GreedyBytes),
)
TagInfoBody = c.Struct(
    "found" / c.Int8ul,
    "cylinder_code" / c.PaddedString(CYLINDER_CODE_SIZE, "ascii"),
    "medium" / c.Int8ul,
    "next_inspection" / c.Int32ul,
    "status" / c.Int8ul,
    "owner_station" / c.Int32ul,
)

_header = Header.compile()
_bodies = {code: body.compile() for code, body in Bodies.items()}

crc16 = crc16_modbus
"""CRC-16/MODBUS, in crcmod-plus's C extension (a 40-byte frame: ~0.3 µs; a Python table: ~4 µs)."""


@dataclass(frozen=True, slots=True)
class GasfillWire:
    """What an answer to a GF-3 frame (and a LOGIN check) needs from it."""

    cmd: int
    station: int
    scale: int
    clock: int = 0
    auth: bytes = b""


class GasfillFramer(LengthCrcFramer):
    """Cuts frames at STX by LEN, CRC and ETX; on a bad LEN, CRC or ETX drops one byte (§1).

    Without escaping, an STX inside a damaged frame often reads as the start of a long frame
    (station 150301, scale 2 gives ``02 00 02``: LEN 512). Waiting for its 518 bytes would hold
    back the good frames behind it for many minutes, and the controller fails closed after 3 s.
    So while a candidate is incomplete, a whole valid frame (CRC and ETX) starting inside it wins
    and the candidate's bytes are discarded.
    """

    marker = bytes([STX])
    overtake_incomplete = True
    length_at = 1
    length_order = "little"
    length_range = range(MIN_LENGTH, MAX_LENGTH + 1)
    length_adds = 6
    crc = crc16_modbus
    crc_from = 1
    crc_order = "little"
    trailer = bytes([ETX])
    trailer_name = "ETX"


_frame_at = GasfillFramer().frame_at
"""(size, "") for a whole valid frame at an offset, (0, "") when more bytes are needed, (0, why) otherwise."""


def _time(raw: int) -> datetime | None:
    return datetime.fromtimestamp(raw, UTC) if raw else None


def _check_body_size(code: int, body: bytes) -> None:
    expected = FIXED_BODY_SIZES.get(code)
    if expected is None:
        offset, after = TAG_LAYOUTS[code]
        if len(body) <= offset:
            raise ValueError(f"{len(body)} bytes, too short for a tag")
        tag_size = body[offset]
        if tag_size not in TAG_SIZES:
            raise ValueError(f"tag length {tag_size} outside 4..16")
        expected = offset + 1 + tag_size + after
    if len(body) != expected:
        raise ValueError(f"{len(body)} bytes, expected {expected}")


class GasfillProtocol(Protocol):
    name = "gasfill"
    title = "GF-3 filling-scale controller v3.2"
    default_port = 5710
    login_signs_device_time = True
    terminal_id_format = TerminalIdFormat(
        TERMINAL_ID.pattern,
        f"<station_code>-<scale> (a GF-3 scale: station 1–{0xFFFF_FFFF}, scale 1–{MAX_SCALE})",
        f"“站编号-秤号”，秤号 1～{MAX_SCALE}（如 150301-2）",
    )
    binds_to = Binding.STATION_SCALE

    def canonical_terminal_id(self, terminal_id: str) -> str:
        """``<station>-<scale>`` without leading zeros, as ``decode`` names the terminal."""
        match = TERMINAL_ID.fullmatch(terminal_id) if terminal_id.isascii() else None
        station, scale = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
        if not (1 <= station <= 0xFFFF_FFFF and 1 <= scale <= MAX_SCALE):
            raise ValueError(f"{terminal_id!r} is not {self.terminal_id_format.description}")
        return f"{station}-{scale}"

    def station_scale(self, terminal_id: str) -> tuple[int, int]:
        station, scale = terminal_id.split("-")
        return int(station), int(scale)

    def sniff(self, first_bytes: bytes) -> bool | None:
        """STX, then a LEN of 7..512 (§1): enough to tell GF-3 from the other protocols' first bytes."""
        if len(first_bytes) < 3:
            return None if first_bytes[:1] in (b"", bytes([STX])) else False
        return first_bytes[0] == STX and MIN_LENGTH <= int.from_bytes(first_bytes[1:3], "little") <= MAX_LENGTH

    def new_framer(self) -> GasfillFramer:
        return GasfillFramer()

    def sequence_modulus(self) -> int:
        return 256

    def decode(self, frame: bytes, received_at: datetime) -> ev.Message:
        terminal, seq, wire = _read_header(frame)
        code, length = wire.cmd, len(frame) - 6
        name = TYPE_NAMES.get(code)
        if name is None:
            raise DecodeError(
                f"unsupported CMD 0x{code:02x}", terminal_id=terminal, seq=seq, wire=wire, unsupported=True
            )
        head_fields = dict(protocol=self.name, terminal_id=terminal, seq=seq, received_at=received_at)
        try:
            event, wire, dedup = self._decode_body(code, frame[HEADER_SIZE : 3 + length], head_fields, wire)
        except (ValueError, c.ConstructError, struct.error) as exc:
            raise DecodeError(f"bad {name} body: {exc}", terminal_id=terminal, seq=seq, wire=wire) from None
        return ev.Message(
            protocol=self.name,
            terminal_id=terminal,
            type=name,
            seq=seq,
            device_time=event.device_time,
            received_at=received_at,
            events=[event],
            dedup_key=dedup,
            wire=wire,
        )

    def _decode_body(
        self, code: int, body: bytes, head: dict[str, object], wire: GasfillWire
    ) -> tuple[ev.Event, GasfillWire, str | None]:
        """The body's event, the wire details to keep and the dedup key (only FILL_RESULT is stored)."""
        _check_body_size(code, body)
        fields = _bodies[code].parse(body)
        if code == LOGIN:
            wire = GasfillWire(code, wire.station, wire.scale, fields.clock, fields.auth)
            login = ev.Login(
                **head,
                device_time=_time(fields.clock),
                firmware=fields.firmware,
                report_interval_s=HEARTBEAT_INTERVAL_S,
            )
            return login, wire, None
        if code == HEARTBEAT:
            return ev.Heartbeat(**head, device_time=None, signal=fields.status), wire, None
        tag = fields.tag.hex().upper()
        if code == FILL_REQUEST:
            medium = ev.MEDIA.get(fields.medium)
            if medium is None:
                raise ValueError(f"unknown medium {fields.medium}")
            request = ev.FillRequest(
                **head,
                device_time=None,
                tag=tag,
                gross_before_g=fields.gross_before,
                operator_card=fields.operator_card,
                medium=medium,
            )
            return request, wire, None
        if code == TAG_QUERY:
            return ev.TagQuery(**head, device_time=None, tag=tag), wire, None
        # FILL_RESULT
        if fields.outcome not in OUTCOMES:
            raise ValueError(f"outcome {fields.outcome} outside 0..3")
        ended_at = datetime.fromtimestamp(fields.end_time, UTC)
        result = ev.FillResult(
            **head,
            device_time=ended_at,
            request_seq=fields.request_seq,
            tag=tag,
            gross_before_g=fields.gross_before,
            gross_after_g=fields.gross_after,
            duration_s=fields.duration,
            outcome=fields.outcome,
            ended_at=ended_at,
        )
        dedup = f"FILL_RESULT:{fields.request_seq}:{tag}:{fields.gross_before}:{fields.gross_after}"
        return result, wire, dedup

    def verify_login(self, message: ev.Message, key: str | None) -> bool:
        """§2: auth = first 16 bytes of HMAC-SHA256(key, station + scale + clock, little-endian)."""
        wire: GasfillWire = message.wire  # type: ignore[assignment]
        material = wire.station.to_bytes(4, "little") + bytes([wire.scale]) + wire.clock.to_bytes(4, "little")
        return hmac_login_ok(key, material, wire.auth)

    def encode_reply(self, message: ev.Message, reply: ev.Reply, seq: int, now: datetime) -> bytes:
        wire: GasfillWire = message.wire  # type: ignore[assignment]
        if isinstance(reply, ev.Ack):
            return _ack(wire, message.seq, reply.result, seq)
        if isinstance(reply, ev.FillDecision):
            body = FillDecisionBody.build(
                {
                    "request_seq": message.seq,
                    "decision": 0 if reply.permit else 1,
                    "reason": reply.reason,
                    "net_limit": reply.net_limit_g if reply.permit else 0,
                    "cylinder_code": _cylinder_code(reply.cylinder_code),
                    "message": display_message(reply.message),
                }
            )
            return encode_frame(wire.station, wire.scale, FILL_DECISION, seq, body)
        if isinstance(reply, ev.TagInfo):
            medium = MEDIUM_CODES.get(reply.medium)
            if medium is None:
                raise ValueError(f"medium {reply.medium!r} has no GF-3 code")
            inspection = reply.next_inspection
            body = TagInfoBody.build(
                {
                    "found": int(reply.found),
                    "cylinder_code": _cylinder_code(reply.cylinder_code),
                    "medium": medium,
                    "next_inspection": (
                        inspection.year * 10000 + inspection.month * 100 + inspection.day if inspection else 0
                    ),
                    "status": reply.status,
                    "owner_station": reply.owner_station,
                }
            )
            return encode_frame(wire.station, wire.scale, TAG_INFO, seq, body)
        raise TypeError(f"GF-3 has no answer of kind {type(reply).__name__}")

    def header_error(self, frame: bytes, reason: str) -> DecodeError | None:
        try:
            terminal, seq, wire = _read_header(frame)
        except DecodeError:
            return None
        return DecodeError(reason, terminal_id=terminal, seq=seq, wire=wire)

    def encode_error(self, error: DecodeError, seq: int, now: datetime) -> bytes | None:
        if error.terminal_id is None or error.seq is None or error.wire is None:
            return None
        wire: GasfillWire = error.wire  # type: ignore[assignment]
        return _ack(wire, error.seq, ev.AckResult.BAD_CONTENT, seq)


def _read_header(frame: bytes) -> tuple[str, int, GasfillWire]:
    """Terminal id, SEQ and wire details of one whole frame; DecodeError when it is none."""
    if not frame or frame[0] != STX:
        raise DecodeError("not a GF-3 frame")
    size, problem = _frame_at(frame, 0, len(frame))
    if size != len(frame):
        raise DecodeError(f"not one whole GF-3 frame: {problem or 'size does not match LEN'}")
    head = _header.parse(frame)
    return f"{head.station}-{head.scale}", head.seq, GasfillWire(head.cmd, head.station, head.scale)


def _ack(wire: GasfillWire, acked_seq: int, result: ev.AckResult, seq: int) -> bytes:
    body = AckBody.build({"cmd": wire.cmd, "seq": acked_seq, "result": ACK_RESULTS[result]})
    return encode_frame(wire.station, wire.scale, ACK, seq, body)


def _cylinder_code(code: str) -> str:
    if not code.isascii() or len(code) > CYLINDER_CODE_SIZE:
        raise ValueError(f"cylinder code {code!r} is not ASCII of at most {CYLINDER_CODE_SIZE} characters")
    return code


def display_message(text: str) -> bytes:
    """The message as UTF-8 of at most 60 bytes, cut at a character boundary (§3)."""
    return text.encode()[:MAX_DISPLAY_MESSAGE].decode("utf-8", "ignore").encode()


def encode_frame(station: int, scale: int, cmd: int, seq: int, body: bytes) -> bytes:
    """Build a whole GF-3 frame (used for the platform's answers and by simulated controllers)."""
    length = MIN_LENGTH + len(body)
    if length > MAX_LENGTH:
        raise ValueError(f"body of {len(body)} bytes is too long for a GF-3 frame")
    head = Header.build({"length": length, "cmd": cmd, "seq": seq % 256, "station": station, "scale": scale})
    frame = head + body
    return frame + crc16(frame[1:]).to_bytes(2, "little") + bytes([ETX])


@hookimpl
def register_protocols() -> list[Protocol]:
    return [GasfillProtocol()]
