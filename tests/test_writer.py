"""The batch writer against a real SQLite file: dedup, derived statements in the same transaction,
callbacks only after the commit, and a bad unit failing alone wherever in the pipeline it fails."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from wuhai_iot.storage.writer import BatchWriter, Statement, WriteUnit, WriterClosed
from wuhai_iot.tasks import supervised

SCHEMA = (
    "CREATE TABLE messages (key TEXT PRIMARY KEY, body TEXT NOT NULL)",
    "CREATE TABLE derived (key TEXT NOT NULL, note TEXT NOT NULL)",
)
MESSAGE = "INSERT OR IGNORE INTO messages (key, body) VALUES (?, ?)"
DERIVED = "INSERT INTO derived (key, note) VALUES (?, ?)"


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "writer.sqlite3"
    with sqlite3.connect(path) as conn:
        for statement in SCHEMA:
            conn.execute(statement)
    return path


@pytest.fixture
async def writer(database: Path) -> AsyncIterator[BatchWriter]:
    writer = BatchWriter(database, max_batch=10)
    await writer.start()
    yield writer
    await writer.close()


def committed(database: Path, table: str) -> list[tuple[str, ...]]:
    """What another connection sees: only committed rows."""
    with sqlite3.connect(database) as conn:
        return sorted(conn.execute(f"SELECT * FROM {table}"))


class Recorder:
    """Callbacks of enqueued units: what each derived, and what another connection saw at its commit."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self.derived: list[str] = []
        self.outcomes: dict[str, bool | BaseException] = {}
        self.visible_at_commit: dict[str, bool] = {}
        self.done = asyncio.Event()
        self.expected = 0

    def on_new(self, key: str, note: str | None = "ok") -> list[Statement]:
        self.derived.append(key)
        return [(DERIVED, (key, note))]

    def on_commit(self, key: str, note: str | None, outcome: bool | BaseException) -> None:
        self.outcomes[key] = outcome
        self.visible_at_commit[key] = (key, "body") in committed(self.database, "messages")
        if len(self.outcomes) == self.expected:
            self.done.set()

    def unit(self, key: str, *, dedup: str = MESSAGE, note: str | None = "ok") -> WriteUnit:
        self.expected += 1
        return WriteUnit(dedup=(dedup, (key, "body")), on_new=self.on_new, on_commit=self.on_commit, args=(key, note))


def broken(key: str, note: str | None) -> list[Statement]:
    raise RuntimeError("a consumer failed")


def enqueue_with_following(writer: BatchWriter, recorder: Recorder, count: int, following: list[WriteUnit]) -> None:
    """Queue units m0 … m{count-1}; while m0 derives, queue ``following``: they become the batch begun
    in the same step as the first one commits."""

    def on_new_queueing_more(key: str, note: str | None) -> list[Statement]:
        if key == "m0":
            for unit in following:
                writer.enqueue(unit)
        return recorder.on_new(key, note)

    for n in range(count):
        unit = recorder.unit(f"m{n}")
        unit.on_new = on_new_queueing_more
        writer.enqueue(unit)


async def test_units_commit_with_what_they_derive_and_are_acknowledged_only_after_the_commit(
    writer: BatchWriter, database: Path
) -> None:
    recorder = Recorder(database)
    for n in range(35):  # four batches of at most ten, pipelined
        writer.enqueue(recorder.unit(f"m{n}"))
    await asyncio.wait_for(recorder.done.wait(), 10)
    assert recorder.outcomes == {f"m{n}": True for n in range(35)}
    assert all(recorder.visible_at_commit.values())
    assert committed(database, "derived") == sorted((f"m{n}", "ok") for n in range(35))
    assert writer.batches >= 4 and writer.units == 35


async def test_a_unit_stored_before_is_not_derived_again(writer: BatchWriter, database: Path) -> None:
    recorder = Recorder(database)
    await writer.submit(WriteUnit(dedup=(MESSAGE, ("resent", "body"))))
    for key in ("fresh", "resent", "fresh"):
        writer.enqueue(recorder.unit(key))
    recorder.expected = 2  # "fresh" twice: the outcome of the second replaces the first
    await writer.write([])
    assert recorder.derived == ["fresh"]
    assert recorder.outcomes == {"fresh": False, "resent": False}
    assert committed(database, "derived") == [("fresh", "ok")]


async def test_a_unit_whose_derived_statement_fails_fails_alone_and_nothing_is_derived_twice(
    writer: BatchWriter, database: Path, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder(database)
    for n in range(8):
        writer.enqueue(recorder.unit(f"m{n}", note=None if n == 3 else "ok"))  # NOT NULL fails at commit
    await asyncio.wait_for(recorder.done.wait(), 10)
    assert "committing a batch of 8 units failed" in caplog.text
    assert isinstance(recorder.outcomes.pop("m3"), sqlite3.IntegrityError)
    assert recorder.outcomes == {f"m{n}": True for n in range(8) if n != 3}
    assert sorted(recorder.derived) == sorted(f"m{n}" for n in range(8))
    assert committed(database, "messages") == sorted((f"m{n}", "body") for n in range(8) if n != 3)
    assert committed(database, "derived") == sorted((f"m{n}", "ok") for n in range(8) if n != 3)


async def test_a_unit_whose_dedup_insert_fails_in_the_next_batch_fails_alone(
    writer: BatchWriter, database: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The next batch begins in the same step as the one before commits: its failure must not undo
    that commit, and only the bad unit of it fails."""
    recorder = Recorder(database)
    bad = recorder.unit("bad", dedup=MESSAGE.replace("messages", "no_such_table"))
    enqueue_with_following(writer, recorder, 3, [recorder.unit("later-1"), bad, recorder.unit("later-2")])
    await asyncio.wait_for(recorder.done.wait(), 10)
    assert "beginning a batch of 3 units failed" in caplog.text
    assert isinstance(recorder.outcomes.pop("bad"), sqlite3.OperationalError)
    assert recorder.outcomes == {"m0": True, "m1": True, "m2": True, "later-1": True, "later-2": True}
    assert committed(database, "derived") == sorted((key, "ok") for key in ("m0", "m1", "m2", "later-1", "later-2"))


async def test_a_failing_on_new_fails_its_unit_alone(writer: BatchWriter, database: Path) -> None:
    recorder = Recorder(database)
    units = [recorder.unit(f"m{n}") for n in range(4)]
    units[1].on_new = broken
    for unit in units:
        writer.enqueue(unit)
    await asyncio.wait_for(recorder.done.wait(), 10)
    assert isinstance(recorder.outcomes.pop("m1"), RuntimeError)
    assert recorder.outcomes == {"m0": True, "m2": True, "m3": True}
    assert committed(database, "messages") == [("m0", "body"), ("m2", "body"), ("m3", "body")]


async def test_callbacks_run_in_the_order_units_were_queued_even_when_a_later_batch_fails(
    writer: BatchWriter, database: Path
) -> None:
    """A terminal's ACKs go out in order: the batch committed before a failing one is acknowledged first."""
    recorder = Recorder(database)
    following = [recorder.unit(f"m{n}") for n in range(10, 13)]
    following[1].on_new = broken
    enqueue_with_following(writer, recorder, 10, following)
    await asyncio.wait_for(recorder.done.wait(), 10)
    assert list(recorder.outcomes) == [f"m{n}" for n in range(13)]
    assert isinstance(recorder.outcomes["m11"], RuntimeError)


async def test_closing_commits_everything_submitted(database: Path) -> None:
    writer = BatchWriter(database, max_batch=10)
    await writer.start()
    recorder = Recorder(database)
    for n in range(25):
        writer.enqueue(recorder.unit(f"m{n}"))
    await writer.close()
    assert len(recorder.outcomes) == 25 and all(outcome is True for outcome in recorder.outcomes.values())
    assert len(committed(database, "derived")) == 25
    with pytest.raises(WriterClosed):
        writer.enqueue(recorder.unit("too-late"))
    with pytest.raises(WriterClosed):
        writer.submit(WriteUnit(statements=[("SELECT 1", ())]))


async def test_a_supervised_task_restarts_after_an_unexpected_error_and_ends_when_the_writer_closes(
    database: Path, caplog: pytest.LogCaptureFixture
) -> None:
    writer = BatchWriter(database)
    await writer.start()
    runs: list[int] = []
    second_run = asyncio.Event()

    async def work() -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            raise RuntimeError("a bug in the first run")
        second_run.set()
        while True:
            await writer.write([])  # WriterClosed once the writer is closed
            await asyncio.sleep(0)

    task = supervised(work, "test-work", restart_after_s=0)
    await asyncio.wait_for(second_run.wait(), 5)
    assert "test-work failed; restarting it" in caplog.text and "a bug in the first run" in caplog.text
    await writer.close()
    await asyncio.wait_for(task, 5)  # ended by WriterClosed, not restarted
    assert runs == [0, 1] and task.result() is None


async def test_a_supervised_task_stops_when_cancelled() -> None:
    started = asyncio.Event()

    async def work() -> None:
        started.set()
        await asyncio.Event().wait()

    task = supervised(work, "test-cancelled")
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
