"""The process's log: ``[log]`` level, format (``text`` or ``json``) and file (default: standard error).

A log line may carry context fields, given as ``extra=fields(protocol=..., device=..., peer=..., user=...)``:
text lines show them as ``key=value`` after the message, JSON lines as keys of the object. A file is
written through ``WatchedFileHandler``: when logrotate moves it away, the next line starts a new file at
the configured path, without a restart.

Never pass a secret (password, API token, session cookie, device key, HMAC) to a log call, at any level:
name the user or the terminal instead.
"""

from __future__ import annotations

import collections
import json
import logging
import logging.handlers
import sys
import time
from collections.abc import Hashable
from datetime import UTC, datetime
from typing import Any

from wuhai_iot.clock import CST
from wuhai_iot.config import LogConfig

FIELDS = ("protocol", "device", "peer", "user", "reason")
"""Context fields a log record may carry (``extra=fields(...)``)."""
QUIET_BELOW_INFO = ("aiohttp", "asyncio", "aiosqlite")
"""Libraries whose debug lines are not ours, and may hold what they were given: aiosqlite's name every
statement with its parameters. Their information, warnings and errors still show."""
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


_installed: logging.Handler | None = None


def fields(**values: Any) -> dict[str, Any]:
    """``extra=`` for a log call: the context fields that are set."""
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown log field(s): {', '.join(sorted(unknown))}")
    return {key: value for key, value in values.items() if value is not None}


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message key=value ...``, the time in China Standard Time and marked so
    (``2026-12-03 15:54:22.123+08:00``) whatever the machine's zone: the pages show China time, and a log
    line is read beside them."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 (logging's name)
        return datetime.fromtimestamp(record.created, CST).isoformat(sep=" ", timespec="milliseconds")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = " ".join(f"{key}={getattr(record, key)}" for key in FIELDS if hasattr(record, key))
        if not context:
            return text
        first, newline, rest = text.partition("\n")  # (a traceback stays below the line)
        return f"{first} {context}{newline}{rest}"


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, the context
    fields that are set, and ``exception`` (the traceback text) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in FIELDS:
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(settings: LogConfig, level: str | None = None) -> logging.Handler:
    """Send the process's log where ``settings`` says (replacing the handler a call before installed);
    ``level`` overrides ``settings.level``. Returns the handler."""
    global _installed
    handler: logging.Handler
    if settings.file is None:
        handler = logging.StreamHandler(sys.stderr)
    else:
        settings.file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.WatchedFileHandler(settings.file, encoding="utf-8")
    handler.setFormatter(JsonFormatter() if settings.format == "json" else TextFormatter())
    root = logging.getLogger()
    if _installed is not None:
        root.removeHandler(_installed)
        _installed.close()
    root.addHandler(handler)
    _installed = handler
    root.setLevel(level or settings.level)
    for name in QUIET_BELOW_INFO:
        logging.getLogger(name).setLevel(max(logging.INFO, root.level))
    return handler


# --- errors that repeat ----------------------------------------------------------------------------
# When the disk fills, every write and every message that waits for one fails the same way, thousands of
# times a second; logged each time, that buried the log under tens of thousands of identical ERROR lines
# (and filled the disk further). A ``RepeatedLog`` logs the first occurrence of each kind of error, counts
# the identical ones that follow within a window, and logs the count when the window has passed (at the
# next occurrence) or when the cause is gone (``resolved``).

REPEAT_WINDOW_S = 60.0
MAX_REPEATING_KINDS = 256
"""Kinds of error tracked at once (the oldest is summarised and forgotten beyond it)."""


class RepeatedLog:
    """One logger's repeating errors, each kind identified by a key the caller chooses."""

    def __init__(self, logger: logging.Logger, window_s: float = REPEAT_WINDOW_S) -> None:
        self.logger = logger
        self.window_s = window_s
        self._seen: collections.OrderedDict[Hashable, list[float | int]] = collections.OrderedDict()
        """key → [when it was last logged (monotonic), occurrences not logged since]"""

    def log(self, level: int, key: Hashable, message: str, *args: object, exc_info: bool = False) -> bool:
        """Log ``message`` unless the same ``key`` was logged within the window; return whether it was."""
        now = time.monotonic()
        entry = self._seen.get(key)
        if entry is not None and now - entry[0] < self.window_s:
            entry[1] += 1
            return False
        if entry is not None:
            self._summarise(level, key, entry, now)
        else:
            self._seen[key] = entry = [now, 0]
            if len(self._seen) > MAX_REPEATING_KINDS:
                old_key, old_entry = self._seen.popitem(last=False)
                self._summarise(level, old_key, old_entry, now)
        entry[0], entry[1] = now, 0
        self.logger.log(level, message, *args, exc_info=exc_info)
        return True

    def error(self, key: Hashable, message: str, *args: object, exc_info: bool = False) -> bool:
        return self.log(logging.ERROR, key, message, *args, exc_info=exc_info)

    def resolved(self, key: Hashable) -> int:
        """The cause of ``key`` is gone: log how often it repeated unlogged and forget it; return that count."""
        entry = self._seen.pop(key, None)
        if entry is None:
            return 0
        self._summarise(logging.ERROR, key, entry, time.monotonic())
        return int(entry[1])

    def _summarise(self, level: int, key: Hashable, entry: list[float | int], now: float) -> None:
        if entry[1]:
            self.logger.log(level, "%s: %d more times in the last %.0f s (not logged one by one)",
                            _describe(key), entry[1], now - entry[0])  # fmt: skip


def _describe(key: Hashable) -> str:
    return " ".join(str(part) for part in key) if isinstance(key, tuple) else str(key)
