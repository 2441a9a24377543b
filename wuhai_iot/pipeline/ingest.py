"""The ingest pipeline: decoded messages → login checks → consumers (rules) → storage → answers.

Connections (``pipeline/listener.py``) hand every decoded message here. This module decides what the answer is
and what is stored; it knows events and SQL statements, never a wire format.
"""

from __future__ import annotations

import inspect
import logging
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


FailureAnswer = Callable[[ev.Event], ev.Reply]
"""The answer to a request whose handler failed (it must not fail itself)."""

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
COMMAND_SENT = (
    "INSERT INTO commands (protocol, terminal_id, seq, code, argument, requested_by, sent_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
COMMAND_REPLIED = (
    "UPDATE commands SET status = ?, replied_at = ? WHERE id = (SELECT max(id) FROM commands"
    " WHERE protocol = ? AND terminal_id = ? AND seq = ? AND status = 'sent')"
)


class CommandReplies:
    """The core's own consumer: a terminal's reply closes the command it answers (see ``command_sent``)."""

    def consume(self, terminal: Terminal, events: Sequence[ev.Event]) -> list[Statement]:
        return [
            (
                COMMAND_REPLIED,
                (event.result, event.received_at.timestamp(), terminal.protocol,
                 terminal.terminal_id, event.command_seq),
            )
            for event in events
            if isinstance(event, ev.CommandReply)
        ]  # fmt: skip


def cannot_answer(event: ev.Event) -> ev.Reply:
    """The core's answer to a request nobody can decide: the message is refused (BAD_CONTENT).

    A domain that needs a stricter answer (a fill is denied) registers it with ``answer_requests``."""
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
        self.consumers: list[EventConsumer] = [CommandReplies()]
        self.request_handlers: dict[type[ev.Event], RequestHandler] = {}
        self.failure_answers: dict[type[ev.Event], FailureAnswer] = {}
        """What a request type is answered when its handler fails (default ``cannot_answer``)."""
        self._on_new = self._consume  # (one bound method, not one per stored message)

    def answer_requests(
        self, event_type: type[ev.Event], handler: RequestHandler, failure: FailureAnswer = cannot_answer
    ) -> None:
        """Answer requests of ``event_type`` with ``handler``; when it raises, answer ``failure(request)``."""
        self.request_handlers[event_type] = handler
        self.failure_answers[event_type] = failure

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
        an awaitable of it when the handler is a coroutine function. A failing handler answers its
        registered failure answer."""
        handler = self.request_handlers.get(type(event))
        if handler is None:
            log.error("no handler for %s from %s; refusing it", type(event).__name__, terminal)
            return cannot_answer(event)
        try:
            reply = handler(terminal, event)
        except Exception:
            log.exception("handling %s from %s failed; answering fail-closed", type(event).__name__, terminal)
            return self.failure_answers.get(type(event), cannot_answer)(event)
        if inspect.isawaitable(reply):
            return self._awaited(reply, terminal, event)
        return reply

    async def _awaited(self, reply: Awaitable[ev.Reply], terminal: Terminal, event: ev.Event) -> ev.Reply:
        try:
            return await reply
        except Exception:
            log.exception("handling %s from %s failed; answering fail-closed", type(event).__name__, terminal)
            return self.failure_answers.get(type(event), cannot_answer)(event)

    def session_seen(self, terminal: Terminal, at: float) -> Statement:
        return SESSION_SEEN, (at, terminal.protocol, terminal.terminal_id)

    def command_sent(
        self, terminal: Terminal, seq: int, command: ev.TerminalCommand, requested_by: str | None, at: float
    ) -> Statement:
        """The record of a command sent to a terminal; its reply closes it (``CommandReplies``)."""
        return COMMAND_SENT, (terminal.protocol, terminal.terminal_id, seq, command.code.value, command.argument,
                              requested_by, at)  # fmt: skip

    def session_closed(self, terminal: Terminal, connected_at: float, last_frame_at: float) -> Statement:
        now = datetime.now(UTC).timestamp()
        return SESSION_CLOSED, (now, last_frame_at, terminal.protocol, terminal.terminal_id, connected_at)
