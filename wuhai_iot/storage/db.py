"""Opening the SQLite database and bringing its schema up to date.

Migrations are the numbered ``migrations/NNNN_name.sql`` files of this package, applied in order,
each in its own transaction, and recorded in ``schema_migrations``. Before the first migration runs on a
database of an older release, a consistent copy of it is made beside it, named with the schema version it
had (``wuhai-iot.sqlite3.schema-0010``): rolling an upgrade back is restoring that copy. A database that
records a migration this release does not know was made by a newer release: it is refused, unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from wuhai_iot.memory import give_back_after

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
    "PRAGMA temp_store=MEMORY",
)


sqlite3.register_adapter(bool, int)
"""A bool binds as the integer it is either way; without an adapter Python's sqlite3 first looks for one by
raising and clearing two AttributeErrors per parameter (``__adapt__``, ``__conform__``). A lift's latest state
binds eight bools per status: 5.4 µs of the writer thread's GIL-held time a row, 0.7 µs with the adapter."""


class SchemaError(RuntimeError):
    """The database cannot be used by this release (made by a newer one)."""


def migrations() -> list[tuple[int, Path]]:
    """The package's migrations, ordered by number."""
    found = []
    for file in MIGRATIONS_DIR.iterdir():
        match = _MIGRATION_NAME.match(file.name)
        if match:
            found.append((int(match.group(1)), file))
    found.sort()
    numbers = [n for n, _ in found]
    if len(set(numbers)) != len(numbers):
        raise RuntimeError(f"two migrations share a number in {MIGRATIONS_DIR}")
    return found


@contextlib.asynccontextmanager
async def immediate(conn: aiosqlite.Connection) -> AsyncIterator[aiosqlite.Connection]:
    """A write transaction of the block: ``BEGIN IMMEDIATE`` (the write lock at once, so that it never fails
    half-way on a busy database), ``COMMIT`` when the block ends, ``ROLLBACK`` when it raises."""
    await conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")


async def connect(path: Path | str, *, migrate: bool = True) -> aiosqlite.Connection:
    """Open the database (creating its directory), set the pragmas and apply pending migrations.

    The connection is in autocommit mode: callers open transactions with ``BEGIN`` explicitly.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = await aiosqlite.connect(path, isolation_level=None)
    conn.row_factory = aiosqlite.Row
    try:
        for pragma in PRAGMAS:
            await conn.execute(pragma)
        if migrate:
            await apply_migrations(conn, copy_before=path)
    except BaseException:
        await conn.close()  # (its thread would keep the process from exiting)
        raise
    return conn


def as_dicts(rows: Sequence[sqlite3.Row]) -> list[dict[str, Any]]:
    """Rows as dicts (a page's rows, read by name in its template), the column names read once: ``dict(row)``
    asks each row for its keys and then each value by name, ~2.8 µs a row of 14 columns against ~1.4."""
    if not rows:
        return []
    names = rows[0].keys()
    return [dict(zip(names, row)) for row in rows]


async def fetch_one(conn: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Row | None:
    """The first row of a query on a connection that coroutines share (the platform's ``reader``), read in one
    step on the connection's thread.

    ``await conn.execute(...)`` then ``await cursor.fetchone()`` are two steps: in between, the statement holds
    a read snapshot, and another coroutine's query queued there reads that snapshot, missing what the writer
    has just committed (a REGISTER's issued code, then the login that gives it, were not found)."""
    rows = await conn.execute_fetchall(sql, params)
    return next(iter(rows), None)


def connect_point_reader(path: Path | str, timeout_s: float) -> sqlite3.Connection:
    """A read-only connection for point reads made on the event loop's thread (a login's terminal, a fill's
    cylinder: tens of microseconds each, in autocommit, so that each sees the latest commit).

    Handed to a reader thread instead, such a read waits for that thread to get the GIL back from a busy
    loop (up to the interpreter's switch interval, 5 ms, on every hand-over): thousands of terminals logging
    in at once then queued behind each other at a few hundred reads a second. A WAL reader waits for a lock
    only in rare cases (recovery); ``timeout_s`` bounds that wait."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=timeout_s, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA query_only = 1")
    return conn


def connect_sync(path: Path | str) -> sqlite3.Connection:
    """A plain connection with the same pragmas, for a thread of its own (the batch writer's); in
    autocommit mode like ``connect``. The schema must be up to date (``connect`` migrates)."""
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in PRAGMAS:
        conn.execute(pragma)
    return conn


async def apply_migrations(
    conn: aiosqlite.Connection, *, through: int | None = None, copy_before: Path | None = None
) -> list[int]:
    """Apply every migration not yet recorded (up to number ``through``); return the numbers applied.

    With ``copy_before`` (the database's file), a database that has migrations already and is about to
    get more is first copied beside it (``backup.upgrade_copy_path``). SchemaError, before anything is
    written, when the database records a migration this release does not know."""
    known = migrations()
    if await _has_table(conn, "schema_migrations"):
        applied = {row[0] async for row in await conn.execute("SELECT version FROM schema_migrations")}
    else:
        applied = set()
    unknown = sorted(applied - {number for number, _ in known})
    if unknown:
        raise SchemaError(
            f"the database records migration(s) {', '.join(f'{n:04d}' for n in unknown)}, which this release"
            f" does not know (it knows up to {known[-1][0]:04d}): it was made by a newer release of wuhai-iot."
            " Run that release, or restore the copy made before the upgrade (docs/operations.md)"
        )
    pending = [n for n, _ in known if n not in applied and (through is None or n <= through)]
    if copy_before is not None and applied and pending:
        from wuhai_iot.storage.backup import copy_database, upgrade_copy_path

        target = upgrade_copy_path(copy_before, max(applied))
        await asyncio.to_thread(copy_database, copy_before, target)
        log.warning("database at schema version %04d copied to %s before migrating it to %04d",
                    max(applied), target, pending[-1])  # fmt: skip
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
        " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')))"
    )
    done = []
    for number, file in known:
        if number in applied or (through is not None and number > through):
            continue
        # BEGIN IMMEDIATE so that two processes starting together do not both migrate.
        await conn.execute("BEGIN IMMEDIATE")
        try:
            again = await conn.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (number,))
            if await again.fetchone() is None:
                for statement in _statements(file.read_text(encoding="utf-8")):
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (?, ?)", (number, file.stem)
                )
                done.append(number)
            await conn.execute("COMMIT")
        except BaseException:
            await conn.execute("ROLLBACK")
            raise
    if done:
        await give_back_after(f"migrating to {done[-1]:04d}")
    return done


def _statements(script: str) -> list[str]:
    """Split a migration script into statements (``executescript`` would commit on its own)."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                statements.append(current.strip())
            current = ""
    if any(line.strip() and not line.strip().startswith("--") for line in current.splitlines()):
        raise RuntimeError(f"incomplete SQL statement at the end of a migration: {current.strip()[:60]}")
    return statements


async def _has_table(conn: aiosqlite.Connection, name: str) -> bool:
    cursor = await conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
    return await cursor.fetchone() is not None


def schema_version(conn: sqlite3.Connection) -> int:
    """The newest migration a database records (0: none)."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").fetchone() is None:
        return 0
    return int(conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0])
