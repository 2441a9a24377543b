"""Pages district staff use all day: dashboard, lifts, alarms, rescues, maintenance, inspections.

Every handler checks the role with ``@requires`` and narrows every query by the user's scope
(``user.scope.filters()``): another district's lift is a 404, never data. Forms post with the session's
CSRF token (checked by the auth middleware). Shared page furniture (navigation by role, the trapped-
passenger banner, open-alarm count) comes from ``page``.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite
from aiohttp import web
from yarl import URL

from wuhai_iot import events as ev
from wuhai_iot.alarms.book import acknowledge_alarm, resolve_alarm
from wuhai_iot.alarms.kinds import SEVERITIES
from wuhai_iot.alarms.model import Alarm, AlarmAlreadyResolved, AlarmNotFound
from wuhai_iot.alarms.queries import alarm_samples, count_alarms, get_alarm, list_alarms, open_platform_alarms
from wuhai_iot.clock import CST, cst_day_bounds, cst_today
from wuhai_iot.elevators import maintenance, rescue
from wuhai_iot.filling import reasons
from wuhai_iot.elevators import queries as lifts
from wuhai_iot.elevators.plugin import monitoring
from wuhai_iot.plugins.hookspecs import hookimpl
from wuhai_iot.registry.districts import DISTRICTS, UnknownDistrict, parse_district
from wuhai_iot.registry.users import Role
from wuhai_iot.server import PLATFORM_KEY, Platform
from wuhai_iot.storage import audit, figures
from wuhai_iot.storage.disk import DiskForecast, disk_watch
from wuhai_iot.web import charts, queries
from wuhai_iot.web.auth import Permission as P
from wuhai_iot.web.auth import User, public, request_user, requires, web_database
from wuhai_iot.web.templating import duration, render

STATIC_DIR = Path(__file__).parent / "static"

NAV: list[tuple[str, list[tuple[str, str, P | None]]]] = [
    ("", [("/", "首页总览", P.VIEW_ELEVATORS)]),
    ("电梯", [
        ("/lifts", "电梯列表", P.VIEW_ELEVATORS),
        ("/alarms", "告警处置", P.VIEW_ALARMS),
        ("/rescues", "困人救援", P.VIEW_ELEVATORS),
        ("/maintenance", "维保监督", P.VIEW_ELEVATORS),
        ("/inspections", "定期检验", P.VIEW_ELEVATORS),
    ]),
    ("气瓶", [
        ("/stations", "充装站", P.VIEW_STATIONS),
        ("/cylinders", "气瓶追溯", P.VIEW_CYLINDERS),
        ("/vehicles", "车辆查询", P.VIEW_VEHICLES),
    ]),
    ("统计", [
        ("/rollout", "建设进度", P.VIEW_COVERAGE),
        ("/reports/monthly", "月度报告", P.VIEW_COVERAGE),
        ("/reports/evaluation", "阶段评估", P.VIEW_EVALUATION),
        ("/reports/installations", "安装验收", P.VIEW_EVALUATION),
        ("/public", "公开信息", None),
    ]),
    ("管理", [
        ("/plan", "建设计划", P.MANAGE_PLAN),
        ("/census", "普查导入", P.IMPORT_CENSUS),
        ("/users", "用户管理", P.MANAGE_USERS),
        ("/audit", "审计日志", P.VIEW_AUDIT),
        ("/system", "系统状态", P.VIEW_METRICS),
    ]),
]  # fmt: skip
"""Side navigation: (group, [(path, label, permission needed)]). The dashboard is about lifts: roles
without them (police, transport, a station) start on their own page and have no 首页总览 to mislead them."""


def navigation(user: User) -> list[tuple[str, list[tuple[str, str]]]]:
    groups = []
    for group, items in NAV:
        allowed = [(href, label) for href, label, needed in items if needed is None or user.can(needed)]
        if allowed:
            groups.append((group, allowed))
    return groups


def scope_label(user: User) -> str:
    if user.role is Role.DISTRICT:
        return user.district_name or ""
    if user.role in (Role.STATION, Role.MAINTENANCE):
        return str(user.unit)
    return "全市"


def most_urgent_first(found: list[Alarm]) -> list[Alarm]:
    """Open alarms as staff work through them: trapped first, then by severity, unhandled before
    acknowledged, newest first (``alarms.MOST_URGENT_FIRST`` says the same in SQL)."""
    return sorted(found, key=lambda a: (a.kind != "trapped", SEVERITIES.index(a.severity), a.status != "raised",
                                        -a.raised_at.timestamp()))  # fmt: skip


def alarm_scope(user: User, filters: dict[str, Any] | None = None) -> dict[str, Any]:
    """``filters`` (default: the user's scope) for the alarm queries of a page, with the platform's own alarms
    (its disk's) for those who run the platform."""
    return {**(user.scope.filters() if filters is None else filters), "platform_alarms": user.sees_platform_alarms}


async def open_by_severity(conn: aiosqlite.Connection, filters: dict[str, Any]) -> dict[str, int]:
    """Open alarms in scope counted per severity (every severity, in SEVERITIES): the running figures of a
    district, a maintenance company or the city; a station's own few on its index."""
    if filters.get("station_code") is None:
        counts = await figures.open_alarms(conn, SEVERITIES, district_code=filters.get("district_code"),
                                           maintenance_company=filters.get("maintenance_company"))  # fmt: skip
        whole_city = not filters.get("district_code") and not filters.get("maintenance_company")
        if filters.get("platform_alarms") and whole_city:
            for severity, n in (await open_platform_alarms(conn)).items():
                counts[severity] += n
        return counts
    found = await count_alarms(conn, by=["severity"], status="open", **filters)
    counted = {row["severity"]: row["n"] for row in found}
    return {severity: counted.get(severity, 0) for severity in SEVERITIES}


def platform_of(request: web.Request) -> Platform:
    return request.app[PLATFORM_KEY]


async def page_furniture(request: web.Request, user: User) -> dict[str, Any]:
    """What every page shows around its content: navigation, scope, the trapped banner, open alarms."""
    conn = web_database(request)
    trapped: list[dict[str, Any]] = []
    open_count = 0
    if user.can(P.VIEW_ALARMS):
        filters = user.scope.filters()
        if user.can(P.VIEW_ELEVATORS):
            trapped = await lifts.trapped_now(conn, **filters)
        open_count = sum((await open_by_severity(conn, alarm_scope(user, filters))).values())
    return {
        "user": user,
        "csrf_token": user.csrf_token,
        "nav": navigation(user),
        "scope_label": scope_label(user),
        "trapped": trapped,
        "open_alarm_count": open_count,
        "disk_alarm": _disk_alarm(request, user),
        "flash": _flash(request),
    }


def _disk_alarm(request: web.Request, user: User) -> DiskForecast | None:
    """The disk forecast while the disk alarm is on, for those who run the platform."""
    watch = disk_watch(platform_of(request)) if user.can(P.VIEW_METRICS) else None
    return watch.latest if watch is not None and watch.alarm else None


FLASHES = {
    "acknowledged": ("ok", "告警已确认。"),
    "resolved": ("ok", "告警已解除。"),
    "already_resolved": ("error", "该告警已解除，无需重复操作。"),
    "command_sent": ("ok", "指令已下发。"),
    "not_connected": ("error", "终端未连接，指令未下发。"),
    "bad_command": ("error", "指令或参数无效。"),
    "user_added": ("ok", "用户已创建。"),
    "dispatched": ("ok", "已登记派出救援。"),
    "arrived": ("ok", "已登记救援到场。"),
    "already_recorded": ("error", "该项已登记过，无需重复登记。"),
    "bad_entry": ("error", "请填写派出的人员或队伍。"),
    "plan_saved": ("ok", "建设计划已保存。"),
}


def _flash(request: web.Request) -> dict[str, str] | None:
    found = FLASHES.get(request.query.get("done", ""))
    return None if found is None else {"kind": found[0], "text": found[1]}


async def page(request: web.Request, template: str, context: dict[str, Any], *, status: int = 200) -> web.Response:
    user = request_user(request)
    return render(request, template, {**await page_furniture(request, user), **context}, status=status)


def back_to(form: Any, default: str, done: str) -> web.HTTPFound:
    """Redirect after a form: to the page it came from (a local path only, its filters kept, e.g. the alarm
    list's ``?kind=trapped``), with a flash message."""
    target = str(form.get("next") or default)
    if not target.startswith("/") or target.startswith("//") or "\\" in target or any(c < " " for c in target):
        target = default
    url = URL(target)
    return web.HTTPFound(str(url.with_query({**url.query, "done": done})))


def chosen_district(request: web.Request, user: User) -> str | None:
    """The district a page shows: the user's own, or (whole-city users) ``?district=`` if given."""
    if user.scope.district_code is not None:
        return user.scope.district_code
    text = request.query.get("district", "").strip()
    if not text:
        return None
    try:
        return parse_district(text)
    except UnknownDistrict:
        raise web.HTTPBadRequest(text=f"未知的区县：{text}") from None


def lift_filters(request: web.Request, user: User) -> dict[str, Any]:
    """The scope filters for lift queries, narrowed to ``?district=`` where the user may choose."""
    filters = {k: v for k, v in user.scope.filters().items() if k != "station_code"}
    district = chosen_district(request, user)
    if district is not None:
        filters["district_code"] = district
    return filters


def rules_of(request: web.Request) -> dict[str, Any]:
    """The thresholds of the lift flags in force (``lifts.list_lifts`` / ``get_lift`` keywords)."""
    rules = platform_of(request).config.rules
    return {"maintenance_interval_days": rules.maintenance_interval_days,
            "inspection_due_days": rules.inspection_due_days}  # fmt: skip


def today_window() -> tuple[datetime, datetime]:
    return cst_day_bounds(cst_today())


# --- dashboard ------------------------------------------------------------------------------------------


async def home(request: web.Request) -> web.StreamResponse:
    """The dashboard, or the page a role without one starts from."""
    user = request_user(request)
    if user.role is Role.STATION:
        raise web.HTTPFound(f"/stations/{user.unit}")
    if not user.can(P.VIEW_ELEVATORS):
        raise web.HTTPFound("/vehicles")
    conn = web_database(request)
    filters = lift_filters(request, user)
    per_district = await lifts.count_lifts(conn, **rules_of(request), **filters)
    totals = {name: sum(counts[name] for counts in per_district.values()) for name in lifts.COUNTS}
    open_list = await list_alarms(conn, status="open", most_urgent_first=True, limit=30, **alarm_scope(user, filters))
    context: dict[str, Any] = {
        "district": filters.get("district_code"),
        "lifts_total": totals["lifts"],
        "lifts_fitted": totals["fitted"],
        "lifts_online": totals["online"],
        "maintenance_overdue": totals["maintenance_overdue"],
        "inspection_overdue": totals["inspection_overdue"],
        "severities": await open_by_severity(conn, alarm_scope(user, filters)),
        "open_alarms": open_list,
        "lift_info": await lifts.lifts_by_code(conn, {a.device_code for a in open_list if a.device_code}),
        "fills": None,
        "per_district": None,
    }
    if user.can(P.VIEW_STATIONS):
        since, until = today_window()
        station_filters = {"district_code": filters["district_code"]} if "district_code" in filters else {}
        context["fills"] = await queries.fill_counts(conn, since=since, until=until, **station_filters)
        denials = await queries.denials_by_reason(conn, since=since - timedelta(days=29), until=until, **station_filters)
        context["denial_chart"] = charts.hbar_chart([(reasons.short_name(reason), n) for reason, n in denials],
                                                    title="近30日拒绝充装原因", unit="次")  # fmt: skip
    if user.scope.whole_city and "district_code" not in filters:
        nothing = dict.fromkeys(lifts.COUNTS, 0)
        context["per_district"] = [{"code": code, "name": name, **per_district.get(code, nothing)}
                                   for code, name in DISTRICTS.items()]  # fmt: skip
    days = [cst_today() - timedelta(days=i) for i in range(13, -1, -1)]
    per_day: Counter[str] = Counter()
    for (day, _, _), n in (await figures.alarms_per_day(conn, days[0], days[-1] + timedelta(days=1), **filters)).items():
        per_day[day] += n
    context["alarm_chart"] = charts.bar_chart([(day.strftime("%m-%d"), float(per_day.get(day.isoformat(), 0)))
                                               for day in days], title="近14日告警数", unit="起")  # fmt: skip
    return await page(request, "dashboard.html", context)


# --- lifts ----------------------------------------------------------------------------------------------

YES_NO = {"1": True, "0": False}
LIFTS_PER_PAGE = 100


@requires(P.VIEW_ELEVATORS)
async def lift_list(request: web.Request) -> web.Response:
    """Lifts by device code, a page at a time (``?after=`` the last device code of the previous page)."""
    user = request_user(request)
    query = request.query
    conn = web_database(request)
    filters = {
        "online": {"online": True, "offline": False}.get(query.get("state", "")),
        "with_alarm": YES_NO.get(query.get("alarm", "")), "overdue": YES_NO.get(query.get("overdue", "")),
        "maintenance_overdue": True if query.get("overdue") == "maintenance" else None,
        "search": query.get("q", "").strip() or None, **rules_of(request), **lift_filters(request, user),
    }  # fmt: skip
    found = await lifts.list_lifts(conn, after=query.get("after") or None, limit=LIFTS_PER_PAGE + 1, **filters)
    total, total_capped, overdue_totals = None, False, None
    if filters["overdue"]:
        # Overdue is maintenance or inspection overdue: each is a running figure, their union is not (a lift can
        # be both), so the page says both rather than recount every lift.
        counted = await lifts.count_lifts(conn, counts=["maintenance_overdue", "inspection_overdue"],
                                          **rules_of(request), **lift_filters(request, user))  # fmt: skip
        overdue_totals = {name: sum(c[name] for c in counted.values())
                          for name in ("maintenance_overdue", "inspection_overdue")}  # fmt: skip
    else:
        total, total_capped = await lifts.total_lifts(conn, **filters)
    shown = found[:LIFTS_PER_PAGE]
    # Lifts with people inside come first, above the pages (a handful at most; they stay in their place too).
    trapped = [] if "after" in query else await lifts.list_lifts(conn, trapped=True, limit=LIFTS_PER_PAGE, **filters)
    return await page(request, "lifts.html", {
        "lifts": shown, "trapped_lifts": trapped, "total": total, "total_capped": total_capped,
        "overdue_totals": overdue_totals, "query": query,
        "next_url": str(request.rel_url.update_query(after=shown[-1].device_code)) if len(found) > len(shown) else None,
        "first_url": str(request.rel_url.without_query_params("after")) if "after" in query else None,
    })  # fmt: skip


async def _lift_or_404(request: web.Request) -> lifts.LiftView:
    user = request_user(request)
    filters = {k: v for k, v in user.scope.filters().items() if k != "station_code"}
    lift = await lifts.get_lift(web_database(request), request.match_info["code"], **rules_of(request), **filters)
    if lift is None:
        raise web.HTTPNotFound(text="没有这台电梯，或不在您的管辖范围内。")
    return lift


@requires(P.VIEW_ELEVATORS, hidden=True)
async def lift_detail(request: web.Request) -> web.Response:
    user = request_user(request)
    lift = await _lift_or_404(request)
    conn = web_database(request)
    code = lift.device_code
    platform = platform_of(request)
    frames = []
    for terminal in lift.terminal_list:
        for record in platform.frame_log.recent(terminal["protocol"], terminal["terminal_id"])[:30]:
            frames.append((terminal["terminal_id"], record))
    frames.sort(key=lambda item: item[1].at, reverse=True)
    # Offer commands only to terminals whose protocol carries some (Protocol.commands).
    carried_by = {name: protocol.commands for name, protocol in platform.protocols.items() if protocol.commands}
    command_terminals = [t for t in lift.terminal_list if t["protocol"] in carried_by]
    context = {
        "lift": lift,
        "alarms": await list_alarms(conn, device_code=code, limit=30, **user.scope.filters()),
        "visits": await maintenance.list_visits(conn, device_code=code, limit=20),
        "rescues": await rescue.list_rescues(conn, device_code=code, limit=10),
        "frames": frames[:40],
        "command_terminals": command_terminals,
        "commands": [code for code in ev.CommandCode if any(code in carried for carried in carried_by.values())],
        "live_url": f"/live/lifts/{code}",
        "lift_live": {"state": lift.state, "online": lift.online, "trapped": lift.trapped},
    }
    return await page(request, "lift.html", context)


@requires(P.SEND_COMMANDS, hidden=True)
async def lift_command(request: web.Request) -> web.Response:
    user = request_user(request)
    lift = await _lift_or_404(request)
    form = await request.post()
    default = f"/lifts/{lift.device_code}"
    terminals = {f"{t['protocol']}:{t['terminal_id']}": t for t in lift.terminal_list}
    terminal = terminals.get(str(form.get("terminal", "")))
    try:
        code = ev.CommandCode(str(form.get("code", "")))
        raw_argument = str(form.get("argument", "")).strip()
        argument = int(raw_argument) if raw_argument else None
        if code is ev.CommandCode.SET_INTERVAL and not (argument and 5 <= argument <= 3600):
            raise ValueError("interval out of range")
    except ValueError:
        raise back_to(form, default, "bad_command") from None
    platform = platform_of(request)
    protocol = platform.protocols.get(terminal["protocol"]) if terminal is not None else None
    if terminal is None or protocol is None or code not in protocol.commands:
        raise back_to(form, default, "bad_command")
    try:
        seq = await platform.send_command(terminal["protocol"], terminal["terminal_id"], ev.TerminalCommand(code, argument),
                                          requested_by=user.name)  # fmt: skip
    except LookupError:
        raise back_to(form, default, "not_connected") from None
    await audit.record(platform.writer, user.name, "command.send", "elevator", lift.device_code,
                       district_code=lift.district_code,
                       details={"terminal": terminal["terminal_id"], "code": code.value, "argument": argument, "seq": seq})  # fmt: skip
    raise back_to(form, default, "command_sent")


# --- alarms ---------------------------------------------------------------------------------------------

ALARM_STATUS_FILTERS = ("open", "raised", "acknowledged", "resolved", "all")


def _date_param(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        raise web.HTTPBadRequest(text=f"日期格式应为 YYYY-MM-DD：{text}") from None


ALARMS_PER_PAGE = 100
"""Rows of the alarm list a page renders (each is a row of forms: 200 took ≈ 40 ms of templating, profiled)."""


@requires(P.VIEW_ALARMS)
async def alarm_list(request: web.Request) -> web.Response:
    user = request_user(request)
    query = request.query
    status = query.get("status", "open")
    if status not in ALARM_STATUS_FILTERS:
        raise web.HTTPBadRequest(text="未知的状态")
    kind = query.get("kind") or None
    severity = query.get("severity") or None
    start, end = _date_param(query.get("from", "")), _date_param(query.get("to", ""))
    filters = alarm_scope(user)
    district = chosen_district(request, user)
    if district is not None:
        filters["district_code"] = district
    try:
        before = int(query["before"]) if query.get("before") else None
    except ValueError:
        raise web.HTTPBadRequest(text="无效的分页参数") from None
    found = await list_alarms(
        web_database(request), status=None if status == "all" else status, kind=kind,
        device_code=query.get("device_code") or None,
        since=cst_day_bounds(start)[0] if start else None, until=cst_day_bounds(end)[1] if end else None,
        severity=severity, before_id=before, limit=ALARMS_PER_PAGE, **filters,
    )  # fmt: skip
    if status == "open":
        found = most_urgent_first(found)
    lift_info = await lifts.lifts_by_code(web_database(request), {a.device_code for a in found if a.device_code})
    return await page(request, "alarms.html", {
        "alarms": found, "lift_info": lift_info, "query": query, "status": status,
        "older_url": str(request.rel_url.update_query(before=found[-1].id)) if len(found) == ALARMS_PER_PAGE else None,
    })  # fmt: skip


@requires(P.VIEW_ALARMS, hidden=True)
async def alarm_detail(request: web.Request) -> web.Response:
    user = request_user(request)
    conn = web_database(request)
    try:
        alarm_id = int(request.match_info["id"])
    except ValueError:
        raise web.HTTPNotFound() from None
    alarm = await get_alarm(conn, alarm_id, **alarm_scope(user))
    if alarm is None:
        raise web.HTTPNotFound(text="没有这条告警，或不在您的管辖范围内。")
    lift_info = await lifts.lifts_by_code(conn, {alarm.device_code} if alarm.device_code else set())
    # How long the condition lasted: until it cleared (the doors opened), not until staff resolved it.
    lasted = (alarm.cleared_at or datetime.now(UTC)) - alarm.since
    return await page(request, "alarm.html", {
        "alarm": alarm, "lift_info": lift_info, "samples": await alarm_samples(conn, alarm_id),
        "alarm_duration": duration(lasted),
    })  # fmt: skip


async def _handle_alarm(request: web.Request, action: str) -> web.Response:
    user = request_user(request)
    form = await request.post()
    try:
        alarm_id = int(request.match_info["id"])
    except ValueError:
        raise web.HTTPNotFound() from None
    note = str(form.get("note", "")).strip()[:500]
    handle = acknowledge_alarm if action == "acknowledge" else resolve_alarm
    platform = platform_of(request)
    try:
        await handle(platform, alarm_id, user=user.name, note=note, also=lambda changed: [audit.entry(
            user.name, f"alarm.{action}", "alarm", changed.id, district_code=changed.district_code,
            details={"note": note, "kind": changed.kind},
        )], **alarm_scope(user))  # fmt: skip
    except AlarmNotFound:
        raise web.HTTPNotFound(text="没有这条告警，或不在您的管辖范围内。") from None
    except AlarmAlreadyResolved:
        raise back_to(form, "/alarms", "already_resolved") from None
    raise back_to(form, "/alarms", "acknowledged" if action == "acknowledge" else "resolved")


@requires(P.HANDLE_ALARMS, hidden=True)
async def alarm_acknowledge(request: web.Request) -> web.Response:
    return await _handle_alarm(request, "acknowledge")


@requires(P.HANDLE_ALARMS, hidden=True)
async def alarm_resolve(request: web.Request) -> web.Response:
    return await _handle_alarm(request, "resolve")


# --- rescues, maintenance, inspections -------------------------------------------------------------------


RESCUES_PER_PAGE = 50


@requires(P.VIEW_ELEVATORS)
async def rescue_list(request: web.Request) -> web.Response:
    """Rescues of the last 90 days newest first, a page at a time (``?before=raised_at,alarm_id``: the keyset
    cursor of the last rescue of the previous page); the chart shows the page's arrival times."""
    user = request_user(request)
    conn = web_database(request)
    since = datetime.now(UTC) - timedelta(days=90)
    try:
        raised_at, _, alarm_id = request.query.get("before", "").partition(",")
        before = (float(raised_at), int(alarm_id)) if raised_at else None
    except ValueError:
        raise web.HTTPBadRequest(text="无效的分页参数") from None
    found = await rescue.list_rescues(conn, since=since, before=before, limit=RESCUES_PER_PAGE + 1,
                                      **lift_filters(request, user))  # fmt: skip
    rescues = found[:RESCUES_PER_PAGE]
    limit = platform_of(request).config.rules.rescue_arrival_limit_min
    arrivals = [(r.raised_at.astimezone(CST).strftime("%m-%d %H:%M"), r.arrival_min)
                for r in reversed(rescues) if r.arrival_min is not None]  # fmt: skip
    chart = charts.bar_chart(arrivals, title="到场用时（分钟）", unit="分", threshold=limit,
                             threshold_label=f"{limit:g}分钟时限")  # fmt: skip
    last = rescues[-1] if rescues else None
    return await page(request, "rescues.html", {
        "rescues": rescues, "limit": limit, "chart": chart,
        "older_url": str(request.rel_url.update_query(before=f"{last.raised_at.timestamp()!r},{last.alarm_id}"))
        if last is not None and len(found) > len(rescues) else None,
        "first_url": str(request.rel_url.without_query_params("before")) if before else None,
        "lift_info": await lifts.lifts_by_code(conn, {r.device_code for r in rescues}),
    })  # fmt: skip


async def _record_rescue(request: web.Request, action: str) -> web.Response:
    """The lift page's rescue forms: dispatch (who was sent, now) and arrival (now), audited."""
    user = request_user(request)
    form = await request.post()
    text = request.match_info["id"]
    found = await rescue.get_rescue(web_database(request), int(text), **{
        k: v for k, v in user.scope.filters().items() if k != "station_code"}) if text.isdigit() else None  # fmt: skip
    if found is None or not user.can(P.VIEW_ELEVATORS):
        raise web.HTTPNotFound(text="没有这次救援，或不在您的管辖范围内。")
    default = f"/lifts/{found.device_code}"
    tracker = monitoring(platform_of(request)).rescue
    try:
        if action == "dispatch":
            to = str(form.get("to", "")).strip()[:200]
            if not to:
                raise back_to(form, default, "bad_entry")
            also = [audit.entry(user.name, "rescue.dispatch", "rescue", found.alarm_id,
                                district_code=found.district_code, details={"to": to})]  # fmt: skip
            await tracker.record_dispatch(found.alarm_id, to=to, user=user.name, also=also)
        else:
            also = [audit.entry(user.name, "rescue.arrival", "rescue", found.alarm_id,
                                district_code=found.district_code)]  # fmt: skip
            await tracker.record_arrival(found.alarm_id, user=user.name, also=also)
    except rescue.RescueAlreadyRecorded:
        raise back_to(form, default, "already_recorded") from None
    raise back_to(form, default, "dispatched" if action == "dispatch" else "arrived")


@requires(P.RECORD_RESCUES, hidden=True)
async def rescue_dispatch(request: web.Request) -> web.Response:
    return await _record_rescue(request, "dispatch")


@requires(P.RECORD_RESCUES, hidden=True)
async def rescue_arrival(request: web.Request) -> web.Response:
    return await _record_rescue(request, "arrival")


VISITS_PER_PAGE = 50
OVERDUE_SHOWN = 50


@requires(P.VIEW_ELEVATORS)
async def maintenance_page(request: web.Request) -> web.Response:
    user = request_user(request)
    conn = web_database(request)
    filters = lift_filters(request, user)
    try:
        before = int(request.query["before"]) if request.query.get("before") else None
    except ValueError:
        raise web.HTTPBadRequest(text="无效的分页参数") from None
    visits = await maintenance.list_visits(conn, flagged=True, by_id=True, before_id=before, limit=VISITS_PER_PAGE,
                                           **filters)  # fmt: skip
    overdue = [] if before else await lifts.list_lifts(conn, maintenance_overdue=True, order="maintenance",
                                                       limit=OVERDUE_SHOWN, **rules_of(request), **filters)  # fmt: skip
    counted = await lifts.count_lifts(conn, counts=["maintenance_overdue"], **rules_of(request), **filters)
    return await page(request, "maintenance.html", {
        "overdue": overdue, "overdue_total": sum(c["maintenance_overdue"] or 0 for c in counted.values()),
        "overdue_shown": OVERDUE_SHOWN, "visits": visits, "query": request.query,
        "older_url": str(request.rel_url.update_query(before=visits[-1].id)) if len(visits) == VISITS_PER_PAGE else None,
        "first_url": str(request.rel_url.without_query_params("before")) if before else None,
        "interval": platform_of(request).config.rules.maintenance_interval_days,
        "lift_info": await lifts.lifts_by_code(conn, {v.device_code for v in visits}),
    })  # fmt: skip


@requires(P.VIEW_ELEVATORS)
async def inspection_page(request: web.Request) -> web.Response:
    user = request_user(request)
    conn = web_database(request)
    filters = lift_filters(request, user)
    rules = rules_of(request)
    query = request.query
    try:
        found = await lifts.list_lifts(conn, inspection_due=True, order="inspection", after=query.get("after") or None,
                                       limit=LIFTS_PER_PAGE + 1, **rules, **filters)  # fmt: skip
    except ValueError:
        raise web.HTTPBadRequest(text="无效的分页参数") from None
    counted = await lifts.count_lifts(conn, counts=["inspection_due"], **rules, **filters)
    shown = found[:LIFTS_PER_PAGE]
    return await page(request, "inspections.html", {
        "lifts": shown, "due_days": rules["inspection_due_days"],
        "total": sum(c["inspection_due"] or 0 for c in counted.values()),
        "next_url": str(request.rel_url.update_query(after=lifts.cursor_of(shown[-1], "inspection")))
        if len(found) > len(shown) else None,
        "first_url": str(request.rel_url.without_query_params("after")) if "after" in query else None,
    })  # fmt: skip


@public
async def favicon(request: web.Request) -> web.StreamResponse:
    """Browsers and bookmarks ask for /favicon.ico whatever the page says: the icon is an SVG."""
    return web.FileResponse(STATIC_DIR / "favicon.svg", headers={"Content-Type": "image/svg+xml",
                                                                 "Cache-Control": "max-age=86400"})  # fmt: skip


@hookimpl
def register_routes(app: web.Application, platform: Platform) -> None:
    app.router.add_static("/static", STATIC_DIR, append_version=False)
    app.router.add_get("/favicon.ico", favicon)
    app.router.add_get("/", home)
    app.router.add_get("/lifts", lift_list)
    app.router.add_get("/lifts/{code}", lift_detail)
    app.router.add_post("/lifts/{code}/command", lift_command)
    app.router.add_get("/alarms", alarm_list)
    app.router.add_get("/alarms/{id}", alarm_detail)
    app.router.add_post("/alarms/{id}/acknowledge", alarm_acknowledge)
    app.router.add_post("/alarms/{id}/resolve", alarm_resolve)
    app.router.add_get("/rescues", rescue_list)
    app.router.add_post("/rescues/{id}/dispatch", rescue_dispatch)
    app.router.add_post("/rescues/{id}/arrival", rescue_arrival)
    app.router.add_get("/maintenance", maintenance_page)
    app.router.add_get("/inspections", inspection_page)
