"""Gas-cylinder pages: filling stations, cylinder trace (by code or tag) and vehicle look-up by plate.

Police and transport staff use the look-ups city-wide; district staff see their district's stations,
cylinders (the district of the owner station or the vehicle) and vehicles; a station sees itself.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiohttp import web

from wuhai_iot.plugins.hookspecs import hookimpl
from wuhai_iot.server import Platform
from wuhai_iot.web import charts, queries
from wuhai_iot.web.auth import Permission as P
from wuhai_iot.web.auth import request_user, requires, web_database
from wuhai_iot.web.pages import chosen_district, page, today_window
from wuhai_iot.web.templating import DENY_REASONS

MAX_QUERY = 64


def _station_filters(request: web.Request) -> dict[str, object]:
    user = request_user(request)
    filters = dict(user.scope.filters())
    filters.pop("maintenance_company", None)
    district = chosen_district(request, user)
    if district is not None:
        filters["district_code"] = district
    return filters


@requires(P.VIEW_STATIONS)
async def station_list(request: web.Request) -> web.Response:
    since, until = today_window()
    filters = _station_filters(request)
    conn = web_database(request)
    stations = await queries.list_stations(conn, since=since, until=until, **filters)  # type: ignore[arg-type]
    month_ago = until - timedelta(days=30)
    denials = await queries.denials_by_reason(conn, since=month_ago, until=until, **filters)  # type: ignore[arg-type]
    chart = charts.bar_chart([(DENY_REASONS.get(reason, str(reason)), n) for reason, n in denials],
                             title="近30日拒绝充装原因", unit="次")  # fmt: skip
    return await page(request, "stations.html", {"stations": stations, "chart": chart, "query": request.query})


@requires(P.VIEW_STATIONS, hidden=True)
async def station_detail(request: web.Request) -> web.Response:
    try:
        code = int(request.match_info["code"])
    except ValueError:
        raise web.HTTPNotFound() from None
    until = today_window()[1]
    since = until - timedelta(days=30)
    station = await queries.get_station(web_database(request), code, since=since, until=until,
                                        **request_user(request).scope.filters())  # fmt: skip
    if station is None:
        raise web.HTTPNotFound(text="没有这个充装站，或不在您的管辖范围内。")
    chart = charts.bar_chart([(DENY_REASONS.get(reason, str(reason)), n) for reason, n in station["denials_by_reason"]],
                             title="近30日拒绝充装原因", unit="次")  # fmt: skip
    return await page(request, "station.html", {"station": station, "chart": chart})


def _search_text(request: web.Request, name: str) -> str:
    text = request.query.get(name, "").strip()
    if len(text) > MAX_QUERY:
        raise web.HTTPBadRequest(text="查询内容过长")
    return text


@requires(P.VIEW_CYLINDERS)
async def cylinder_trace(request: web.Request) -> web.Response:
    text = _search_text(request, "q")
    cylinder = None
    if text:
        cylinder = await queries.find_cylinder(web_database(request), text, **request_user(request).scope.filters())
    return await page(request, "cylinders.html", {"q": text, "cylinder": cylinder,
                                                  "now": datetime.now(UTC)}, status=404 if text and cylinder is None else 200)  # fmt: skip


@requires(P.VIEW_VEHICLES)
async def vehicle_lookup(request: web.Request) -> web.Response:
    text = _search_text(request, "plate")
    vehicle = None
    if text:
        vehicle = await queries.find_vehicle(web_database(request), text, **request_user(request).scope.filters())
    return await page(request, "vehicles.html", {"plate": text, "vehicle": vehicle},
                      status=404 if text and vehicle is None else 200)  # fmt: skip


@hookimpl
def register_routes(app: web.Application, platform: Platform) -> None:
    app.router.add_get("/stations", station_list)
    app.router.add_get("/stations/{code}", station_detail)
    app.router.add_get("/cylinders", cylinder_trace)
    app.router.add_get("/vehicles", vehicle_lookup)
