"""``wuhai-iot backup`` while the platform serves under load, ``wuhai-iot restore``, the copy made before an
upgrade migrates an older database, and the refusal of a database made by a newer release."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
from conftest import cli_in_process
from load_support import StatusTerminal, any_free_ports, generate_census, import_census, start_serve

from wuhai_iot.storage import db
from wuhai_iot.storage.backup import upgrade_copy_path

NEWEST = db.migrations()[-1][0]
PREVIOUS_RELEASE = 10
"""A database as an earlier build left it: migrations 0001-0010 (this round added 0012 and 0020)."""


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """An operator's command (``backup``, ``restore``, ...), run in this process: it opens the database with
    connections of its own, as its own process would."""
    status, out, err = cli_in_process(*args)
    return subprocess.CompletedProcess(list(args), status, out, err)


def cli_process(*args: str) -> subprocess.CompletedProcess[str]:
    """The command in a process of its own (``serve``; a ``backup`` that must take a while beside a serving
    platform under load)."""
    return subprocess.run([sys.executable, "-m", "wuhai_iot", *args], capture_output=True, text=True, timeout=120)


def stored_keys(path: Path) -> set[tuple[str, str]]:
    with closing(sqlite3.connect(path)) as conn:
        return set(conn.execute("SELECT terminal_id, dedup_key FROM messages"))


async def test_a_backup_under_load_is_consistent_and_restores(tmp_path: Path) -> None:
    identities = generate_census(tmp_path / "census", 300)
    config = tmp_path / "wuhai-iot.toml"
    process, ports, _ = await start_serve(tmp_path)
    database = tmp_path / "data" / "wuhai-iot.sqlite3"
    backup = tmp_path / "backups" / "wuhai-iot-today.sqlite3"
    backup.parent.mkdir()
    try:
        await import_census(tmp_path / "census", config)
        terminals = [StatusTerminal(terminal_id, key) for terminal_id, key in identities]
        sending = asyncio.Event()
        running = [asyncio.create_task(t.run(ports["elink"], 0.1, sending)) for t in terminals]
        async with asyncio.timeout(60):
            await asyncio.gather(*(t.logged_in.wait() for t in terminals))
            sending.set()
            while sum(len(t.acked) for t in terminals) < 3 * len(terminals):
                await asyncio.sleep(0.05)
        acked_before = {(t.terminal_id, f"{at}:16:{seq}") for t in terminals for seq, at in t.acked}
        made = await asyncio.to_thread(cli_process, "backup", str(backup), "--config", str(config))
        acked_during = sum(len(t.acked) for t in terminals) - len(acked_before)
        assert made.returncode == 0, made.stderr
        assert f"(schema version {NEWEST:04d}) copied to {backup}" in made.stdout
        assert acked_during > 0, "the platform went on storing while the copy was made"

        refused = await asyncio.to_thread(cli, "restore", str(backup), "--config", str(config))
        assert refused.returncode == 4 and "stop the platform first" in refused.stderr
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
        await asyncio.gather(*running)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    with closing(sqlite3.connect(backup)) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",), "one self-contained file"
        count, last = copy.execute("SELECT count(*), max(id) FROM messages").fetchone()
    assert count == last, "the copy is one instant: every message committed before its last one is in it"
    in_copy = stored_keys(backup)
    assert acked_before <= in_copy, "everything acknowledged before the backup began is in it"
    after_stop = stored_keys(database)
    assert in_copy < after_stop

    restored = cli("restore", str(backup), "--config", str(config))
    assert restored.returncode == 0, restored.stderr
    kept = next(tmp_path.glob("data/wuhai-iot.sqlite3.replaced-*"))
    assert f"the database it replaced is kept as {kept}" in restored.stdout
    assert stored_keys(database) == in_copy and stored_keys(kept) == after_stop
    process, ports, _ = await start_serve(tmp_path)  # and the platform runs on it
    try:
        terminal = StatusTerminal(*identities[0])
        sending = asyncio.Event()
        sending.set()
        task = asyncio.create_task(terminal.run(ports["elink"], 0.05, sending))
        async with asyncio.timeout(30):
            while not terminal.acked:
                await asyncio.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
        await task
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def test_restore_refuses_what_is_not_a_usable_backup(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[database]\npath = "db.sqlite3"\n', encoding="utf-8")
    (tmp_path / "junk").write_bytes(b"not a database" * 100)
    result = cli("restore", str(tmp_path / "junk"), "--config", str(config))
    assert result.returncode == 1 and "is not a wuhai-iot database" in result.stderr
    result = cli("restore", str(tmp_path / "missing"), "--config", str(config))
    assert (result.returncode, result.stderr.strip()) == (1, f"wuhai-iot restore: no backup at {tmp_path / 'missing'}")
    result = cli("backup", str(tmp_path / "b"), "--config", str(config))
    assert (result.returncode, result.stderr.strip()) == (1, f"wuhai-iot backup: no database at {tmp_path / 'db.sqlite3'}")
    assert not (tmp_path / "db.sqlite3").exists()


async def test_an_upgrade_copies_the_older_database_first_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "wuhai-iot.sqlite3"
    earlier = await db.connect(path, migrate=False)
    await db.apply_migrations(earlier, through=9)
    await earlier.execute("INSERT INTO messages (protocol, terminal_id, dedup_key, type, seq, received_at, frame)"
                          " VALUES ('elink', '1', '1:16:1', 'STATUS', 1, 1.0, x'00')")  # fmt: skip
    await earlier.close()

    with caplog.at_level(logging.INFO, logger="wuhai_iot.storage.db"):
        await (await db.connect(path)).close()
    copy = upgrade_copy_path(path, 9)
    assert copy == tmp_path / "wuhai-iot.sqlite3.schema-0009"
    with closing(sqlite3.connect(copy)) as conn:
        assert db.schema_version(conn) == 9
        assert conn.execute("SELECT dedup_key FROM messages").fetchall() == [("1:16:1",)]
    with closing(sqlite3.connect(path)) as conn:
        assert db.schema_version(conn) == NEWEST
    assert [r.getMessage() for r in caplog.records] == [
        f"database at schema version 0009 copied to {copy} before migrating it to {NEWEST:04d}"
    ]

    caplog.clear()
    copy.unlink()
    await (await db.connect(path)).close()  # up to date: no copy
    fresh = tmp_path / "new.sqlite3"
    await (await db.connect(fresh)).close()  # a new database: nothing to copy
    assert not copy.exists() and list(tmp_path.glob("*.schema-*")) == [] and caplog.records == []


def test_a_database_of_a_newer_release_is_refused_unchanged(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[database]\npath = "db.sqlite3"\n[web]\nport = 0\n' + any_free_ports(), encoding="utf-8")
    path = tmp_path / "db.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                       " applied_at TEXT NOT NULL DEFAULT '');"
                       f"INSERT INTO schema_migrations (version, name) VALUES (1, '0001_registry'),"
                       f" ({NEWEST + 1}, '{NEWEST + 1:04d}_from_the_future');")  # fmt: skip
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    before = hashlib.sha256(path.read_bytes()).hexdigest()

    result = cli_process("serve", "--config", str(config))
    assert result.returncode == 3, result.stderr
    assert (f"the database records migration(s) {NEWEST + 1:04d}, which this release does not know"
            f" (it knows up to {NEWEST:04d})") in result.stderr  # fmt: skip
    assert "listening" not in result.stderr and "Traceback" not in result.stderr
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert not list(tmp_path.glob("db.sqlite3.schema-*"))
    result = cli("users", "list", "--config", str(config))  # any command that opens it
    assert result.returncode == 3 and "made by a newer release" in result.stderr
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


async def test_serve_on_the_previous_releases_database_keeps_a_copy_and_logs_it(tmp_path: Path) -> None:
    """As an operator upgrades: the service restarts on the database the previous release left."""
    database = tmp_path / "data" / "wuhai-iot.sqlite3"
    database.parent.mkdir()
    earlier = await db.connect(database, migrate=False)
    await db.apply_migrations(earlier, through=PREVIOUS_RELEASE)
    await earlier.close()
    process, _, log = await start_serve(tmp_path)
    process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.wait(), 30) == 0
    copy = upgrade_copy_path(database, PREVIOUS_RELEASE)
    assert (f"database at schema version {PREVIOUS_RELEASE:04d} copied to {copy} before migrating it to {NEWEST:04d}"
            in log.read_text(encoding="utf-8"))  # fmt: skip
    with closing(sqlite3.connect(copy)) as conn:
        assert db.schema_version(conn) == PREVIOUS_RELEASE
    with closing(sqlite3.connect(database)) as conn:
        assert db.schema_version(conn) == NEWEST
