"""Plugs gas-cylinder supervision into the platform: the FILL_REQUEST and TAG_QUERY handlers, the
FILL_RESULT consumer and the registry-change commands."""

from __future__ import annotations

import argparse
import collections
from typing import TYPE_CHECKING, Any

from wuhai_iot import events as ev
from wuhai_iot.alarms import alarm_book
from wuhai_iot.filling.decision import FillDecider, RecentDecisions
from wuhai_iot.filling.records import FillRecords
from wuhai_iot.filling.registry_commands import add_commands
from wuhai_iot.plugins.hookspecs import hookimpl

if TYPE_CHECKING:
    from wuhai_iot.server import Platform


@hookimpl
async def platform_starting(platform: Platform) -> None:
    book = await alarm_book(platform)
    conn = await platform.open_database()
    last_ids = await conn.execute_fetchall(
        "SELECT (SELECT coalesce(max(id), 0) FROM fill_decisions), (SELECT coalesce(max(id), 0) FROM fills)"
    )
    last_decision, last_fill = last_ids[0]
    rules = platform.config.rules
    recent = RecentDecisions()
    decider = FillDecider(conn, platform.writer, rules, recent, last_decision, book)
    platform.ingest.request_handlers[ev.FillRequest] = decider.decide  # type: ignore[assignment]
    platform.ingest.request_handlers[ev.TagQuery] = decider.tag_info  # type: ignore[assignment]
    platform.ingest.consumers.append(FillRecords(platform.config.database.path, recent, rules, last_fill, book))
    # Fill decisions since start by reason (0 = permitted, 99 = platform error), for /metrics.
    counts: collections.Counter[int] = decider.counts
    platform.fill_decisions_by_reason = counts  # type: ignore[attr-defined]


@hookimpl
def register_commands(subparsers: "argparse._SubParsersAction[Any]") -> None:
    add_commands(subparsers)
