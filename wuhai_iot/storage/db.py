"""Opening the SQLite database and bringing its schema up to date.

Migrations are the numbered ``migrations/NNNN_name.sql`` files of this package, applied in order,
each in its own transaction, and recorded in ``schema_migrations``.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import aiosqlite

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
    "PRAGMA temp_store=MEMORY",
)


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


async def connect(path: Path | str, *, migrate: bool = True) -> aiosqlite.Connection:
    """Open the database (creating its directory), set the pragmas and apply pending migrations.

    The connection is in autocommit mode: callers open transactions with ``BEGIN`` explicitly.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = await aiosqlite.connect(path, isolation_level=None)
    conn.row_factory = aiosqlite.Row
    for pragma in PRAGMAS:
        await conn.execute(pragma)
    if migrate:
        await apply_migrations(conn)
    return conn


def connect_sync(path: Path | str) -> sqlite3.Connection:
    """A plain connection with the same pragmas, for a thread of its own (the batch writer's); in
    autocommit mode like ``connect``. The schema must be up to date (``connect`` migrates)."""
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in PRAGMAS:
        conn.execute(pragma)
    return conn


async def apply_migrations(conn: aiosqlite.Connection, *, through: int | None = None) -> list[int]:
    """Apply every migration not yet recorded (up to number ``through``); return the numbers applied."""
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
        " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')))"
    )
    applied = {row[0] async for row in await conn.execute("SELECT version FROM schema_migrations")}
    done = []
    for number, file in migrations():
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
