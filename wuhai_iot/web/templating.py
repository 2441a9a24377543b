"""The Jinja2 environment of the pages: templates shipped in the package, filters for display.

Times are stored in UTC and shown in China Standard Time (UTC+8) as ``2026-11-29 08:30``; UI words
(severities, deny reasons, roles) are Simplified Chinese and live here, in one place; an alarm kind's label
is registered with the kind (``wuhai_iot.alarms.kinds``).
"""

from __future__ import annotations

import functools
import urllib.parse
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from numbers import Number
from typing import Any

import jinja2
import markupsafe
from aiohttp import web
from jinja2.compiler import CodeGenerator, Frame
from jinja2.nodes import Expr

from wuhai_iot.alarms.kinds import SEVERITIES, alarm_kinds, label_of
from wuhai_iot.clock import CST
from wuhai_iot.filling import reasons
from wuhai_iot.registry import census_messages
from wuhai_iot.registry.districts import DISTRICTS

SEVERITY_LABELS = {"critical": "严重", "major": "重要", "minor": "一般"}

ALARM_STATUS_LABELS = {"raised": "待处理", "acknowledged": "已确认", "resolved": "已解除"}
CONDITION_LABELS = {"active": "持续中", "cleared": "已恢复"}

ROLE_LABELS = {
    "admin": "管理员",
    "district": "区县",
    "police": "公安",
    "transport": "交通",
    "station": "充装站",
    "maintenance": "维保单位",
    "expert": "验收专家",
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

CENSUS_KIND_LABELS = {
    "stations": "充装站",
    "workers": "从业人员（维保、充装）",
    "vehicles": "车辆",
    "elevators": "电梯",
    "cylinders": "气瓶",
    "terminals": "监测终端",
}

AUDIT_ACTION_LABELS = {
    "login": "登录",
    "login.failed": "登录失败",
    "logout": "退出登录",
    "user.add": "新增用户",
    "user.disable": "停用用户",
    "token.create": "创建接口令牌",
    "token.revoke": "吊销接口令牌",
    "alarm.acknowledge": "确认告警",
    "alarm.resolve": "解除告警",
    "command.send": "下发终端指令",
    "census.import": "导入普查数据",
    "registry.change": "变更登记状态",
    "capture.start": "开始录制终端报文",
    "capture.stop": "停止录制终端报文",
}
AUDIT_ACTION_FILTERS = [("alarm.", "告警处置（确认、解除）"), ("user.", "用户管理（新增、停用）"),
                        ("token.", "接口令牌（创建、吊销）"), *AUDIT_ACTION_LABELS.items()]
"""The audit page's action filter: whole groups (a prefix ending in a dot), then each action."""
OBJECT_TYPE_LABELS = {
    "user": "用户", "alarm": "告警", "elevator": "电梯", "census": "普查文件", "cylinder": "气瓶", "vehicle": "车辆",
    "station": "充装站", "terminal": "监测终端",
}  # fmt: skip
REGISTRY_ACTION_LABELS = {
    "blacklist": "列入黑名单", "scrap": "报废", "reinstate": "恢复使用", "revoke": "注销使用登记证",
    "suspend": "暂停充装", "activate": "恢复充装",
}  # fmt: skip
REGISTRY_STATUS_LABELS = {
    "in_service": "在用", "blacklisted": "黑名单", "scrapped": "已报废", "valid": "有效", "revoked": "已注销",
    "active": "正常", "suspended": "已暂停",
}  # fmt: skip
ENDED_BY_LABELS = {
    "doors_or_running": "开门或轿厢运行", "person_clear": "轿厢内人员感应消失", "doors_open": "开门",
    "record_in_window": "终端在判定时限内的记录迟到上传，告警撤销",
}  # fmt: skip
FILL_DECISION_LABELS = {"never_asked": "未向平台申请", "denied": "平台已拒绝"}


def _kg(grams: Any) -> str:
    return f"{grams / 1000:.2f} kg"


def _seconds(value: Any) -> str:
    return f"{value:g} 秒" if value < 120 else duration(value)


# What a stored detail means, for people: (Chinese name, how to show the value). Used for alarm evidence
# and audit-log details alike; a key not listed here is shown by its own name (never as JSON).
DETAIL_WORDS: dict[str, tuple[str, Any]] = {
    "after_s": ("持续多久告警", _seconds),
    "clear_s": ("恢复判定", _seconds),
    "floor": ("楼层", lambda v: f"{v} 层"),
    "records": ("连续记录", lambda v: f"{v} 条"),
    "factor": ("超速判定", lambda v: f"额定速度的 {v:g} 倍"),
    "rated_speed_mps": ("额定速度", lambda v: f"{v:g} m/s"),
    "speed_mps": ("实测速度", lambda v: f"{v:.2f} m/s"),
    "threshold_s": ("离线判定", _seconds),
    "report_interval_s": ("终端上报间隔", _seconds),
    "ended_by": ("恢复原因", lambda v: ENDED_BY_LABELS.get(v, v)),
    "gross_before_g": ("充装前毛重", _kg),
    "gross_after_g": ("充装后毛重", _kg),
    "tare_g": ("登记皮重", _kg),
    "full_g": ("满瓶毛重", _kg),
    "tolerance_g": ("允许偏差", _kg),
    "threshold_g": ("判定阈值", _kg),
    "added_g": ("充入量", _kg),
    "decision": ("平台许可", lambda v: FILL_DECISION_LABELS.get(v, v)),
    "decision_id": ("充装决定编号", str),
    "scale": ("充装秤", lambda v: f"{v} 号秤"),
    "request_seq": ("请求序号", str),
    "tag": ("电子标签", str),
    "peer": ("来源地址", str),
    "note": ("处置说明", str),
    "kind": ("告警类型", label_of),
    "census_kind": ("数据类型", lambda v: CENSUS_KIND_LABELS.get(v, v)),
    "terminal": ("终端", str),
    "code": ("指令", lambda v: COMMAND_LABELS.get(v, v)),
    "argument": ("参数", str),
    "seq": ("指令序号", str),
    "added": ("新增", lambda v: f"{v} 条"),
    "updated": ("更新", lambda v: f"{v} 条"),
    "rejected_rows": ("拒绝", lambda v: f"{v} 行"),
    "error": ("错误", str),
    "action": ("操作", lambda v: REGISTRY_ACTION_LABELS.get(v, v)),
    "previous": ("原状态", lambda v: REGISTRY_STATUS_LABELS.get(v, v)),
    "status": ("新状态", lambda v: REGISTRY_STATUS_LABELS.get(v, v)),
    "reason": ("原因", str),
    "role": ("角色", lambda v: ROLE_LABELS.get(v, v)),
    "district_code": ("区县", lambda v: DISTRICTS.get(str(v), str(v))),
    "unit": ("单位", str),
    "label": ("说明", str),
    "free_bytes": ("可用空间", lambda v: size(v)),
    "free_pct": ("可用比例", lambda v: f"{v:.1f}%"),
    "database_bytes": ("数据库大小", lambda v: size(v)),
    "growth_bytes_per_day": ("近7日日均增长", lambda v: f"{size(v)}/天"),
    "days_left": ("按此增长写满", lambda v: f"约 {v:.0f} 天后"),
    "sessions_ended": ("结束会话", lambda v: f"{v} 个"),
    "tokens_revoked": ("吊销令牌", lambda v: f"{v} 个"),
    "capture": ("录制编号", str),
    "minutes": ("录制时长", lambda v: f"{v:g} 分钟"),
    "path": ("文件", str),
}


def readable_details(details: dict[str, Any] | None) -> list[tuple[str, str]]:
    """A stored detail dict as (Chinese name, value) pairs for a page; empty values are left out."""
    pairs = []
    for key, value in (details or {}).items():
        if value is None or value == "":
            continue
        name, show = DETAIL_WORDS.get(key, (key, str))
        try:
            text = show(value)
        except (TypeError, ValueError):
            text = str(value)
        pairs.append((name, "是" if value is True else "否" if value is False else text))
    return pairs


def as_utc(value: datetime | float | int | str | None) -> datetime | None:
    """A UTC datetime from an aware datetime, Unix seconds or ISO-8601 text (stored records); None stays None."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromtimestamp(float(value), UTC)


def cst(value: datetime | float | int | str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """``2026-11-29 08:30`` in China Standard Time; ``—`` for no time."""
    moment = as_utc(value)
    return "—" if moment is None else moment.astimezone(CST).strftime(fmt)


def cst_seconds(value: datetime | float | int | str | None) -> str:
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


def ago(value: datetime | float | int | str | None) -> str:
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


def report_cells(row: Sequence[Any], percent_columns: Collection[int]) -> markupsafe.Markup:
    """A report table's row as its cells: numbers right-aligned, the shares of ``percent_columns`` as
    percentages, other floats to two decimals, None as —. (Written cell by cell in the template, the
    evaluation report's 1,700 cells were two thirds of the page's time.)"""
    cells = []
    for index, value in enumerate(row):
        if value is None:
            text = "—"
        elif index in percent_columns:
            text = percent(value, 1)
        elif isinstance(value, float):
            text = f"{value:.2f}"
        else:
            text = output_escape(value)
        cells.append(f'<td class="num">{text}</td>' if isinstance(value, Number) else f"<td>{text}</td>")
    return markupsafe.Markup("".join(cells))


def _label(table: dict[Any, str]) -> Any:
    return lambda value: table.get(value, "—" if value is None else str(value))


_DICT_ATTRIBUTES = frozenset(dir(dict))


def output_escape(value: Any) -> str:
    """What ``{{ value }}`` writes into a page, as Jinja's ``markupsafe.escape`` does, for less: a whole
    number needs no escaping (digits and a sign) and a plain string is escaped by markupsafe's own escaping
    (its C speedup), neither wrapped in a ``Markup`` object (the page is joined into one string anyway);
    anything else (Markup, None, floats, dates ...) goes through ``markupsafe.escape`` itself. Building a
    Markup for every value cost ~1 µs each: 14 values a row were most of the station list's rendering."""
    kind = type(value)
    if kind is str:
        return markupsafe._escape_inner(value)  # type: ignore[attr-defined]  # (what escape() calls on a str)
    if kind is int:
        return str(value)
    return markupsafe.escape(value)


class _PercentEncoded(dict[int, str]):
    """Code point → its percent-encoded UTF-8 (as ``urllib.parse.quote`` with ``/`` safe writes it), filled
    as characters are met; bounded."""

    def __missing__(self, code: int) -> str:
        encoded = urllib.parse.quote(chr(code), safe="/")
        if len(self) < 65_536:
            self[code] = encoded
        return encoded


_PERCENT_ENCODED = _PercentEncoded()


def urlencode(value: Any) -> str:
    """Jinja's ``urlencode`` filter, a string translated a character at a time from ``_PERCENT_ENCODED``
    (the same text: percent-encoding encodes each character's bytes alone): Jinja's took ~2.7 µs for a plate
    (蒙L·A0006), a third of a vehicle row of the list, this ~0.3. Other values (a dict, pairs) are Jinja's."""
    if type(value) is str:
        return value.translate(_PERCENT_ENCODED)
    return jinja2.filters.do_urlencode(value)


class _PageCodeGenerator(CodeGenerator):
    """Jinja's code generator, writing ``output_escape`` (above) around each value a template outputs where
    Jinja writes ``escape`` (autoescape on, known when compiling, no ``finalize``); the rest is Jinja's."""

    def _output_child_pre(self, node: Expr, frame: Frame, finalize: Any) -> None:
        if frame.eval_ctx.autoescape and not frame.eval_ctx.volatile and finalize.src is None:
            self.write("environment.output_escape(")
        else:
            super()._output_child_pre(node, frame, finalize)


class PageEnvironment(jinja2.Environment):
    """Jinja's environment, reading a dict's key before trying an attribute of that name: ``row.name`` on a
    dict (a query's row) is ``row["name"]`` at once. Jinja asks for the attribute first, and the
    AttributeError it catches on every key cost the station list's 100 rows two thirds of their rendering
    (7 ms against 2.5). The result is Jinja's in every case: dict's own attributes are still found first.
    Values written into a page are escaped by ``output_escape``."""

    code_generator_class = _PageCodeGenerator
    output_escape = staticmethod(output_escape)

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)


@functools.cache
def environment() -> jinja2.Environment:
    env = PageEnvironment(
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
        urlencode=urlencode,
        hex=hex_bytes,
        percent=percent,
        report_cells=report_cells,
        size=size,
        severity=_label(SEVERITY_LABELS),
        alarm_kind=label_of,
        alarm_status=_label(ALARM_STATUS_LABELS),
        condition=_label(CONDITION_LABELS),
        deny_reason=reasons.label,
        deny_reason_short=reasons.short_name,
        role=_label(ROLE_LABELS),
        direction=_label(DIRECTION_LABELS),
        door=_label(DOOR_LABELS),
        lift_kind=_label(LIFT_KIND_LABELS),
        cylinder_kind=_label(CYLINDER_KIND_LABELS),
        cylinder_status=_label(CYLINDER_STATUS_LABELS),
        phase=_label(PHASE_LABELS),
        mode=_label(MODE_LABELS),
        audit_action=_label(AUDIT_ACTION_LABELS),
        object_type=_label(OBJECT_TYPE_LABELS),
        census_kind=_label(CENSUS_KIND_LABELS),
        details=readable_details,
        yes_no=lambda value: "—" if value is None else ("是" if value else "否"),
    )
    env.globals.update(DISTRICTS=DISTRICTS, SEVERITIES=SEVERITIES, alarm_kinds=alarm_kinds,
                       ROLE_LABELS=ROLE_LABELS, VISIT_FLAGS=VISIT_FLAGS,
                       COMMAND_LABELS=COMMAND_LABELS, FILL_OUTCOMES=FILL_OUTCOMES,
                       AUDIT_ACTION_FILTERS=AUDIT_ACTION_FILTERS,
                       census_column_label=census_messages.column_label)  # fmt: skip
    return env


def size(value: float | None) -> str:
    """Bytes as the pages show them: 812 MB, 3.4 GB (powers of 1024)."""
    if value is None:
        return "—"
    for unit in ("B", "KB", "MB", "GB"):
        if abs(value) < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


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
