"""Consistent copies of the database: ``wuhai-iot backup FILE``, ``wuhai-iot restore FILE``, and the copy
made before an upgrade migrates an older database (``db.apply_migrations``).

A copy is made with SQLite's online backup API in one step: one read transaction over the whole file,
so the copy is the database as it was at one instant, whatever the platform writes meanwhile (in WAL
mode a reader never blocks the writer; the WAL only grows until the copy is done). It is written to a
temporary file beside the target, checked, flushed to disk and then renamed over it: a target is never
half-written.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wuhai_iot.plugins.hookspecs import hookimpl
from wuhai_iot.storage import db

EXIT_FAILED = 1
EXIT_RUNNING = 4
"""``restore``: the platform still has the database open."""


class BackupError(Exception):
    """A copy cannot be made or used; the message says why."""


def upgrade_copy_path(database: Path, version: int) -> Path:
    """Where the copy made before migrating a database at schema ``version`` goes: beside it."""
    return database.with_name(f"{database.name}.schema-{version:04d}")


def copy_database(source: Path | str, target: Path | str) -> int:
    """Copy the database ``source`` consistently to ``target`` (replaced if it exists); return the copy's
    schema version. The copy is checked (``PRAGMA quick_check``) before it takes the target's name."""
    source, target = Path(source), Path(target)
    if not source.is_file():
        raise BackupError(f"no database at {source}")
    temporary = target.with_name(f".{target.name}.partial")
    temporary.unlink(missing_ok=True)
    try:
        with _closing(sqlite3.connect(source)) as src, _closing(sqlite3.connect(temporary)) as dst:
            src.execute("PRAGMA busy_timeout=10000")
            src.backup(dst)  # (pages=-1: one step, one read transaction)
            dst.execute("PRAGMA journal_mode=DELETE")  # a copy is one self-contained file
            problem = dst.execute("PRAGMA quick_check").fetchone()[0]
            if problem != "ok":
                raise BackupError(f"the copy of {source} failed its check: {problem}")
            version = db.schema_version(dst)
        _flush(temporary)
        os.replace(temporary, target)
        _flush(target.parent)
    except sqlite3.Error as exc:
        raise BackupError(f"copying {source} to {target} failed: {exc}") from None
    finally:
        temporary.unlink(missing_ok=True)
    return version


def restore_database(backup: Path, database: Path) -> Path | None:
    """Put the copy ``backup`` in place of ``database`` (the platform must be stopped); the database it
    replaces is kept beside it. Returns where that one went (None when there was none)."""
    if not backup.is_file():
        raise BackupError(f"no backup at {backup}")
    try:
        with _closing(sqlite3.connect(backup)) as copy:
            problem = copy.execute("PRAGMA quick_check").fetchone()[0]
            version = db.schema_version(copy)
    except sqlite3.Error as exc:
        raise BackupError(f"{backup} is not a wuhai-iot database: {exc}") from None
    if problem != "ok":
        raise BackupError(f"{backup} failed its check: {problem}")
    if version == 0:
        raise BackupError(f"{backup} is not a wuhai-iot database (it records no migration)")
    newest = db.migrations()[-1][0]
    if version > newest:
        raise BackupError(f"{backup} is at schema version {version:04d}, newer than this release's {newest:04d}:"
                          " restore it with the release that made it")  # fmt: skip
    kept = None
    if database.exists():
        _release_wal(database)
        kept = database.with_name(f"{database.name}.replaced-{datetime.now(UTC):%Y%m%dT%H%M%SZ}")
        os.replace(database, kept)
    database.parent.mkdir(parents=True, exist_ok=True)
    copy_database(backup, database)
    return kept


def _release_wal(database: Path) -> None:
    """Fold the WAL into the database file and leave it in rollback-journal mode, which needs every other
    connection gone: BackupError when the platform (or anything else) still has it open."""
    conn = sqlite3.connect(database, timeout=0)
    try:
        mode = conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
    except sqlite3.OperationalError as exc:
        raise BackupError(f"{database} is in use ({exc}): stop the platform first") from None
    finally:
        conn.close()
    if mode != "delete":
        raise BackupError(f"{database} is in use: stop the platform first")


class _closing:
    """``with`` for a sqlite3 connection that closes it (sqlite3's own ``with`` only commits)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        return self.conn

    def __exit__(self, *exc_info: object) -> None:
        self.conn.close()


def _flush(path: Path) -> None:
    """Make a file's (or a folder's entries') content durable before going on."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def backup_command(args: argparse.Namespace) -> int:
    database = args.settings.database.path
    started = time.monotonic()
    try:
        version = copy_database(database, Path(args.file))
    except BackupError as exc:
        print(f"wuhai-iot backup: {exc}", file=sys.stderr)
        return EXIT_FAILED
    size = Path(args.file).stat().st_size
    print(f"{database} (schema version {version:04d}) copied to {args.file}: {size / 2**20:.1f} MiB"
          f" in {time.monotonic() - started:.1f} s")  # fmt: skip
    return 0


def restore_command(args: argparse.Namespace) -> int:
    database = args.settings.database.path
    try:
        kept = restore_database(Path(args.file), database)
    except BackupError as exc:
        print(f"wuhai-iot restore: {exc}", file=sys.stderr)
        return EXIT_RUNNING if "stop the platform" in str(exc) else EXIT_FAILED
    print(f"{args.file} restored to {database}" + (f"; the database it replaced is kept as {kept}" if kept else ""))
    return 0


@hookimpl
def register_commands(subparsers: "argparse._SubParsersAction[Any]") -> None:
    backup = subparsers.add_parser(
        "backup", help="copy the database consistently to FILE, while the platform runs",
        description="Copy the database named by the configuration to FILE (replaced if it exists). The copy is "
        "the database at one instant, even while the platform serves; it is checked before it takes FILE's name.",
    )  # fmt: skip
    backup.add_argument("file", metavar="FILE")
    backup.set_defaults(handler=backup_command)
    restore = subparsers.add_parser(
        "restore", help="put a backup in place of the database (the platform must be stopped)",
        description="Check FILE and put it in place of the database named by the configuration; the database "
        f"it replaces is kept beside it (NAME.replaced-TIME). Exit {EXIT_RUNNING} while the platform still has "
        "the database open.",
    )  # fmt: skip
    restore.add_argument("file", metavar="FILE")
    restore.set_defaults(handler=restore_command)
