"""A vendor's protocol plugin as an outside package ships it (see docs/plugins.md).

ACME lift boxes send one text line per message: ``ACME <terminal> <seq> <unix time> <TYPE> [fields]``.
``LOGIN <firmware>`` first, then ``FLOOR <n> <RUN|STOP>``. The platform answers ``OK <seq>`` or
``NO <seq> <result>``. This module is what a vendor writes; nothing in wuhai-iot changes.
"""

from __future__ import annotations

from datetime import UTC, datetime

from wuhai_iot import events as ev
from wuhai_iot.plugins import hookimpl
from wuhai_iot.protocols.base import DecodeError, Discarded, Framer, Protocol, TerminalIdFormat


class LineFramer(Framer):
    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[bytes | Discarded]:
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        if len(self._buffer) > 200:
            lines.append(self._buffer)
            self._buffer = b""
        return [line.rstrip(b"\r") for line in lines if line.strip()]


class AcmeProtocol(Protocol):
    name = "acme"
    title = "ACME lift box (example vendor plugin)"
    default_port = 5799
    terminal_id_format = TerminalIdFormat("T-[0-9]{1,8}", "T- and up to 8 digits (an ACME terminal id)")

    def new_framer(self) -> Framer:
        return LineFramer()

    def decode(self, frame: bytes, received_at: datetime) -> ev.Message:
        parts = frame.decode("ascii", "replace").split()
        if len(parts) < 5 or parts[0] != "ACME" or not parts[2].isdigit() or not parts[3].isdigit():
            raise DecodeError("not an ACME line")
        terminal, seq, kind = parts[1], int(parts[2]), parts[4]
        head = dict(protocol=self.name, terminal_id=terminal, seq=seq,
                    device_time=datetime.fromtimestamp(int(parts[3]), UTC), received_at=received_at)
        if kind == "LOGIN" and len(parts) == 6:
            events: list[ev.Event] = [ev.Login(**head, firmware=parts[5])]
        elif kind == "FLOOR" and len(parts) == 7:
            running = parts[6] == "RUN"
            events = [ev.ElevatorStatus(**head, floor=int(parts[5]), running=running,
                                        direction=ev.Direction.UP if running else ev.Direction.STOPPED,
                                        door=ev.Door.CLOSED, door_zone=None, occupied=None, speed_mps=None)]
        else:
            raise DecodeError(f"bad {kind} line", terminal_id=terminal, seq=seq)
        dedup = None if kind == "LOGIN" else f"{parts[3]}:{kind}:{seq}"
        return ev.Message(protocol=self.name, terminal_id=terminal, type=kind, seq=seq,
                          device_time=head["device_time"], received_at=received_at, events=events,
                          dedup_key=dedup)

    def verify_login(self, message: ev.Message, key: str | None) -> bool:
        return not key

    def encode_reply(self, message: ev.Message, reply: ev.Reply, seq: int, now: datetime) -> bytes:
        assert isinstance(reply, ev.Ack)
        if reply.result is ev.AckResult.ACCEPTED:
            return f"OK {message.seq}\r\n".encode()
        return f"NO {message.seq} {int(reply.result)}\r\n".encode()

    def encode_error(self, error: DecodeError, seq: int, now: datetime) -> bytes | None:
        return None if error.seq is None else f"NO {error.seq} 1\r\n".encode()

    def encode_command(self, terminal_id: str, command: ev.TerminalCommand, seq: int, now: datetime) -> bytes:
        raise ValueError("ACME boxes take no commands")


@hookimpl
def register_protocols() -> list[Protocol]:
    return [AcmeProtocol()]
