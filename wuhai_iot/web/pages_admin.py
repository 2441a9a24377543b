"""Supervisor pages: rollout progress, the monthly report (with CSV export), census import by upload,
user administration and the audit log."""

from __future__ import annotations

import asyncio
import csv
import io
import shutil
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from wuhai_iot.alarms.kinds import label_of
from wuhai_iot.clock import cst_today
from wuhai_iot.filling import reasons
from wuhai_iot.plugins.hookspecs import hookimpl
from wuhai_iot.publishing import plan as planning
from wuhai_iot.registry.districts import DISTRICTS
from wuhai_iot.registry import census, users
from wuhai_iot.server import Platform
from wuhai_iot.storage import audit, db, disk
from wuhai_iot.web import charts, queries
from wuhai_iot.web.auth import Permission as P
from wuhai_iot.web.auth import request_user, requires, web_database
from wuhai_iot.web.pages import chosen_district, page, platform_of

MAX_UPLOAD_FILES = 10
REJECTIONS_LISTED = 200
"""Rejected cells listed per file on the upload page; past that the page sums them up by column and problem."""


@requires(P.VIEW_COVERAGE)
async def rollout(request: web.Request) -> web.Response:
    user = request_user(request)
    conn = web_database(request)
    today = cst_today()
    figures = await queries.coverage(conn, today=today, district_code=user.scope.district_code)
    plan = await planning.load_plan(conn)
    items = planning.progress(plan, figures, today)
    return await page(request, "rollout.html", {
        "districts": figures, "plan": plan, "current_phase": plan.current(today),
        "plan_items": [(item, item.sentence(DISTRICTS[item.district_code])) for item in items],
    })  # fmt: skip


def _month(request: web.Request) -> date:
    text = request.query.get("month", "").strip()
    if not text:
        return cst_today().replace(day=1)
    try:
        return date.fromisoformat(text + "-01")
    except ValueError:
        raise web.HTTPBadRequest(text=f"月份格式应为 YYYY-MM：{text}") from None


async def _monthly(request: web.Request) -> tuple[date, str | None, dict[str, Any]]:
    user = request_user(request)
    month = _month(request)
    district = chosen_district(request, user)
    figures = await queries.monthly_figures(web_database(request), first_day=month, district_code=district)
    return month, district, figures


@requires(P.VIEW_COVERAGE)
async def monthly_report(request: web.Request) -> web.Response:
    month, district, figures = await _monthly(request)
    days = figures["days"]
    limit = platform_of(request).config.rules.rescue_arrival_limit_min
    chart_set = {
        "alarms": charts.bar_chart([(d["day"][8:], d["alarms"]) for d in days], title="每日告警数", unit="起"),
        "online": charts.line_chart(
            [(d["day"][8:], None if d["online_rate"] is None else 100 * d["online_rate"]) for d in days],
            title="每日在线率", unit="%", y_max=100,
        ),
        "denials": charts.hbar_chart([(reasons.short_name(r), n) for r, n in figures["denials_by_reason"]],
                                     title="拒绝充装原因", unit="次"),
        "kinds": charts.hbar_chart([(label_of(k), n) for k, n in figures["alarms_by_kind"]],
                                   title="告警类型", unit="起"),
        "rescues": charts.bar_chart(
            [(d["day"][8:], d["arrival_mean_min"]) for d in days if d["arrival_mean_min"] is not None],
            title="困人救援平均到场用时", unit="分", threshold=limit, threshold_label=f"{limit:g}分钟时限",
        ),
    }  # fmt: skip
    return await page(request, "report.html", {
        "month": month, "district": district, "figures": figures, "charts": chart_set, "query": request.query,
    })  # fmt: skip


CSV_COLUMNS = ("day", "alarms", "critical", "trapped", "online_rate", "permitted", "denied")


@requires(P.VIEW_COVERAGE)
async def monthly_csv(request: web.Request) -> web.Response:
    """The month's daily figures as CSV (UTF-8 with BOM so that spreadsheet programs read the Chinese)."""
    month, district, figures = await _monthly(request)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for day in figures["days"]:
        rate = day["online_rate"]
        writer.writerow([day[c] if c != "online_rate" else ("" if rate is None else f"{rate:.4f}") for c in CSV_COLUMNS])
    name = f"wuhai-iot-{month:%Y-%m}-{district or 'city'}.csv"
    return web.Response(
        body=("\ufeff" + out.getvalue()).encode("utf-8"), content_type="text/csv", charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )  # fmt: skip


# --- census import ----------------------------------------------------------------------------------


@requires(P.IMPORT_CENSUS)
async def census_form(request: web.Request) -> web.Response:
    return await page(request, "census.html", {
        "reports": None, "error": None, "kinds": census.KIND_ORDER, "listed": REJECTIONS_LISTED,
    })  # fmt: skip


@requires(P.IMPORT_CENSUS)
async def census_upload(request: web.Request) -> web.Response:
    user = request_user(request)
    form = await request.post()
    uploads = [item for item in form.getall("files", []) if isinstance(item, web.FileField) and item.filename]
    kind = str(form.get("kind", "")) or None
    context: dict[str, Any] = {"reports": None, "error": None, "kinds": census.KIND_ORDER, "listed": REJECTIONS_LISTED}
    if not uploads or len(uploads) > MAX_UPLOAD_FILES or (kind is not None and kind not in census.KIND_ORDER):
        context["error"] = f"请选择 1～{MAX_UPLOAD_FILES} 个 CSV 文件。"
        return await page(request, "census.html", context, status=400)
    platform = platform_of(request)
    with tempfile.TemporaryDirectory(prefix="census-") as folder:
        paths = []
        for number, upload in enumerate(uploads):  # a folder each: two files may bear the same name
            path = Path(folder) / str(number) / Path(upload.filename).name
            path.parent.mkdir()
            await asyncio.to_thread(_save, upload, path)  # (tens of MB: not in the event loop)
            paths.append(path)
        conn = await db.connect(platform.config.database.path, migrate=False)
        try:
            # Through the platform's writer, a chunk at a time: ingest commits go on between the chunks.
            reports = await census.import_files(conn, paths, kind, write=platform.writer.write)
        except census.CensusError as exc:
            context["error"] = f"{exc.problem}。{exc.advice}本次上传的文件均未导入。"
            return await page(request, "census.html", context, status=400)
        finally:
            await conn.close()
    for report in reports:
        report.file = Path(report.file).name
        await audit.record(platform.writer, user.name, "census.import", "census", report.file,
                           details={"census_kind": report.kind, "added": report.added, "updated": report.updated,
                                    "rejected_rows": report.rejected_rows,
                                    "error": report.failure and report.failure.problem})  # fmt: skip
    context["reports"] = reports
    return await page(request, "census.html", context)


def _save(upload: web.FileField, path: Path) -> None:
    with path.open("wb") as target:
        shutil.copyfileobj(upload.file, target)


# --- users and audit ----------------------------------------------------------------------------------


async def _users_page(request: web.Request, *, error: str | None = None, status: int = 200) -> web.Response:
    conn = web_database(request)
    listing = await users.list_users(conn)
    codes = sorted({u.unit for u in listing if u.role is users.Role.STATION and u.unit and u.unit.isdigit()})
    rows = await conn.execute_fetchall(
        f"SELECT station_code, name FROM stations WHERE station_code IN ({','.join('?' * len(codes))})", codes
    ) if codes else []  # fmt: skip
    station_names = {str(row["station_code"]): row["name"] for row in rows}
    return await page(request, "users.html", {"users": listing, "error": error, "roles": list(users.Role),
                                              "station_names": station_names}, status=status)  # fmt: skip


@requires(P.MANAGE_USERS)
async def user_list(request: web.Request) -> web.Response:
    return await _users_page(request)


@requires(P.MANAGE_USERS)
async def user_add(request: web.Request) -> web.Response:
    user = request_user(request)
    form = await request.post()
    conn = await db.connect(platform_of(request).config.database.path, migrate=False)
    try:
        await users.add_user(
            conn, str(form.get("name", "")), str(form.get("role", "")), str(form.get("password", "")),
            district=str(form.get("district", "")) or None, unit=str(form.get("unit", "")) or None, added_by=user.name,
        )  # fmt: skip
    except users.UserError as exc:
        return await _users_page(request, error=str(exc), status=400)
    finally:
        await conn.close()
    raise web.HTTPFound("/users?done=user_added")


@requires(P.VIEW_AUDIT)
async def audit_log(request: web.Request) -> web.Response:
    user = request_user(request)
    query = request.query
    try:
        before = int(query["before"]) if query.get("before") else None
    except ValueError:
        raise web.HTTPBadRequest(text="无效的分页参数") from None
    entries = await audit.query(
        web_database(request), district_code=chosen_district(request, user), user_name=query.get("user") or None,
        action=query.get("action") or None, before_id=before, limit=100,
    )  # fmt: skip
    older = str(request.rel_url.update_query(before=entries[-1].id)) if len(entries) == 100 else None
    return await page(request, "audit.html", {"entries": entries, "query": query, "older_url": older})


# --- the system: disk forecast --------------------------------------------------------------------------

SYSTEM_SAMPLE_DAYS = 14


@requires(P.VIEW_METRICS)
async def system(request: web.Request) -> web.Response:
    """The database's size, the free space, the 7-day growth and the days left; one sample a day for two weeks."""
    platform = platform_of(request)
    watch = disk.disk_watch(platform)
    since = datetime.now(UTC) - timedelta(days=SYSTEM_SAMPLE_DAYS)
    rows = await web_database(request).execute_fetchall(
        "SELECT max(at) AS at, database_bytes, free_bytes FROM disk_samples WHERE at >= ?"
        " GROUP BY CAST(at / 86400 AS INTEGER) ORDER BY at DESC LIMIT ?",
        (since.timestamp(), SYSTEM_SAMPLE_DAYS + 1),
    )  # fmt: skip
    return await page(request, "system.html", {
        "forecast": watch.latest if watch else None, "alarm_since": watch.alarm_since if watch else None,
        "database_path": platform.config.database.path, "samples": rows,
        "alarm_days": disk.ALARM_DAYS_LEFT, "alarm_pct": disk.ALARM_FREE_PCT,
        "recovered_days": disk.RECOVERED_DAYS_LEFT, "recovered_pct": disk.RECOVERED_FREE_PCT,
    })  # fmt: skip


@hookimpl
def register_routes(app: web.Application, platform: Platform) -> None:
    app.router.add_get("/system", system)
    app.router.add_get("/rollout", rollout)
    app.router.add_get("/reports/monthly", monthly_report)
    app.router.add_get("/reports/monthly.csv", monthly_csv)
    app.router.add_get("/census", census_form)
    app.router.add_post("/census", census_upload)
    app.router.add_get("/users", user_list)
    app.router.add_post("/users", user_add)
    app.router.add_get("/audit", audit_log)
