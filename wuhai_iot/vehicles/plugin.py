"""Plugs the supervision of vehicle cylinders into the platform: the vehicle alarm kinds, REGISTER and
UNREGISTER, the consumer of vehicle positions with its rules, the tick and retention."""

from __future__ import annotations

from typing import TYPE_CHECKING

from wuhai_iot.alarms.kinds import AlarmKind
from wuhai_iot.plugins.hookspecs import hookimpl
from wuhai_iot.vehicles import monitor

if TYPE_CHECKING:
    from wuhai_iot.server import Platform

VEHICLE_ALARM_KINDS = (
    AlarmKind("gas_leak", "critical", "气瓶泄漏", "vehicles"),
    AlarmKind("cylinder_overpressure", "critical", "气瓶超压", "vehicles"),
    AlarmKind("illegal_fill", "critical", "站外非法充装", "vehicles"),
    AlarmKind("unrecorded_fill", "major", "充装未上报", "vehicles"),
    AlarmKind("collision", "major", "碰撞/侧翻", "vehicles"),
    AlarmKind("cylinder_mismatch", "major", "气瓶与登记不符", "vehicles"),
    AlarmKind("certificate_invalid_on_road", "major", "无有效使用登记证上路", "vehicles"),
)
"""The vehicle alarms of domain.md (``offline`` is the lifts' kind, shared)."""


@hookimpl
def register_alarm_kinds() -> list[AlarmKind]:
    return list(VEHICLE_ALARM_KINDS)


@hookimpl
async def platform_starting(platform: Platform) -> None:
    await monitor.start(platform)


@hookimpl
async def platform_stopping(platform: Platform) -> None:
    await monitor.stop(platform)
