"""The Jinja2 environment of the pages: templates shipped in the package, filters for display.

Times are stored in UTC and shown in China Standard Time (UTC+8) as ``2026-11-29 08:30``; UI words
(severities, deny reasons, roles) are Simplified Chinese and live here, in one place; an alarm kind's label
is registered with the kind (``wuhai_iot.alarms.kinds``).
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Any

import jinja2
from aiohttp import web

from wuhai_iot.alarms.kinds import SEVERITIES, alarm_kinds, label_of
from wuhai_iot.clock import CST
from wuhai_iot.registry.districts import DISTRICTS

SEVERITY_LABELS = {"critical": "严重", "major": "重要", "minor": "一般"}

ALARM_STATUS_LABELS = {"raised": "待处理", "acknowledged": "已确认", "resolved": "已解除"}
CONDITION_LABELS = {"active": "持续中", "cleared": "已恢复"}

DENY_REASONS = {
    0: "允许充装",
    1: "标签未登记",
    2: "定期检验过期",
    3: "已报废或超设计使用年限",
    4: "非本站自有气瓶",
    5: "介质不符或无此介质许可",
    6: "黑名单气瓶",
    7: "充装许可过期或暂停",
    8: "车用气瓶无有效使用登记证",
    9: "气瓶已满",
    10: "距上次充装过近（疑似倒气）",
    11: "操作员卡未登记",
    99: "平台故障（拒绝）",
}

ROLE_LABELS = {
    "admin": "管理员",
    "district": "区县",
    "police": "公安",
    "transport": "交通",
    "station": "充装站",
    "maintenance": "维保单位",
}

MODE_LABELS = {"normal": "正常", "inspection": "检修", "fire": "消防", "independent": "独立运行"}
DIRECTION_LABELS = {"up": "上行", "down": "下行", "stopped": "停止"}
DOOR_LABELS = {"closed": "关闭", "opening": "正在开门", "open": "打开", "closing": "正在关门", "unknown": "未知"}
LIFT_KIND_LABELS = {
    "traction": "曳引梯",
    "hydraulic": "液压梯",
    "escalator": "自动扶梯",
    "moving_walk": "自动人行道",
    "other": "其他",
}
CYLINDER_KIND_LABELS = {
    "household_lpg": "民用液化气瓶",
    "vehicle_cng": "车用CNG气瓶",
    "vehicle_lng": "车用LNG气瓶",
    "industrial": "工业气瓶",
}
CYLINDER_STATUS_LABELS = {
    "in_service": "在用",
    "scrapped": "已报废",
    "blacklisted": "黑名单",
    "past_design_life": "超设计使用年限",
    "inspection_overdue": "检验过期",
}
VISIT_FLAGS = {
    "short": "时长不足",
    "unregistered_card": "卡未登记",
    "other_company": "非本单位人员",
    "certificate_expired": "证书过期",
    "overlap": "同卡时间重叠",
    "impossible_travel": "行程不可能",
    "no_end": "无结束刷卡",
    "no_start": "无开始刷卡",
}
COMMAND_LABELS = {
    "report_status": "立即上报状态",
    "set_interval": "设置上报间隔（秒）",
    "restart": "重启终端",
    "set_clock": "校时",
}
PHASE_LABELS = {"preparation": "准备阶段", "pilot": "试点阶段", "rollout": "全面推广", "acceptance": "验收阶段"}
FILL_OUTCOMES = {0: "完成", 1: "中止", 2: "达秤上限", 3: "设备故障"}

def as_utc(value: datetime | float | int | None) -> datetime | None:
    """A UTC datetime from an aware datetime or Unix seconds; None stays None."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromtimestamp(float(value), UTC)


def cst(value: datetime | float | int | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """``2026-11-29 08:30`` in China Standard Time; ``—`` for no time."""
    moment = as_utc(value)
    return "—" if moment is None else moment.astimezone(CST).strftime(fmt)


def cst_seconds(value: datetime | float | int | None) -> str:
    return cst(value, "%Y-%m-%d %H:%M:%S")


def duration(value: timedelta | float | int | None) -> str:
    """A short Chinese duration: ``45秒``, ``12分``, ``1小时5分``, ``3天2小时``."""
    if value is None:
        return "—"
    seconds = int(value.total_seconds() if isinstance(value, timedelta) else value)
    if seconds < 0:
        seconds = 0
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}天{hours}小时" if hours else f"{days}天"
    if hours:
        return f"{hours}小时{minutes}分" if minutes else f"{hours}小时"
    if minutes:
        return f"{minutes}分"
    return f"{secs}秒"


def ago(value: datetime | float | int | None) -> str:
    """How long ago, e.g. ``5分前``."""
    moment = as_utc(value)
    if moment is None:
        return "从未"
    return duration(datetime.now(UTC) - moment) + "前"


def district_name(code: str | None) -> str:
    if code is None:
        return "全市"
    return DISTRICTS.get(str(code), str(code))


def hex_bytes(data: bytes) -> str:
    return data.hex(" ")


def percent(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def _label(table: dict[Any, str]) -> Any:
    return lambda value: table.get(value, "—" if value is None else str(value))


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("wuhai_iot.web", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        cst=cst,
        cst_seconds=cst_seconds,
        duration=duration,
        ago=ago,
        district_name=district_name,
        hex=hex_bytes,
        percent=percent,
        severity=_label(SEVERITY_LABELS),
        alarm_kind=label_of,
        alarm_status=_label(ALARM_STATUS_LABELS),
        condition=_label(CONDITION_LABELS),
        deny_reason=_label(DENY_REASONS),
        role=_label(ROLE_LABELS),
        direction=_label(DIRECTION_LABELS),
        door=_label(DOOR_LABELS),
        lift_kind=_label(LIFT_KIND_LABELS),
        cylinder_kind=_label(CYLINDER_KIND_LABELS),
        cylinder_status=_label(CYLINDER_STATUS_LABELS),
        phase=_label(PHASE_LABELS),
        mode=_label(MODE_LABELS),
    )
    env.globals.update(DISTRICTS=DISTRICTS, SEVERITIES=SEVERITIES, alarm_kinds=alarm_kinds,
                       DENY_REASONS=DENY_REASONS, ROLE_LABELS=ROLE_LABELS, VISIT_FLAGS=VISIT_FLAGS,
                       COMMAND_LABELS=COMMAND_LABELS, FILL_OUTCOMES=FILL_OUTCOMES)  # fmt: skip
    return env


def render(
    request: web.Request, template: str, context: dict[str, Any] | None = None, *, status: int = 200
) -> web.Response:
    """Render ``template`` with ``context``; every page also gets ``request`` and ``path``."""
    page = environment().get_template(template)
    html = page.render(request=request, path=request.path, **(context or {}))
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


def render_fragment(template: str, context: dict[str, Any]) -> str:
    """Part of a page (live updates replace it in the browser)."""
    return environment().get_template(template).render(**context)
