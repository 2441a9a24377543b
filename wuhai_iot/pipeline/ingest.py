"""The ingest pipeline: decoded messages → login checks → consumers (rules) → storage → answers.

Connections (``pipeline/listener.py``) hand every decoded message here. This module decides what the answer is
and what is stored; it knows events and SQL statements, never a wire format.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import math
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Protocol as TypingProtocol

import aiosqlite

from wuhai_iot import events as ev
from wuhai_iot.clock import cst_midnight
from wuhai_iot.events import Terminal
from wuhai_iot.protocols.base import Protocol
from wuhai_iot.storage.writer import BatchWriter, Statement, WriteUnit

log = logging.getLogger(__name__)


class EventConsumer(TypingProtocol):
    """Something that turns new events into more stored state (the rule engine, the fill records).

    ``consume`` runs inside the transaction that stores the message, once per new (not resent)
    message, in arrival order; what it returns commits together with the message. A consumer with an
    ``events`` attribute (a tuple of event classes, as a rule has) is given only the messages that hold
    an event of one of them: most consumers take a rare kind, and every status would call each of them.
    """

    def consume(self, terminal: Terminal, events: Sequence[ev.Event]) -> list[Statement]: ...


class ClockWatcher(TypingProtocol):
    """Something that runs on the terminals' clocks (the rule engines): told the device time of the frames
    that are not stored (heartbeats) — docs/time.md. (Stored records tell it through ``consume``.)"""

    def heard(self, terminal: Terminal, device_time: datetime, received_at: datetime) -> bool:
        """Note the terminal's clock; True when something waits on it (then ``catch_up`` runs)."""
        ...

    def catch_up(self, terminal: Terminal, received_at: datetime) -> list[Statement]:
        """What the clock just heard changes (statements committed through the writer)."""
        ...


CLOCK_AHEAD_MAX = timedelta(minutes=10)
"""A device time further ahead of the platform clock than this is a wrong clock (domain.md, Time)."""

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
    " connected_at, last_frame_at, login_device_time) VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (protocol, terminal_id) DO UPDATE SET online=1, peer=excluded.peer,"
    " firmware=excluded.firmware, report_interval_s=excluded.report_interval_s,"
    " connected_at=excluded.connected_at, last_frame_at=excluded.last_frame_at,"
    " login_device_time=excluded.login_device_time"
)
TERMINAL_FOR_LOGIN = (
    "SELECT device_code, station_code, scale, plate, coalesce(key, issued_key) AS key, installed_on"
    " FROM terminals WHERE protocol = ? AND terminal_id = ?"
)
STORED_LOGIN_TIME = "SELECT login_device_time FROM terminal_sessions WHERE protocol = ? AND terminal_id = ?"
LOGIN_AHEAD_LIMIT_S = 600
"""A LOGIN whose device time is further ahead of the platform's clock is refused: accepted, it would
leave every later LOGIN of the terminal "not later" (an ELink terminal sets its clock from the refusal)."""
SESSION_SEEN = "UPDATE terminal_sessions SET last_frame_at = max(coalesce(last_frame_at, 0), ?) WHERE protocol = ? AND terminal_id = ?"
SESSION_CLOSED = (
    "UPDATE terminal_sessions SET online = 0, disconnected_at = ?, last_frame_at = ?"
    " WHERE protocol = ? AND terminal_id = ? AND connected_at = ?"
)
COMMAND_SENT = (
    "INSERT INTO commands (protocol, terminal_id, seq, code, argument, requested_by, sent_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
CLOCK_WRONG = (
    "UPDATE terminal_sessions SET clock_wrong_at = ?, clock_wrong_device_time = ? WHERE protocol = ? AND terminal_id = ?"
)
COMMAND_REPLIED = (
    "UPDATE commands SET status = ?, replied_at = ? WHERE id = (SELECT max(id) FROM commands"
    " WHERE protocol = ? AND terminal_id = ? AND seq = ? AND status = 'sent')"
)


class CommandReplies:
    """The core's own consumer: a terminal's reply closes the command it answers (see ``command_sent``)."""

    events = (ev.CommandReply,)

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


def _installed_from(installed_on: str | None) -> datetime | None:
    try:
        return cst_midnight(date.fromisoformat(installed_on)) if installed_on else None
    except ValueError:
        return None


def cannot_answer(event: ev.Event) -> ev.Reply:
    """The core's answer to a request nobody can decide: the message is refused (BAD_CONTENT).

    A domain that needs a stricter answer (a fill is denied) registers it with ``answer_requests``."""
    return ev.Ack(ev.AckResult.BAD_CONTENT, datetime.now(UTC))


def _utc(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if seconds else "0 (clock unset)"


class Ingest:
    """Shared by every connection of every protocol."""

    def __init__(
        self,
        writer: BatchWriter,
        reader: aiosqlite.Connection,
        lookup: sqlite3.Connection,
        protocols: dict[str, Protocol],
    ) -> None:
        self.writer = writer
        self.reader = reader
        self.lookup = lookup
        """Point reads on the loop's thread: a login's terminal (``storage.db.connect_point_reader``)."""
        self.protocols = protocols
        self.consumers: list[EventConsumer] = [CommandReplies()]
        self._consumers_by_kinds: dict[object, list[EventConsumer]] = {}
        """The consumers a message is given, by the classes of its events (rebuilt when ``consumers`` grows)."""
        self._consumers_known = 1
        self.clock_watchers: list[ClockWatcher] = []
        self.clock_wrong: dict[tuple[str, str], tuple[float, float]] = {}
        """Terminals whose newest dated frame showed an impossible device time: (protocol, id) → (received
        at, the device time it showed), in Unix seconds. Cleared by the terminal's next sane frame."""
        self.request_handlers: dict[type[ev.Event], RequestHandler] = {}
        self.failure_answers: dict[type[ev.Event], FailureAnswer] = {}
        """What a request type is answered when its handler fails (default ``cannot_answer``)."""
        self._login_times: dict[tuple[str, str], tuple[int, float]] = {}
        """(protocol, terminal id) → (device time of its last accepted login, when that login committed:
        ``inf`` while it is being recorded, ``-inf`` for those loaded at start). Bounded by the registry."""
        self.logins_replayed = 0
        """Logins refused because their device time was not later than the last accepted one."""
        self._on_new = self._consume  # (one bound method, not one per stored message)

    async def load(self) -> None:
        """The terminals flagged "clock wrong" (kept across restarts until a sane frame), and the device
        time of each terminal's last accepted login."""
        for row in await self.reader.execute_fetchall(
            "SELECT protocol, terminal_id, clock_wrong_at, clock_wrong_device_time FROM terminal_sessions"
            " WHERE clock_wrong_at IS NOT NULL"
        ):
            self.clock_wrong[(row[0], row[1])] = (row[2], row[3])
        for row in await self.reader.execute_fetchall(
            "SELECT protocol, terminal_id, login_device_time FROM terminal_sessions WHERE login_device_time IS NOT NULL"
        ):
            self._login_times[(row[0], row[1])] = (row[2], -math.inf)

    def answer_requests(
        self, event_type: type[ev.Event], handler: RequestHandler, failure: FailureAnswer = cannot_answer
    ) -> None:
        """Answer requests of ``event_type`` with ``handler``; when it raises, answer ``failure(request)``."""
        self.request_handlers[event_type] = handler
        self.failure_answers[event_type] = failure

    async def login(
        self, message: ev.Message, peer: str, connected_at: float
    ) -> tuple[ev.AckResult, Terminal | None]:
        """Check a LOGIN against the registry; on success record the session (committed).

        A terminal with a key must log in with a device time later than that of the last login
        accepted for it: the HMAC covers the terminal id and that time, so a captured LOGIN would
        otherwise log anyone in for ever. A refused one is answered as a failed authentication (the
        ELink answer carries the platform's time, from which a terminal whose clock was unset or reset
        sets its clock before it tries again); see SECURITY.md for the rest."""
        protocol = self.protocols[message.protocol]
        row = self.lookup.execute(TERMINAL_FOR_LOGIN, (message.protocol, message.terminal_id)).fetchone()
        if row is None:
            return ev.AckResult.UNKNOWN_TERMINAL, None
        if not protocol.verify_login(message, row["key"]):
            return ev.AckResult.AUTH_FAILED, None
        login = message.events[0]
        assert isinstance(login, ev.Login)
        device_time = int(login.device_time.timestamp()) if login.device_time else 0
        key = (message.protocol, message.terminal_id)
        guarded = bool(row["key"]) and protocol.login_signs_device_time
        if guarded:
            why = self._replayed(key, device_time, message.received_at.timestamp())
            if why:
                log.warning("%s %s from %s: login refused, %s: a replayed login, or the terminal's clock is unset"
                            " or wrong (wuhai-iot terminals allow-login lets its next login in)", message.protocol,
                            message.terminal_id, peer, why)  # fmt: skip
                self.logins_replayed += 1
                return ev.AckResult.AUTH_FAILED, None
            previous = self._login_times.get(key)
            self._login_times[key] = (device_time, math.inf)
        terminal = Terminal(
            protocol=message.protocol,
            terminal_id=message.terminal_id,
            device_code=row["device_code"],
            station_code=row["station_code"],
            scale=row["scale"],
            report_interval_s=login.report_interval_s,
            installed_from=_installed_from(row["installed_on"]),
            plate=row["plate"],
        )
        try:
            await self.writer.write(
                [
                    (
                        SESSION_UPSERT,
                        (terminal.protocol, terminal.terminal_id, peer, login.firmware,
                         login.report_interval_s, connected_at, message.received_at.timestamp(), device_time),
                    )
                ]
            )  # fmt: skip
        except BaseException:
            if guarded and self._login_times.get(key, (None,))[0] == device_time:
                if previous is None:
                    del self._login_times[key]
                else:
                    self._login_times[key] = previous
            raise
        if guarded and self._login_times.get(key, (None,))[0] == device_time:
            self._login_times[key] = (device_time, time.monotonic())
        return ev.AckResult.ACCEPTED, terminal

    def _replayed(self, key: tuple[str, str], device_time: int, now: float) -> str:
        """Why a login with this device time is refused, or "" when it may go on.

        The last accepted login's time is kept in memory (loaded at start, set at each login: reading
        ``terminal_sessions`` on every login cost a reconnect storm most of its speed). Only a login the
        memory refuses reads the stored time, to honour ``wuhai-iot terminals allow-login`` (which clears
        it from another process) when that clearing came after the memory's login committed."""
        if device_time > now + LOGIN_AHEAD_LIMIT_S:
            return f"its device time {_utc(device_time)} is ahead of the platform's clock"
        remembered = self._login_times.get(key)
        if remembered is None or device_time > remembered[0]:
            return ""
        read_at = time.monotonic()
        stored = self.lookup.execute(STORED_LOGIN_TIME, key).fetchone()
        if remembered[1] < read_at and (stored is None or stored[0] is None):
            del self._login_times[key]  # let in by staff after that login committed
            return ""
        return f"its device time {_utc(device_time)} is not later than the last accepted login's ({_utc(remembered[0])})"

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
        """What a new message's events add to its transaction (the statements of the consumers that take
        one of its events)."""
        events = message.events
        kinds: object = type(events[0]) if len(events) == 1 else frozenset(map(type, events))
        if self._consumers_known != len(self.consumers):
            self._consumers_by_kinds.clear()
            self._consumers_known = len(self.consumers)
        consumers = self._consumers_by_kinds.get(kinds)
        if consumers is None:
            consumers = self._consumers_by_kinds[kinds] = self._consumers_taking(events)
        statements: list[Statement] = []
        for consumer in consumers:
            statements += consumer.consume(terminal, events)
        return statements

    def _consumers_taking(self, events: Sequence[ev.Event]) -> list[EventConsumer]:
        """The consumers, in order, that take one of ``events`` (all of them when they do not say)."""
        taken = []
        for consumer in self.consumers:
            classes = getattr(consumer, "events", None)
            if classes is None or any(isinstance(event, classes) for event in events):
                taken.append(consumer)
        return taken

    def heard(self, terminal: Terminal, message: ev.Message) -> None:
        """A frame that is not stored (a heartbeat) showed the terminal's clock: rules waiting on it catch
        up through the writer (only for subjects with something going on). (A stored message's header time
        is not heard: a batch's is when it was sent, and more buffered records may follow it.)"""
        if message.device_time is None:
            return
        for watcher in self.clock_watchers:
            if watcher.heard(terminal, message.device_time, message.received_at):
                self.writer.submit(WriteUnit(on_new=watcher.catch_up, args=(terminal, message.received_at)))

    def check_clock(self, terminal: Terminal, message: ev.Message) -> None:
        """Clock sanity (domain.md, Time): a device time more than CLOCK_AHEAD_MAX ahead of the platform
        or before the terminal's installation date never becomes event time. The message and such events
        lose it (``device_time`` None: their time is the receive time) and the terminal is flagged "clock
        wrong" until a sane frame; the frame itself is stored as received."""
        received_at = message.received_at
        latest = received_at + CLOCK_AHEAD_MAX
        earliest = terminal.installed_from
        wrong: datetime | None = None
        device_time = message.device_time
        if device_time is not None and (device_time > latest or (earliest is not None and device_time < earliest)):
            wrong = device_time
            message.device_time = None
        events = message.events
        for index, event in enumerate(events):
            device_time = event.device_time
            if device_time is not None and (device_time > latest or (earliest is not None and device_time < earliest)):
                wrong = device_time
                events[index] = dataclasses.replace(event, device_time=None)
        if wrong is not None:
            self._flag_clock(terminal, received_at, wrong)
        elif self.clock_wrong and message.device_time is not None:
            self._flag_clock(terminal, received_at, None)

    def _flag_clock(self, terminal: Terminal, received_at: datetime, wrong: datetime | None) -> None:
        key = (terminal.protocol, terminal.terminal_id)
        if wrong is None:
            if self.clock_wrong.pop(key, None) is None:
                return
            values: tuple[float | None, float | None] = (None, None)
        else:
            if key in self.clock_wrong:
                return
            values = self.clock_wrong[key] = (received_at.timestamp(), wrong.timestamp())
            log.warning("%s %s: device time %s is impossible; dated on receipt", *key, wrong.isoformat())
        self.writer.submit(WriteUnit(statements=[(CLOCK_WRONG, (*values, *key))]))

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
