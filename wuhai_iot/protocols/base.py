"""The shape every wire protocol has: a framer, a decoder and an encoder.

A protocol knows bytes and normalised events, nothing else: no SQL, no HTML, no rules. The ingest
pipeline drives it; ``wuhai-iot decode`` drives it too, which is how vendors check their frames.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from datetime import datetime

from wuhai_iot.events import Command, Message, Reply


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
    """Bytes the framer threw away while resynchronising, and why."""

    data: bytes
    reason: str


class Framer(abc.ABC):
    """Cuts a TCP byte stream into whole frames. One instance per connection."""

    @abc.abstractmethod
    def feed(self, data: bytes) -> list[bytes | Discarded]:
        """Take the next bytes of the stream; return the frames (and discarded garbage) now complete."""


class Protocol(abc.ABC):
    """One wire protocol. Instances are stateless and shared by all connections."""

    name: str
    """Short name used in configuration, terminals.csv and the CLI (``elink``)."""
    title: str
    """Human name with the vendor document's version."""
    default_port: int

    @abc.abstractmethod
    def new_framer(self) -> Framer:
        """A framer for one new connection."""

    @abc.abstractmethod
    def decode(self, frame: bytes, received_at: datetime) -> Message:
        """Decode one whole frame (as cut by the framer); raise DecodeError when it is invalid."""

    @abc.abstractmethod
    def verify_login(self, message: Message, key: str | None) -> bool:
        """Check a LOGIN message's authentication against the terminal's secret (None: no secret)."""

    @abc.abstractmethod
    def encode_reply(self, message: Message, reply: Reply, seq: int, now: datetime) -> bytes:
        """Encode the platform's answer to ``message``; ``seq`` is the platform's own sequence."""

    @abc.abstractmethod
    def encode_error(self, error: DecodeError, seq: int, now: datetime) -> bytes | None:
        """The answer to an undecodable frame, or None when the protocol says to stay silent."""

    @abc.abstractmethod
    def encode_command(self, terminal_id: str, command: Command, seq: int, now: datetime) -> bytes:
        """Encode a command to a terminal; ``seq`` identifies it in the terminal's reply."""

    def sequence_modulus(self) -> int:
        """The platform's own sequence numbers wrap at this value."""
        return 65536
