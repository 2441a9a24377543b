"""Plugin hook specifications. Every hook is documented in docs/plugins.md and exercised by a test."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from aiohttp import web

    from wuhai_iot.alarms.kinds import AlarmKind
    from wuhai_iot.alarms.model import Alarm
    from wuhai_iot.config import Config
    from wuhai_iot.elevators.rules.base import Rule
    from wuhai_iot.protocols.base import Protocol
    from wuhai_iot.server import Platform

hookspec = pluggy.HookspecMarker("wuhai_iot")
hookimpl = pluggy.HookimplMarker("wuhai_iot")


@hookspec
def register_protocols() -> list["Protocol"]:
    """Return wire protocols to serve. Each gets its own TCP listener (``[protocols.<name>]``)."""


@hookspec
def register_commands(subparsers: "argparse._SubParsersAction[Any]") -> None:
    """Add sub-commands to the ``wuhai-iot`` command line.

    Each parser must set ``handler`` with ``set_defaults(handler=fn)``; ``fn(args) -> int`` returns
    the exit status. ``--config`` is added to every sub-command by the CLI itself.
    """


@hookspec
def platform_starting(platform: "Platform") -> "Awaitable[None] | None":
    """Called once the database and ingest pipeline exist, before any listener accepts a connection.

    Attach consumers and request handlers here (``platform.ingest.consumers``,
    ``platform.ingest.answer_requests``) and start background tasks. May return an awaitable.
    """


@hookspec
def platform_stopping(platform: "Platform") -> "Awaitable[None] | None":
    """Called after the listeners have stopped and before pending writes are committed and the
    database is closed. Stop background tasks here. May return an awaitable."""


@hookspec
def register_routes(app: "web.Application", platform: "Platform") -> None:
    """Add routes, middlewares or sub-applications to the platform's aiohttp application."""


@hookspec
def register_rules(config: "Config") -> list["Rule"]:
    """Return rules for the rule engine (``wuhai_iot.elevators.rules.base.Rule``), built with ``config.rules``.

    Rule names must be unique across plugins; a rule's state is stored under its name.
    """


@hookspec
def register_alarm_kinds() -> list["AlarmKind"]:
    """Return the alarm kinds this plugin raises (``wuhai_iot.alarms.kinds.AlarmKind``: name, severity,
    Chinese label, domain). The alarm book refuses a kind nobody registered; names must be unique."""


@hookspec
def alarm_changed(platform: "Platform", alarm: "Alarm", change: str) -> "Awaitable[None] | None":
    """An alarm was raised or changed state (``raised``, ``cleared``, ``reactivated``, ``flapping``,
    ``merged``, ``acknowledged``, ``resolved``), after the change is committed.

    Called from a background task, never from ingestion; may return an awaitable. An exception is logged
    and does not stop the other notifiers. Slow work (an SMS gateway) should queue and return.
    """
