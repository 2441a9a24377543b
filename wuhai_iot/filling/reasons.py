"""The reasons a fill is refused: one table, from which the pages' badges, the charts and the reports take
their words. The decision (``filling.decision``) answers a controller with the number; people read these.

``short`` names a bar or a badge (a few characters, no code to look up); ``label`` says it in full.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DenyReason:
    code: int
    name: str
    """A stable identifier (logs, CSV, API)."""
    short: str
    label: str


REASONS: tuple[DenyReason, ...] = (
    DenyReason(0, "permit", "允许充装", "允许充装"),
    DenyReason(1, "tag_unknown", "标签未登记", "电子标签未登记"),
    DenyReason(2, "inspection_overdue", "检验过期", "定期检验过期"),
    DenyReason(3, "scrapped", "报废或超年限", "已报废或超设计使用年限"),
    DenyReason(4, "not_owner", "非本站气瓶", "非本站自有产权气瓶"),
    DenyReason(5, "wrong_medium", "介质不符", "介质不符或本站无此介质许可"),
    DenyReason(6, "blacklisted", "黑名单气瓶", "气瓶已列入黑名单"),
    DenyReason(7, "station_not_licensed", "站点许可失效", "充装许可过期或被暂停"),
    DenyReason(8, "no_vehicle_certificate", "无使用登记证", "车用气瓶无有效使用登记证"),
    DenyReason(9, "already_full", "气瓶已满", "气瓶已满，无需充装"),
    DenyReason(10, "refill_too_soon", "疑似倒气", "距上次充装过近（疑似倒气）"),
    DenyReason(11, "operator_unknown", "操作员卡未登记", "操作员卡未登记"),
    DenyReason(12, "collision", "碰撞后待检验", "车辆发生碰撞，气瓶检验前不得充装"),
    DenyReason(99, "platform_error", "平台故障", "平台故障，按规定拒绝（可重试）"),
)
BY_CODE: dict[int, DenyReason] = {reason.code: reason for reason in REASONS}


def short_name(code: int) -> str:
    """The reason's short Chinese name; an unknown code is shown as such, never hidden."""
    found = BY_CODE.get(code)
    return found.short if found is not None else f"原因 {code}"


def label(code: int) -> str:
    found = BY_CODE.get(code)
    return found.label if found is not None else f"原因 {code}"
