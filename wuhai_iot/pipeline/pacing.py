"""Bounded work per turn of the event loop for the terminals' connections.

After a restart a whole fleet connects at once. ``loop.create_server`` accepts every connection waiting in
the kernel's queue in one go (libuv, under uvloop, loops until the queue is empty: it must, a full queue drops
handshakes, which the terminals' kernels retry only 1, 3, 7 s later), and thousands of LOGINs then became
readable in one turn, each decoded and checked there: the loop ran nothing else (no timer, no fill decision)
for half a second and more.

``Pacer`` gives the connections' work a budget of TURN_BUDGET_S a turn: their frames, and what a connection
does when it opens or closes beside the bookkeeping that cannot wait (its log line, its session's end). A
connection with frames to handle once the budget is spent waits for the next turn, in order of arrival, its
reading paused (TCP holds the rest); logged-in terminals and those still to log in take turns, so that neither
a storm of logins nor heavy ingest starves the other.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

TURN_BUDGET_S = 0.005
"""The connections' work a turn of the event loop may take (the rest of a login, its check and its answer,
follows in later turns: a turn that starts this many logins takes a few times longer)."""


class Pacer:
    """The connections' budget of each turn of the event loop, shared by every listener (see the module's
    doc). A connection asks for its ``time_left`` before handling frames, says what it ``spent``, and when there
    is no time left ``wait``s with the callable that goes on later."""

    def __init__(self, budget_s: float = TURN_BUDGET_S) -> None:
        self.budget_s = budget_s
        self._spent = 0.0
        self._waiting: tuple[collections.deque[Callable[[], None]], ...] = (collections.deque(), collections.deque())
        """Logged-in connections, then those still to log in: each resumed in turn, oldest first."""
        self._next_turn: asyncio.Handle | None = None
        self._resuming = False

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
        if self._next_turn is None:
            self._next_turn = asyncio.get_running_loop().call_soon(self._turn)

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
