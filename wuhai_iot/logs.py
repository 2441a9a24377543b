"""The process's log: ``[log]`` level, format (``text`` or ``json``) and file (default: standard error).

A log line may carry context fields, given as ``extra=fields(protocol=..., device=..., peer=..., user=...)``:
text lines show them as ``key=value`` after the message, JSON lines as keys of the object. A file is
written through ``WatchedFileHandler``: when logrotate moves it away, the next line starts a new file at
the configured path, without a restart.

Never pass a secret (password, API token, session cookie, device key, HMAC) to a log call, at any level:
name the user or the terminal instead.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
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
