"""Bounded work per turn of the event loop for the terminals' connections: accepting, and handling frames.

After a restart a whole fleet connects at once. ``loop.create_server`` accepts every connection waiting in
the kernel's queue in one go (libuv, under uvloop, loops until the queue is empty; asyncio's own loop takes up
to the backlog), and thousands of LOGINs then became readable in one turn, each decoded and checked there:
the loop ran nothing else (no timer, no fill decision) for half a second and more. Two bounds here:

* ``PacedServer`` accepts at most ACCEPTS_PER_TURN connections each time the listening socket is ready; the
  rest wait in the kernel's queue (``backlog``), their LOGIN in their socket's buffer, until the next turn.
  Each accepted socket becomes a transport of the running loop through ``loop.connect_accepted_socket``,
  with the same protocol as ``create_server`` would give it.
* ``Pacer`` gives the connections' frame handling a budget of TURN_BUDGET_S a turn. A connection with frames
  to handle once the budget is spent waits for the next turn, in order of arrival, its reading paused (TCP
  holds the rest); logged-in terminals and those still to log in take turns, so that neither a storm of
  logins nor heavy ingest starves the other.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import logging
import os
import socket
import time
from collections.abc import Callable

from wuhai_iot.logs import RepeatedLog

log = logging.getLogger(__name__)
repeated = RepeatedLog(log)

ACCEPTS_PER_TURN = 64
"""Connections accepted each time the event loop finds the listening socket ready. Each one's setup, then
its LOGIN (decoded, checked, recorded, answered), follows in the next turns: a storm of connections is taken
at the pace the loop gets through them, between everything else it has to do."""
OUT_OF_FILES_PAUSE_S = 1.0
"""When the process has no file descriptor left, accepting stops this long (the connections wait in the
kernel's queue) instead of trying again at every turn."""
OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
TURN_BUDGET_S = 0.005
"""The connections' frame handling a turn of the event loop may take (the rest of a login, its check and its
answer, follows in later turns: a turn that starts this many logins takes a few times longer)."""


class Pacer:
    """The frame-handling budget of the turns of the event loop, shared by every listener (see the module's
    doc). A connection asks for its ``time_left`` before handling frames, says what it ``spent``, and when there
    is no time left ``wait``s with the callable that goes on later."""

    def __init__(self, budget_s: float = TURN_BUDGET_S) -> None:
        self.budget_s = budget_s
        self._spent = 0.0
        self._waiting: tuple[collections.deque[Callable[[], None]], ...] = (collections.deque(), collections.deque())
        """Logged-in connections, then those still to log in: each resumed in turn, oldest first."""
        self._next_turn: asyncio.Handle | None = None
        self._resuming = False
        self.waited = 0
        """How many times a connection had to wait for a later turn (since start)."""

    def time_left(self, logged_in: bool) -> float:
        """How long a connection may handle frames now: what is left of this turn's budget, none while a
        connection of its kind waits before it."""
        if not self._resuming and self._waiting[not logged_in]:
            return 0.0
        return self.budget_s - self._spent

    def spent(self, seconds: float) -> None:
        """Count work done outside a turn's resumptions (those are timed here)."""
        if self._resuming:
            return
        self._spent += seconds
        if self._next_turn is None:
            self._next_turn = asyncio.get_running_loop().call_soon(self._turn)

    def wait(self, resume: Callable[[], None], logged_in: bool) -> None:
        """Call ``resume()`` in a later turn, after those already waiting (of its kind: ``logged_in``)."""
        self._waiting[not logged_in].append(resume)
        self.waited += 1
        if self._next_turn is None:
            self._next_turn = asyncio.get_running_loop().call_soon(self._turn)

    @property
    def backlog(self) -> int:
        """Connections waiting for a turn."""
        return len(self._waiting[0]) + len(self._waiting[1])

    def _turn(self) -> None:
        """A new turn of the event loop: a fresh budget, spent first on the connections waiting (one of each
        kind in turn)."""
        self._next_turn = None
        self._spent = 0.0
        while self._spent < self.budget_s and (self._waiting[0] or self._waiting[1]):
            for waiting in self._waiting:
                if waiting and self._spent < self.budget_s:
                    resume = waiting.popleft()
                    self._resuming = True
                    started = time.perf_counter()
                    try:
                        resume()
                    except Exception:
                        log.exception("a connection's paced work failed")
                    finally:
                        self._resuming = False
                        self._spent += time.perf_counter() - started
        if self._next_turn is None and (self._spent or self._waiting[0] or self._waiting[1]):
            self._next_turn = asyncio.get_running_loop().call_soon(self._turn)


class PacedServer:
    """The listening sockets of one ``host``/``port`` and their paced accepting (see the module's doc)."""

    def __init__(self, sockets: list[socket.socket], protocol_factory: Callable[[], asyncio.Protocol]) -> None:
        self.sockets = sockets
        self._protocol_factory = protocol_factory
        self._loop = asyncio.get_running_loop()
        self._serving = False
        self._setups: set[asyncio.Task[object]] = set()
        """Connections being set up (``connect_accepted_socket`` runs as a task until ``connection_made``)."""

    def start(self) -> None:
        self._serving = True
        for sock in self.sockets:
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    def is_serving(self) -> bool:
        return self._serving

    def _accept(self, sock: socket.socket) -> None:
        for _ in range(ACCEPTS_PER_TURN):
            try:
                connection, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:  # (gone before it was accepted)
                continue
            except OSError as exc:
                if exc.errno not in OUT_OF_RESOURCES:
                    repeated.error(("accept", exc.errno), "accepting a connection on %s failed: %s",
                                   sock.getsockname(), exc)  # fmt: skip
                    return
                repeated.error(("accept", exc.errno), "cannot accept a connection on %s: %s; trying again in %g s",
                               sock.getsockname(), exc.strerror, OUT_OF_FILES_PAUSE_S)  # fmt: skip
                self._loop.remove_reader(sock.fileno())
                self._loop.call_later(OUT_OF_FILES_PAUSE_S, self._resume, sock)
                return
            connection.setblocking(False)
            setup = self._loop.create_task(self._loop.connect_accepted_socket(self._protocol_factory, connection))
            self._setups.add(setup)
            setup.add_done_callback(self._set_up)

    def _set_up(self, setup: asyncio.Task[object]) -> None:
        self._setups.discard(setup)
        exc = None if setup.cancelled() else setup.exception()
        if isinstance(exc, OSError):  # (the peer left meanwhile)
            log.debug("an accepted connection was gone before it was set up: %s", exc)
        elif exc is not None:
            log.error("setting up an accepted connection failed", exc_info=exc)

    def _resume(self, sock: socket.socket) -> None:
        if self._serving:
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    def close(self) -> None:
        """Stop accepting and close the listening sockets (the accepted connections are their protocol's)."""
        if not self._serving:
            return
        self._serving = False
        for sock in self.sockets:
            self._loop.remove_reader(sock.fileno())
            sock.close()

    async def wait_closed(self) -> None:
        """Until the connections accepted before ``close`` are set up (then their protocol closes them)."""
        if self._setups:
            await asyncio.wait(list(self._setups))


async def serve_paced(
    protocol_factory: Callable[[], asyncio.Protocol], host: str, port: int, *, backlog: int
) -> PacedServer:
    """Listen on ``host``:``port`` (every address the host name has, as ``create_server`` does; ``port`` 0
    picks a free one) and accept at the pace of the event loop."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            if os.name == "posix":  # (as create_server: a restart binds while old connections linger)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    server = PacedServer(sockets, protocol_factory)
    server.start()
    return server
