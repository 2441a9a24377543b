"""Vehicle pages: the vehicles list with its filters, and a vehicle's page — certificate, cylinders, live
position and cylinder telemetry, today's track drawn with the licensed stations, alarms and fills. An
admin records a cylinder's inspection from it (audited).

Police and transport staff see every vehicle; district staff the vehicles of their district.
"""

from __future__ import annotations

from datetime import date
from urllib.parse import quote

from aiohttp import web

from wuhai_iot.alarms.queries import list_alarms
from wuhai_iot.filling import trace
from wuhai_iot.filling.registry_changes import RegistryChangeError, record_inspection
from wuhai_iot.plugins.hookspecs import hookimpl
from wuhai_iot.server import Platform
from wuhai_iot.storage import db
from wuhai_iot.vehicles import queries as vehicle_queries
from wuhai_iot.web import charts
from wuhai_iot.web.auth import Permission as P
from wuhai_iot.web.auth import request_user, requires, web_database
from wuhai_iot.web.pages import chosen_district, page, platform_of, today_window

MAX_QUERY = 64
VEHICLE_ALARMS = 20


@requires(P.VIEW_VEHICLES)
async def vehicles(request: web.Request) -> web.Response:
    """``?plate=``: that vehicle's page; otherwise the list (``alarm``, ``offline``, ``certificate_invalid``,
    ``district``, ``after``)."""
    plate = request.query.get("plate", "").strip()
    if len(plate) > MAX_QUERY:
        raise web.HTTPBadRequest(text="查询内容过长")
    if plate:
        return await _vehicle(request, plate)
    user = request_user(request)
    flags = {name: request.query.get(name) == "1" for name in ("alarm", "offline", "certificate_invalid")}
    after = request.query.get("after", "")[:MAX_QUERY]
    conn = web_database(request)
    district_code = chosen_district(request, user)
    listed = await vehicle_queries.list_vehicles(conn, district_code=district_code, after=after,
                                                 limit=vehicle_queries.LIST_LIMIT + 1, **flags)  # fmt: skip
    total, total_capped = await vehicle_queries.total_vehicles(conn, district_code=district_code, **flags)
    shown = listed[: vehicle_queries.LIST_LIMIT]
    return await page(request, "vehicles.html", {
        "plate": "", "trace": None, "listed": shown, "flags": flags, "query": request.query, "total": total,
        "total_capped": total_capped,
        "next_url": str(request.rel_url.update_query(after=shown[-1]["plate"])) if len(listed) > len(shown) else None,
        "first_url": str(request.rel_url.without_query_params("after")) if after else None,
    })  # fmt: skip


async def _vehicle(request: web.Request, text: str) -> web.Response:
    scope = request_user(request).scope
    conn = web_database(request)
    found = await trace.vehicle_trace(conn, text, district_code=scope.district_code, station_code=scope.station_code)
    if found is None:
        return await page(request, "vehicles.html", {"plate": text, "trace": None, "listed": None}, status=404)
    plate = found.vehicle["plate"]
    live = await vehicle_queries.position(conn, plate)
    start, end = today_window()
    points, _ = await vehicle_queries.track(conn, plate, start, end)
    stations = await vehicle_queries.licensed_stations(conn, found.vehicle["fuel"], points)
    track_map = charts.track_map(
        [(p.latitude, p.longitude) for p in points],
        [(s["latitude"], s["longitude"], s["name"]) for s in stations],
        title=f"{plate} 今日轨迹",
    )
    return await page(request, "vehicles.html", {
        "plate": text, "trace": found, "listed": None, "position": live[0] if live else None,
        "telemetry": live[1] if live else None, "track_map": track_map, "track_points": len(points),
        "alarms": await list_alarms(conn, plate=plate, limit=VEHICLE_ALARMS), "today": date.today().isoformat(),
    })  # fmt: skip


@requires(P.IMPORT_CENSUS)
async def cylinder_inspected(request: web.Request) -> web.Response:
    """An admin records a cylinder's inspection (the form on the vehicle page); audited."""
    user = request_user(request)
    form = await request.post()
    code = request.match_info["code"]
    try:
        on = date.fromisoformat(str(form.get("date", "")))
    except ValueError:
        raise web.HTTPBadRequest(text="检验日期格式应为 YYYY-MM-DD") from None
    conn = await db.connect(platform_of(request).config.database.path, migrate=False)
    try:
        await record_inspection(conn, code, on, actor=user.name, reason=str(form.get("note", "")) or None)
    except RegistryChangeError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    finally:
        await conn.close()
    raise web.HTTPFound(f"/vehicles?plate={quote(str(form.get('plate', '')))}&done=inspected")


@hookimpl
def register_routes(app: web.Application, platform: Platform) -> None:
    app.router.add_get("/vehicles", vehicles)
    app.router.add_post("/cylinders/{code}/inspected", cylinder_inspected)
