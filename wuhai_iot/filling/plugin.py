"""Plugs gas-cylinder supervision into the platform: the FILL_REQUEST and TAG_QUERY handlers, the
FILL_RESULT consumer and the registry-change commands."""

from __future__ import annotations

import argparse
import collections
import sqlite3
import weakref
from typing import TYPE_CHECKING, Any

from wuhai_iot import events as ev
from wuhai_iot.alarms.book import alarm_book
from wuhai_iot.alarms.kinds import AlarmKind
from wuhai_iot.filling.decision import (
    FillDecider,
    RecentDecisions,
    open_decision_connection,
    undecided,
)
from wuhai_iot.filling.records import FillRecords
from wuhai_iot.filling.registry_changes import add_commands
from wuhai_iot.plugins.hookspecs import hookimpl

if TYPE_CHECKING:
    from wuhai_iot.server import Platform


FILL_ALARM_KINDS = (
    AlarmKind("fill_without_permit", "critical", "无许可充装", "filling"),
    AlarmKind("overfill", "major", "超装", "filling"),
    AlarmKind("weight_tampering", "major", "疑似配重作假", "filling"),
    AlarmKind("short_fill", "minor", "充装不足", "filling"),
)
"""The gas-cylinder alarms of domain.md (found by ``filling.checks``)."""

_CONNECTIONS: weakref.WeakKeyDictionary[Any, sqlite3.Connection] = weakref.WeakKeyDictionary()


@hookimpl
def register_alarm_kinds() -> list[AlarmKind]:
    return list(FILL_ALARM_KINDS)


@hookimpl
async def platform_starting(platform: Platform) -> None:
    book = await alarm_book(platform)
    conn = _CONNECTIONS[platform] = open_decision_connection(platform.config.database.path)
    last_decision, last_fill = conn.execute(
        "SELECT (SELECT coalesce(max(id), 0) FROM fill_decisions), (SELECT coalesce(max(id), 0) FROM fills)"
    ).fetchone()
    rules = platform.config.rules
    recent = RecentDecisions()
    decider = FillDecider(conn, platform.writer, rules, recent, last_decision, book)
    platform.ingest.answer_requests(ev.FillRequest, decider.decide, undecided)  # type: ignore[arg-type]
    platform.ingest.answer_requests(ev.TagQuery, decider.tag_info)  # type: ignore[arg-type]
    platform.ingest.consumers.append(FillRecords(platform.config.database.path, recent, rules, last_fill, book))
    # Fill decisions since start by reason (0 = permitted, 99 = platform error), for /metrics.
    counts: collections.Counter[int] = decider.counts
    platform.fill_decisions_by_reason = counts  # type: ignore[attr-defined]


@hookimpl
def platform_stopping(platform: Platform) -> None:
    """The listeners have stopped: no more requests to decide."""
    conn = _CONNECTIONS.pop(platform, None)
    if conn is not None:
        conn.close()


@hookimpl
def register_commands(subparsers: "argparse._SubParsersAction[Any]") -> None:
    add_commands(subparsers)
