"""What every simulated terminal does, whatever its protocol: the connection life cycle and the outbox.

A ``SimulatedDevice`` is one terminal with one TCP connection (an ``asyncio.Protocol``, so that tens of
thousands fit in one process). Its life: connect, LOGIN first, then messages; on a lost connection
reconnect with exponential backoff (after a refused LOGIN wait ``refused_retry_s``). Every stored kind of
message goes through the *outbox*: it is sent at once when logged in, kept while disconnected (bounded
per category, oldest dropped), resent unchanged (same sequence and device time) when not acknowledged
within ``resend_after_s``, and deleted only when acknowledged. Heartbeats go out when nothing else was
sent for ``heartbeat_s``.

Subclasses (one per protocol, in this package) build the frames with their codec's encoders and read
the platform's answers; they report them with ``_login_answered``, ``_acknowledged`` and
``_heartbeat_answered``. A ``Fleet`` drives many devices with one timer.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
from array import array
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import ClassVar, cast

log = logging.getLogger(__name__)


class AckOutcome(enum.Enum):
    """What an answer means to the terminal (the vendor documents' rules)."""

    DONE = "done"
    """Delete the message (accepted; or content the platform will never accept)."""
    RELOGIN = "relogin"
    """The platform says "log in first": log in again, keep the message."""
    REFUSED = "refused"
    """Unknown terminal or bad authentication: close, retry after ``refused_retry_s``."""


@dataclass
class DeviceSettings:
    resend_after_s: float = 10.0
    heartbeat_s: float | None = None
    """None: the protocol's own interval (ELink and LMT 60 s, GF-3 30 s)."""
    connect_timeout_s: float = 10.0
    login_timeout_s: float = 10.0
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    refused_retry_s: float = 60.0
    report_interval_s: int = 30
    """What the terminal announces in LOGIN; the driver decides when statuses are actually sent."""


@dataclass
class DeviceStats:
    """Counters of one device, or of a whole fleet when its devices share one."""

    frames_sent: int = 0
    """Every frame written, resends, LOGINs and heartbeats included."""
    messages: int = 0
    """New outbox messages (each counted once however often it is sent)."""
    acks: int = 0
    """Outbox messages acknowledged as accepted."""
    rejected: int = 0
    """Outbox messages answered with an error result (deleted, never accepted)."""
    resends: int = 0
    dropped: int = 0
    """Messages dropped from a full offline buffer."""
    heartbeats: int = 0
    heartbeat_acks: int = 0
    requests: int = 0
    """Requests answered by the platform rather than stored (GF-3 fill requests, tag queries)."""
    answers: int = 0
    request_timeouts: int = 0
    connects: int = 0
    connect_failures: int = 0
    logins: int = 0
    logins_refused: int = 0
    login_timeouts: int = 0
    disconnects: int = 0
    decode_errors: int = 0
    latencies: array = field(default_factory=lambda: array("d"))
    """Seconds from first sending an outbox message (or a request) to its answer."""
    keep_latencies: bool = True

    @property
    def errors(self) -> int:
        return (self.rejected + self.request_timeouts + self.connect_failures + self.logins_refused
                + self.login_timeouts + self.decode_errors)  # fmt: skip

    def percentile(self, fraction: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass(slots=True, eq=False)
class Outgoing:
    """One message in the outbox."""

    key: Hashable
    """How the platform's ACK names it (e.g. (type, seq))."""
    data: bytes
    category: str
    """Which offline buffer it counts against (``status``, ``other``, ``fill_result``)."""
    weight: int = 1
    """How many buffered items it stands for (an ELink STATUS_BATCH holds several samples)."""
    created: float = 0.0
    sent_at: float | None = None
    material: object = None
    """What a subclass needs to repack it before the first send (ELink: the status sample)."""


class State(enum.Enum):
    STOPPED = "stopped"
    CONNECTING = "connecting"
    LOGGING_IN = "logging_in"
    ONLINE = "online"
    OFFLINE = "offline"


class SimulatedDevice(asyncio.Protocol):
    """One simulated terminal. Subclasses implement the protocol-specific methods at the end."""

    protocol_name: ClassVar[str]
    seq_modulus: ClassVar[int] = 65536
    default_heartbeat_s: ClassVar[float] = 60.0
    buffer_limits: ClassVar[dict[str, int]] = {}
    """Offline buffer size per category (the vendor document's numbers)."""

    def __init__(
        self,
        terminal_id: str,
        key: str | None,
        host: str,
        port: int,
        *,
        settings: DeviceSettings | None = None,
        stats: DeviceStats | None = None,
        clock_offset_s: float = 0.0,
    ) -> None:
        self.terminal_id = terminal_id
        self.key = key or None
        self.host = host
        self.port = port
        self.settings = settings or DeviceSettings()
        self.stats = stats or DeviceStats()
        self.clock_offset_s = clock_offset_s
        """The terminal's clock minus the true time (set from the LOGIN answer where the protocol says)."""
        self.report_interval_s = self.settings.report_interval_s
        self.heartbeat_s = self.settings.heartbeat_s or self.default_heartbeat_s
        self.state = State.STOPPED
        self.next_connect_at: float | None = None
        """When (event-loop time) the device connects again while it waits (refused, or backing off)."""
        self.on_online: Callable[[SimulatedDevice], None] | None = None
        self.on_acknowledged: Callable[[SimulatedDevice], None] | None = None
        """Called when a message left the outbox on its ACK (a load generator refills its window)."""
        self._seq = 0
        self._transport: asyncio.Transport | None = None
        self._outbox: dict[int, Outgoing] = {}
        self._next_id = 0
        self._by_key: dict[Hashable, int] = {}
        """ACK key → id of the oldest outbox message with that key."""
        self._same_key: dict[Hashable, deque[int]] = {}
        """Younger messages whose key is taken (GF-3's 8-bit sequence wraps within 500 buffered results)."""
        self._buffered: dict[str, int] = {}
        self._last_sent = 0.0
        self._corked: list[bytes] | None = None
        self._session_over: asyncio.Future[float] | None = None
        self._login_timer: asyncio.TimerHandle | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_login_clock = 0

    # --- clock and sequence ---------------------------------------------------------------------

    def device_time(self) -> float:
        return time.time() + self.clock_offset_s

    def login_clock(self) -> int:
        """The device time for a LOGIN: a second later than the last one at least (the platform accepts a
        login only with a later device time than the last; a reconnect within the same second would be
        refused and wait ``refused_retry_s``)."""
        clock = max(int(self.device_time()), self._last_login_clock + 1)
        self._last_login_clock = clock
        return clock

    def next_seq(self) -> int:
        seq = self._seq
        self._seq = (seq + 1) % self.seq_modulus
        return seq

    def set_clock(self, platform_time: float) -> None:
        self.clock_offset_s = platform_time - time.time()

    # --- life cycle -----------------------------------------------------------------------------

    @property
    def online(self) -> bool:
        return self.state is State.ONLINE

    @property
    def unacknowledged(self) -> int:
        """Messages in the outbox: sent and not yet acknowledged, or waiting for a connection."""
        return len(self._outbox)

    def start(self, delay_s: float = 0.0) -> asyncio.Task[None]:
        self._stop.clear()
        self._task = asyncio.create_task(self.run(delay_s), name=f"{self.protocol_name}-{self.terminal_id}")
        return self._task

    async def stop(self) -> None:
        """Close the connection and stop reconnecting (the outbox is kept)."""
        self._stop.set()
        self.disconnect()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self.state = State.STOPPED

    def disconnect(self) -> None:
        """Drop the connection (the device reconnects after its backoff unless stopped)."""
        if self._transport is not None:
            self._transport.close()

    async def _pause(self, seconds: float) -> bool:
        """Sleep unless stopped first; False when stopped."""
        self.next_connect_at = asyncio.get_running_loop().time() + seconds
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except TimeoutError:
            return True
        finally:
            self.next_connect_at = None
        return False

    async def run(self, delay_s: float = 0.0) -> None:
        """Connect, log in, and reconnect whenever the connection is lost, until ``stop``."""
        loop = asyncio.get_running_loop()
        backoff = self.settings.backoff_initial_s
        if delay_s and not await self._pause(delay_s):
            return
        while not self._stop.is_set():
            self.state = State.CONNECTING
            self._session_over = loop.create_future()
            try:
                async with asyncio.timeout(self.settings.connect_timeout_s):
                    await loop.create_connection(lambda: self, self.host, self.port)
            except (OSError, TimeoutError):
                self.stats.connect_failures += 1
                self._session_over = None
                self.state = State.OFFLINE
            else:
                stop_wait = asyncio.ensure_future(self._stop.wait())
                await asyncio.wait([self._session_over, stop_wait], return_when=asyncio.FIRST_COMPLETED)
                stop_wait.cancel()
                if self._stop.is_set():
                    self.disconnect()
                    return
                retry_after = self._session_over.result()
                if retry_after == 0.0:  # it was logged in: start the backoff afresh
                    backoff = self.settings.backoff_initial_s
                elif retry_after > 0:
                    if not await self._pause(retry_after):
                        return
                    continue
            # Exponential backoff with jitter, so that a restarted platform is not hit all at once.
            if not await self._pause(backoff * random.uniform(0.5, 1.0)):
                return
            backoff = min(backoff * 2, self.settings.backoff_max_s)

    # --- asyncio.Protocol -------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses
        self.stats.connects += 1
        self.state = State.LOGGING_IN
        self._reset_parser()
        self._write(self.login_frame(self.next_seq()))
        loop = asyncio.get_running_loop()
        self._login_timer = loop.call_later(self.settings.login_timeout_s, self._login_timed_out)

    def data_received(self, data: bytes) -> None:
        try:
            self.answers_received(data)
        except Exception:  # noqa: BLE001 - a bad answer must not kill the connection's protocol object
            self.stats.decode_errors += 1
            log.exception("%s %s: cannot read the platform's answer", self.protocol_name, self.terminal_id)

    def connection_lost(self, exc: Exception | None) -> None:
        was_online = self.state is State.ONLINE
        self._transport = None
        if self._login_timer is not None:
            self._login_timer.cancel()
            self._login_timer = None
        self.state = State.OFFLINE
        if was_online:
            self.stats.disconnects += 1
        self.connection_closed()
        if self._session_over is not None and not self._session_over.done():
            self._session_over.set_result(0.0 if was_online else -1.0)

    def _login_timed_out(self) -> None:
        self._login_timer = None
        if self.state is State.LOGGING_IN:
            self.stats.login_timeouts += 1
            self.disconnect()

    # --- what subclasses report --------------------------------------------------------------------

    def _login_answered(self, outcome: AckOutcome, platform_time: float | None = None) -> None:
        if self.state is not State.LOGGING_IN:
            return
        if self._login_timer is not None:
            self._login_timer.cancel()
            self._login_timer = None
        if outcome is not AckOutcome.DONE:
            self.stats.logins_refused += 1
            if outcome is AckOutcome.REFUSED and self._session_over is not None and not self._session_over.done():
                self._session_over.set_result(self.settings.refused_retry_s)
            self.disconnect()
            return
        if platform_time is not None and abs(platform_time - self.device_time()) > 30:
            self.set_clock(platform_time)
        self.stats.logins += 1
        self.state = State.ONLINE
        self._flush()
        if self.on_online is not None:
            self.on_online(self)

    def _acknowledged(self, key: Hashable, outcome: AckOutcome, accepted: bool) -> None:
        """An ACK for the oldest outbox message with this key."""
        if outcome is AckOutcome.RELOGIN:
            self._relogin()
            return
        if outcome is AckOutcome.REFUSED:
            if self._session_over is not None and not self._session_over.done():
                self._session_over.set_result(self.settings.refused_retry_s)
            self.disconnect()
            return
        oldest = self._by_key.get(key)
        if oldest is None:
            return  # a late second ACK of a resent message
        item = self._remove(oldest)
        if accepted:
            self.stats.acks += 1
            if self.stats.keep_latencies:
                self.stats.latencies.append(time.monotonic() - item.created)
        else:
            self.stats.rejected += 1
        if self.on_acknowledged is not None:
            self.on_acknowledged(self)

    def _heartbeat_answered(self, outcome: AckOutcome) -> None:
        if outcome is AckOutcome.RELOGIN:
            self._relogin()
        elif outcome is AckOutcome.DONE:
            self.stats.heartbeat_acks += 1

    def _relogin(self) -> None:
        if self.state is State.ONLINE:
            self.state = State.LOGGING_IN
            self._write(self.login_frame(self.next_seq()))

    # --- the outbox ------------------------------------------------------------------------------

    def enqueue(self, key: Hashable, data: bytes, category: str, material: object = None) -> None:
        """A new message: sent now when logged in, else kept for the next connection."""
        item = Outgoing(key, data, category, created=time.monotonic(), material=material)
        self.stats.messages += 1
        self._store(item)
        if self.state is State.ONLINE:
            self._send(item)
        else:
            self._trim(category)

    def _store(self, item: Outgoing) -> None:
        self._next_id += 1
        self._outbox[self._next_id] = item
        if item.key in self._by_key:
            self._same_key.setdefault(item.key, deque()).append(self._next_id)
        else:
            self._by_key[item.key] = self._next_id
        self._buffered[item.category] = self._buffered.get(item.category, 0) + item.weight

    def _trim(self, category: str) -> None:
        """Drop the oldest messages of ``category`` beyond its buffer limit."""
        limit = self.buffer_limits.get(category)
        if limit is None:
            return
        while self._buffered.get(category, 0) > limit:
            oldest = next(i for i, item in self._outbox.items() if item.category == category)
            self.stats.dropped += self._remove(oldest).weight

    def _remove(self, item_id: int) -> Outgoing:
        item = self._outbox.pop(item_id)
        younger = self._same_key.get(item.key)
        if self._by_key.get(item.key) == item_id:
            if younger:
                self._by_key[item.key] = younger.popleft()
            else:
                del self._by_key[item.key]
        elif younger is not None:
            younger.remove(item_id)
        if younger is not None and not younger:
            del self._same_key[item.key]
        self._buffered[item.category] -= item.weight
        return item

    def _send(self, item: Outgoing) -> None:
        if item.sent_at is not None:
            self.stats.resends += 1
        else:
            item.created = time.monotonic()
        item.sent_at = time.monotonic()
        self._write(item.data)

    def _flush(self) -> None:
        """After LOGIN: everything kept, oldest first, with its original sequence and time."""
        items = self.pack_buffered(list(self._outbox.values()))
        self._outbox.clear()
        self._by_key.clear()
        self._same_key.clear()
        self._buffered.clear()
        for item in items:
            self._store(item)
        for item in items:
            if self.state is not State.ONLINE:
                break
            self._send(item)

    def _write(self, data: bytes) -> None:
        if self._transport is None or self._transport.is_closing():
            return
        if self._corked is not None:
            self._corked.append(data)
        else:
            self._transport.write(data)
        self.stats.frames_sent += 1
        self._last_sent = time.monotonic()

    def cork(self) -> None:
        """Hold written frames until ``uncork`` (one system call for many frames: load generation)."""
        if self._corked is None:
            self._corked = []

    def uncork(self) -> None:
        corked, self._corked = self._corked, None
        if corked and self._transport is not None and not self._transport.is_closing():
            self._transport.write(b"".join(corked))

    def tick(self, now: float) -> None:
        """Called about once a second: resend what is overdue, send a heartbeat when idle."""
        if self.state is not State.ONLINE:
            return
        resend_before = now - self.settings.resend_after_s
        for item in list(self._outbox.values()):
            if item.sent_at is not None and item.sent_at <= resend_before:
                self._send(item)
        if now - self._last_sent >= self.heartbeat_s:
            self.stats.heartbeats += 1
            self._write(self.heartbeat_frame(self.next_seq()))

    # --- protocol-specific --------------------------------------------------------------------------

    def login_frame(self, seq: int) -> bytes:
        raise NotImplementedError

    def heartbeat_frame(self, seq: int) -> bytes:
        raise NotImplementedError

    def answers_received(self, data: bytes) -> None:
        """Read the platform's frames and report them (``_login_answered``, ``_acknowledged`` …)."""
        raise NotImplementedError

    def _reset_parser(self) -> None:
        """A new connection: start a new framer."""
        raise NotImplementedError

    def connection_closed(self) -> None:
        """The connection is gone (fail pending requests)."""

    def pack_buffered(self, items: list[Outgoing]) -> list[Outgoing]:
        """The kept messages as they are to be sent after LOGIN (ELink packs samples into batches)."""
        return items


class Fleet:
    """Many devices, one timer: ``tick`` every ``tick_s`` and connects spread at ``connect_rate`` per second."""

    def __init__(self, devices: Iterable[SimulatedDevice], *, tick_s: float = 1.0, connect_rate: float = 2000.0):
        self.devices = list(devices)
        self.tick_s = tick_s
        self.connect_rate = connect_rate
        self.on_tick: list[Callable[[float], None]] = []
        self._ticker: asyncio.Task[None] | None = None

    def start(self) -> None:
        for index, device in enumerate(self.devices):
            device.start(delay_s=index / self.connect_rate if self.connect_rate else 0.0)
        self._ticker = asyncio.create_task(self._tick(), name="fleet-tick")

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
        await asyncio.gather(*(device.stop() for device in self.devices))

    def online(self) -> int:
        return sum(1 for device in self.devices if device.online)

    async def wait_online(self, count: int | None = None, timeout: float = 30.0) -> int:
        """Wait until ``count`` devices (default all) are logged in; return how many are."""
        wanted = len(self.devices) if count is None else count
        deadline = time.monotonic() + timeout
        while self.online() < wanted and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return self.online()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            now = time.monotonic()
            for device in self.devices:
                device.tick(now)
            for callback in self.on_tick:
                callback(now)
