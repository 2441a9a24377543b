"""``GET /metrics``: the platform's figures in the Prometheus text format (version 0.0.4), written by
prometheus-client (exact values: a counter past a million is not rounded to six digits).

Admins only (a Prometheus server scrapes it with an admin's API token as its bearer credential).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import UTC, datetime

import aiosqlite
from aiohttp import web
from prometheus_client import generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from wuhai_iot.alarms.kinds import alarm_kinds
from wuhai_iot.alarms.queries import open_platform_alarms
from wuhai_iot.plugins import get_plugin_manager
from wuhai_iot.plugins.hookspecs import hookimpl
from wuhai_iot.plugins.metrics import Metric
from wuhai_iot.server import PLATFORM_KEY, Platform
from wuhai_iot.storage import figures
from wuhai_iot.storage.disk import disk_watch
from wuhai_iot.web.auth import Permission, requires, web_database

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""(``prometheus_client.CONTENT_TYPE_LATEST`` follows the library's newest text format version.)"""

PROTOCOL_COUNTERS = {
    "connections": ("gauge", "Open TCP connections"),
    "frames_in": ("counter", "Whole frames received"),
    "frames_out": ("counter", "Frames sent (answers and commands)"),
    "decode_errors": ("counter", "Frames that could not be decoded"),
    "bytes_discarded": ("counter", "Bytes thrown away while looking for a frame"),
    "logins_refused": ("counter", "Terminal logins refused"),
    "plugin_errors": ("counter", "Frames lost because the protocol's own framer or decoder raised"),
}
"""``listener.ProtocolCounters`` fields: metric type and help text."""


Family = GaugeMetricFamily | CounterMetricFamily


class _Scrape:
    """One scrape's metric families, in the shape ``generate_latest`` reads a registry."""

    def __init__(self, families: list[Family]) -> None:
        self.families = families

    def collect(self) -> list[Family]:
        return self.families


def _family(name: str, kind: str, help_text: str, label: str | None,
            samples: Iterable[tuple[object, float]]) -> Family:  # fmt: skip
    """A gauge or counter (``name`` without ``_total``) with one sample per label value (or one, unlabelled)."""
    family_class = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
    family = family_class(name, help_text, labels=[label] if label else None)
    for label_value, value in samples:
        family.add_metric([str(label_value)] if label else [], value)
    return family


def _plugin_family(metric: Metric) -> Family:
    """A family a plugin returned from ``collect_metrics``."""
    family_class = CounterMetricFamily if metric.type == "counter" else GaugeMetricFamily
    labels = sorted(metric.samples[0][0]) if metric.samples else []
    family = family_class(metric.name, metric.help, labels=labels)
    for sample_labels, value in metric.samples:
        family.add_metric([str(sample_labels[label]) for label in labels], value)
    return family


async def exposition(platform: Platform, conn: aiosqlite.Connection) -> str:
    counters = {name: dataclasses.asdict(listener.counters) for name, listener in sorted(platform.listeners.items())}
    families = [
        _family(f"wuhai_{field}", kind, f"{help_text}, per protocol", "protocol",
                ((protocol, values[field]) for protocol, values in counters.items()))
        for field, (kind, help_text) in PROTOCOL_COUNTERS.items()
    ]  # fmt: skip
    families.append(_family("wuhai_terminals_logged_in", "gauge", "Terminals logged in on an open connection, per protocol",
                            "protocol", ((name, len(listener.by_terminal)) for name, listener in sorted(platform.listeners.items()))))  # fmt: skip
    wrong_clocks: dict[str, int] = {name: 0 for name in platform.listeners}
    for protocol, _ in platform.ingest.clock_wrong:
        wrong_clocks[protocol] = wrong_clocks.get(protocol, 0) + 1
    families.append(_family("wuhai_terminals_clock_wrong", "gauge",
                            "Terminals whose newest dated frame showed an impossible device time (dated on receipt),"
                            " per protocol", "protocol", sorted(wrong_clocks.items())))  # fmt: skip
    for contributed in get_plugin_manager().hook.collect_metrics(platform=platform):
        families.extend(_plugin_family(metric) for metric in contributed or ())
    writer = platform.writer
    families.append(_family("wuhai_write_backlog", "gauge", "Write units waiting for the batch writer (ingest lag)",
                            None, [(None, writer.backlog)]))  # fmt: skip
    families.append(_family("wuhai_write_batches", "counter", "Transactions committed by the batch writer",
                            None, [(None, writer.batches)]))  # fmt: skip
    families.append(_family("wuhai_write_units", "counter", "Write units committed by the batch writer",
                            None, [(None, writer.units)]))  # fmt: skip
    # Every open alarm per kind: the city's running figures (a handful of rows whatever its size) and the
    # platform's own alarms, which those leave out.
    open_alarms = await figures.open_alarms_by_kind(conn, sorted(alarm_kinds()))
    for kind, n in (await open_platform_alarms(conn, by="kind")).items():
        open_alarms[kind] = open_alarms.get(kind, 0) + n
    families.append(_family("wuhai_alarms_open", "gauge", "Alarms not yet resolved, per kind", "kind",
                            ((kind, open_alarms.get(kind, 0)) for kind in sorted(alarm_kinds()))))  # fmt: skip
    families += _disk_families(platform)
    if platform.started_at is not None:
        uptime = (datetime.now(UTC) - platform.started_at).total_seconds()
        families.append(_family("wuhai_uptime_seconds", "gauge", "Seconds since the platform started", None,
                                [(None, round(uptime, 3))]))  # fmt: skip
    return generate_latest(_Scrape(families)).decode("utf-8")  # type: ignore[arg-type]


def _disk_families(platform: Platform) -> list[Family]:
    """The disk forecast's figures (storage/disk.py), from its latest sample."""
    watch = disk_watch(platform)
    if watch is None or watch.latest is None:
        return []
    forecast = watch.latest
    gauges = [
        ("wuhai_database_bytes", "Size of the database file with its WAL", forecast.database_bytes),
        ("wuhai_disk_free_bytes", "Free space on the database's file system", forecast.free_bytes),
        ("wuhai_disk_total_bytes", "Size of the database's file system", forecast.total_bytes),
        ("wuhai_database_growth_bytes_per_day", "Database growth a day over the last 7 days (or since the first "
         "sample an hour or more ago)", forecast.growth_per_day),
        ("wuhai_disk_days_left", "Days until the disk is full at that growth (absent: the database does not grow)",
         forecast.days_left),
        ("wuhai_disk_alarm", "1 while under 30 days are left or under 5 % is free", int(watch.alarm)),
    ]  # fmt: skip
    return [_family(name, "gauge", help_text, None, [(None, value)]) for name, help_text, value in gauges
            if value is not None]  # fmt: skip


@requires(Permission.VIEW_METRICS)
async def metrics(request: web.Request) -> web.Response:
    text = await exposition(request.app[PLATFORM_KEY], web_database(request))
    return web.Response(body=text.encode("utf-8"), headers={"Content-Type": CONTENT_TYPE})


@hookimpl
def register_routes(app: web.Application, platform: Platform) -> None:
    app.router.add_get("/metrics", metrics)
