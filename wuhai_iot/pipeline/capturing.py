"""Captures asked for on a running platform: ``wuhai-iot capture start PROTOCOL TERMINAL`` writes a row of
``captures`` (migration 0034); the platform looks for new and ended rows every CAPTURE_POLL_S, records the
terminal's frames to the row's frames file meanwhile (its LOGIN first, its answers too, across reconnects)
and writes when it started and stopped. The file then replays (``wuhai-iot replay``) and decodes
(``wuhai-iot decode --file``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

from wuhai_iot.captures import CAPTURE_POLL_S, CaptureFile
from wuhai_iot.pipeline.listener import Listener
from wuhai_iot.storage.writer import BatchWriter, Statement

log = logging.getLogger(__name__)

_STARTED = "UPDATE captures SET started_at = ? WHERE id = ?"
_STOPPED = "UPDATE captures SET stopped_at = ?, frames = ?, problem = ? WHERE id = ?"


@dataclass
class _Recording:
    listener: Listener
    terminal_id: str
    file: CaptureFile


class CaptureRequests:
    """The platform's side of ``wuhai-iot capture``: starts and stops the captures the table asks for."""

    def __init__(self, conn: aiosqlite.Connection, writer: BatchWriter, listeners: dict[str, Listener]) -> None:
        self.conn = conn
        self.writer = writer
        self.listeners = listeners
        self.recording: dict[int, _Recording] = {}

    async def watch(self) -> None:
        """Follow the table until cancelled (run under ``tasks.supervised``)."""
        while True:
            await self.poll()
            await asyncio.sleep(CAPTURE_POLL_S)

    async def poll(self) -> None:
        """Start the captures asked for since the last look, stop those that ended (or were stopped)."""
        now = time.time()
        rows = await self.conn.execute_fetchall(
            "SELECT id, protocol, terminal_id, path, until FROM captures WHERE stopped_at IS NULL"
        )
        statements: list[Statement] = []
        for row in rows:
            capture_id = row["id"]
            if row["until"] <= now:
                statements.append(self._stop(capture_id, now, None if capture_id in self.recording else "not picked up"
                                             " by a running platform before its end"))  # fmt: skip
            elif capture_id not in self.recording:
                statements.append(self._start(capture_id, row["protocol"], row["terminal_id"], Path(row["path"]),
                                              row["until"], now))  # fmt: skip
        if statements:
            await self.writer.write(statements)

    def _start(self, capture_id: int, protocol: str, terminal_id: str, path: Path, until: float, now: float
               ) -> Statement:  # fmt: skip
        listener = self.listeners.get(protocol)
        if listener is None:
            return (_STOPPED, (now, 0, f"protocol {protocol} is not served by this platform", capture_id))
        if terminal_id in listener.captures_asked:
            return (_STOPPED, (now, 0, f"{protocol} terminal {terminal_id} is being captured already", capture_id))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            file = CaptureFile(path, listener.protocol)
        except OSError as exc:
            log.warning("capture %d of %s %s: cannot write %s: %s", capture_id, protocol, terminal_id, path,
                        exc.strerror)  # fmt: skip
            return (_STOPPED, (now, 0, f"cannot write {path}: {exc.strerror}", capture_id))
        ends = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(until))
        file.note(f"{listener.protocol.title} terminal {terminal_id}: capture {capture_id}, until {ends}")
        listener.start_capture(terminal_id, file)
        self.recording[capture_id] = _Recording(listener, terminal_id, file)
        log.info("capture %d of %s %s to %s started", capture_id, protocol, terminal_id, path)
        return (_STARTED, (now, capture_id))

    def _stop(self, capture_id: int, now: float, problem: str | None) -> Statement:
        recording = self.recording.pop(capture_id, None)
        frames = 0
        if recording is not None:
            recording.listener.stop_capture(recording.terminal_id)
            recording.file.note("capture ended")
            recording.file.close()
            frames = recording.file.frames
            log.info("capture %d of %s %s ended: %d frames", capture_id, recording.listener.protocol.name,
                     recording.terminal_id, frames)  # fmt: skip
        return (_STOPPED, (now, frames, problem, capture_id))

    async def close(self) -> None:
        """The platform stops: end every capture (before the writer closes)."""
        now = time.time()
        statements = [self._stop(capture_id, now, "the platform stopped") for capture_id in list(self.recording)]
        if statements:
            await self.writer.write(statements)
