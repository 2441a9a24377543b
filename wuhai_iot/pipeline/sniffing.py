"""The optional ``auto`` port: one TCP port for every protocol, recognised by a connection's first bytes.

Installers need not know which port a terminal speaks to: ``[protocols.auto] port = 5700`` (``config.AUTO``). A new
connection's first bytes are shown to every served protocol's ``sniff``; the first protocol (by name) to
claim them gets the connection, exactly as if it had connected to that protocol's own port (the bytes
read so far included). When every protocol refuses them, after SNIFF_MAX_BYTES without a claim, or after
SNIFF_TIMEOUT_S of silence, the connection is closed with a log line naming what was seen.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import cast

from wuhai_iot.config import LimitsConfig
from wuhai_iot.logs import RepeatedLog
from wuhai_iot.pipeline.listener import LISTEN_BACKLOG, Listener, TerminalConnection

log = logging.getLogger(__name__)
repeated = RepeatedLog(log)

SNIFF_MAX_BYTES = 64
"""A protocol that cannot tell its frames from these many first bytes does not get the connection."""
SNIFF_TIMEOUT_S = 10.0


class SniffingConnection(asyncio.Protocol):
    """A connection on the auto port until a protocol claims it."""

    def __init__(self, auto: AutoListener) -> None:
        self.auto = auto
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.first_bytes = bytearray()
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        most = self.auto.limits.connections_per_listener
        if most and len(self.auto.pending) >= most:
            # (the per-address limit applies once a protocol has the connection)
            self.auto.refused += 1
            repeated.log(logging.WARNING, ("auto port", "full"), "auto port: refusing %s: %d connections are being"
                         " recognised, the most at once", self.peer, len(self.auto.pending))  # fmt: skip
            self.transport.abort()
            return
        self.auto.pending.add(self)
        self._timer = asyncio.get_running_loop().call_later(self.auto.timeout_s, self._silent)

    def data_received(self, data: bytes) -> None:
        if self not in self.auto.pending:  # refused, or already handed over
            return
        self.first_bytes += data
        seen = bytes(self.first_bytes[:SNIFF_MAX_BYTES])
        undecided = False
        for name, listener in sorted(self.auto.listeners.items()):
            verdict = listener.protocol.sniff(seen)
            if verdict is True:
                self._hand_over(listener)
                return
            undecided = undecided or verdict is None
        if not undecided:
            self._refuse(f"no protocol recognises its first bytes {seen.hex(' ')}")
        elif len(self.first_bytes) >= SNIFF_MAX_BYTES:
            self._refuse(f"no protocol recognised it within {SNIFF_MAX_BYTES} bytes: {seen.hex(' ')}")

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        self.auto.pending.discard(self)

    def _hand_over(self, listener: Listener) -> None:
        assert self.transport is not None
        self._stop_timer()
        self.auto.pending.discard(self)
        self.auto.handed_over[listener.protocol.name] = self.auto.handed_over.get(listener.protocol.name, 0) + 1
        connection = TerminalConnection(listener)
        self.transport.set_protocol(connection)
        connection.connection_made(self.transport)
        connection.data_received(bytes(self.first_bytes))

    def _silent(self) -> None:
        what = f"only {bytes(self.first_bytes).hex(' ')}" if self.first_bytes else "nothing"
        self._refuse(f"sent {what} within {self.auto.timeout_s:g} s")

    def _refuse(self, why: str) -> None:
        log.warning("auto port: closing %s: %s", self.peer, why)
        self.auto.refused += 1
        self._stop_timer()
        if self.transport is not None:
            self.transport.close()

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


@dataclass
class AutoListener:
    """The auto port's TCP server; ``listeners`` are the served protocols' own listeners."""

    listeners: dict[str, Listener]
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    timeout_s: float = SNIFF_TIMEOUT_S
    pending: set[SniffingConnection] = field(default_factory=set)
    handed_over: dict[str, int] = field(default_factory=dict)
    """Connections handed to each protocol since start."""
    refused: int = 0
    server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        """Start listening; return the port actually bound."""
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: SniffingConnection(self), host, port, backlog=LISTEN_BACKLOG)
        return self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop accepting and close the connections not yet recognised (handed-over ones belong to their
        protocol's listener, which closes them)."""
        if self.server is not None:
            self.server.close()
        for connection in list(self.pending):
            if connection.transport is not None:
                connection.transport.close()
        if self.server is not None:
            await self.server.wait_closed()
