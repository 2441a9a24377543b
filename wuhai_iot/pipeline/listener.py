"""TCP listeners: one per protocol, one ``TerminalConnection`` per socket.

A connection turns bytes into frames (the protocol's framer), frames into messages (its decoder) and
hands them to the ingest pipeline; it writes the answers back in the protocol's words. A bad frame
costs only itself: it is logged, answered where the protocol says so, and the next frame goes on.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import inspect
import ipaddress
import logging
import time
from collections.abc import Awaitable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from datetime import UTC, datetime
from typing import Any, cast

from wuhai_iot import events as ev
from wuhai_iot.captures import CaptureFile
from wuhai_iot.config import LimitsConfig
from wuhai_iot.events import Terminal
from wuhai_iot.logs import RepeatedLog, fields
from wuhai_iot.pipeline.ingest import Ingest
from wuhai_iot.pipeline.pacing import Pacer
from wuhai_iot.protocols.base import DecodeError, Discarded, Protocol, whole_message
from wuhai_iot.storage.writer import WriteUnit, WriterClosed
from wuhai_iot.tasks import supervised

log = logging.getLogger(__name__)
repeated = RepeatedLog(log)

SEEN_FLUSH_S = 10.0
"""How often the terminals' last-frame times are written to ``terminal_sessions``."""
LISTEN_BACKLOG = 4096
"""Connections the kernel queues before they are accepted (asyncio's default, 100, dropped most of a
fleet reconnecting at once after a restart; the kernel caps it at net.core.somaxconn)."""
SLICE_S = 0.001
"""Longest stretch spent on the frames of one read before yielding to the event loop."""
PLUGIN_ERROR_LOG_INTERVAL_S = 60.0
"""A protocol whose code keeps raising is logged at most this often (with a count)."""
MAX_UNACKNOWLEDGED = 64
"""Stored messages of one connection waiting for their commit before it stops reading (TCP backpressure).

Per connection, so that a flood from some terminals slows only them: a filling scale asking for a
decision is never held behind another terminal's backlog."""
LOGGED_FRAME_BYTES = 1100
"""Longest frame kept whole in the frame log (the longest ELink frame is 1,022 bytes; discarded garbage
can be megabytes): a longer one is kept cut, with its length in the note."""
LOGIN_CHECK_GRACE_S = 5.0
"""At the login deadline, a connection whose login is still being checked is looked at again this much later."""
PRE_LOGIN_FRAMES = 8
"""Frames (in and out) a connection keeps before it has logged in; they join the terminal's frame log
when its login is accepted (or refused for a wrong key). A connection that never logs in leaves nothing."""
UNKNOWN_PEER = "unknown"
"""The address of a connection whose peer the kernel no longer reports (reset before its turn came, seen in
reconnect storms): such connections share this one address for the per-address limit."""


@dataclass(frozen=True, slots=True)
class FrameRecord:
    """One frame in or out, kept for protocol debugging."""

    at: datetime
    direction: str
    """``in`` or ``out``"""
    data: bytes
    note: str
    """The message type, or why it was rejected or discarded."""


class FrameLog:
    """The last N raw frames of every logged-in terminal, in memory and bounded in bytes.

    Kept as plain tuples of atoms, which the garbage collector stops tracking: tens of thousands of
    record objects would be walked by every collection. Beyond ``max_bytes`` the terminals whose log
    began longest ago are forgotten first."""

    RECORD_OVERHEAD = 200
    """About what a record costs beside its bytes (tuple, note, time), and ..."""
    TERMINAL_OVERHEAD = 1000
    """... a terminal's log beside its records (key, deque)."""

    def __init__(self, per_terminal: int = 50, max_bytes: int = 64 << 20) -> None:
        self._per_terminal = per_terminal
        self._max_bytes = max_bytes
        self._bytes = 0
        self._logs: collections.OrderedDict[
            tuple[str, str], collections.deque[tuple[datetime, str, bytes, str]]
        ] = collections.OrderedDict()

    def add(self, protocol: str, terminal_id: str, direction: str, data: bytes, note: str, at: datetime) -> None:
        if len(data) > LOGGED_FRAME_BYTES:
            note = f"{note} ({len(data)} bytes, the first {LOGGED_FRAME_BYTES} kept)"
            data = data[:LOGGED_FRAME_BYTES]
        key = (protocol, terminal_id)
        frames = self._logs.get(key)
        if frames is None:
            frames = self._logs[key] = collections.deque(maxlen=self._per_terminal)
            self._bytes += self.TERMINAL_OVERHEAD
        elif len(frames) == self._per_terminal:
            self._bytes -= len(frames[0][2]) + self.RECORD_OVERHEAD
        frames.append((at, direction, data, note))
        self._bytes += len(data) + self.RECORD_OVERHEAD
        while self._bytes > self._max_bytes and self._logs:
            _, gone = self._logs.popitem(last=False)
            self._bytes -= self.TERMINAL_OVERHEAD + sum(len(record[2]) + self.RECORD_OVERHEAD for record in gone)

    def recent(self, protocol: str, terminal_id: str) -> list[FrameRecord]:
        """Newest first."""
        return [FrameRecord(*record) for record in reversed(self._logs.get((protocol, terminal_id), ()))]

    @property
    def bytes(self) -> int:
        """About how much memory the kept frames take."""
        return self._bytes


@dataclass
class ProtocolCounters:
    connections: int = 0
    frames_in: int = 0
    frames_out: int = 0
    decode_errors: int = 0
    bytes_discarded: int = 0
    logins_refused: int = 0
    plugin_errors: int = 0
    """The protocol's own code raised (a bug in its framer or decoder, not a bad frame)."""
    connections_refused: int = 0
    closed_before_login: int = 0
    """Closed for not logging in in time, or for sending too much before it."""
    closed_idle: int = 0


class TerminalConnection(asyncio.Protocol):
    """One terminal's TCP connection.

    Frames are handled in arrival order, synchronously in ``data_received`` where the answer needs
    nothing but the frame (a status is queued for storage, a heartbeat answered). A login or a request
    (a fill decision) waits for the database: the frames behind it queue up and reading pauses until it
    is answered. Reading also pauses while MAX_UNACKNOWLEDGED messages wait for their commit, and when a
    burst of frames has taken SLICE_S or the turn's budget for every connection's frames is spent
    (``Pacer``): the rest follows in a later turn of the event loop.
    """

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.protocol = listener.protocol
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.connected_at = time.time()
        self.last_frame_at = self.connected_at
        self.last_data_at = time.monotonic()
        """When bytes last arrived (monotonic): see ``_idle_check``."""
        self.terminal: Terminal | None = None
        self.address = ""
        """The peer's IP address ("" until connected, and for a connection refused at once)."""
        self._pre_login: list[tuple[datetime, str, bytes, str]] = []
        """Frames in and out before a login (PRE_LOGIN_FRAMES at most, each cut to LOGGED_FRAME_BYTES)."""
        self._pre_login_bytes = 0
        self._timer: asyncio.TimerHandle | None = None
        """The login deadline, then the idle check."""
        self._framer = self.protocol.new_framer()
        self._queued: collections.deque[bytes | Discarded] = collections.deque()
        """Frames read but not handled yet (behind a login or request, or beyond a time slice)."""
        self._waiting_for: asyncio.Task[None] | None = None
        """The login or request being answered; nothing else is handled meanwhile."""
        self._paced = False
        """Waiting for a later turn of the event loop (``Pacer``) to handle its queued frames."""
        self._wound_up = False
        """Its end is logged, and its session's end recorded if it had one (``_wind_up``)."""
        self._seq = 0
        self._closing = False
        self._unacknowledged = 0
        self._stalled = False
        self._reading = True
        self._lost = False
        self.closed = asyncio.get_running_loop().create_future()
        """Done once the connection is gone and its session end is recorded."""
        self.captures: tuple[CaptureFile, ...] = ()
        """Where this connection's frames are recorded: its own file (the protocol's ``capture_dir``) and the
        capture asked for its terminal (``wuhai-iot capture start``)."""
        self._own_capture: CaptureFile | None = None
        self.login_frame: bytes | None = None
        """The LOGIN this connection began with: a capture that starts later begins with it, so that it replays."""

    # --- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else UNKNOWN_PEER
        address = peer[0] if isinstance(peer, tuple) else UNKNOWN_PEER
        listener = self.listener
        refusal = listener.admit(address)
        if refusal:
            listener.counters.connections_refused += 1
            repeated.log(logging.WARNING, ("refused", self.protocol.name, refusal),
                         "%s connection from %s refused: %s", self.protocol.name, self.peer, refusal)  # fmt: skip
            self._closing = True
            self.transport.abort()
            return
        self.address = address
        listener.connections.add(self)
        listener.counters.connections += 1
        limits = listener.limits
        self._timer = asyncio.get_running_loop().call_later(limits.login_deadline_s, self._login_overdue)
        capture_dir = listener.capture_dir
        if capture_dir is not None:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            name = f"{self.protocol.name}-{stamp}-{self.peer.replace(':', '_')}.frames"
            self._own_capture = CaptureFile(capture_dir / name, self.protocol)
            self._own_capture.note(f"{self.protocol.title}, connection from {self.peer} at {stamp}Z")
            self.captures = (self._own_capture,)
        # (Its log line waits for its turn: uvloop sets up every connection waiting in the kernel's queue at
        # once, thousands after a restart, and a log line costs more than the rest of this.)
        listener.pacer.wait(self._log_connected, logged_in=False)

    def _log_connected(self) -> None:
        log.info("%s connection from %s", self.protocol.name, self.peer,
                 extra=fields(protocol=self.protocol.name, peer=self.peer))  # fmt: skip

    def _login_overdue(self) -> None:
        self._timer = None
        if self.terminal is not None or self._closing:
            return
        if self._waiting_for is not None:  # a login is being checked (a slow database): wait for its answer
            self._timer = asyncio.get_running_loop().call_later(LOGIN_CHECK_GRACE_S, self._login_overdue)
            return
        self._close_before_login(f"no login within {self.listener.limits.login_deadline_s:g} s")

    def _close_before_login(self, why: str) -> None:
        self.listener.counters.closed_before_login += 1
        repeated.log(logging.INFO, ("closed before login", self.protocol.name, why.split(" ")[0]),
                     "%s connection from %s closed: %s", self.protocol.name, self.peer, why)  # fmt: skip
        self.close()

    def _idle_limit(self) -> float:
        limits = self.listener.limits
        interval = self.terminal.report_interval_s if self.terminal is not None else None
        return max(limits.idle_min_s, limits.idle_intervals * (interval or 0))

    def _idle_check(self) -> None:
        """Close the connection when nothing arrived for its idle limit; otherwise look again when it
        would be reached (one timer a connection, re-armed only when it fires)."""
        self._timer = None
        if self._closing:
            return
        limit = self._idle_limit()
        idle = time.monotonic() - self.last_data_at
        if idle >= limit:
            self.listener.counters.closed_idle += 1
            log.info("%s %s from %s sent nothing for %.0f s, closing", self.protocol.name, self._log_id(), self.peer,
                     idle)  # fmt: skip
            self.close()
            return
        self._timer = asyncio.get_running_loop().call_later(limit - idle, self._idle_check)

    def data_received(self, data: bytes) -> None:
        if not self.address:  # refused in connection_made (the auto port hands over the bytes it read)
            return
        self.last_data_at = time.monotonic()
        try:
            items = self._framer.feed(data)
        except Exception as exc:
            # The framer's state is unknown now: this connection ends (the terminal reconnects), no other.
            self.listener.plugin_failed("framer", exc)
            self.close()
            return
        self._queued.extend(items)
        self._handle_queued()

    def _capture(self, item: bytes | Discarded) -> None:
        """Record a frame (or discarded bytes) as it is handled."""
        now = time.time()
        for capture in self.captures:
            if isinstance(item, Discarded):
                capture.note(f"discarded {len(item.data)} bytes ({item.reason}): {item.data.hex(' ')}")
            else:
                capture.frame_in(item, now)

    def start_capture(self, capture: CaptureFile, first: bytes | None, why: str = "") -> None:
        """Record this connection's frames to ``capture`` too, beginning with ``first`` (its LOGIN)."""
        if capture in self.captures:
            return
        capture.note(f"connection from {self.peer}{why}")
        if first is not None:
            capture.frame_in(first, time.time())
        self.captures += (capture,)

    def stop_capture(self, capture: CaptureFile) -> None:
        self.captures = tuple(c for c in self.captures if c is not capture)

    def connection_lost(self, exc: Exception | None) -> None:
        for capture in self.captures:
            if capture is self._own_capture:
                capture.close()
            else:
                capture.note(f"connection from {self.peer} closed")
        self.captures = ()
        self._closing = self._lost = True
        self._queued.clear()
        self._pre_login.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self.address:  # refused at once
            self.closed.set_result(None)
            return
        listener = self.listener
        listener.release(self.address)
        listener.connections.discard(self)
        listener.counters.connections -= 1
        if self.terminal is not None:
            listener.forget(self)
        # The rest (its log line, its session's end) waits for its turn: a fleet hanging up at once (a network
        # down) must not hold the event loop.
        listener.pacer.wait(self._wind_up, logged_in=True)

    def _wind_up(self) -> None:
        self._wound_up = True
        device = self.terminal.terminal_id if self.terminal else None
        log.info("%s connection from %s closed%s", self.protocol.name, self.peer, f" ({device})" if device else "",
                 extra=fields(protocol=self.protocol.name, device=device, peer=self.peer))  # fmt: skip
        if self.terminal is None:
            self.closed.set_result(None)
        else:
            self.listener.session_ended(self)

    # --- handling frames in order ----------------------------------------------------------------

    def _handle_queued(self) -> None:
        if self._paced:  # (it goes on when its turn comes)
            return
        pacer = self.listener.pacer
        allowed = min(SLICE_S, pacer.time_left(self.terminal is not None))
        slice_started = time.perf_counter()
        queued, counters = self._queued, self.listener.counters
        while queued and not self._closing and self._waiting_for is None and not self._stalled:
            if time.perf_counter() - slice_started >= allowed:
                # A burst of frames, or the frames of thousands of connections in one turn, must not stall
                # the event loop: go on in a later turn, after the connections already waiting.
                self._wait_for_turn()
                break
            item = queued.popleft()
            if self.captures:
                self._capture(item)
            if self.terminal is None:
                self._pre_login_bytes += len(item.data if isinstance(item, Discarded) else item)
                if self._pre_login_bytes > self.listener.limits.pre_login_bytes:
                    self._close_before_login(f"more than {self.listener.limits.pre_login_bytes} bytes before a login")
                    break
            if isinstance(item, Discarded):
                counters.bytes_discarded += len(item.data)
                self._keep("in", item.data, f"discarded: {item.reason}", datetime.now(UTC))
                continue
            counters.frames_in += 1
            try:
                answer_later = self._on_frame(item)
            except Exception:
                # Our fault, not the terminal's: no answer, so it resends; the connection goes on.
                log.exception("%s %s: handling a frame failed", self.protocol.name, self._log_id())
                continue
            if answer_later is not None:
                self._waiting_for = asyncio.create_task(self._answer_later(answer_later))
        pacer.spent(time.perf_counter() - slice_started)
        self._pace_reading()

    def _wait_for_turn(self) -> None:
        self._paced = True
        self.listener.pacer.wait(self._resume, self.terminal is not None)

    def _resume(self) -> None:
        self._paced = False
        self._handle_queued()

    async def _answer_later(self, answer: Coroutine[Any, Any, None]) -> None:
        try:
            await answer
        except Exception:
            log.exception("%s %s: handling a frame failed", self.protocol.name, self._log_id())
        finally:
            self._waiting_for = None
        if not self._closing:
            self._handle_queued()
        elif self.transport is not None:
            self.transport.close()

    def _pace_reading(self) -> None:
        """Read while nothing is queued (TCP backpressure holds the terminal otherwise)."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self._closing:
            transport.close()
            return
        want = not self._queued and self._waiting_for is None and not self._stalled
        if want != self._reading:
            self._reading = want
            if want:
                transport.resume_reading()
            else:
                transport.pause_reading()

    def _on_frame(self, frame: bytes) -> Coroutine[Any, Any, None] | None:
        """Handle one frame; return what must still be awaited before the next (a login, a request)."""
        now = datetime.now(UTC)
        frame = whole_message(frame)  # (the packet completing a split message: the whole message)
        protocol = self.protocol
        try:
            message = protocol.decode(frame, now)
        except DecodeError as error:
            self.listener.counters.decode_errors += 1
            if error.terminal_id is not None and self.terminal is None:
                self.listener.capture_if_asked(self, error.terminal_id, frame)  # a terminal that cannot log in
            self._keep("in", frame, error.reason, now)
            self.send(protocol.encode_error(error, self.next_seq(), now), "error answer", now)
            return None
        except Exception as exc:
            # A bug in the protocol's decoder: this frame is lost, the connection's other frames go on.
            self.listener.plugin_failed("decoder", exc)
            self._answer_bad_content(frame, f"decoder raised {exc!r}", now)
            return None
        self._keep("in", frame, message.type, now)
        first = message.events[0] if message.events else None
        if isinstance(first, ev.Login):
            self.login_frame = frame
            self.listener.capture_if_asked(self, message.terminal_id, frame)
            return self._login(message)
        if isinstance(first, ev.Register):
            # Asked before any login (JT/T 808): the registry binds the terminal and issues its code.
            unbound = Terminal(protocol.name, message.terminal_id)
            return self._answer_awaited(message, self.listener.ingest.answer(unbound, first))
        terminal = self.terminal
        if terminal is None or terminal.terminal_id != message.terminal_id:
            self._ack(message, ev.AckResult.NOT_LOGGED_IN, now)
            return None
        self.last_frame_at = now.timestamp()
        ingest = self.listener.ingest
        ingest.check_clock(terminal, message)
        if isinstance(first, ev.Heartbeat):
            self._ack(message, ev.AckResult.ACCEPTED, now)
            ingest.heard(terminal, message)
        elif message.dedup_key is None:
            assert first is not None
            answer = self.listener.ingest.answer(terminal, first)
            if inspect.isawaitable(answer):
                return self._answer_awaited(message, answer)
            self.reply(message, answer, datetime.now(UTC))
        else:
            self.listener.ingest.store(terminal, message, frame, self._stored)
            self._unacknowledged += 1
            if self._unacknowledged >= MAX_UNACKNOWLEDGED:
                self._stalled = True
        return None

    def _answer_bad_content(self, frame: bytes, reason: str, now: datetime) -> None:
        """Answer a frame the decoder failed on as bad content where the protocol can read its header
        (``Protocol.header_error``): a terminal resending it would only meet the same failure."""
        protocol = self.protocol
        try:
            error = protocol.header_error(frame, reason)
            answer = None if error is None else protocol.encode_error(error, self.next_seq(), now)
        except Exception:  # (the decoder's failure is already counted and logged)
            log.debug("%s could not answer a frame its decoder failed on", protocol.name, exc_info=True)
            error = answer = None
        self._keep("in", frame, reason, now)
        self.send(answer, "bad content answer", now)

    def _stored(self, terminal: Terminal, message: ev.Message, outcome: bool | BaseException) -> None:
        """Acknowledge a message once it is committed; if storing failed, stay silent: it is resent."""
        self._unacknowledged -= 1
        if self._stalled and self._unacknowledged < MAX_UNACKNOWLEDGED // 2:
            self._stalled = False
            if not self._paced and self._waiting_for is None and not self._closing:
                self._wait_for_turn()
        if isinstance(outcome, BaseException):
            repeated.error(("storing failed", type(outcome).__name__, str(outcome)),
                           "storing %s %s seq %s failed, not acknowledged: %s", message.protocol,
                           message.terminal_id, message.seq, outcome)  # fmt: skip
            return
        self._ack(message, ev.AckResult.ACCEPTED, datetime.now(UTC))

    async def _answer_awaited(self, message: ev.Message, answer: ev.Reply | Awaitable[ev.Reply]) -> None:
        self.reply(message, await answer if inspect.isawaitable(answer) else answer, datetime.now(UTC))

    async def _login(self, message: ev.Message) -> None:
        result, terminal = await self.listener.ingest.login(message, self.peer, self.connected_at)
        self._ack(message, result, datetime.now(UTC))
        context = fields(protocol=self.protocol.name, device=message.terminal_id, peer=self.peer)
        if terminal is None:
            if result is ev.AckResult.AUTH_FAILED:  # a registered terminal: its log shows the attempt
                self._flush_pre_login(message.terminal_id)
            reason = result._name_.lower()
            log.warning("%s login of %s from %s refused: %s", self.protocol.name, message.terminal_id, self.peer,
                        reason, extra={**context, "reason": reason})  # fmt: skip
            self.listener.counters.logins_refused += 1
            if result in (ev.AckResult.UNKNOWN_TERMINAL, ev.AckResult.AUTH_FAILED):
                self._closing = True
            return
        if self.terminal is not None and self.terminal != terminal:
            self.listener.forget(self)
        log.info("%s login of %s from %s accepted", self.protocol.name, message.terminal_id, self.peer, extra=context)
        self.terminal = terminal
        for capture in self.captures:
            capture.note(f"terminal {terminal.terminal_id} logged in")
        self.last_frame_at = message.received_at.timestamp()
        self._flush_pre_login(terminal.terminal_id)
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(self._idle_limit(), self._idle_check)
        older = self.listener.by_terminal.get(terminal.terminal_id)
        if older is not None and older is not self:
            # The newer connection keeps the session: a terminal that reconnects has lost the older one.
            log.info("%s %s logged in again from %s: closing its older connection from %s", self.protocol.name,
                     terminal.terminal_id, self.peer, older.peer)  # fmt: skip
            older.close()
        self.listener.remember(self)
        if self._lost:  # the terminal hung up while its login was checked
            self.listener.forget(self)
            if self._wound_up:  # (otherwise winding up records the session's end)
                self.listener.session_ended(self)

    # --- answers -------------------------------------------------------------------------------

    def next_seq(self) -> int:
        seq = self._seq
        self._seq = (seq + 1) % self.protocol.sequence_modulus()
        return seq

    def send(self, data: bytes | None, note: str, now: datetime) -> None:
        transport = self.transport
        if data is None or transport is None or transport.is_closing():
            return
        transport.write(data)
        for capture in self.captures:
            capture.answer(data)
        self.listener.counters.frames_out += 1
        self._keep("out", data, note, now)

    def _keep(self, direction: str, data: bytes, note: str, now: datetime) -> None:
        """Keep a frame in the frame log: the terminal's once logged in, this connection's few until then."""
        terminal = self.terminal
        if terminal is not None:
            self.listener.frame_log.add(self.protocol.name, terminal.terminal_id, direction, data, note, now)
        elif len(self._pre_login) < PRE_LOGIN_FRAMES:
            self._pre_login.append((now, direction, data[:LOGGED_FRAME_BYTES], note))

    def _flush_pre_login(self, terminal_id: str) -> None:
        frame_log = self.listener.frame_log
        for at, direction, data, note in self._pre_login:
            frame_log.add(self.protocol.name, terminal_id, direction, data, note, at)
        self._pre_login.clear()

    def reply(self, message: ev.Message, reply: ev.Reply, now: datetime) -> None:
        data = self.protocol.encode_reply(message, reply, self.next_seq(), now)
        # (``_name_``: an enum's ``name`` property costs ten times more, on every ACK.)
        note = reply.result._name_ if isinstance(reply, ev.Ack) else type(reply).__name__
        self.send(data, note, now)

    def _ack(self, message: ev.Message, result: ev.AckResult, now: datetime) -> None:
        self.reply(message, ev.Ack(result, now), now)

    def _log_id(self, terminal_id: str | None = None) -> str:
        if terminal_id:
            return terminal_id
        return self.terminal.terminal_id if self.terminal else f"@{self.peer}"

    def close(self) -> None:
        self._closing = True
        if self.transport is not None:
            self.transport.close()

    async def wait_closed(self) -> None:
        """Until the connection is gone, its session end recorded and its last login or request answered."""
        await self.closed
        if self._waiting_for is not None:
            await asyncio.wait([self._waiting_for])


@functools.lru_cache(maxsize=1024)
def _is_loopback(address: str) -> bool:
    """(Cached: parsing an address costs more than the rest of a connection's admission.)"""
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:  # UNKNOWN_PEER: not known to be loopback, so not exempt from the limit
        return False


def _session_ends_recorded(done: asyncio.Future[bool], ended: list[TerminalConnection]) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.warning("the end of %d sessions was not recorded: %s", len(ended), done.exception())
    _set_closed(ended)


def _set_closed(connections: list[TerminalConnection]) -> None:
    for connection in connections:
        if not connection.closed.done():
            connection.closed.set_result(None)


@dataclass
class Listener:
    """The TCP server of one protocol and its live connections."""

    protocol: Protocol
    ingest: Ingest
    frame_log: FrameLog
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    counters: ProtocolCounters = field(default_factory=ProtocolCounters)
    pacer: Pacer = field(default_factory=Pacer)
    """The frame-handling budget of each turn of the event loop, shared by every listener of the platform."""
    connections: set[TerminalConnection] = field(default_factory=set)
    by_terminal: dict[str, TerminalConnection] = field(default_factory=dict)
    per_address: dict[str, int] = field(default_factory=dict)
    """Open connections by source address."""
    server: asyncio.Server | None = None
    _flusher: asyncio.Task[None] | None = None
    _plugin_error_logged_at: float | None = None
    capture_dir: Path | None = None
    """Record every connection to a frames file of its own there (``[protocols.NAME] capture_dir``)."""
    captures_asked: dict[str, CaptureFile] = field(default_factory=dict)
    """The captures asked for by terminal id (``wuhai-iot capture start``, pipeline/capturing.py)."""
    _session_ends: list[TerminalConnection] = field(default_factory=list)
    """Connections whose session's end is to be recorded (``session_ended``)."""

    async def start(self, host: str, port: int) -> int:
        """Start listening; return the port actually bound (``port`` 0 picks a free one)."""
        loop = asyncio.get_running_loop()
        if self.capture_dir is not None:
            self.capture_dir.mkdir(parents=True, exist_ok=True)
        self.server = await loop.create_server(lambda: TerminalConnection(self), host, port, backlog=LISTEN_BACKLOG)
        self._flusher = supervised(self._housekeeping, f"{self.protocol.name}-housekeeping")
        return self.server.sockets[0].getsockname()[1]

    def plugin_failed(self, where: str, exc: Exception) -> None:
        """Count a failure of the protocol's own code; log the first with its traceback, then one line a
        minute at most with the count, so that a broken decoder cannot flood the log."""
        self.counters.plugin_errors += 1
        now = time.monotonic()
        if self._plugin_error_logged_at is None:
            log.error("%s %s raised; the frame is lost, the connection goes on", self.protocol.name, where, exc_info=exc)
        elif now - self._plugin_error_logged_at >= PLUGIN_ERROR_LOG_INTERVAL_S:
            log.error("%s %s raised %d times since start (last: %r)", self.protocol.name, where,
                      self.counters.plugin_errors, exc)  # fmt: skip
        else:
            return
        self._plugin_error_logged_at = now

    def start_capture(self, terminal_id: str, capture: CaptureFile) -> None:
        """Record ``terminal_id``'s frames to ``capture``: from its next LOGIN on, and at once when it is
        connected (beginning with the LOGIN of that connection, so that the file replays)."""
        self.captures_asked[terminal_id] = capture
        connection = self.by_terminal.get(terminal_id)
        if connection is not None:
            connection.start_capture(capture, connection.login_frame, ", logged in before the capture: its LOGIN first")

    def stop_capture(self, terminal_id: str) -> None:
        capture = self.captures_asked.pop(terminal_id, None)
        for connection in self.connections:
            if capture in connection.captures:
                connection.stop_capture(capture)  # type: ignore[arg-type]

    def capture_if_asked(self, connection: TerminalConnection, terminal_id: str, frame: bytes) -> None:
        """A frame of a connection naming ``terminal_id`` before it is logged in (its LOGIN)."""
        capture = self.captures_asked.get(terminal_id)
        if capture is not None:
            connection.start_capture(capture, frame)

    def admit(self, address: str) -> str:
        """Count a new connection from ``address``; or why it is refused (then it is not counted)."""
        limits = self.limits
        if limits.connections_per_listener and len(self.connections) >= limits.connections_per_listener:
            return f"{len(self.connections)} connections open, the most for this listener"
        open_here = self.per_address.get(address, 0)
        if (limits.connections_per_address and open_here >= limits.connections_per_address
                and not (limits.loopback_unlimited and _is_loopback(address))):  # fmt: skip
            return f"{open_here} connections open from {address}, the most from one address"
        self.per_address[address] = open_here + 1
        return ""

    def release(self, address: str) -> None:
        left = self.per_address[address] - 1
        if left:
            self.per_address[address] = left
        else:
            del self.per_address[address]

    def remember(self, connection: TerminalConnection) -> None:
        assert connection.terminal is not None
        self.by_terminal[connection.terminal.terminal_id] = connection

    def forget(self, connection: TerminalConnection) -> None:
        assert connection.terminal is not None
        if self.by_terminal.get(connection.terminal.terminal_id) is connection:
            del self.by_terminal[connection.terminal.terminal_id]

    def session_ended(self, connection: TerminalConnection) -> None:
        """Record the end of a closed connection's session, then set its ``closed``: the ends of one turn of
        the event loop are written together (a fleet hanging up at once is one write, not thousands)."""
        if not self._session_ends:
            asyncio.get_running_loop().call_soon(self._record_session_ends)
        self._session_ends.append(connection)

    def _record_session_ends(self) -> None:
        ended, self._session_ends = self._session_ends, []
        statements = []
        for connection in ended:
            assert connection.terminal is not None
            statements.append(self.ingest.session_closed(connection.terminal, connection.connected_at,
                                                         connection.last_frame_at))  # fmt: skip
        try:
            recorded = self.ingest.writer.submit(WriteUnit(statements=statements))
        except WriterClosed:
            log.info("writer closed before the end of %d sessions was recorded", len(ended))
            _set_closed(ended)
            return
        recorded.add_done_callback(lambda done: _session_ends_recorded(done, ended))

    def logged_in(self) -> Iterator[TerminalConnection]:
        return iter(list(self.by_terminal.values()))

    async def _housekeeping(self) -> None:
        """Every SEEN_FLUSH_S: record the terminals' last-frame times (until the writer is closed)."""
        flushed: dict[str, float] = {}
        while True:
            await asyncio.sleep(SEEN_FLUSH_S)
            statements = []
            for connection in self.logged_in():
                terminal = connection.terminal
                if terminal and flushed.get(terminal.terminal_id) != connection.last_frame_at:
                    flushed[terminal.terminal_id] = connection.last_frame_at
                    statements.append(self.ingest.session_seen(terminal, connection.last_frame_at))
            if statements:
                self.ingest.writer.submit(WriteUnit(statements=statements))

    async def stop(self) -> None:
        """Stop accepting, close every connection and wait for their handlers to finish."""
        if self._flusher is not None:
            self._flusher.cancel()
        if self.server is not None:
            self.server.close()
        connections = list(self.connections)
        for connection in connections:
            connection.close()
        if connections:
            await asyncio.wait([asyncio.ensure_future(c.wait_closed()) for c in connections], timeout=10)
        if self.server is not None:
            await self.server.wait_closed()

    async def send_command(self, terminal_id: str, command: ev.TerminalCommand, requested_by: str | None) -> int:
        """Send a command to a connected terminal; return the sequence its reply will carry."""
        connection = self.by_terminal.get(terminal_id)
        if connection is None:
            raise LookupError(f"{self.protocol.name} terminal {terminal_id} is not connected")
        now = datetime.now(UTC)
        seq = connection.next_seq()
        data = self.protocol.encode_command(terminal_id, command, seq, now)
        assert connection.terminal is not None
        await self.ingest.writer.write(
            [self.ingest.command_sent(connection.terminal, seq, command, requested_by, now.timestamp())]
        )
        connection.send(data, f"COMMAND {command.code.value}", now)
        return seq
