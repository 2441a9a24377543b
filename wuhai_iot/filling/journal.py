"""The decision journal: a fill decision's record is on disk before its answer leaves.

The batch writer commits a decision's record a few milliseconds after the answer (awaiting the commit
would put every decision behind the status traffic in the writer's queue, far beyond the controllers'
patience). Between the answer and that commit the record lived only in memory: a process killed there,
or a disk that failed there, left a permitted fill nobody could trace. So the decider first appends the
record to this file (one ``write`` to the page cache, a few microseconds: the same durability as the
database's own WAL commits with ``synchronous=NORMAL``), and answers *permit* only when that worked;
otherwise it denies (reason 99).

The file holds the ``fill_decisions`` rows as JSON lines. At start, rows not in the database (the
process died before their commit) are inserted from it; once every journalled row has committed, the
file is emptied.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)

EMPTY_AT_BYTES = 1 << 20
"""The file is emptied once all its rows have committed and it has grown past this size."""


def journal_path(database: Path | str) -> Path:
    """Where the journal of the database at ``database`` lives (beside it)."""
    return Path(f"{database}.decisions.journal")


class DecisionJournal:
    """Appends decision rows; knows how many are not committed yet."""

    def __init__(self, path: Path, *, empty: bool = False) -> None:
        """Open (create) the journal; ``empty``: its rows are all in the database, start it afresh."""
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | (os.O_TRUNC if empty else 0), 0o600)
        self._size = os.fstat(self._fd).st_size
        self._uncommitted = 0

    def append(self, row: Sequence[Any]) -> None:
        """Write one row; raise OSError when it could not be written whole (nothing of it is kept then)."""
        data = orjson.dumps(row) + b"\n"
        if self._fd < 0:
            raise OSError("the decision journal is closed")
        try:
            written = os.write(self._fd, data)
            if written != len(data):
                raise OSError(f"only {written} of {len(data)} bytes written (disk full?)")
        except OSError:
            try:  # a torn line would join the next one: cut it off
                os.ftruncate(self._fd, self._size)
            except OSError:
                pass
            raise
        self._size += len(data)
        self._uncommitted += 1

    def committed(self) -> None:
        """One journalled row has committed in the database."""
        self._uncommitted -= 1
        if self._uncommitted == 0 and self._size > EMPTY_AT_BYTES and self._fd >= 0:
            try:
                os.ftruncate(self._fd, 0)
                self._size = 0
            except OSError:
                log.warning("could not empty the decision journal %s", self.path)

    @property
    def uncommitted(self) -> int:
        return self._uncommitted

    def close(self) -> None:
        """Close the file; rows still uncommitted stay in it (the next start checks them in)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def journalled_rows(path: Path) -> list[list[Any]]:
    """The rows in a journal file (a line cut short by a crash is skipped)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    rows = []
    for line in data.splitlines():
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError:
            log.warning("skipping an unreadable line of the decision journal %s", path)
            continue
        if isinstance(row, list):
            rows.append(row)
    return rows
