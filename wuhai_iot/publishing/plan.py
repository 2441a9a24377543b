"""The city's plan: phases with their dates and targets per district and kind, and progress against it.

The plan of 2013 has a pilot (Sept–Dec), a full rollout (Jan–June) and a final acceptance by outside
experts (July–Dec). The admin records each phase's dates; targets are recorded per district and kind where
they differ from the plan's own words, which apply otherwise: the pilot lifts (census column ``pilot``)
fitted by the end of the pilot, and every lift fitted, every station connected, every cylinder tagged and
every vehicle certified by the end of the rollout.

Progress is read from the rollout figures (``wuhai_iot.web.queries.coverage``): lifts with a terminal
(the pilot's: pilot lifts with one), stations with every scale connected, cylinders tagged, vehicles with
a valid certificate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import aiosqlite

from wuhai_iot.registry.districts import DISTRICTS
from wuhai_iot.storage import audit
from wuhai_iot.storage.writer import Statement

PHASES = ("pilot", "rollout", "final")
PHASE_LABELS = {"pilot": "试点阶段", "rollout": "全面推广阶段", "final": "总结验收阶段"}
KINDS = ("elevators", "stations", "cylinders", "vehicles")
KIND_LABELS = {"elevators": "电梯", "stations": "充装站", "cylinders": "气瓶", "vehicles": "燃气车辆"}
KIND_UNITS = {"elevators": "台", "stations": "座", "cylinders": "只", "vehicles": "辆"}
KIND_DONE = {"elevators": "已安装", "stations": "已联网", "cylinders": "已贴标签", "vehicles": "已持证"}
_DONE_FIGURE = {"elevators": "elevators_installed", "stations": "stations_connected",
                "cylinders": "cylinders_tagged", "vehicles": "vehicles_valid"}  # fmt: skip
_ALL_FIGURE = {"elevators": "elevators", "stations": "stations", "cylinders": "cylinders", "vehicles": "vehicles"}


class PlanError(ValueError):
    """A phase or target cannot be recorded as given (the message says why, in Chinese for the form)."""


@dataclass(frozen=True, slots=True)
class Phase:
    phase: str
    starts_on: date
    ends_on: date

    @property
    def label(self) -> str:
        return PHASE_LABELS[self.phase]


@dataclass(slots=True)
class Plan:
    phases: dict[str, Phase] = field(default_factory=dict)
    targets: dict[tuple[str, str, str], int] = field(default_factory=dict)
    """(phase, district code, kind) → target recorded by the admin."""

    def current(self, today: date) -> Phase | None:
        """The phase ``today`` falls in, if any."""
        return next((p for p in self.phases.values() if p.starts_on <= today <= p.ends_on), None)


async def load_plan(conn: aiosqlite.Connection) -> Plan:
    plan = Plan()
    for row in await conn.execute_fetchall("SELECT phase, starts_on, ends_on FROM plan_phases"):
        plan.phases[row["phase"]] = Phase(row["phase"], date.fromisoformat(row["starts_on"]),
                                          date.fromisoformat(row["ends_on"]))  # fmt: skip
    for row in await conn.execute_fetchall("SELECT phase, district_code, kind, target FROM plan_targets"):
        plan.targets[(row["phase"], row["district_code"], row["kind"])] = row["target"]
    plan.phases = {name: plan.phases[name] for name in PHASES if name in plan.phases}
    return plan


def plan_statements(
    user: str, phases: dict[str, tuple[date, date] | None], targets: dict[tuple[str, str, str], int | None]
) -> list[Statement]:
    """The statements that record the plan as given (a phase None is removed with its targets; a target
    None falls back to the plan's words), with an audit entry. PlanError when something is wrong."""
    now = time.time()
    statements: list[Statement] = []
    for name, dates in phases.items():
        if name not in PHASES:
            raise PlanError(f"未知的阶段：{name}")
        if dates is None:
            statements.append(("DELETE FROM plan_phases WHERE phase = ?", (name,)))
            continue
        starts_on, ends_on = dates
        if starts_on > ends_on:
            raise PlanError(f"{PHASE_LABELS[name]}的开始日期晚于截止日期")
        statements.append((
            "INSERT INTO plan_phases (phase, starts_on, ends_on, updated_at, updated_by) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (phase) DO UPDATE SET starts_on = excluded.starts_on, ends_on = excluded.ends_on,"
            " updated_at = excluded.updated_at, updated_by = excluded.updated_by",
            (name, starts_on.isoformat(), ends_on.isoformat(), now, user),
        ))  # fmt: skip
    for (phase, district, kind), target in targets.items():
        if phase not in PHASES or district not in DISTRICTS or kind not in KINDS:
            raise PlanError(f"未知的目标：{phase} {district} {kind}")
        if target is not None and target < 0:
            raise PlanError("目标数量不能为负数")
        if target is None or phases.get(phase, ...) is None:
            statements.append(("DELETE FROM plan_targets WHERE phase = ? AND district_code = ? AND kind = ?",
                               (phase, district, kind)))  # fmt: skip
        else:
            statements.append(("INSERT INTO plan_targets (phase, district_code, kind, target) VALUES (?, ?, ?, ?)"
                               " ON CONFLICT DO UPDATE SET target = excluded.target", (phase, district, kind, target)))  # fmt: skip
    details: dict[str, Any] = {
        "phases": {name: None if d is None else [d[0].isoformat(), d[1].isoformat()] for name, d in phases.items()},
        "targets": {f"{p}/{d}/{k}": t for (p, d, k), t in targets.items() if t is not None},
    }
    statements.append(audit.entry(user, "plan.record", "plan", "plan", details=details))
    return statements


@dataclass(frozen=True, slots=True)
class Progress:
    """One district's progress on one kind against one phase's target."""

    district_code: str
    phase: str
    kind: str
    target: int
    done: int
    ends_on: date
    days_left: int
    """Days from today to the deadline (negative: past it)."""

    @property
    def met(self) -> bool:
        return self.done >= self.target

    @property
    def late(self) -> bool:
        """The deadline has passed and the target is not met."""
        return self.days_left < 0 and not self.met

    @property
    def rate(self) -> float | None:
        return None if self.target == 0 else min(1.0, self.done / self.target)

    def sentence(self, district_name: str, *, target: str | None = None, done: str | None = None) -> str:
        """``海南区：试点电梯 52 台，已安装 38 台，12 月 31 日截止，剩 9 天`` (``target`` and ``done``: the
        numbers as shown, when the public page masks them)."""
        what = ("试点" if self.phase == "pilot" else "") + KIND_LABELS[self.kind]
        unit = KIND_UNITS[self.kind]
        deadline = f"{self.ends_on.month} 月 {self.ends_on.day} 日截止"
        if self.met:
            state = "已完成"
        elif self.days_left >= 0:
            state = f"剩 {self.days_left} 天"
        else:
            state = f"已逾期 {-self.days_left} 天"
        target = str(self.target) if target is None else target
        done = str(self.done) if done is None else done
        return (f"{district_name}：{what} {target} {unit}，{KIND_DONE[self.kind]} {done} {unit}，"
                f"{deadline}，{state}")  # fmt: skip


def progress(plan: Plan, figures: list[dict[str, Any]], today: date) -> list[Progress]:
    """Each district's progress (``figures``: the rollout figures per district) against the targets of the
    current phase and of every ended phase (late items stay listed until met)."""
    found = []
    for phase in plan.phases.values():
        if phase.starts_on > today:
            continue
        for figure in figures:
            district = figure["district_code"]
            for kind in KINDS:
                target = target_of(plan, phase.phase, district, kind, figure)
                if not target:
                    continue
                done = figure["pilot_installed"] if (phase.phase, kind) == ("pilot", "elevators") else figure[_DONE_FIGURE[kind]]
                item = Progress(district, phase.phase, kind, target, done, phase.ends_on, (phase.ends_on - today).days)
                if phase.ends_on >= today or item.late:
                    found.append(item)
    return found


def target_of(plan: Plan, phase: str, district: str, kind: str, figure: dict[str, Any]) -> int | None:
    """The recorded target, else the plan's words (pilot lifts by the pilot's end, everything by the
    rollout's end); None: no target for this kind in this phase."""
    recorded = plan.targets.get((phase, district, kind))
    if recorded is not None:
        return recorded
    if phase == "pilot" and kind == "elevators":
        return int(figure["pilot"])
    if phase == "rollout":
        return int(figure[_ALL_FIGURE[kind]])
    return None
