"""ACME AL-1 lift monitor, platform protocol v1: a wuhai-iot protocol plugin (the protocol is in README.md).

Everything here is what a vendor writes: the protocol's identity, its fields and words. Framing, the
checksum, ``key=value`` bodies and the HMAC login come from ``wuhai_iot.protocols.blocks``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from wuhai_iot import events as ev
from wuhai_iot.plugins import hookimpl
from wuhai_iot.protocols.base import Binding, DecodeError, Protocol, TerminalIdFormat
from wuhai_iot.protocols.blocks import LineFramer, hmac_login_ok, hmac_auth, parse_key_values, xor_checksum

__all__ = ["AcmeProtocol", "encode_line", "login_auth"]

MAGIC = "AL1"
MAX_LINE = 256
TERMINAL_RE = re.compile(r"AC[0-9]{8}")
SEQ_RE = re.compile(r"[0-9]{1,5}")
TIME_RE = re.compile(r"[0-9]{1,10}")
FLOOR_RE = re.compile(r"-?[0-9]{1,3}")

LOGIN, HEARTBEAT, STATUS, EVENT, ACK = "LOGIN", "HB", "ST", "EV", "ACK"
STORED = (STATUS, EVENT)

EVENT_KINDS = {"TRAP": "trapped", "DOORRUN": "door_open_moving", "POWER": "power_lost", "BUTTON": "alarm_button"}
DOORS = {"O": ev.Door.OPEN, "C": ev.Door.CLOSED}
DIRECTIONS = {"U": ev.Direction.UP, "D": ev.Direction.DOWN, "S": ev.Direction.STOPPED}
FLAGS = {"0": False, "1": True}
RESULTS = {
    ev.AckResult.ACCEPTED: 0,
    ev.AckResult.BAD_CONTENT: 1,
    ev.AckResult.UNSUPPORTED: 1,
    ev.AckResult.UNKNOWN_TERMINAL: 2,
    ev.AckResult.AUTH_FAILED: 3,
    ev.AckResult.NOT_LOGGED_IN: 4,
}


@dataclass(frozen=True, slots=True)
class AcmeWire:
    """What checking a LOGIN needs from its line."""

    time_text: str
    auth: str | None = None


def login_auth(secret: str, terminal_id: str, time_text: str) -> str:
    """The LOGIN ``auth`` value: 16 hex digits of HMAC-SHA256(secret, "<terminal>,<time>") (README §4)."""
    return str(hmac_auth(secret, f"{terminal_id},{time_text}".encode("ascii"), 16, hex_digest=True))


def encode_line(terminal_id: str, seq: int, time_text: str, type_: str, body: str = "") -> bytes:
    """A whole line with its checksum and CRLF (the platform's answers; terminals in tests)."""
    text = f"{MAGIC},{terminal_id},{seq},{time_text},{type_}" + (f",{body}" if body else "")
    raw = text.encode("ascii")
    return raw + f"*{xor_checksum(raw):02X}\r\n".encode("ascii")


def _header(fields: list[str]) -> dict[str, object]:
    """Terminal and seq of a line when they can be read (so that a bad line can still be answered)."""
    if len(fields) < 3 or fields[0] != MAGIC or not TERMINAL_RE.fullmatch(fields[1]):
        return {}
    if not SEQ_RE.fullmatch(fields[2]) or int(fields[2]) > 65535:
        return {"terminal_id": fields[1]}
    return {"terminal_id": fields[1], "seq": int(fields[2])}


def _flag(pairs: dict[str, str], key: str) -> bool:
    if pairs[key] not in FLAGS:
        raise ValueError(f"{key}={pairs[key]} is not 0 or 1")
    return FLAGS[pairs[key]]


def _floor(pairs: dict[str, str]) -> int | None:
    value = pairs.get("fl")
    if value is None:
        return None
    if not FLOOR_RE.fullmatch(value):
        raise ValueError(f"fl={value} is not a floor number")
    return int(value)


class AcmeProtocol(Protocol):
    name = "acme"
    title = "ACME AL-1 v1"
    default_port = 5799
    terminal_id_format = TerminalIdFormat(
        TERMINAL_RE.pattern, "AC and 8 digits (an ACME AL-1 terminal id)", "AC 加 8 位数字"
    )
    binds_to = Binding.LIFT
    text_frames = True
    # commands: none (the AL-1 takes no commands from the platform; the lift page shows no buttons)

    def new_framer(self) -> LineFramer:
        return LineFramer(MAX_LINE)

    def sniff(self, first_bytes: bytes) -> bool | None:
        head = MAGIC.encode() + b","
        if len(first_bytes) < len(head):
            return None if head.startswith(first_bytes) else False
        return first_bytes.startswith(head)

    def decode(self, frame: bytes, received_at: datetime) -> ev.Message:
        text = frame.rstrip(b"\r\n").decode("ascii", "replace")
        body_end = text.rfind("*")
        fields = text[: body_end if body_end >= 0 else len(text)].split(",", 5)
        header = _header(fields)
        if not frame.isascii() or body_end < 0 or not re.fullmatch(r"[0-9A-F]{2}", text[body_end + 1 :]):
            raise DecodeError("line does not end in '*' and two upper-case hex digits", **header)  # type: ignore[arg-type]
        if xor_checksum(frame[:body_end]) != int(text[body_end + 1 :], 16):
            raise DecodeError("checksum does not match", **header)  # type: ignore[arg-type]
        if "seq" not in header or len(fields) < 5:
            raise DecodeError("not AL1,<terminal>,<seq>,<time>,<type>", **header)  # type: ignore[arg-type]
        terminal, seq = str(header["terminal_id"]), int(header["seq"])  # type: ignore[call-overload]
        time_text, type_ = fields[3], fields[4]
        if not TIME_RE.fullmatch(time_text):
            raise DecodeError(f"bad time {time_text!r}", terminal_id=terminal, seq=seq)
        device_time = datetime.fromtimestamp(int(time_text), UTC) if int(time_text) else None
        head = dict(protocol=self.name, terminal_id=terminal, seq=seq, device_time=device_time, received_at=received_at)
        try:
            pairs = parse_key_values(fields[5] if len(fields) > 5 else "")
            event = self._event(type_, head, pairs)
        except ValueError as exc:
            raise DecodeError(f"bad {type_} body: {exc}", terminal_id=terminal, seq=seq) from None
        if event is None:
            raise DecodeError(f"unsupported type {type_!r}", terminal_id=terminal, seq=seq, unsupported=True)
        dedup = None
        if type_ in STORED:  # README §5: a clock that is not set is recognised within the UTC day
            clock = time_text if device_time else f"0@{received_at.date().isoformat()}"
            dedup = f"{clock}:{type_}:{seq}"
        return ev.Message(
            protocol=self.name, terminal_id=terminal, type=type_, seq=seq, device_time=device_time,
            received_at=received_at, events=[event], dedup_key=dedup,
            wire=AcmeWire(time_text, pairs.get("auth") if type_ == LOGIN else None),
        )  # fmt: skip

    @staticmethod
    def _event(type_: str, head: dict[str, object], pairs: dict[str, str]) -> ev.Event | None:
        if type_ == LOGIN:
            interval = pairs.get("iv", "60")
            if not interval.isdigit() or not 1 <= int(interval) <= 3600:
                raise ValueError(f"iv={interval} is not 1..3600")
            return ev.Login(**head, firmware=pairs.get("fw", ""), report_interval_s=int(interval))  # type: ignore[arg-type]
        if type_ == HEARTBEAT:
            return ev.Heartbeat(**head, signal=None)  # type: ignore[arg-type]
        if type_ == STATUS:
            for key in ("fl", "run", "door"):
                if key not in pairs:
                    raise ValueError(f"{key} required")
            if pairs["door"] not in DOORS:
                raise ValueError(f"door={pairs['door']} is not O or C")
            if pairs.get("dir", "S") not in DIRECTIONS:
                raise ValueError(f"dir={pairs['dir']} is not U, D or S")
            return ev.ElevatorStatus(
                **head,  # type: ignore[arg-type]
                floor=_floor(pairs),
                direction=DIRECTIONS[pairs.get("dir", "S")],
                door=DOORS[pairs["door"]],
                running=_flag(pairs, "run"),
                door_zone=_flag(pairs, "dz") if "dz" in pairs else None,
                occupied=_flag(pairs, "occ") if "occ" in pairs else None,
                speed_mps=None,
            )
        if type_ == EVENT:
            if "ev" not in pairs or "on" not in pairs:
                raise ValueError("ev and on required")
            return ev.ElevatorFault(
                **head,  # type: ignore[arg-type]
                kind=EVENT_KINDS.get(pairs["ev"], "unknown_fault"),
                vendor_code=pairs["ev"],
                active=_flag(pairs, "on"),
                floor=_floor(pairs),
            )
        return None

    def verify_login(self, message: ev.Message, key: str | None) -> bool:
        wire: AcmeWire = message.wire  # type: ignore[assignment]
        material = f"{message.terminal_id},{wire.time_text}".encode("ascii")
        return hmac_login_ok(key, material, wire.auth, 16, hex_digest=True)

    def encode_reply(self, message: ev.Message, reply: ev.Reply, seq: int, now: datetime) -> bytes:
        if not isinstance(reply, ev.Ack):
            raise TypeError(f"AL-1 has no answer of kind {type(reply).__name__}")
        return self._ack(message.terminal_id, message.seq, reply.result, now)

    def header_error(self, frame: bytes, reason: str) -> DecodeError | None:
        """Terminal and seq of a line this code failed on, so that it is answered r=1 (README §3)."""
        text = frame.decode("ascii", "replace")
        header = _header(text[: text.rfind("*")].split(",", 5))
        return DecodeError(reason, **header) if "seq" in header else None  # type: ignore[arg-type]

    def encode_error(self, error: DecodeError, seq: int, now: datetime) -> bytes | None:
        if error.terminal_id is None or error.seq is None:
            return None
        return self._ack(error.terminal_id, error.seq, ev.AckResult.BAD_CONTENT, now)

    def _ack(self, terminal_id: str, acked_seq: int, result: ev.AckResult, now: datetime) -> bytes:
        return encode_line(terminal_id, acked_seq, str(int(now.timestamp())), ACK, f"r={RESULTS[result]}")


@hookimpl
def register_protocols() -> list[Protocol]:
    return [AcmeProtocol()]
