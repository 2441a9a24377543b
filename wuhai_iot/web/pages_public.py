"""The public page of the rollout's progress and the system's effect: ``/public`` (HTML, for a phone as much
as a desk) and ``/public.json``, open to anyone, aggregates only (``wuhai_iot.publishing.public``).

Cheap to serve whatever comes: one set of figures is read at most every ``public.cache_s`` seconds (≤ 60)
by one request while the others wait for it, the page is rendered once per set, each client address may
ask ``public.requests_per_minute`` times a minute (then 429), and a client that has the figures already
gets 304 (``ETag`` / ``If-None-Match``, ``Last-Modified`` / ``If-Modified-Since``). ``[public] enabled =
false`` turns both addresses off (404).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

import orjson
from aiohttp import web

from wuhai_iot.clock import cst_today
from wuhai_iot.plugins.hookspecs import hookimpl
from wuhai_iot.publishing import public as figures
from wuhai_iot.publishing.effect import REASON_GROUPS
from wuhai_iot.server import PLATFORM_KEY, Platform
from wuhai_iot.web import charts, queries
from wuhai_iot.web.auth import public, web_database
from wuhai_iot.web.templating import environment

MAX_CACHE_S = 60.0
TRACKED_ADDRESSES = 10_000
"""Client addresses the rate limit remembers (the oldest is forgotten first): memory stays bounded."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    payload: dict[str, Any]
    json_body: bytes
    html_body: bytes
    etag: str
    last_modified: datetime
    read_at: float
    """time.monotonic() when read."""


class PublicFigures:
    """The current snapshot, read again once it is older than the cache time."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.cache_s = min(MAX_CACHE_S, platform.config.public.cache_s)
        self._snapshot: Snapshot | None = None
        self._lock = asyncio.Lock()

    async def get(self, request: web.Request) -> Snapshot:
        snapshot = self._snapshot
        if snapshot is not None and time.monotonic() - snapshot.read_at < self.cache_s:
            return snapshot
        async with self._lock:
            snapshot = self._snapshot
            if snapshot is not None and time.monotonic() - snapshot.read_at < self.cache_s:
                return snapshot
            conn = web_database(request)
            coverage = await queries.coverage(conn, today=cst_today())
            payload = await figures.public_figures(conn, self.platform.config, coverage)
            unchanged = {key: value for key, value in payload.items() if key not in ("taken_at", "taken_at_cst")}
            digest = hashlib.sha256(orjson.dumps(unchanged, option=orjson.OPT_SORT_KEYS)).hexdigest()[:20]
            taken = datetime.fromisoformat(payload["taken_at"]).replace(microsecond=0)
            if snapshot is not None and snapshot.etag == f'"{digest}"':
                taken = snapshot.last_modified  # the same figures: not modified since they were first read
            self._snapshot = Snapshot(
                payload=payload, json_body=orjson.dumps(payload), html_body=render_page(payload).encode("utf-8"),
                etag=f'"{digest}"', last_modified=taken, read_at=time.monotonic(),
            )  # fmt: skip
            return self._snapshot


class RateLimit:
    """At most ``per_minute`` requests a minute from one address (a fixed one-minute window each)."""

    def __init__(self, per_minute: int, tracked: int = TRACKED_ADDRESSES) -> None:
        self.per_minute = per_minute
        self.tracked = tracked
        self._windows: OrderedDict[str, list[float]] = OrderedDict()

    def allow(self, address: str) -> float | None:
        """None when allowed; otherwise the seconds to wait."""
        now = time.monotonic()
        window = self._windows.get(address)
        if window is None or now - window[0] >= 60:
            window = [now, 0]
            self._windows[address] = window
        self._windows.move_to_end(address)
        while len(self._windows) > self.tracked:
            self._windows.popitem(last=False)
        if window[1] >= self.per_minute:
            return 60 - (now - window[0])
        window[1] += 1
        return None


FIGURES_KEY = web.AppKey("public_figures", PublicFigures)
LIMIT_KEY = web.AppKey("public_rate_limit", RateLimit)


def render_page(payload: dict[str, Any]) -> str:
    """The page for one snapshot (the same for every visitor: rendered once)."""
    city = payload["areas"][0]
    months = city["months"]

    def plain(figure: figures.Figure) -> float:
        """A range is drawn at its middle (the table beside the chart gives the range)."""
        low, high = figures.bounds(figure)
        return (low + high) / 2 if figures.is_range(figure) and high is not None else low

    chart_set = {
        "trapped": charts.bar_chart([(m["month"][5:] + "月", plain(m["trapped"])) for m in months],
                                    title="全市每月困人故障", unit="起"),
        "per_thousand": charts.line_chart([(m["month"][5:] + "月", None if m["trapped_per_1000_lifts"] is None
                                            else plain(m["trapped_per_1000_lifts"])) for m in months],
                                          title="每千台已装电梯困人故障", unit="起"),
        "arrival": charts.bar_chart([(m["month"][5:] + "月", plain(m["rescue_median_min"])) for m in months
                                     if m["rescue_median_min"] is not None], title="救援到场用时中位数", unit="分",
                                    threshold=payload["rescue_limit_min"],
                                    threshold_label=f"{payload['rescue_limit_min']:g}分钟时限"),
    }  # fmt: skip
    page = environment().get_template("public.html")
    return page.render(data=payload, charts=chart_set, show=figures.show, is_range=figures.is_range,
                       REASON_GROUPS=REASON_GROUPS)  # fmt: skip


def _not_modified(request: web.Request, snapshot: Snapshot) -> bool:
    match = request.headers.get("If-None-Match")
    if match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in match.split(",")}
        return snapshot.etag in tags or "*" in tags
    since = request.headers.get("If-Modified-Since")
    if since:
        try:
            moment = parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return snapshot.last_modified <= moment
    return False


async def _answer(request: web.Request, kind: str) -> web.Response:
    platform = request.app[PLATFORM_KEY]
    if not platform.config.public.enabled:
        raise web.HTTPNotFound(text="公开信息页未开放。")
    wait = request.app[LIMIT_KEY].allow(request.remote or "")
    if wait is not None:
        raise web.HTTPTooManyRequests(text="请求过于频繁，请稍后再试。", headers={"Retry-After": str(max(1, round(wait)))})
    public_figures = request.app[FIGURES_KEY]
    snapshot = await public_figures.get(request)
    etag = snapshot.etag if kind == "json" else snapshot.etag[:-1] + '-html"'
    served = Snapshot(snapshot.payload, snapshot.json_body, snapshot.html_body, etag, snapshot.last_modified,
                      snapshot.read_at)  # fmt: skip
    fresh_for = max(0, round(public_figures.cache_s - (time.monotonic() - snapshot.read_at)))
    headers = {
        "ETag": etag,
        "Last-Modified": format_datetime(snapshot.last_modified.astimezone(UTC), usegmt=True),
        "Cache-Control": f"public, max-age={fresh_for}",
        "X-Content-Type-Options": "nosniff",
    }
    if _not_modified(request, served):
        return web.Response(status=304, headers=headers)
    if kind == "json":
        return web.Response(body=snapshot.json_body, content_type="application/json", headers=headers)
    return web.Response(body=snapshot.html_body, content_type="text/html", charset="utf-8", headers=headers)


@public
async def public_page(request: web.Request) -> web.Response:
    return await _answer(request, "html")


@public
async def public_json(request: web.Request) -> web.Response:
    return await _answer(request, "json")


@hookimpl
def register_routes(app: web.Application, platform: Platform) -> None:
    app[FIGURES_KEY] = PublicFigures(platform)
    app[LIMIT_KEY] = RateLimit(platform.config.public.requests_per_minute)
    app.router.add_get("/public", public_page)
    app.router.add_get("/public.json", public_json)
