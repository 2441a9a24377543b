"""LMT-4 lift monitor, platform protocol v4 (ASCII lines, XOR checksum).

The vendor document is ../shared/protocols/lmt.md.

Why no ``construct`` here: an LMT message is one text line of comma-separated fields whose payload is
``key=value`` pairs in any order with unknown keys to be ignored. construct describes fixed binary
layouts; expressed in it, this line would become a chain of ``CString``/``Select`` adapters that is harder
to read than ``str.split`` and a table of value words, and it would still need hand-written code for the
free key order. So lines are parsed with plain string operations.

Framing choices (the document says: discard a line that is too long, lacks the framing or has a wrong
checksum, and answer ``ERR`` where the terminal and sequence could be read):

- The framer only cuts lines. Every non-empty line becomes a frame, *including* its ending, and
  ``decode`` judges it; so a line with garbage before ``#``, a wrong checksum or a bad value is answered
  ``ERR`` whenever its terminal and seq can be read (a ``DecodeError`` carrying them).
- A line longer than 512 bytes is never buffered whole: its first 513 bytes are emitted as a frame at
  once (``decode`` rejects it as too long, with terminal and seq read from that prefix) and the rest, up to
  the next ``\\n``, is reported as ``Discarded``. Empty lines are ``Discarded`` too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypedDict, TypeVar

from wuhai_iot import events as ev
from wuhai_iot.clock import CST
from wuhai_iot.plugins.hookspecs import hookimpl
from wuhai_iot.protocols.base import Binding, DecodeError, Protocol, TerminalIdFormat
from wuhai_iot.protocols.blocks import LineFramer, hmac_login_ok, parse_key_values, xor_checksum

PROTO = "LMT"
MAX_LINE = 512
"""Longest line, line ending included."""
TIME_FORMAT = "%Y%m%d%H%M%S"

TERMINAL_RE = re.compile(r"[0-9]{15}")
SEQ_RE = re.compile(r"[0-9]{1,5}")
TIME_RE = re.compile(r"[0-9]{14}")
CHECKSUM_RE = re.compile(r"[0-9A-F]{2}")
INT_RE = re.compile(r"-?[0-9]{1,6}")
BASEMENT_RE = re.compile(r"B([1-9][0-9]{0,2})")
SPEED_RE = re.compile(r"[0-9]{1,3}(\.[0-9]{1,4})?")
CARD_RE = re.compile(r"[0-9]{8}")

LOGIN, HEARTBEAT, STATUS, EVENT = "LOGIN", "HB", "ST", "EV"
MAINT_START, MAINT_END, COMMAND_REPLY = "MS", "ME", "RS"
ACK, COMMAND = "ACK", "CMD"
NOT_STORED = (LOGIN, HEARTBEAT)

# Event code words → canonical kinds (domain.md).
FAULT_KINDS = {
    "TRAP": "trapped",
    "DOOR_OPEN_RUN": "door_open_moving",
    "OVER_TOP": "overshoot_top",
    "OVER_BOTTOM": "overshoot_bottom",
    "OVERSPEED": "overspeed",
    "STOP_OUT_ZONE": "stopped_outside_zone",
    "DOOR_FAULT": "door_fault",
    "POWER_FAIL": "power_lost",
    "SAFETY_OPEN": "safety_circuit",
    "LOCK_FAULT": "door_lock",
    "ALARM_BTN": "alarm_button",
    "REOPEN": "reopening",
}
DIRECTIONS = {"U": ev.Direction.UP, "D": ev.Direction.DOWN, "S": ev.Direction.STOPPED}
DOORS = {"O": ev.Door.OPEN, "C": ev.Door.CLOSED, "OP": ev.Door.OPENING, "CL": ev.Door.CLOSING}
MODES = {"N": "normal", "I": "inspection", "F": "fire", "M": "maintenance", "X": "out_of_service"}
REPLY_RESULTS = {"OK": "done", "NO": "refused"}
CSQ_UNKNOWN = "99"
"""GSM modems report signal 99 when it is not known; accepted as "no value" rather than refused."""

ACK_WORDS = {
    ev.AckResult.ACCEPTED: "OK",
    ev.AckResult.BAD_CONTENT: "ERR",
    ev.AckResult.UNKNOWN_TERMINAL: "UNKNOWN",
    ev.AckResult.AUTH_FAILED: "AUTH",
    ev.AckResult.NOT_LOGGED_IN: "LOGIN",
    ev.AckResult.UNSUPPORTED: "ERR",
}


checksum = xor_checksum
"""The XOR of every byte between ``#`` and ``*``."""


def cst_text(moment: datetime) -> str:
    """An aware datetime as an LMT time field (``yyyyMMddHHmmss`` in UTC+8)."""
    return moment.astimezone(CST).strftime(TIME_FORMAT)


def encode_line(terminal_id: str, seq: int, time_text: str, type_: str, payload: str | None = None) -> bytes:
    """Build a whole LMT line with checksum and ``\\r\\n`` (the platform's answers; simulated terminals)."""
    body = f"{PROTO},{terminal_id},{seq % 65536},{time_text},{type_}"
    if payload is not None:
        body += "," + payload
    raw = body.encode("ascii")
    return b"#" + raw + f"*{checksum(raw):02X}\r\n".encode("ascii")


@dataclass(frozen=True, slots=True)
class LmtWire:
    """What answering or authenticating an LMT line needs from it."""

    time_text: str
    key: str | None = None
    """The LOGIN line's ``key`` payload."""


class LmtFramer(LineFramer):
    """Cuts lines at ``\n``; of a longer line than 512 bytes, emits the first 513 (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__(MAX_LINE, emit_overlong_prefix=True)


class Readable(TypedDict, total=False):
    """The part of a line's header a DecodeError carries so that the line can be answered ``ERR``."""

    terminal_id: str
    seq: int


class Head(TypedDict):
    """The fields every event of one line shares."""

    protocol: str
    terminal_id: str
    seq: int
    device_time: datetime
    received_at: datetime


def _readable_header(text: str) -> Readable:
    """Terminal and seq of a (possibly broken) line when they can still be read."""
    start = text.find("#")
    return {} if start < 0 else _header(text[start + 1 :].split(",", 3))


def _header(fields: list[str]) -> Readable:
    """Terminal and seq from a line's fields (proto, terminal, seq, ...), those that are well formed."""
    if len(fields) < 3 or not TERMINAL_RE.fullmatch(fields[1]):
        return {}
    header: Readable = {"terminal_id": fields[1]}
    if SEQ_RE.fullmatch(fields[2]) and int(fields[2]) < 65536:
        header["seq"] = int(fields[2])
    return header


def _strip_ending(frame: bytes) -> bytes:
    if frame.endswith(b"\r\n"):
        return frame[:-2]
    if frame.endswith(b"\n"):
        return frame[:-1]
    return frame


def _framed_body(frame: bytes) -> str:
    """The text between ``#`` and ``*`` of a line whose length, framing and checksum are right."""
    readable = frame.decode("ascii", "replace")
    if len(frame) > MAX_LINE:
        raise DecodeError(f"line longer than {MAX_LINE} bytes", **_readable_header(readable))
    line = _strip_ending(frame)
    if not line.isascii():
        raise DecodeError("line is not ASCII", **_readable_header(readable))
    text = line.decode("ascii")
    if not text.startswith("#"):
        reason = "garbage before '#'" if "#" in text else "no '#' at the start of the line"
        raise DecodeError(reason, **_readable_header(text))
    if len(text) < 4 or text[-3] != "*" or not CHECKSUM_RE.fullmatch(text[-2:]):
        raise DecodeError("line does not end in '*' and two upper-case hex digits", **_readable_header(text))
    expected = checksum(line[1:-3])
    if expected != int(text[-2:], 16):
        raise DecodeError(f"checksum {text[-2:]} does not match {expected:02X}", **_readable_header(text))
    return text[1:-3]


def _device_time(text: str) -> datetime:
    if not TIME_RE.fullmatch(text):
        raise ValueError("not 14 digits")
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=CST).astimezone(UTC)


T = TypeVar("T")


def _word(pairs: dict[str, str], key: str, table: dict[str, T]) -> T:
    value = pairs[key]
    if value not in table:
        raise ValueError(f"{key}={value} is not one of {', '.join(table)}")
    return table[value]


def _flag(pairs: dict[str, str], key: str) -> bool | None:
    if key not in pairs:
        return None
    return bool(_word(pairs, key, {"0": False, "1": True}))


def _integer(pairs: dict[str, str], key: str, low: int, high: int) -> int | None:
    value = pairs.get(key)
    if value is None:
        return None
    if not INT_RE.fullmatch(value) or not low <= int(value) <= high:
        raise ValueError(f"{key}={value} is not an integer {low}..{high}")
    return int(value)


def _floor(value: str | None) -> int | None:
    if value is None:
        return None
    basement = BASEMENT_RE.fullmatch(value)
    if basement:
        return -int(basement.group(1))
    if not INT_RE.fullmatch(value):
        raise ValueError(f"fl={value} is neither an integer nor B1, B2, ...")
    return int(value)


def _card(pairs: dict[str, str]) -> int:
    value = pairs.get("card")
    if value is None or not CARD_RE.fullmatch(value):
        raise ValueError(f"card={value} is not 8 digits")
    return int(value)


def _status(head: Head, pairs: dict[str, str]) -> ev.ElevatorStatus:
    speed = pairs.get("spd")
    if speed is not None and not SPEED_RE.fullmatch(speed):
        raise ValueError(f"spd={speed} is not a decimal speed")
    return ev.ElevatorStatus(
        **head,
        floor=_floor(pairs.get("fl")),
        direction=_word(pairs, "dir", DIRECTIONS) if "dir" in pairs else ev.Direction.STOPPED,
        door=_word(pairs, "door", DOORS) if "door" in pairs else ev.Door.UNKNOWN,
        running=bool(_flag(pairs, "run")),
        door_zone=_flag(pairs, "dz"),
        occupied=_flag(pairs, "occ"),
        speed_mps=None if speed is None else float(speed),
        load_pct=_integer(pairs, "ld", 0, 999),
        power=_flag(pairs, "pwr"),
        safety_circuit=_flag(pairs, "sc"),
        mode=_word(pairs, "mode", MODES) if "mode" in pairs else None,
    )


def _fault(head: Head, pairs: dict[str, str]) -> ev.ElevatorFault:
    code = pairs.get("code")
    if not code:
        raise ValueError("no event code")
    if "st" not in pairs:
        raise ValueError("no st")
    return ev.ElevatorFault(
        **head,
        kind=FAULT_KINDS.get(code, "unknown_fault"),
        vendor_code=code,
        active=bool(_flag(pairs, "st")),
        floor=_floor(pairs.get("fl")),
    )


def _events(type_: str, head: Head, pairs: dict[str, str]) -> list[ev.Event]:
    if type_ == LOGIN:
        interval = _integer(pairs, "iv", 1, 86400)
        return [ev.Login(**head, firmware=pairs.get("fw", ""), report_interval_s=interval)]
    if type_ == HEARTBEAT:
        csq = pairs.get("csq")
        signal = None if csq == CSQ_UNKNOWN else _integer(pairs, "csq", 0, 31)
        return [ev.Heartbeat(**head, signal=signal)]
    if type_ == STATUS:
        return [_status(head, pairs)]
    if type_ == EVENT:
        return [_fault(head, pairs)]
    if type_ == MAINT_START:
        return [ev.MaintenanceStart(**head, card=_card(pairs))]
    if type_ == MAINT_END:
        return [ev.MaintenanceEnd(**head, card=_card(pairs), items=_integer(pairs, "items", 0, 999))]
    # COMMAND_REPLY
    command_seq = _integer(pairs, "cmd", 0, 65535)
    if command_seq is None or "res" not in pairs:
        raise ValueError("cmd and res are required")
    result = _word(pairs, "res", REPLY_RESULTS)
    return [ev.CommandReply(**head, command_seq=command_seq, result=result)]


KNOWN_TYPES = (LOGIN, HEARTBEAT, STATUS, EVENT, MAINT_START, MAINT_END, COMMAND_REPLY)


class LmtProtocol(Protocol):
    name = "lmt"
    title = "LMT-4 v4"
    default_port = 5702
    login_signs_device_time = True
    terminal_id_format = TerminalIdFormat(TERMINAL_RE.pattern, "15 digits (an LMT terminal id)", "15 位数字")
    binds_to = Binding.LIFT
    text_frames = True
    commands = frozenset({ev.CommandCode.REPORT_STATUS, ev.CommandCode.SET_INTERVAL, ev.CommandCode.RESTART})

    def sniff(self, first_bytes: bytes) -> bool | None:
        """A line starting ``#LMT,``."""
        head = b"#" + PROTO.encode() + b","
        if len(first_bytes) < len(head):
            return None if head.startswith(first_bytes) else False
        return first_bytes.startswith(head)

    def new_framer(self) -> LmtFramer:
        return LmtFramer()

    def decode(self, frame: bytes, received_at: datetime) -> ev.Message:
        fields = _framed_body(frame).split(",", 5)
        header = _header(fields)
        terminal, seq = header.get("terminal_id"), header.get("seq")
        if terminal is None or seq is None:
            raise DecodeError("no 15-digit terminal and seq 0..65535", terminal_id=terminal)
        if len(fields) < 5:
            raise DecodeError("fewer than five fields", **header)
        proto, _, _, time_text, type_ = fields[:5]
        if proto != PROTO:
            raise DecodeError(f"protocol {proto!r} is not {PROTO}", **header)
        try:
            device_time = _device_time(time_text)
        except ValueError as exc:
            raise DecodeError(f"bad time {time_text!r}: {exc}", **header) from None
        if type_ not in KNOWN_TYPES:
            raise DecodeError(f"unsupported message type {type_!r}", **header, unsupported=True)
        head = Head(protocol=self.name, terminal_id=terminal, seq=seq, device_time=device_time,
                    received_at=received_at)  # fmt: skip
        try:
            pairs = parse_key_values(fields[5] if len(fields) > 5 else "")
            events = _events(type_, head, pairs)
        except ValueError as exc:
            raise DecodeError(f"bad {type_} payload: {exc}", **header) from None
        return ev.Message(
            protocol=self.name,
            terminal_id=terminal,
            type=type_,
            seq=seq,
            device_time=device_time,
            received_at=received_at,
            events=events,
            dedup_key=None if type_ in NOT_STORED else f"{time_text}:{type_}:{seq}",  # (time first)
            wire=LmtWire(time_text, pairs.get("key") if type_ == LOGIN else None),
        )

    def verify_login(self, message: ev.Message, key: str | None) -> bool:
        """``key`` = the first 32 hex digits (lower case) of HMAC-SHA256(secret, terminal id + time text)."""
        wire: LmtWire = message.wire  # type: ignore[assignment]
        material = (message.terminal_id + wire.time_text).encode("ascii")
        return hmac_login_ok(key, material, wire.key, 32, hex_digest=True)

    def encode_reply(self, message: ev.Message, reply: ev.Reply, seq: int, now: datetime) -> bytes:
        if not isinstance(reply, ev.Ack):
            raise TypeError(f"LMT has no answer of kind {type(reply).__name__}")
        word = ACK_WORDS[reply.result]
        if message.type == LOGIN and reply.result is ev.AckResult.ACCEPTED:
            word += f";t={cst_text(now)}"
        return encode_line(message.terminal_id, message.seq, cst_text(now), ACK, word)

    def header_error(self, frame: bytes, reason: str) -> DecodeError | None:
        try:
            header = _header(_framed_body(frame).split(",", 5))
        except DecodeError:
            return None
        return DecodeError(reason, **header) if "seq" in header else None

    def encode_error(self, error: DecodeError, seq: int, now: datetime) -> bytes | None:
        if error.terminal_id is None or error.seq is None:
            return None
        return encode_line(error.terminal_id, error.seq, cst_text(now), ACK, "ERR")

    def encode_command(self, terminal_id: str, command: ev.TerminalCommand, seq: int, now: datetime) -> bytes:
        if not TERMINAL_RE.fullmatch(terminal_id):
            raise ValueError(f"{terminal_id!r} is not a 15-digit LMT terminal id")
        if command.code is ev.CommandCode.REPORT_STATUS:
            payload = "q=ST"
        elif command.code is ev.CommandCode.SET_INTERVAL:
            if command.argument is None or not 1 <= command.argument <= 86400:
                raise ValueError("report interval must be 1..86400 s")
            payload = f"iv={command.argument}"
        elif command.code is ev.CommandCode.RESTART:
            payload = "reboot=1"
        else:
            raise ValueError(f"LMT has no command {command.code.value}")
        return encode_line(terminal_id, seq, cst_text(now), COMMAND, payload)


@hookimpl
def register_protocols() -> list[Protocol]:
    return [LmtProtocol()]
