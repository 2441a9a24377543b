"""The platform: one process, one event loop — the web app and one TCP listener per protocol.

``Platform`` owns the database connections, the batch writer, the ingest pipeline and the
listeners, and starts and stops them together. Tests start it exactly as ``wuhai-iot serve`` does.
"""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import logging
import signal
import sqlite3
import ssl
import time
from datetime import UTC, datetime

import aiosqlite
from aiohttp import web
from aiohttp.typedefs import Handler

from wuhai_iot import events as ev
from wuhai_iot.config import AUTO, AUTO_DEFAULT_PORT, Config
from wuhai_iot.pipeline.capturing import CaptureRequests
from wuhai_iot.pipeline.ingest import Ingest
from wuhai_iot.pipeline.listener import FrameLog, Listener
from wuhai_iot.pipeline.pacing import Pacer
from wuhai_iot.pipeline.sniffing import AutoListener
from wuhai_iot.plugins import get_plugin_manager, protocols
from wuhai_iot.plugins.manager import call_async
from wuhai_iot.plugins.state import PluginState
from wuhai_iot.storage import db
from wuhai_iot.storage.writer import BatchWriter
from wuhai_iot.tasks import supervised

log = logging.getLogger(__name__)

PLATFORM_KEY = web.AppKey("platform", "Platform")
MAX_UPLOAD_BYTES = 64 * 1024 * 1024
"""Largest request body: a district's census CSV uploaded from the import page."""
GC_THRESHOLDS = (2_000, 1_000, 100)
"""While serving, the cyclic garbage collector never walks what was loaded at start (``gc.freeze``) and
runs its older generations rarely: with the defaults it took a third of the ingest CPU, walking the
registry, the rules' state and the recent frames over and over. Young collections stay small, so that
none holds a fill decision up for long. Ingest makes almost no reference cycles: reference counting
frees its garbage at once, a closed connection included (a connection outlives the middle generation, so
one caught in a cycle would wait for the oldest, up to 100 minutes). The middle generation runs on a clock instead (MIDDLE_GC_INTERVAL_S)."""
MIDDLE_GC_INTERVAL_S = 60.0
"""How often the middle generation is collected. By allocations (every 100 young collections) that was
about every second under load, each time walking the messages waiting for their commit (some 100,000
objects, ≈ 20 ms of the event loop); by the clock, cyclic garbage (web requests make some) still goes
within a minute, at any load."""


LOOKUP_TIMEOUT_S = 0.5
"""How long a login's point read may wait for a lock (rare in WAL: recovery) before the login fails."""
LOOP_PROBE_INTERVAL_S = 0.05


class LoopLagProbe:
    """How late the event loop runs a callback scheduled every LOOP_PROBE_INTERVAL_S, since start.

    ``worst_s`` is the longest lag on the wall clock: what a fill decision waiting behind it saw,
    including time the loop's thread was not given a core (on a shared machine, other processes).
    ``worst_held_s`` bounds each lag by the CPU time the loop's thread used meanwhile: the longest the
    platform's own work held the loop (what it can help)."""

    def __init__(self) -> None:
        self.worst_s = 0.0
        self.worst_held_s = 0.0
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0
        self._cpu = 0.0

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._due = loop.time() + LOOP_PROBE_INTERVAL_S
        self._cpu = time.thread_time()
        self._handle = loop.call_at(self._due, self._tick)

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        now, cpu = loop.time(), time.thread_time()
        lag = now - self._due
        self.worst_s = max(self.worst_s, lag)
        self.worst_held_s = max(self.worst_held_s, min(lag, cpu - self._cpu))
        self._due, self._cpu = now + LOOP_PROBE_INTERVAL_S, cpu
        self._handle = loop.call_at(self._due, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class StartError(Exception):
    """The platform cannot start: a port is taken, the database is from a newer release, ..."""


class Platform:
    """Everything ``wuhai-iot serve`` runs."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.protocols = {
            name: protocol for name, protocol in protocols().items() if config.protocol(name).enabled
        }
        self.frame_log = FrameLog(per_terminal=config.retention.raw_frames_per_terminal,
                                  max_bytes=int(config.limits.frame_log_mb * (1 << 20)))
        self.listeners: dict[str, Listener] = {}
        self.ports: dict[str, int] = {}
        """Bound port of each protocol and of ``web`` (useful when the configuration says 0)."""
        self.started_at: datetime | None = None
        self.state = PluginState()
        self.auto_listener: AutoListener | None = None
        """The port that recognises the protocol (``[protocols.auto]``), when configured."""
        """What plugins keep for this platform, one object per class (wuhai_iot/plugins/state.py)."""
        self._connections: list[aiosqlite.Connection] = []
        self._gc_thresholds: tuple[int, int, int] | None = None
        self._collector: asyncio.Task[None] | None = None
        self.capture_requests: CaptureRequests | None = None
        """The captures asked for with ``wuhai-iot capture start`` (pipeline/capturing.py)."""
        self._capture_watch: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None
        self._lookup: sqlite3.Connection | None = None
        self.loop_lag = LoopLagProbe()
        self.pacer = Pacer()
        """The frame-handling budget of each turn of the event loop, shared by the listeners."""

    async def open_database(self) -> aiosqlite.Connection:
        """A new connection to the platform's database (the pipeline and the pages each have one; the
        batch writer opens its own on its thread)."""
        conn = await db.connect(self.config.database.path, migrate=not self._connections)
        self._connections.append(conn)
        return conn

    async def start(self) -> None:
        self.reader = await self.open_database()
        """Shared by the pipeline's coroutines: read in one step (``execute_fetchall``, ``db.fetch_one``), never
        a cursor fetched later (its snapshot would hide from other readers what was just committed)."""
        # No process is connected yet: sessions recorded as online belong to a previous run.
        await self.reader.execute("UPDATE terminal_sessions SET online = 0 WHERE online = 1")
        self.writer = BatchWriter(self.config.database.path)
        await self.writer.start()
        self._lookup = db.connect_point_reader(self.config.database.path, LOOKUP_TIMEOUT_S)
        self.ingest = Ingest(self.writer, self.reader, self._lookup, self.protocols)
        await self.ingest.load()
        await call_async("platform_starting", platform=self)

        for name, protocol in self.protocols.items():
            settings = self.config.protocol(name)
            listener = Listener(protocol, self.ingest, self.frame_log, self.config.limits, pacer=self.pacer,
                                capture_dir=settings.capture_dir)
            port = protocol.default_port if settings.port is None else settings.port
            try:
                self.ports[name] = await listener.start(settings.host, port)
            except OSError as exc:
                raise StartError(f"cannot listen for {protocol.title} on {settings.host}:{port}: {exc.strerror}") from exc
            self.listeners[name] = listener
            log.info("%s listening on %s:%d", protocol.title, settings.host, self.ports[name])

        self.capture_requests = CaptureRequests(self.reader, self.writer, self.listeners)
        await self.capture_requests.poll()  # (a capture asked for before the start records from the first frame)
        self._capture_watch = supervised(self.capture_requests.watch, "capture-requests")

        auto = self.config.protocols.get(AUTO)
        if auto is not None and auto.enabled:
            self.auto_listener = AutoListener(self.listeners, self.config.limits)
            port = AUTO_DEFAULT_PORT if auto.port is None else auto.port
            try:
                self.ports[AUTO] = await self.auto_listener.start(auto.host, port)
            except OSError as exc:
                raise StartError(f"cannot listen for the auto port on {auto.host}:{port}: {exc.strerror}") from exc
            log.info("auto port (%s) listening on %s:%d", ", ".join(sorted(self.listeners)), auto.host, self.ports[AUTO])

        app = web.Application(client_max_size=MAX_UPLOAD_BYTES,
                              middlewares=[forwarded_by_local_proxy] if self.config.web.behind_proxy else [])  # fmt: skip
        app[PLATFORM_KEY] = self
        app.router.add_get("/healthz", healthz)
        get_plugin_manager().hook.register_routes(app=app, platform=self)
        # keepalive_timeout also bounds how long a connection may take to send a request's headers.
        self._runner = web.AppRunner(app, access_log=None, keepalive_timeout=self.config.limits.web_header_timeout_s)
        await self._runner.setup()
        web_config = self.config.web
        site = web.TCPSite(self._runner, web_config.host, web_config.port, ssl_context=self._ssl_context())
        try:
            await site.start()
        except OSError as exc:
            raise StartError(f"cannot listen for the web on {web_config.host}:{web_config.port}: {exc.strerror}") from exc
        self.ports["web"] = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.started_at = datetime.now(UTC)
        scheme = "https" if web_config.certificate else "http"
        log.info("web on %s://%s:%d/", scheme, web_config.host, self.ports["web"])
        self._gc_thresholds = gc.get_threshold()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        self._collector = asyncio.create_task(self._collect_middle_generation(), name="gc-middle-generation")
        self.loop_lag.start()

    def _ssl_context(self) -> ssl.SSLContext | None:
        """HTTPS from ``[web] certificate`` and ``key``; session cookies are then marked Secure."""
        web_config = self.config.web
        if web_config.certificate is None or web_config.key is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(web_config.certificate, web_config.key)
        return context

    async def _collect_middle_generation(self) -> None:
        while True:
            await asyncio.sleep(MIDDLE_GC_INTERVAL_S)
            gc.collect(1)

    async def stop(self) -> None:
        """Stop accepting, close connections, commit what is pending, close the database."""
        self.loop_lag.stop()
        if self._collector is not None:
            self._collector.cancel()
            self._collector = None
        if self._gc_thresholds is not None:
            gc.set_threshold(*self._gc_thresholds)
            gc.unfreeze()
            self._gc_thresholds = None
        if self._runner is not None:
            await self._runner.cleanup()
        if self.auto_listener is not None:
            await self.auto_listener.stop()
        for listener in self.listeners.values():
            await listener.stop()
        if self._capture_watch is not None:
            self._capture_watch.cancel()
            self._capture_watch = None
        if self.capture_requests is not None:
            await self.capture_requests.close()
            self.capture_requests = None
        await call_async("platform_stopping", platform=self)
        if hasattr(self, "writer"):
            await self.writer.close()
        for conn in self._connections:
            await conn.close()
        self._connections.clear()
        if self._lookup is not None:
            self._lookup.close()
            self._lookup = None

    async def __aenter__(self) -> Platform:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def send_command(
        self, protocol: str, terminal_id: str, command: ev.TerminalCommand, requested_by: str | None = None
    ) -> int:
        """Queue a command to a connected terminal; LookupError when it is not connected."""
        listener = self.listeners.get(protocol)
        if listener is None:
            raise LookupError(f"protocol {protocol} is not served")
        return await listener.send_command(terminal_id, command, requested_by)

    async def run_forever(self) -> None:
        """Run until SIGINT or SIGTERM, then stop cleanly."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with self:
            await stop.wait()
            log.info("stopping")


@web.middleware
async def forwarded_by_local_proxy(request: web.Request, handler: Handler) -> web.StreamResponse:
    """``[web] behind_proxy``: a request the reverse proxy on this machine passed on carries the client's
    address (the last ``X-Forwarded-For`` entry: the one the proxy itself saw) and scheme. Only loopback
    peers are believed: anyone else could write those headers."""
    peer = request.transport.get_extra_info("peername") if request.transport else None
    if not peer or not ipaddress.ip_address(peer[0]).is_loopback:
        return await handler(request)
    changes: dict[str, str] = {}
    forwarded_for = request.headers.get("X-Forwarded-For", "").rsplit(",", 1)[-1].strip()
    if forwarded_for:
        try:
            changes["remote"] = str(ipaddress.ip_address(forwarded_for))
        except ValueError:
            pass
    proto = request.headers.get("X-Forwarded-Proto", "").strip().lower()
    if proto in ("http", "https"):
        changes["scheme"] = proto
    return await handler(request.clone(**changes) if changes else request)


async def healthz(request: web.Request) -> web.Response:
    """200 when the database answers, the writer commits and keeps up, and every listener accepts;
    503 otherwise, with the reason of each failing check."""
    platform = request.app[PLATFORM_KEY]
    checks: dict[str, str] = {}
    try:
        await (await platform.reader.execute("SELECT 1")).fetchone()
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        checks["database"] = f"error: {exc}"
    checks["writer"] = platform.writer.health() or "ok"
    for name, listener in platform.listeners.items():
        serving = listener.server is not None and listener.server.is_serving()
        checks[f"listener:{name}"] = "ok" if serving else "down"
    problems = [f"{name}: {value}" for name, value in checks.items() if value != "ok"]
    body: dict[str, object] = {
        "status": "ok" if not problems else "error",
        "checks": checks,
        "write_backlog": platform.writer.backlog,
        "loop_lag_worst_ms": round(platform.loop_lag.worst_s * 1000, 1),
        "loop_held_worst_ms": round(platform.loop_lag.worst_held_s * 1000, 1),
    }
    if problems:
        body["reason"] = "; ".join(problems)
    return web.json_response(body, status=503 if problems else 200)
