"""The shape every wire protocol has: a framer, a decoder and an encoder.

A protocol knows bytes and normalised events, nothing else: no SQL, no HTML, no rules. The ingest
pipeline drives it; ``wuhai-iot decode`` drives it too, which is how vendors check their frames.
"""

from __future__ import annotations

import abc
import enum
import re
import struct
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import construct as c

from wuhai_iot.events import CommandCode, Message, Reply, TerminalCommand


class DecodeError(Exception):
    """A frame that cannot be understood, with whatever of its header could still be read.

    ``terminal_id``/``seq``/``wire`` are set when the protocol can still answer the frame
    (e.g. an ELink ACK with result 1, an LMT ``ERR``).
    """

    def __init__(
        self,
        reason: str,
        *,
        terminal_id: str | None = None,
        seq: int | None = None,
        wire: object = None,
        unsupported: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.terminal_id = terminal_id
        self.seq = seq
        self.wire = wire
        self.unsupported = unsupported
        """True when the frame is well formed but of a type this platform does not know."""


@dataclass(frozen=True, slots=True)
class Discarded:
    """Bytes the framer threw away while resynchronising, and why. (No bytes: state it gave up that holds
    none of the stream's bytes, such as a split message whose packets were handed on but never completed.)"""

    data: bytes
    reason: str


class Reassembled(bytes):
    """The frame that completes a message sent in several frames (JT/T 808 split packets).

    As bytes it is that last frame as received, so that every byte of the stream is handed on once; the
    earlier frames were handed on (and answered) as they came. ``message`` is every frame of the message
    back to back, in order: what is decoded and stored."""

    message: bytes

    def __new__(cls, frame: bytes, message: bytes) -> Reassembled:
        if not message.endswith(frame):
            raise ValueError("a reassembled message ends with the frame that completes it")
        self = super().__new__(cls, frame)
        self.message = message
        return self


def whole_message(frame: bytes) -> bytes:
    """What to decode and store for a frame the framer handed on: the frame, or the whole message it
    completes (``Reassembled``)."""
    return frame.message if isinstance(frame, Reassembled) else frame


class FixedLayout:
    """A construct ``Struct`` of fixed-size fields, read and written with ``struct``.

    The construct definition stays the one description of a frame; this derives the equivalent
    ``struct`` format for a protocol's hot messages (a lift's status, its ACK), thousands a second:
    a compiled construct parse or build costs about 9 µs here, ``struct`` under 0.5 µs. Integers,
    fixed ``Bytes`` and ``Const`` only; a ``Const`` is checked on ``unpack`` as construct would, and
    filled in by ``pack``, which takes the other fields in order.
    """

    def __init__(self, definition: c.Struct) -> None:
        codes: list[str] = []
        byte_orders: set[str] = set()
        self.names: tuple[str, ...] = tuple(field.name for field in definition.subcons)
        self._consts: list[tuple[int, bytes | int]] = []
        for index, field in enumerate(definition.subcons):
            sub = field.subcon if isinstance(field, c.Renamed) else field
            if isinstance(sub, c.Const):
                self._consts.append((index, sub.value))
                sub = sub.subcon
            if isinstance(sub, c.FormatField) and sub.fmtstr[0] in "<>":
                byte_orders.add(sub.fmtstr[0])
                codes.append(sub.fmtstr[1:])
            elif isinstance(sub, c.Bytes) and isinstance(sub.length, int):
                codes.append(f"{sub.length}s")
            else:
                raise TypeError(f"{field.name}: {type(sub).__name__} has no fixed struct equivalent")
        if len(byte_orders) > 1:
            raise TypeError("fields of both byte orders")
        self._struct = struct.Struct((byte_orders.pop() if byte_orders else ">") + "".join(codes))
        self.size = self._struct.size
        if self.size != definition.sizeof():
            raise TypeError(f"struct size {self.size} differs from construct's {definition.sizeof()}")

    def unpack(self, data: bytes, offset: int = 0) -> tuple[Any, ...]:
        """Every field (constants included) of the layout at ``offset``; ``data`` may be longer."""
        values = self._struct.unpack_from(data, offset)
        for index, value in self._consts:
            if values[index] != value:
                raise ValueError(f"{self.names[index]} is {values[index]!r}, expected {value!r}")
        return values

    def pack(self, *values: Any) -> bytes:
        """The bytes of the fields that are not constants, given in order."""
        if self._consts:
            all_values = list(values)
            for index, value in self._consts:
                all_values.insert(index, value)
            return self._struct.pack(*all_values)
        return self._struct.pack(*values)


class Framer(abc.ABC):
    """Cuts a TCP byte stream into whole frames. One instance per connection.

    Every byte that comes in is handed on once: in a frame, in a ``Discarded``, or kept for the next
    ``feed`` (``buffered``); the contract kit checks that they add up."""

    max_buffered: int
    """The most bytes the framer ever keeps between two ``feed`` calls, whatever arrives (checked by
    ``wuhai_iot.testing``): a connection's memory is bounded by it."""

    def buffered(self) -> int:
        """How many bytes the framer keeps now (of a frame not yet complete): what the contract kit checks
        against ``max_buffered``. The building blocks implement it; a framer of your own must too."""
        raise NotImplementedError(f"{type(self).__name__} does not say how many bytes it keeps")

    @abc.abstractmethod
    def feed(self, data: bytes) -> list[bytes | Discarded]:
        """Take the next bytes of the stream; return the frames (and discarded garbage) now complete."""


class MarkerFramer(Framer):
    """A framer for frames that begin with a marker and carry their own length and check (CRC).

    Subclasses say what is at a marker (``frame_at``); this class does the resynchronisation the
    vendor documents ask for: after garbage or a bad frame, drop one byte and look for the next
    marker. Only the bytes of one unfinished frame are ever kept.
    """

    marker: bytes
    overtake_incomplete = False
    """When a candidate frame is still incomplete, let a whole valid frame that starts inside it win
    (for protocols without escaping, where a marker byte inside damaged data looks like a long frame)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def buffered(self) -> int:
        return len(self._buffer)

    @abc.abstractmethod
    def frame_at(self, buf: bytes | bytearray, start: int, end: int) -> tuple[int, str]:
        """At the marker at ``start``: (size, "") for a whole valid frame, (0, "") when more bytes are
        needed to tell, (0, why) when there is no frame there."""

    def feed(self, data: bytes) -> list[bytes | Discarded]:
        buf = self._buffer
        if not buf and data.startswith(self.marker) and self.frame_at(data, 0, len(data))[0] == len(data):
            return [data]  # the usual read: one whole frame, nothing kept from before (no copies)
        buf += data
        out: list[bytes | Discarded] = []
        pos, end = 0, len(buf)
        garbage_from, garbage_reason = -1, ""
        while True:
            start = buf.find(self.marker, pos)
            if start < 0:
                # Keep a trailing byte that may begin the next (two-byte) marker.
                keep = end - 1 if len(self.marker) > 1 and end > pos and buf[end - 1] == self.marker[0] else end
                if keep > pos and garbage_from < 0:
                    garbage_from, garbage_reason = pos, "no frame start"
                pos = max(pos, keep)
                break
            if start > pos and garbage_from < 0:
                garbage_from, garbage_reason = pos, "no frame start"
            size, problem = self.frame_at(buf, start, end)
            if not size and not problem and self.overtake_incomplete:
                later = self._whole_frame_after(buf, start, end)
                if later >= 0:
                    problem, pos = "incomplete frame overtaken by a whole one", later
                    if garbage_from < 0:
                        garbage_from, garbage_reason = start, problem
                    continue
            if problem:
                if garbage_from < 0:
                    garbage_from, garbage_reason = start, problem
                pos = start + 1
                continue
            if not size:
                pos = start
                break
            if garbage_from >= 0:
                out.append(Discarded(bytes(buf[garbage_from:start]), garbage_reason))
                garbage_from = -1
            out.append(bytes(buf[start : start + size]))
            pos = start + size
        if garbage_from >= 0:
            out.append(Discarded(bytes(buf[garbage_from:pos]), garbage_reason))
        del buf[:pos]
        return out

    def _whole_frame_after(self, buf: bytearray, start: int, end: int) -> int:
        """The first marker after ``start`` that begins a whole valid frame, or -1."""
        candidate = buf.find(self.marker, start + 1)
        while candidate >= 0:
            if self.frame_at(buf, candidate, end)[0]:
                return candidate
            candidate = buf.find(self.marker, candidate + 1)
        return -1


class Binding(enum.StrEnum):
    """What a protocol's terminals are installed on; the census binds each registered terminal to one."""

    LIFT = "lift"
    """A registered elevator, named by ``device_code`` in terminals.csv."""
    STATION_SCALE = "station_scale"
    """One scale of a registered filling station; the protocol reads station and scale from the terminal id
    (``Protocol.station_scale``)."""
    VEHICLE = "vehicle"
    """A registered vehicle, named by ``plate`` in terminals.csv."""


@dataclass(frozen=True, slots=True)
class TerminalIdFormat:
    """What a protocol's terminal ids look like: a regular expression and the words for error messages."""

    pattern: str
    """Matched against the whole id (``re.fullmatch``)."""
    description: str
    """Completes "'abc' is not ...", e.g. ``16 digits``."""
    chinese: str = ""
    """The same for the census upload page, read by district staff (``16 位数字``); the description when empty."""

    def check(self, terminal_id: str) -> str:
        """The id itself when it has this format; ValueError naming the format otherwise."""
        if not (terminal_id.isascii() and re.fullmatch(self.pattern, terminal_id)):
            raise ValueError(f"{terminal_id!r} is not {self.description}")
        return terminal_id


class Protocol(abc.ABC):
    """One wire protocol. Instances are shared by all connections: per-connection state lives in the framer.

    Besides the framer, decoder and encoders, a protocol owns its identity: what its terminal ids look like,
    what its terminals are installed on, whether its frames are text, which commands it carries and how a
    connection's first bytes can be recognised. The census, ``wuhai-iot decode``, the pages and the ``auto``
    listener ask the protocol; none of them keeps a table of protocol names.
    """

    name: str
    """Short name used in configuration, terminals.csv and the CLI (``elink``)."""
    title: str
    """Human name with the vendor document's version."""
    default_port: int
    terminal_id_format: TerminalIdFormat
    """The form of a terminal id, checked when terminals.csv is imported."""
    binds_to: Binding = Binding.LIFT
    text_frames: bool = False
    """True when a frame is a line of text: ``wuhai-iot decode`` and capture files then take it as text."""
    commands: frozenset[CommandCode] = frozenset()
    """The platform commands ``encode_command`` can express (the lift page offers only these)."""
    login_without_key: bool = True
    """Whether a terminal without a secret (its census ``key`` empty) logs in without authentication. False:
    it must get one first (a JT/T 808 terminal REGISTERs and is issued its code)."""
    login_signs_device_time: bool = False
    """True when a LOGIN's authentication covers its device time: a terminal with a key then logs in
    only with a device time later than that of its last accepted login (replay protection, SECURITY.md)."""

    def canonical_terminal_id(self, terminal_id: str) -> str:
        """The id as the terminal sends it after decoding; ValueError (with the format's words) when invalid."""
        return self.terminal_id_format.check(terminal_id)

    def station_scale(self, terminal_id: str) -> tuple[int, int]:
        """Station code and scale number of a canonical terminal id (``Binding.STATION_SCALE`` protocols)."""
        raise NotImplementedError(f"{self.name} terminals are not bound to station scales")

    def sniff(self, first_bytes: bytes) -> bool | None:
        """Whether a connection that began with ``first_bytes`` speaks this protocol: True, False, or None
        while more bytes are needed to tell. Used by the ``auto`` listener; the default never claims one."""
        return False

    @abc.abstractmethod
    def new_framer(self) -> Framer:
        """A framer for one new connection."""

    @abc.abstractmethod
    def decode(self, frame: bytes, received_at: datetime) -> Message:
        """Decode one whole frame (as cut by the framer); raise DecodeError when it is invalid."""

    @abc.abstractmethod
    def verify_login(self, message: Message, key: str | None) -> bool:
        """Check a LOGIN message's authentication against the terminal's secret (None or "": no secret,
        True unless ``login_without_key`` is False). ``key`` is the census ``key`` cell as text; ``wuhai_iot.protocols.blocks.hmac_login_ok``
        does the usual HMAC-SHA256 check."""

    @abc.abstractmethod
    def encode_reply(self, message: Message, reply: Reply, seq: int, now: datetime) -> bytes:
        """Encode the platform's answer to ``message``; ``seq`` is the platform's own sequence."""

    @abc.abstractmethod
    def encode_error(self, error: DecodeError, seq: int, now: datetime) -> bytes | None:
        """The answer to an undecodable frame, or None when the protocol says to stay silent."""

    def header_error(self, frame: bytes, reason: str) -> DecodeError | None:
        """The frame's header as a ``DecodeError(reason, terminal_id=..., seq=..., wire=...)``, for a frame
        on which ``decode`` failed unexpectedly (it raised something other than DecodeError: a bug).

        ``encode_error`` then answers it as bad content, so that the terminal does not resend a frame this
        platform cannot take. Read only what ``encode_error`` needs; None when that cannot be read. The
        default, None, leaves such a frame unanswered."""
        return None

    def encode_command(self, terminal_id: str, command: TerminalCommand, seq: int, now: datetime) -> bytes:
        """Encode a command to a terminal; ``seq`` identifies it in the terminal's reply. Only codes listed
        in ``commands`` are asked for; the default has none."""
        raise ValueError(f"{self.title} takes no platform commands ({command.code.value} for {terminal_id})")

    def describe(self, frame: bytes) -> list[str]:
        """Lines explaining a frame's header fields for ``wuhai-iot decode`` (the events follow them)."""
        return []

    def sequence_modulus(self) -> int:
        """The platform's own sequence numbers wrap at this value."""
        return 65536
