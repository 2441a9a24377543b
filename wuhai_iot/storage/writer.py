"""The one writer: every ingest write goes through it, batched into few transactions.

Thousands of frames a second must not mean thousands of transactions, and a frame may be acknowledged
only once it is committed. So callers submit a ``WriteUnit`` and get a future that completes when the
transaction holding it has committed, or, on the hot path, ``enqueue`` a unit whose ``on_commit`` is
called then (a future and its scheduled callback cost more than the ACK they would carry). A unit may
carry a *dedup* insert (``INSERT OR IGNORE`` on a unique key): it tells whether the unit is new, and
only a new unit's ``on_new`` callback runs — inside the same transaction, so what it derives (an alarm,
a latest state) commits together with the message.

The writer owns one SQLite connection on one thread of its own, and hands that thread whole steps of a
transaction, not statements: a statement at a time (as ``aiosqlite`` does) costs an event-loop turn per
statement, and under load a turn is tens of milliseconds. A batch's transaction is two steps:

1. ``BEGIN`` and the dedup inserts (thread); then the new units' ``on_new`` (event loop);
2. the derived statements and ``COMMIT`` (thread) — chained in the same step with step 1 of the next
   batch. While the thread commits, the event loop acknowledges the batch committed before.

Within one batch, statements are grouped by their SQL text in order of first appearance, keeping the
order inside each group. Changes therefore should be idempotent upserts of whole rows, which makes
their order across different statements irrelevant.

Each group of ``INSERT ... VALUES (?, ...)`` rows runs as multi-row statements, not ``executemany``.
Python's sqlite3 releases the GIL around every ``sqlite3_step``; with executemany that is once a row,
and while the event loop keeps the GIL busy the writer thread waits a switch interval (5 ms) to get it
back each time: 1,000 rows took seconds under load. One statement of many rows is one step.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from wuhai_iot.logs import RepeatedLog
from wuhai_iot.storage import db

log = logging.getLogger(__name__)
repeated = RepeatedLog(log)

Statement = tuple[str, Sequence[Any]]
_T = TypeVar("_T")

MAX_VARIABLES = 32766 if sqlite3.sqlite_version_info >= (3, 32) else 999
MAX_ROWS_PER_STATEMENT = 500
_VALUES = re.compile(r"\bVALUES\s*(\(\s*\?(?:\s*,\s*\?)*\s*\))", re.IGNORECASE)

LOOP_SLICE_S = 0.001
"""Longest stretch of work before yielding to the event loop: a large batch never stalls it for long
(fill decisions wait behind whatever runs in the loop)."""
ACK_CALLBACK_S = 0.00002
"""About what one committed unit's callback (encoding and writing its ACK) costs."""
STALLED_AFTER_S = 10.0
"""Units waiting and no commit for this long: the writer is unhealthy (``health``)."""
MAX_HEALTHY_BACKLOG = 200_000
"""More units waiting than this: the writer is falling behind (``health``)."""
FAILING_PAUSE_S = 0.2
"""While commits fail (a full disk), wait this long between attempts instead of spinning."""


class WriterClosed(Exception):
    """The batch writer is closed (the platform is stopping): nothing more can be queued."""


@dataclass(slots=True)
class WriteUnit:
    statements: Sequence[Statement] = ()
    dedup: Statement | None = None
    """An ``INSERT OR IGNORE`` that inserts nothing when this unit was stored before."""
    on_new: Callable[..., list[Statement]] | None = None
    """``on_new(*args)`` runs once the unit is known to be new; returns more statements for the same
    transaction."""
    on_commit: Callable[..., None] | None = None
    """For ``enqueue``: ``on_commit(*args, outcome)``, the outcome being True (new) or False (a duplicate)
    once committed, or the error that kept the unit from committing."""
    args: tuple[Any, ...] = ()
    """What the callbacks are called with (as ``loop.call_soon`` does: no closure per message)."""
    future: asyncio.Future[bool] | None = None
    """For ``submit``: the future it returned."""


class BatchWriter:
    """Runs submitted units on its own connection, many per transaction."""

    def __init__(self, path: Path | str, *, max_batch: int = 1000) -> None:
        self._path = path
        self._max_batch = max_batch
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self._db: sqlite3.Connection | None = None
        self._pending: list[WriteUnit] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.batches = 0
        self.units = 0
        self.failure: str | None = None
        """Why the last attempt to commit failed; None once a commit succeeds again."""
        self.failing_since: float | None = None
        """When commits began to fail (Unix time)."""
        self._failure_keys: set[tuple[str, ...]] = set()
        self._progress_at = time.monotonic()
        """When a transaction last committed, or the writer last found nothing to do."""

    async def start(self) -> None:
        """Open the connection (on the writer's thread) and start writing."""
        self._db = await self._call(db.connect_sync, self._path)
        self._task = asyncio.create_task(self._run(), name="batch-writer")

    def submit(self, unit: WriteUnit) -> asyncio.Future[bool]:
        """Queue a unit; the future gives True when it was new, False for a duplicate, once committed.
        WriterClosed once ``close`` has begun."""
        if self._closing:
            raise WriterClosed("the writer is closed")
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        unit.future = future
        self._pending.append(unit)
        self._wakeup.set()
        return future

    def enqueue(self, unit: WriteUnit) -> None:
        """Queue a unit that reports through its ``on_commit`` instead of a future."""
        if self._closing:
            raise WriterClosed("the writer is closed")
        if unit.on_commit is None:
            raise ValueError("an enqueued unit needs on_commit")
        self._pending.append(unit)
        self._wakeup.set()

    async def write(self, statements: list[Statement]) -> None:
        """Commit plain statements (not deduplicated) and wait for it."""
        await self.submit(WriteUnit(statements=statements))

    @property
    def backlog(self) -> int:
        return len(self._pending)

    def health(self) -> str | None:
        """Why the writer is not healthy (commits fail, stall or fall behind), or None when it is."""
        if self.failure is not None:
            since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.failing_since or 0))
            return f"cannot commit since {since}: {self.failure}"
        waiting = len(self._pending)
        stalled_s = time.monotonic() - self._progress_at
        if waiting and stalled_s > STALLED_AFTER_S:
            return f"no commit for {stalled_s:.0f} s with {waiting} units waiting"
        if waiting > MAX_HEALTHY_BACKLOG:
            return f"{waiting} units waiting (more than {MAX_HEALTHY_BACKLOG})"
        return None

    def _failed(self, what: str, count: int, exc: BaseException) -> None:
        """A step failed: remember why (``health``); log it once per kind of error, then count."""
        if self.failure is None:
            self.failing_since = time.time()
        self.failure = f"{type(exc).__name__}: {exc}"
        key = ("writer", what, self.failure)
        self._failure_keys.add(key)
        repeated.error(key, "%s a batch of %d units failed (%s); retrying them one by one", what, count,
                       self.failure, exc_info=not isinstance(exc, sqlite3.OperationalError))  # fmt: skip

    def _committed(self, wrote: bool) -> None:
        """A transaction committed; ``wrote``: it changed something (one that changed nothing commits
        even on a full disk: it proves nothing)."""
        self._progress_at = time.monotonic()
        if self.failure is not None and wrote:
            log.warning("the writer commits again (commits failed since %s: %s)",
                        time.strftime("%H:%M:%S", time.gmtime(self.failing_since or 0)), self.failure)  # fmt: skip
            self.failure = self.failing_since = None
            for key in self._failure_keys:
                repeated.resolved(key)
            self._failure_keys.clear()

    async def close(self) -> None:
        """Commit everything already submitted, then stop and close the connection."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
        if self._db is not None:
            await self._call(self._db.close)
            self._db = None
        self._executor.shutdown()

    def _call(self, function: Callable[..., _T], *args: Any) -> asyncio.Future[_T]:
        """Run ``function(*args)`` on the writer's thread."""
        return asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    def _take(self) -> list[WriteUnit]:
        batch = self._pending[: self._max_batch]
        del self._pending[: self._max_batch]
        return batch

    async def _run(self) -> None:
        conn = self._db
        assert conn is not None
        batch: list[WriteUnit] = []  # the open transaction's units: begun, their dedup inserts run
        new: list[bool] = []  # which of them are new
        done: tuple[list[WriteUnit], list[bool]] = ([], [])  # committed, their callbacks not run yet
        while True:
            if not batch:
                await self._release(*done)
                done = ([], [])
                if not self._pending:
                    if self._closing:
                        return
                    await self._wakeup.wait()
                    self._wakeup.clear()
                    if self.failure is None:
                        self._progress_at = time.monotonic()
                    continue
                if self.failure is not None:
                    await asyncio.sleep(FAILING_PAUSE_S)
                batch = self._take()
                try:
                    new = await self._call(_begin, conn, batch)
                except Exception as exc:
                    self._failed("beginning", len(batch), exc)
                    await self._one_by_one(conn, batch)
                    batch = []
                    continue
            try:
                groups = await self._derive(batch, new)
            except Exception:
                log.exception("deriving a batch of %d units failed; retrying them one by one", len(batch))
                await self._call(_rollback, conn)
                await self._release(*done)  # (a terminal's ACKs stay in order)
                done = ([], [])
                await self._one_by_one(conn, batch)
                batch = []
                continue
            following = self._take()
            step = self._call(_commit_and_begin, conn, groups, following)
            await self._release(*done)  # the batch before: its callbacks run while this one commits
            done = ([], [])
            try:
                wrote, began = await step
            except Exception as exc:
                self._failed("committing", len(batch), exc)
                self._pending[:0] = following
                await self._one_by_one(conn, batch)
                batch = []
                continue
            self.batches += 1
            self.units += len(batch)
            self._committed(wrote)
            done = (batch, new)
            if isinstance(began, Exception):
                self._failed("beginning", len(following), began)
                await self._release(*done)
                done = ([], [])
                await self._one_by_one(conn, following)
                batch = []
            else:
                batch, new = following, began

    async def _one_by_one(self, conn: sqlite3.Connection, units: list[WriteUnit]) -> None:
        """Each unit in a transaction of its own (after a batch failed): one bad unit fails alone."""
        for unit in units:
            if unit.future is not None and unit.future.cancelled():
                continue
            try:
                (is_new,) = await self._call(_begin, conn, [unit])
                try:
                    groups = await self._derive([unit], [is_new])
                except BaseException:
                    await self._call(_rollback, conn)
                    raise
                wrote, _ = await self._call(_commit_and_begin, conn, groups, [])
            except Exception as exc:  # noqa: BLE001 - the caller decides what a failed write means
                if isinstance(exc, sqlite3.OperationalError):  # the database, not this unit: it fails for all
                    self._failed("committing", 1, exc)
                _settle(unit, exc)
            else:
                self._committed(wrote)
                _settle(unit, is_new)

    async def _release(self, units: list[WriteUnit], new: list[bool]) -> None:
        """Run committed units' callbacks (ACKs), in slices of the event loop's time."""
        per_slice = max(1, int(LOOP_SLICE_S / ACK_CALLBACK_S))
        for index, (unit, is_new) in enumerate(zip(units, new, strict=True), 1):
            _settle(unit, is_new)
            if index % per_slice == 0:
                await asyncio.sleep(0)

    async def _derive(self, batch: list[WriteUnit], new: list[bool]) -> dict[str, list[Sequence[Any]]]:
        """Run the new units' ``on_new`` (in the event loop, in slices) and group every statement by SQL."""
        groups: dict[str, list[Sequence[Any]]] = {}
        slice_started = time.perf_counter()
        for unit, is_new in zip(batch, new, strict=True):
            if is_new and unit.on_new is not None:
                # Derive once: a retried unit must not feed its events to the rules twice.
                unit.statements = [*unit.statements, *unit.on_new(*unit.args)]
                unit.on_new = None
                if time.perf_counter() - slice_started > LOOP_SLICE_S:
                    await asyncio.sleep(0)  # consumers run in the loop: let fill decisions through
                    slice_started = time.perf_counter()
            for sql, params in unit.statements:
                rows = groups.get(sql)
                if rows is None:
                    rows = groups[sql] = []
                rows.append(params)
        return groups


def _settle(unit: WriteUnit, outcome: bool | BaseException) -> None:
    future = unit.future
    if future is not None:
        if future.cancelled():
            return
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
    elif unit.on_commit is not None:
        try:
            unit.on_commit(*unit.args, outcome)
        except Exception:
            log.exception("a write unit's on_commit failed")


# --- on the writer's thread ---------------------------------------------------------------------------

_thread = threading.local()
"""The writer thread's own state: ``changes_at_begin``, the connection's change count when the open
transaction began."""


def _begin(conn: sqlite3.Connection, units: list[WriteUnit]) -> list[bool]:
    """Begin a transaction and run the units' dedup inserts: which units are new (rolled back on failure)."""
    conn.execute("BEGIN IMMEDIATE")
    _thread.changes_at_begin = conn.total_changes
    try:
        return _deduplicate(conn, units)
    except BaseException:
        _rollback(conn)
        raise


def _commit_and_begin(
    conn: sqlite3.Connection, groups: dict[str, list[Sequence[Any]]], following: list[WriteUnit]
) -> tuple[bool, list[bool] | Exception]:
    """Run the open transaction's statements and commit; then begin the next with ``following``.
    Return whether the committed transaction changed anything, and the next one's ``_begin``.

    A failed commit raises (rolled back); a failed begin is returned, not raised: the commit held."""
    try:
        for sql, rows in groups.items():
            _execute_rows(conn, sql, rows)
        wrote = conn.total_changes > _thread.changes_at_begin
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise
    if not following:
        return wrote, []
    try:
        return wrote, _begin(conn, following)
    except Exception as exc:  # noqa: BLE001 - returned to the event loop, which retries one by one
        return wrote, exc


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def _deduplicate(conn: sqlite3.Connection, units: list[WriteUnit]) -> list[bool]:
    """Run the dedup inserts; a unit without one is always new."""
    new = [True] * len(units)
    groups: dict[str, list[int]] = {}
    for index, unit in enumerate(units):
        if unit.dedup is not None:
            groups.setdefault(unit.dedup[0], []).append(index)
    for sql, indexes in groups.items():
        rows = [units[i].dedup[1] for i in indexes]  # type: ignore[index]
        conn.execute("SAVEPOINT dedup")
        if _execute_rows(conn, sql, rows) == len(rows):
            conn.execute("RELEASE dedup")
            continue
        # Some were stored before (resends): find out which, one by one. Rare.
        conn.execute("ROLLBACK TO dedup")
        conn.execute("RELEASE dedup")
        for index, row in zip(indexes, rows, strict=True):
            new[index] = conn.execute(sql, row).rowcount == 1
    return new


def _execute_rows(conn: sqlite3.Connection, sql: str, rows: list[Sequence[Any]]) -> int:
    """Run ``sql`` for every row; return how many rows it changed."""
    split = _split_values(sql)
    if split is None or len(rows) == 1:
        return conn.executemany(sql, rows).rowcount
    prefix, group, suffix = split
    per_statement = max(1, min(MAX_ROWS_PER_STATEMENT, MAX_VARIABLES // group.count("?")))
    changed = 0
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        statement = prefix + ", ".join([group] * len(chunk)) + suffix
        changed += conn.execute(statement, list(itertools.chain.from_iterable(chunk))).rowcount
    return changed


@functools.lru_cache(maxsize=256)
def _split_values(sql: str) -> tuple[str, str, str] | None:
    """``INSERT ... VALUES (?, ?) ...`` → (text before the row, the row's placeholders, text after)."""
    if not sql.lstrip().upper().startswith(("INSERT", "REPLACE")):
        return None
    matches = list(_VALUES.finditer(sql))
    if len(matches) != 1:
        return None
    match = matches[0]
    return sql[: match.start(1)], match.group(1), sql[match.end(1) :]
