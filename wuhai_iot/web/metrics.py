"""``GET /metrics``: the platform's figures in the Prometheus text format (version 0.0.4).

Admins only (a Prometheus server scrapes it with an admin's API token as its bearer credential).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

import aiosqlite
from aiohttp import web

from wuhai_iot.alarms.kinds import alarm_kinds
from wuhai_iot.plugins.hookspecs import hookimpl
from wuhai_iot.server import PLATFORM_KEY, Platform
from wuhai_iot.web.auth import Permission, requires, web_database

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

PROTOCOL_COUNTERS = {
    "connections": ("gauge", "Open TCP connections"),
    "frames_in": ("counter", "Whole frames received"),
    "frames_out": ("counter", "Frames sent (answers and commands)"),
    "decode_errors": ("counter", "Frames that could not be decoded"),
    "bytes_discarded": ("counter", "Bytes thrown away while looking for a frame"),
    "logins_refused": ("counter", "Terminal logins refused"),
}
"""``listener.ProtocolCounters`` fields: metric type and help text."""


def _escape(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Exposition:
    """Builds the text: one HELP/TYPE header per metric, then its samples."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def metric(self, name: str, kind: str, help_text: str, samples: Iterable[tuple[Mapping[str, object], float]]) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            label_text = ",".join(f'{key}="{_escape(val)}"' for key, val in labels.items())
            self.lines.append(f"{name}{{{label_text}}} {value:g}" if label_text else f"{name} {value:g}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


async def open_alarms_by_kind(conn: aiosqlite.Connection) -> dict[str, int]:
    rows = await conn.execute_fetchall(
        "SELECT kind, count(*) AS n FROM alarms WHERE status != 'resolved' AND merged_into IS NULL GROUP BY kind"
    )
    return {row["kind"]: row["n"] for row in rows}


async def exposition(platform: Platform, conn: aiosqlite.Connection) -> str:
    out = Exposition()
    counters = {name: dataclasses.asdict(listener.counters) for name, listener in platform.listeners.items()}
    for field, (kind, help_text) in PROTOCOL_COUNTERS.items():
        name = f"wuhai_{field}" + ("_total" if kind == "counter" else "")
        out.metric(name, kind, f"{help_text}, per protocol",
                   (({"protocol": protocol}, values[field]) for protocol, values in sorted(counters.items())))  # fmt: skip
    out.metric("wuhai_terminals_logged_in", "gauge", "Terminals logged in on an open connection, per protocol",
               (({"protocol": name}, len(listener.by_terminal)) for name, listener in sorted(platform.listeners.items())))  # fmt: skip
    decisions = getattr(platform, "fill_decisions_by_reason", {})
    out.metric("wuhai_fill_decisions_total", "counter", "Fill decisions since start by reason (0 = permitted)",
               (({"reason": reason}, n) for reason, n in sorted(decisions.items())))  # fmt: skip
    out.metric("wuhai_write_backlog", "gauge", "Write units waiting for the batch writer (ingest lag)",
               [({}, platform.writer.backlog)])  # fmt: skip
    out.metric("wuhai_write_batches_total", "counter", "Transactions committed by the batch writer",
               [({}, platform.writer.batches)])  # fmt: skip
    out.metric("wuhai_write_units_total", "counter", "Write units committed by the batch writer",
               [({}, platform.writer.units)])  # fmt: skip
    open_alarms = await open_alarms_by_kind(conn)
    out.metric("wuhai_alarms_open", "gauge", "Alarms not yet resolved, per kind",
               (({"kind": kind}, open_alarms.get(kind, 0)) for kind in sorted(alarm_kinds())))  # fmt: skip
    if platform.started_at is not None:
        uptime = (datetime.now(UTC) - platform.started_at).total_seconds()
        out.metric("wuhai_uptime_seconds", "gauge", "Seconds since the platform started", [({}, round(uptime, 3))])
    return out.text()


@requires(Permission.VIEW_METRICS)
async def metrics(request: web.Request) -> web.Response:
    text = await exposition(request.app[PLATFORM_KEY], web_database(request))
    return web.Response(body=text.encode("utf-8"), headers={"Content-Type": CONTENT_TYPE})


@hookimpl
def register_routes(app: web.Application, platform: Platform) -> None:
    app.router.add_get("/metrics", metrics)
