"""Gas-cylinder pages: filling stations and cylinder trace (by code or tag); vehicles are in pages_vehicles.

Police and transport staff use the look-ups city-wide; district staff see their district's stations,
cylinders (the district of the owner station or the vehicle) and vehicles; a station sees itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from aiohttp import web

from wuhai_iot.clock import cst_midnight, cst_today
from wuhai_iot.filling import reasons, trace
from wuhai_iot.plugins.hookspecs import hookimpl
from wuhai_iot.server import Platform
from wuhai_iot.web import charts, queries
from wuhai_iot.web.auth import Permission as P
from wuhai_iot.web.auth import request_user, requires, web_database
from wuhai_iot.web.pages import chosen_district, page, platform_of

MAX_QUERY = 64


def _station_filters(request: web.Request) -> dict[str, object]:
    user = request_user(request)
    filters = dict(user.scope.filters())
    filters.pop("maintenance_company", None)
    district = chosen_district(request, user)
    if district is not None:
        filters["district_code"] = district
    return filters


STATIONS_PER_PAGE = 50
"""Stations a page (as the rescue and visit lists, and the API's default): a row costs ~19 µs (its three day
look-ups, 14 values written) on top of ~2.2 ms a page, so a page of 100 cost ×1.6 the page of a city of 31
stations, a page of 50 ×1.2 (benchmarks/bench_pages.py, the two sizes)."""


@requires(P.VIEW_STATIONS)
async def station_list(request: web.Request) -> web.Response:
    today = cst_today()
    filters = _station_filters(request)
    conn = web_database(request)
    try:
        after = int(request.query["after"]) if request.query.get("after") else None
    except ValueError:
        raise web.HTTPBadRequest(text="无效的分页参数") from None
    found = await queries.list_stations(conn, day=today, after=after, limit=STATIONS_PER_PAGE + 1,
                                        **filters)  # type: ignore[arg-type]  # fmt: skip
    stations = found[:STATIONS_PER_PAGE]
    until = cst_midnight(today + timedelta(days=1))
    denials = await queries.denials_by_reason(conn, since=until - timedelta(days=30), until=until,
                                              **filters)  # type: ignore[arg-type]  # fmt: skip
    chart = charts.hbar_chart([(reasons.short_name(reason), n) for reason, n in denials],
                              title="近30日拒绝充装原因", unit="次")  # fmt: skip
    return await page(request, "stations.html", {
        "stations": stations, "chart": chart, "query": request.query,
        "stations_total": await queries.count_stations(conn, **filters),  # type: ignore[arg-type]
        "next_url": str(request.rel_url.update_query(after=stations[-1]["station_code"]))
        if len(found) > len(stations) else None,
        "first_url": str(request.rel_url.without_query_params("after")) if after is not None else None,
    })  # fmt: skip


@requires(P.VIEW_STATIONS, hidden=True)
async def station_detail(request: web.Request) -> web.Response:
    try:
        code = int(request.match_info["code"])
    except ValueError:
        raise web.HTTPNotFound() from None
    conn = web_database(request)
    scope = request_user(request).scope
    found = await trace.station_trace(conn, code, days=30, online_terminals=trace.online_scales(platform_of(request)),
                                      district_code=scope.district_code, station_code=scope.station_code)  # fmt: skip
    if found is None:
        raise web.HTTPNotFound(text="没有这个充装站，或不在您的管辖范围内。")
    (today,) = await queries.list_stations(conn, day=cst_today(), station_code=code)
    return await page(request, "station.html", {
        "trace": found, "today": today, "decisions": found.decisions,
        "denial_chart": charts.hbar_chart(
            sorted(((reasons.short_name(r), n) for r, n in found.denials_by_reason.items()), key=lambda bar: -bar[1]),
            title="近30日拒绝充装原因", unit="次"),
        "fill_chart": charts.bar_chart([(d.day.strftime("%m-%d"), d.completed) for d in found.fills_per_day],
                                       title="近30日每日完成充装", unit="次"),
    })  # fmt: skip


def _search_text(request: web.Request, name: str) -> str:
    text = request.query.get(name, "").strip()
    if len(text) > MAX_QUERY:
        raise web.HTTPBadRequest(text="查询内容过长")
    return text


async def _look_up(request: web.Request, name: str, template: str, find: Callable[..., Awaitable[Any]]) -> web.Response:
    """The search page ``template`` with what ``find`` found for ``?name=`` in the user's scope (404: nothing)."""
    text = _search_text(request, name)
    found = None
    if text:
        scope = request_user(request).scope
        found = await find(web_database(request), text, district_code=scope.district_code,
                           station_code=scope.station_code)  # fmt: skip
    return await page(request, template, {name: text, "trace": found}, status=404 if text and found is None else 200)


@requires(P.VIEW_CYLINDERS)
async def cylinder_trace(request: web.Request) -> web.Response:
    return await _look_up(request, "q", "cylinders.html", trace.find_cylinder)


@hookimpl
def register_routes(app: web.Application, platform: Platform) -> None:
    app.router.add_get("/stations", station_list)
    app.router.add_get("/stations/{code}", station_detail)
    app.router.add_get("/cylinders", cylinder_trace)
