"""The plan (admin), and the reports an acceptance reads: phase evaluations and accepted installations
(admin and the read-only ``expert`` role)."""

from __future__ import annotations

from datetime import date

from aiohttp import web

from wuhai_iot.plugins.hookspecs import hookimpl
from wuhai_iot.publishing import plan as planning
from wuhai_iot.registry.districts import DISTRICTS
from wuhai_iot.server import Platform
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
    await platform_of(request).writer.write(statements)
    raise web.HTTPFound("/plan?done=plan_saved")


@hookimpl
def register_routes(app: web.Application, platform: Platform) -> None:
    app.router.add_get("/plan", plan_form)
    app.router.add_post("/plan", plan_save)
