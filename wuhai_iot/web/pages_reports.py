"""The plan (admin), and the reports an acceptance reads: phase evaluations and accepted installations
(admin and the read-only ``expert`` role)."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import date
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from wuhai_iot.plugins.hookspecs import hookimpl
from wuhai_iot.clock import cst_today
from wuhai_iot.publishing import evaluation, workbook
from wuhai_iot.publishing import installations as installs
from wuhai_iot.publishing import plan as planning
from wuhai_iot.publishing.plugin import count_registry, installation_counts, registry_counts
from wuhai_iot.registry.districts import DISTRICTS
from wuhai_iot.server import Platform
from wuhai_iot.web import charts, queries
from wuhai_iot.web.auth import Permission as P
from wuhai_iot.web.auth import request_user, requires, web_database
from wuhai_iot.web.pages import page, platform_of


async def _plan_page(request: web.Request, *, error: str | None = None, status: int = 200) -> web.Response:
    plan = await planning.load_plan(web_database(request))
    return await page(request, "plan.html", {
        "plan": plan, "phases": planning.PHASES, "phase_labels": planning.PHASE_LABELS, "kinds": planning.KINDS,
        "kind_labels": planning.KIND_LABELS, "error": error,
    }, status=status)  # fmt: skip


@requires(P.MANAGE_PLAN)
async def plan_form(request: web.Request) -> web.Response:
    return await _plan_page(request)


def _date(text: str) -> date | None:
    text = text.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise planning.PlanError(f"日期格式应为 YYYY-MM-DD：{text}") from None


@requires(P.MANAGE_PLAN)
async def plan_save(request: web.Request) -> web.Response:
    user = request_user(request)
    form = await request.post()
    try:
        phases: dict[str, tuple[date, date] | None] = {}
        for name in planning.PHASES:
            starts, ends = _date(str(form.get(f"{name}_starts", ""))), _date(str(form.get(f"{name}_ends", "")))
            if (starts is None) != (ends is None):
                raise planning.PlanError(f"{planning.PHASE_LABELS[name]}须同时填写开始和截止日期")
            phases[name] = None if starts is None or ends is None else (starts, ends)
        targets: dict[tuple[str, str, str], int | None] = {}
        for name in planning.PHASES:
            for district in DISTRICTS:
                for kind in planning.KINDS:
                    text = str(form.get(f"target_{name}_{district}_{kind}", "")).strip()
                    if text and not text.isdigit():
                        raise planning.PlanError(f"目标应为非负整数：{text}")
                    targets[(name, district, kind)] = int(text) if text else None
        statements = planning.plan_statements(user.name, phases, targets)
    except planning.PlanError as exc:
        return await _plan_page(request, error=str(exc), status=400)
    platform = platform_of(request)
    await platform.writer.write(statements)
    await count_registry(platform)  # (the evaluation's gaps are counted per phase window)
    raise web.HTTPFound("/plan?done=plan_saved")


# --- evaluation reports ---------------------------------------------------------------------------


async def _evaluation(request: web.Request) -> evaluation.Evaluation:
    phase = request.query.get("phase", "pilot")
    if phase not in planning.PHASES:
        raise web.HTTPBadRequest(text="阶段应为 pilot、rollout 或 final")
    platform = platform_of(request)
    conn = web_database(request)
    figures = await queries.coverage(conn, today=cst_today())
    try:
        return await evaluation.evaluation(conn, platform.config, phase, figures, listeners=platform.listeners,
                                           counts=await registry_counts(platform))
    except evaluation.PhaseNotRecorded:
        raise web.HTTPNotFound(text=f"建设计划中没有{planning.PHASE_LABELS[phase]}的日期，请先录入计划。") from None
    except evaluation.PhaseNotStarted:
        raise web.HTTPNotFound(text=f"{planning.PHASE_LABELS[phase]}尚未开始。") from None


@requires(P.VIEW_EVALUATION)
async def evaluation_page(request: web.Request) -> web.Response:
    report = await _evaluation(request)
    drawn = []
    for section in report.sections:
        drawn.append((section, [charts.line_chart(points, title=title) for title, points in section.charts]))
    return await page(request, "evaluation.html", {
        "report": report, "sections": drawn, "phase_labels": planning.PHASE_LABELS, "phase": report.phase.phase,
    })  # fmt: skip


@requires(P.VIEW_EVALUATION)
async def evaluation_xlsx(request: web.Request) -> web.Response:
    report = await _evaluation(request)
    body = await asyncio.to_thread(workbook.evaluation_workbook, report)
    name = f"wuhai-iot-evaluation-{report.phase.phase}-{report.until.isoformat()}.xlsx"
    return web.Response(body=body, content_type=XLSX, headers={"Content-Disposition": f'attachment; filename="{name}"'})


# --- accepted installations ---------------------------------------------------------------------------

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
INSTALLATION_COLUMNS = ("安装单位", "区县", "终端类别", "协议", "终端编号", "安装日期", "验收日期", "状态", "未验收或中断原因",
                        "最后有效数据日", "应付补贴（元）")  # fmt: skip
INSTALLATIONS_PER_PAGE = 200
XLSX_TERMINALS = 10_000
"""Terminals a workbook lists at most (about 1.5 s of CPU and 20 MB to build)."""


def _installation_row(item: installs.Installation) -> list[Any]:
    return [item.installer_label, DISTRICTS.get(item.district_code or "", "—"), installs.KIND_LABELS[item.kind],
            item.protocol, item.terminal_id, item.installed_on.isoformat() if item.installed_on else None,
            item.accepted_on.isoformat() if item.accepted_on else None, installs.STATUS_LABELS[item.status],
            item.holdup, item.last_day.isoformat() if item.last_day else None, item.subsidy]  # fmt: skip


def _filters(request: web.Request) -> dict[str, str | None]:
    """The list's filters: ``district`` (a code) and ``unit`` (an installing unit's name)."""
    district = request.query.get("district") or None
    if district is not None and district not in DISTRICTS:
        raise web.HTTPBadRequest(text=f"未知的区县：{district}")
    return {"district_code": district, "installer": request.query.get("unit", "").strip() or None}


def _judging(request: web.Request) -> dict[str, Any]:
    config = platform_of(request).config
    return {"today": cst_today(), "rules": config.acceptance, "subsidy": config.subsidy}


def _cursor(request: web.Request) -> installs.Cursor | None:
    """``after``: the last terminal of the previous page, as ``installer|protocol|terminal id``."""
    text = request.query.get("after")
    if not text:
        return None
    parts = text.rsplit("|", 2)
    if len(parts) != 3:
        raise web.HTTPBadRequest(text="无效的分页参数")
    return (parts[0], parts[1], parts[2])


@requires(P.VIEW_EVALUATION)
async def installations_page(request: web.Request) -> web.Response:
    """Totals per installing unit and district (as counted when the days were last recorded), and the
    terminals a page at a time, by installing unit and terminal (keyset: ``?after=``)."""
    filters = _filters(request)
    platform = platform_of(request)
    counted = await installation_counts(platform)
    groups, total = installs.totals_of(counted, platform.config.subsidy, **filters)
    items = await installs.page_of_installations(web_database(request), after=_cursor(request),
                                                 limit=INSTALLATIONS_PER_PAGE, **filters, **_judging(request))  # fmt: skip
    after = items[-1].cursor if len(items) == INSTALLATIONS_PER_PAGE else None
    config = platform.config
    return await page(request, "installations.html", {
        "groups": sorted((((unit or installs.NO_INSTALLER, DISTRICTS.get(district or "", "—")), t)
                          for (unit, district), t in groups.items()), key=lambda group: group[0]),
        "total": total, "items": items, "kind_labels": installs.KIND_LABELS, "status_labels": installs.STATUS_LABELS,
        "rules": config.acceptance, "subsidy": config.subsidy, "counted_at": counted.taken_at, "query": request.query,
        "first_url": str(request.rel_url.with_query({k: v for k, v in request.query.items() if k != "after"}))
        if "after" in request.query else None,
        "next_url": str(request.rel_url.update_query(after="|".join(after))) if after else None,
        "districts": DISTRICTS, "filters": filters, "per_page": INSTALLATIONS_PER_PAGE,
        "filters_query": urlencode({name: request.query[name] for name in ("district", "unit") if request.query.get(name)}),
    })  # fmt: skip


@requires(P.VIEW_EVALUATION)
async def installations_csv(request: web.Request) -> web.StreamResponse:
    """Every terminal in the filters, streamed as read in keyset batches (UTF-8 with BOM so that spreadsheet
    programs read the Chinese): the platform holds one batch, whatever the number of terminals."""
    filters = _filters(request)
    response = web.StreamResponse(headers={"Content-Type": "text/csv; charset=utf-8",
                                           "Content-Disposition": 'attachment; filename="wuhai-iot-installations.csv"'})  # fmt: skip
    await response.prepare(request)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(INSTALLATION_COLUMNS)
    await response.write(("\ufeff" + out.getvalue()).encode("utf-8"))
    async for batch in installs.installations(web_database(request), **filters, **_judging(request)):
        out.seek(0)
        out.truncate()
        writer.writerows(["" if value is None else value for value in _installation_row(item)] for item in batch)
        await response.write(out.getvalue().encode("utf-8"))
    await response.write_eof()
    return response


@requires(P.VIEW_EVALUATION)
async def installations_xlsx(request: web.Request) -> web.Response:
    """The totals and the terminals in the filters as a workbook: at most XLSX_TERMINALS of them, read in keyset
    batches, the sheet saying so when there are more (the CSV streams every one). A workbook is built whole in
    memory before it is sent — writing it row by row to disk (XlsxWriter's constant-memory mode) cost about
    eight times the CPU a cell — so its size is bounded instead."""
    filters = _filters(request)
    platform = platform_of(request)
    groups, total = installs.totals_of(await installation_counts(platform), platform.config.subsidy, **filters)
    totals = [[unit or installs.NO_INSTALLER, DISTRICTS.get(district or "", "—"), t.terminals, t.accepted, t.lapsed,
               t.pending, t.subsidy] for (unit, district), t in sorted(groups.items(), key=lambda g: (g[0][0], g[0][1] or ""))]  # fmt: skip
    rows: list[list[Any]] = []
    async for batch in installs.installations(web_database(request), **filters, **_judging(request),
                                              batch=min(installs.EXPORT_BATCH, XLSX_TERMINALS)):  # fmt: skip
        rows.extend(_installation_row(item) for item in batch[:XLSX_TERMINALS - len(rows)])
        if len(rows) >= XLSX_TERMINALS:
            break
    if total.terminals > len(rows):
        rows.append([f"仅列前 {len(rows)} 个终端（共 {total.terminals} 个）：全部终端请下载 CSV，或按区县、安装单位筛选后下载。"])
    sheets = [("汇总", ["安装单位", "区县", "终端", "已验收", "验收后中断", "未验收", "应付补贴（元）"], totals, set()),
              ("终端明细", INSTALLATION_COLUMNS, rows, set())]  # fmt: skip
    body = await asyncio.to_thread(workbook.table_workbook, sheets)
    return web.Response(body=body, content_type=XLSX,
                        headers={"Content-Disposition": 'attachment; filename="wuhai-iot-installations.xlsx"'})  # fmt: skip


@hookimpl
def register_routes(app: web.Application, platform: Platform) -> None:
    app.router.add_get("/plan", plan_form)
    app.router.add_post("/plan", plan_save)
    app.router.add_get("/reports/evaluation", evaluation_page)
    app.router.add_get("/reports/evaluation.xlsx", evaluation_xlsx)
    app.router.add_get("/reports/installations", installations_page)
    app.router.add_get("/reports/installations.csv", installations_csv)
    app.router.add_get("/reports/installations.xlsx", installations_xlsx)
