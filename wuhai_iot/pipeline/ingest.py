"""The ingest pipeline: decoded messages → login checks → consumers (rules) → storage → answers.

Connections (``pipeline/listener.py``) hand every decoded message here. This module decides what the answer is
and what is stored; it knows events and SQL statements, never a wire format.
"""

from __future__ import annotations

import inspect
import logging
import operator
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol as TypingProtocol

import aiosqlite

from wuhai_iot import events as ev
from wuhai_iot.events import Terminal
from wuhai_iot.protocols.base import Protocol
from wuhai_iot.storage.writer import BatchWriter, Statement, WriteUnit

log = logging.getLogger(__name__)


class EventConsumer(TypingProtocol):
    """Something that turns new events into more stored state (the rule engine, the fill records).

    ``consume`` runs inside the transaction that stores the message, once per new (not resent)
    message, in arrival order; what it returns commits together with the message.
    """

    def consume(self, terminal: Terminal, events: Sequence[ev.Event]) -> list[Statement]: ...


RequestHandler = Callable[[Terminal, ev.Event], ev.Reply | Awaitable[ev.Reply]]
"""Answers a request that is not simply stored (a fill request, a tag query).

A plain function answers in the same turn of the event loop that read the request, ahead of whatever
else that turn holds: the fill decision does. A coroutine function may wait (the answer then follows
in a later turn)."""

StoredCallback = Callable[[Terminal, ev.Message, bool | BaseException], None]
"""Told that a stored message committed: True (new), False (stored before), or the error."""

MESSAGE_INSERT = (
    "INSERT OR IGNORE INTO messages (protocol, terminal_id, dedup_key, type, seq, device_time,"
    " received_at, frame) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
STATE_UPSERT = (
    "INSERT INTO elevator_state (device_code, at, received_at, protocol, terminal_id, floor, direction,"
    " door, running, door_zone, occupied, speed_mps, load_pct, power, safety_circuit, door_lock,"
    " overload, mode, trip_count) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT (device_code) DO UPDATE SET at=excluded.at, received_at=excluded.received_at,"
    " protocol=excluded.protocol, terminal_id=excluded.terminal_id, floor=excluded.floor,"
    " direction=excluded.direction, door=excluded.door, running=excluded.running,"
    " door_zone=excluded.door_zone, occupied=excluded.occupied, speed_mps=excluded.speed_mps,"
    " load_pct=excluded.load_pct, power=excluded.power, safety_circuit=excluded.safety_circuit,"
    " door_lock=excluded.door_lock, overload=excluded.overload, mode=excluded.mode,"
    " trip_count=excluded.trip_count WHERE excluded.at >= elevator_state.at"
)
SESSION_UPSERT = (
    "INSERT INTO terminal_sessions (protocol, terminal_id, online, peer, firmware, report_interval_s,"
    " connected_at, last_frame_at) VALUES (?, ?, 1, ?, ?, ?, ?, ?)"
    " ON CONFLICT (protocol, terminal_id) DO UPDATE SET online=1, peer=excluded.peer,"
    " firmware=excluded.firmware, report_interval_s=excluded.report_interval_s,"
    " connected_at=excluded.connected_at, last_frame_at=excluded.last_frame_at"
)
SESSION_SEEN = "UPDATE terminal_sessions SET last_frame_at = max(coalesce(last_frame_at, 0), ?) WHERE protocol = ? AND terminal_id = ?"
SESSION_CLOSED = (
    "UPDATE terminal_sessions SET online = 0, disconnected_at = ?, last_frame_at = ?"
    " WHERE protocol = ? AND terminal_id = ? AND connected_at = ?"
)
COMMAND_REPLIED = (
    "UPDATE commands SET status = ?, replied_at = ? WHERE id = (SELECT max(id) FROM commands"
    " WHERE protocol = ? AND terminal_id = ? AND seq = ? AND status = 'sent')"
)


_state_values = operator.attrgetter(
    "floor", "direction._value_", "door._value_", "running", "door_zone", "occupied", "speed_mps", "load_pct",
    "power", "safety_circuit", "door_lock", "overload", "mode", "trip_count",
)  # fmt: skip
"""A status's columns of ``elevator_state`` after the first five, in order. (Booleans bind as 0/1 and None
as NULL; enums as ``_value_``: their ``value`` property is slow.)"""


def _state_row(terminal: Terminal, status: ev.ElevatorStatus) -> tuple[object, ...]:
    return (
        terminal.device_code,
        status.time.timestamp(),
        status.received_at.timestamp(),
        terminal.protocol,
        terminal.terminal_id,
    ) + _state_values(status)


class CoreRecords:
    """The core's own consumer: each lift's latest state and the replies to commands."""

    def consume(self, terminal: Terminal, events: Sequence[ev.Event]) -> list[Statement]:
        statements: list[Statement] = []
        newest: ev.ElevatorStatus | None = None  # of a batch's samples, only the newest can be the state
        for event in events:
            if isinstance(event, ev.ElevatorStatus):
                if newest is None or event.time >= newest.time:
                    newest = event
            elif isinstance(event, ev.CommandReply):
                statements.append(
                    (
                        COMMAND_REPLIED,
                        (event.result, event.received_at.timestamp(), terminal.protocol,
                         terminal.terminal_id, event.command_seq),
                    )
                )  # fmt: skip
        if newest is not None and terminal.device_code:
            statements.append((STATE_UPSERT, _state_row(terminal, newest)))
        return statements


FAIL_CLOSED_MESSAGE = "平台暂时无法判定，禁止充装"


def fail_closed(event: ev.Event) -> ev.Reply:
    """The answer when a request cannot be decided: a fill is denied (reason 99), never permitted."""
    if isinstance(event, ev.FillRequest):
        return ev.FillDecision(permit=False, reason=99, message=FAIL_CLOSED_MESSAGE)
    return ev.Ack(ev.AckResult.BAD_CONTENT, datetime.now(UTC))


class Ingest:
    """Shared by every connection of every protocol."""

    def __init__(
        self,
        writer: BatchWriter,
        reader: aiosqlite.Connection,
        protocols: dict[str, Protocol],
    ) -> None:
        self.writer = writer
        self.reader = reader
        self.protocols = protocols
        self.consumers: list[EventConsumer] = [CoreRecords()]
        self.request_handlers: dict[type[ev.Event], RequestHandler] = {}
        self._on_new = self._consume  # (one bound method, not one per stored message)

    async def login(
        self, message: ev.Message, peer: str, connected_at: float
    ) -> tuple[ev.AckResult, Terminal | None]:
        """Check a LOGIN against the registry; on success record the session (committed)."""
        protocol = self.protocols[message.protocol]
        cursor = await self.reader.execute(
            "SELECT device_code, station_code, scale, key FROM terminals WHERE protocol = ? AND terminal_id = ?",
            (message.protocol, message.terminal_id),
        )
        row = await cursor.fetchone()
        if row is None:
            return ev.AckResult.UNKNOWN_TERMINAL, None
        if not protocol.verify_login(message, row["key"]):
            return ev.AckResult.AUTH_FAILED, None
        login = message.events[0]
        assert isinstance(login, ev.Login)
        terminal = Terminal(
            protocol=message.protocol,
            terminal_id=message.terminal_id,
            device_code=row["device_code"],
            station_code=row["station_code"],
            scale=row["scale"],
            report_interval_s=login.report_interval_s,
        )
        await self.writer.write(
            [
                (
                    SESSION_UPSERT,
                    (terminal.protocol, terminal.terminal_id, peer, login.firmware,
                     login.report_interval_s, connected_at, message.received_at.timestamp()),
                )
            ]
        )  # fmt: skip
        return ev.AckResult.ACCEPTED, terminal

    def store(self, terminal: Terminal, message: ev.Message, frame: bytes, on_commit: StoredCallback) -> None:
        """Store a message (its frame as received) once; ``on_commit(terminal, message, outcome)`` is
        called once committed, the outcome being True (new) or False (stored before), or the error that
        kept it from committing."""
        if message.dedup_key is None:
            raise ValueError(f"{message.type} messages are not stored")
        device_time = int(message.device_time.timestamp()) if message.device_time else None
        dedup = (
            MESSAGE_INSERT,
            (terminal.protocol, terminal.terminal_id, message.dedup_key, message.type, message.seq,
             device_time, message.received_at.timestamp(), frame),
        )  # fmt: skip
        self.writer.enqueue(WriteUnit(dedup=dedup, on_new=self._on_new, on_commit=on_commit, args=(terminal, message)))

    def _consume(self, terminal: Terminal, message: ev.Message) -> list[Statement]:
        """What a new message's events add to its transaction (the consumers' statements)."""
        statements: list[Statement] = []
        for consumer in self.consumers:
            statements += consumer.consume(terminal, message.events)
        return statements

    def answer(self, terminal: Terminal, event: ev.Event) -> ev.Reply | Awaitable[ev.Reply]:
        """Answer a request (fill request, tag query) through its registered handler: the reply, or
        an awaitable of it when the handler is a coroutine function. A failing handler answers fail-closed."""
        handler = self.request_handlers.get(type(event))
        if handler is None:
            log.error("no handler for %s from %s; answering fail-closed", type(event).__name__, terminal)
            return fail_closed(event)
        try:
            reply = handler(terminal, event)
        except Exception:
            log.exception("handling %s from %s failed; answering fail-closed", type(event).__name__, terminal)
            return fail_closed(event)
        if inspect.isawaitable(reply):
            return self._awaited(reply, terminal, event)
        return reply

    async def _awaited(self, reply: Awaitable[ev.Reply], terminal: Terminal, event: ev.Event) -> ev.Reply:
        try:
            return await reply
        except Exception:
            log.exception("handling %s from %s failed; answering fail-closed", type(event).__name__, terminal)
            return fail_closed(event)

    def session_seen(self, terminal: Terminal, at: float) -> Statement:
        return SESSION_SEEN, (at, terminal.protocol, terminal.terminal_id)

    def session_closed(self, terminal: Terminal, connected_at: float, last_frame_at: float) -> Statement:
        now = datetime.now(UTC).timestamp()
        return SESSION_CLOSED, (now, last_frame_at, terminal.protocol, terminal.terminal_id, connected_at)
