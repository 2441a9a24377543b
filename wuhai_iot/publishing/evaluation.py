"""The evaluation report of a phase (pilot, rollout, final): what an acceptance panel reads.

Sections, each a sheet of the workbook and a part of the printed page: coverage against the plan; data
quality; alarms and rescues; maintenance compliance and its trend; fills and refusals; vehicles;
incidents per 1,000 fitted lifts month by month with the month each district went live; open problems.
The window is the phase's dates (recorded in the plan), cut at today. Figures are counted in SQL per
district; lists (open problems) are cut at LIST_LIMIT rows, with the total said.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aiosqlite

from wuhai_iot.alarms.kinds import label_of
from wuhai_iot.clock import CST, cst_today
from wuhai_iot.config import Config
from wuhai_iot.elevators import queries as lifts
from wuhai_iot.publishing import effect as fx
from wuhai_iot.publishing.plan import KIND_LABELS, PHASE_LABELS, Phase, load_plan, progress
from wuhai_iot.registry.districts import DISTRICTS
from wuhai_iot.storage import figures as running

LIST_LIMIT = 100
LONG_GAP_DAYS = 3
"""A terminal with no valid data for this many days in a row within the window had a long gap."""
CLOCK_OFF_S = 300
"""A lift whose latest status was stamped this far from when it arrived has a clock far off."""
SILENT_AFTER_H = 24
DENY_LABELS = {1: "标签未登记", 2: "定期检验过期", 3: "已报废或超设计使用年限", 4: "非本站自有气瓶", 5: "介质不符或无此介质许可",
               6: "黑名单气瓶", 7: "充装许可过期或暂停", 8: "车用气瓶无有效使用登记证", 9: "气瓶已满",
               10: "距上次充装过近（疑似倒气）", 11: "操作员卡未登记", 99: "平台故障（拒绝）"}  # fmt: skip


class PhaseNotRecorded(LookupError):
    """The plan has no dates for the phase asked for."""


class PhaseNotStarted(LookupError):
    """The phase asked for begins after today: nothing to evaluate yet."""


@dataclass(slots=True)
class Table:
    caption: str
    columns: list[str]
    rows: list[list[Any]]
    """Numbers stay numbers (the workbook writes them as such); None is an empty cell."""
    percent: set[int] = field(default_factory=set)
    """Indexes of the columns that hold shares (0–1)."""
    note: str = ""


@dataclass(slots=True)
class Section:
    key: str
    """The workbook sheet's name."""
    title: str
    tables: list[Table]
    charts: list[tuple[str, list[tuple[str, float | None]]]] = field(default_factory=list)
    """(title, points): drawn as SVG on the page."""


@dataclass(slots=True)
class Evaluation:
    phase: Phase
    until: date
    """The last day counted (the phase's end, or today while it runs)."""
    taken_at: datetime
    sections: list[Section]

    @property
    def title(self) -> str:
        return f"乌海市特种设备安全信息化物联网管理系统 {PHASE_LABELS[self.phase.phase]}评估报告"


def _district_rows(values: dict[str, list[Any]], width: int) -> list[list[Any]]:
    """One row per district then the city's sum (columns that are not numbers stay empty in the sum)."""
    rows = [[DISTRICTS[code], *values.get(code, [0] * width)] for code in DISTRICTS]
    total: list[Any] = []
    for i in range(width):
        cells = [row[i + 1] for row in rows]
        total.append(sum(cells) if all(isinstance(c, (int, float)) for c in cells) else None)
    return [*rows, ["全市", *total]]


async def evaluation(conn: aiosqlite.Connection, config: Config, phase_name: str, figures: list[dict[str, Any]], *,
                     counts: RegistryCounts, listeners: dict[str, Any] | None = None, now: datetime | None = None
                     ) -> Evaluation:  # fmt: skip
    """The report of ``phase_name``; ``figures``: the rollout figures of every district (``web.queries.coverage``);
    ``counts``: the registry's, as last counted; ``listeners``: the platform's, whose frame counters the data
    quality reports."""
    now = now or datetime.now(UTC)
    today = cst_today(now)
    plan = await load_plan(conn)
    phase = plan.phases.get(phase_name)
    if phase is None:
        raise PhaseNotRecorded(phase_name)
    if phase.starts_on > today:
        raise PhaseNotStarted(phase_name)
    until = min(phase.ends_on, today)
    limit = config.rules.rescue_arrival_limit_min
    months = _months(phase.starts_on, until)
    days = (phase.starts_on, until + timedelta(days=1))
    # (Read once: sections 4 and 7 show it; the rescues are summed over the whole phase in section 3.)
    effect = await fx.monthly_effect(conn, months, limit_min=limit, parts=frozenset({"trapped", "visits", "fitted"}))
    rules = config.rules  # (the lifts are counted once: sections 4 and 8 show them)
    counted = await lifts.count_lifts(conn, counts=["fitted", "maintenance_overdue", "inspection_overdue"],
                                      maintenance_interval_days=rules.maintenance_interval_days,
                                      inspection_due_days=rules.inspection_due_days)  # fmt: skip
    sections = [
        _coverage(figures, plan, phase, today),
        await _data_quality(conn, (phase.starts_on, until), listeners or {}, counts),
        await _alarms_and_rescues(conn, days, months, limit),
        _maintenance(months, config, effect, counted),
        await _fills(conn, days),
        _vehicles(counts),
        await _incidents(conn, months, effect),
        await _open_problems(conn, config, counts, counted),
    ]
    return Evaluation(phase, until, now, sections)


def _months(first: date, last: date) -> list[str]:
    found, year, month = [], first.year, first.month
    while (year, month) <= (last.year, last.month):
        found.append(f"{year:04d}-{month:02d}")
        year, month = (year, month + 1) if month < 12 else (year + 1, 1)
    return found


def _coverage(figures: list[dict[str, Any]], plan: Any, phase: Phase, today: date) -> Section:
    names = ["elevators", "elevators_installed", "pilot", "pilot_installed", "elevators_online", "stations",
             "stations_connected", "cylinders", "cylinders_tagged", "vehicles", "vehicles_valid"]  # fmt: skip
    values = {f["district_code"]: [f[name] for name in names] for f in figures}
    coverage_table = Table("各区覆盖情况", ["区县", "电梯", "已装终端", "试点电梯", "试点已装", "当前在线", "充装站",
                                        "已联网", "气瓶", "已贴标签", "燃气车辆", "有效登记证"],
                           _district_rows(values, len(names)))  # fmt: skip
    items = [item for item in progress(plan, figures, today) if item.phase == phase.phase]
    plan_rows = [[DISTRICTS[i.district_code], KIND_LABELS[i.kind], i.target, i.done, i.rate, i.ends_on.isoformat(),
                  i.days_left, "已完成" if i.met else "逾期" if i.late else "进行中"] for i in items]  # fmt: skip
    plan_table = Table(f"对照计划（{phase.label} {phase.starts_on} 至 {phase.ends_on}）",
                       ["区县", "类别", "目标", "完成", "完成率", "截止日期", "剩余天数", "状态"], plan_rows, {4},
                       note="" if plan_rows else "本阶段没有目标。")  # fmt: skip
    return Section("覆盖与计划", "一、覆盖情况与计划完成", [coverage_table, plan_table])


_NEVER = """
SELECT coalesce(e.district_code, s.district_code) AS district, count(*) AS terminals,
       sum(ts.last_frame_at IS NULL) AS never
FROM terminals t LEFT JOIN terminal_sessions ts ON ts.protocol = t.protocol AND ts.terminal_id = t.terminal_id
     LEFT JOIN elevators e ON e.device_code = t.device_code LEFT JOIN stations s ON s.station_code = t.station_code
GROUP BY district
"""
# Terminals whose longest gap between two days with data within [first, last] is LONG_GAP_DAYS or more, from
# their runs of consecutive days (terminal_runs) cut to the window: a gap is the days between two runs.
_GAPS = f"""
WITH clipped AS (
  SELECT protocol, terminal_id, max(first_day, :first) AS first_day, lag(min(last_day, :last))
         OVER (PARTITION BY protocol, terminal_id ORDER BY first_day) AS previous_last
  FROM terminal_runs WHERE last_day >= :first AND first_day <= :last
), gaps AS (
  SELECT protocol, terminal_id, max(julianday(first_day) - julianday(previous_last)) - 1 AS longest
  FROM clipped GROUP BY protocol, terminal_id
)
SELECT coalesce(e.district_code, s.district_code) AS district, count(*) AS terminals
FROM gaps g JOIN terminals t ON t.protocol = g.protocol AND t.terminal_id = g.terminal_id
     LEFT JOIN elevators e ON e.device_code = t.device_code LEFT JOIN stations s ON s.station_code = t.station_code
WHERE g.longest >= {LONG_GAP_DAYS} GROUP BY district
"""
_CLOCKS = f"""
SELECT e.district_code AS district, count(*) AS lifts FROM elevator_state st JOIN elevators e ON e.device_code = st.device_code
WHERE abs(st.at - st.received_at) > {CLOCK_OFF_S} GROUP BY e.district_code
"""


async def _gaps(conn: aiosqlite.Connection, window: tuple[date, date]) -> dict[str, int]:
    return {row["district"]: row["terminals"] for row in await conn.execute_fetchall(
        _GAPS, {"first": window[0].isoformat(), "last": window[1].isoformat()})}  # fmt: skip


def _counted_at(counts: RegistryCounts) -> str:
    return f"统计于 {counts.taken_at.astimezone(CST):%Y-%m-%d %H:%M}（每 5 分钟统计一次）。"


async def _data_quality(conn: aiosqlite.Connection, window: tuple[date, date], listeners: dict[str, Any],
                        counts: RegistryCounts) -> Section:  # fmt: skip
    gaps = counts.gaps[window] if window in counts.gaps else await _gaps(conn, window)
    values = {code: [*counts.terminals.get(code, [0, 0]), gaps.get(code, 0), counts.clocks.get(code, 0)]
              for code in DISTRICTS}  # fmt: skip
    terminals = Table("终端数据质量", ["区县", "登记终端", "从未上报", f"中断≥{LONG_GAP_DAYS}天（本阶段）",
                                  f"时钟偏差>{CLOCK_OFF_S // 60}分钟的电梯"], _district_rows(values, 4),
                      note=_counted_at(counts))  # fmt: skip
    frame_rows = []
    for name, listener in sorted(listeners.items()):
        counters = listener.counters
        received = counters.frames_in
        frame_rows.append([name, received, counters.decode_errors, counters.logins_refused,
                           counters.decode_errors / received if received else None])  # fmt: skip
    frames = Table("报文（自平台本次启动）", ["协议", "收到报文", "无法解析", "登录被拒", "解析失败率"], frame_rows, {4})
    return Section("数据质量", "二、数据质量", [terminals, frames])


async def _alarms_and_rescues(conn: aiosqlite.Connection, days: tuple[date, date], months: list[str],
                              limit: float) -> Section:  # fmt: skip
    kinds: dict[str, list[int]] = {}
    for (_, figure), n in (await running.per_district_window(conn, "alarms", *days)).items():
        _, kind, severity = figure.split(":")
        counts = kinds.setdefault(kind, [0, 0, 0])
        counts[("critical", "major", "minor").index(severity)] += n
    alarm_rows = [[label_of(kind), *counts, sum(counts)]
                  for kind, counts in sorted(kinds.items(), key=lambda pair: -sum(pair[1]))]  # fmt: skip
    alarms = Table("告警（按类型）", ["类型", "严重", "重要", "一般", "合计"], alarm_rows)
    summary = await fx.rescue_summary(conn, months, limit_min=limit)
    rescue_rows = []
    for code, name in [*DISTRICTS.items(), (fx.CITY, "全市")]:
        s = summary.get(code)
        rescue_rows.append([name, s.rescues if s else 0, s.arrived if s else 0, s.median_min if s else None,
                            s.p90_min if s else None, s.within_limit if s else 0, s.within_share if s else None])  # fmt: skip
    rescues = Table(f"困人救援（整月：{months[0]} 至 {months[-1]}）", ["区县", "困人救援", "已到场", "到场中位数（分）", "到场90%分位（分）",
                             f"{limit:g}分钟内到场", f"{limit:g}分钟内到场率"], rescue_rows, {6})  # fmt: skip
    return Section("告警与救援", "三、告警与救援", [alarms, rescues])


def _maintenance(months: list[str], config: Config, effect: fx.Effect, counted: dict[str, dict[str, int]]) -> Section:
    rows = []
    for month in months:
        row: list[Any] = [month]
        for code in [*DISTRICTS, fx.CITY]:
            cell = effect[code][month]
            done = cell.visits_verified + cell.visits_flagged
            row += [cell.visits_verified, cell.visits_flagged, cell.visits_verified / done if done else None]
        rows.append(row)
    columns = ["月份"]
    percent = set()
    for name in [*DISTRICTS.values(), "全市"]:
        columns += [f"{name} 核实", f"{name} 存疑", f"{name} 合规率"]
        percent.add(len(columns) - 1)
    trend = Table("维保记录（逐月，整月）", columns, rows, percent)
    rules = config.rules
    values = {code: [c["fitted"] or 0, c["maintenance_overdue"] or 0] for code, c in counted.items()}
    overdue = Table(f"当前维保超期（超过{rules.maintenance_interval_days}天）", ["区县", "已装终端电梯", "维保超期"],
                    _district_rows(values, 2))  # fmt: skip
    chart = [(m[5:] + "月", None if r[-1] is None else 100 * r[-1]) for m, r in zip(months, rows, strict=True)]
    return Section("维保", "四、维保合规及趋势", [trend, overdue], [("全市维保合规率（%）", chart)])


async def _fills(conn: aiosqlite.Connection, days: tuple[date, date]) -> Section:
    values: dict[str, list[int]] = {}
    per_reason: dict[int, dict[str, int]] = {}
    for (district, _), n in (await running.per_district_window(conn, "fills_permitted", *days)).items():
        values.setdefault(district, [0, 0])[0] += n
    for (district, figure), n in (await running.per_district_window(conn, "fills_denied", *days)).items():
        values.setdefault(district, [0, 0])[1] += n
        reason = per_reason.setdefault(int(figure.partition(":")[2]), {})
        reason[district] = reason.get(district, 0) + n
    rows = _district_rows(values, 2)
    for row in rows:
        total = row[1] + row[2]
        row.append(row[2] / total if total else None)
    decisions = Table("充装请求", ["区县", "允许", "拒绝", "拒绝率"], rows, {3})
    reason_rows = []
    for reason in sorted(per_reason):
        counts = [per_reason[reason].get(code, 0) for code in DISTRICTS]
        reason_rows.append([reason, DENY_LABELS.get(reason, str(reason)), *counts, sum(counts)])
    reasons = Table("拒绝原因", ["代码", "原因", *DISTRICTS.values(), "全市"], reason_rows,
                    note="其中“距上次充装过近（疑似倒气）”为拦截的倒气，“定期检验过期”为拦截的超期未检气瓶充装。")  # fmt: skip
    blocked = Table("拦截", ["项目", "次数"], [
        ["疑似倒气（原因10）", sum(per_reason.get(10, {}).values())],
        ["超期未检气瓶充装（原因2）", sum(per_reason.get(2, {}).values())],
    ])  # fmt: skip
    return Section("充装", "五、气瓶充装与拒绝", [decisions, reasons, blocked])


_VEHICLES = """
SELECT district_code AS district, count(*) AS vehicles, sum(certificate_status = 'valid') AS valid,
       sum(certificate_status = 'revoked') AS revoked, sum(certificate_status IS NULL) AS missing
FROM vehicles GROUP BY district_code
"""
_VEHICLE_CYLINDERS = """
SELECT v.district_code AS district, count(*) AS cylinders, count(c.tag_uid) AS tagged
FROM cylinders c JOIN vehicles v ON v.plate = c.vehicle_plate GROUP BY v.district_code
"""


def _vehicles(counts: RegistryCounts) -> Section:
    table = Table("燃气车辆", ["区县", "车辆", "有效登记证", "登记证已注销", "无登记证", "车用气瓶", "已贴标签"],
                  _district_rows(counts.vehicles, 6), note=_counted_at(counts))  # fmt: skip
    return Section("车辆", "六、燃气车辆", [table])


async def _incidents(conn: aiosqlite.Connection, months: list[str], effect: fx.Effect) -> Section:
    # A district went live the month its first fitted lift with a known installation day was fitted.
    go_live = {district: min(month for month in fitted if month)
               for district, fitted in (await running.fitted_by_month(conn)).items() if any(fitted.keys() - {""})}
    rows = []
    for month in months:
        row: list[Any] = [month]
        for code in [*DISTRICTS, fx.CITY]:
            cell = effect[code][month]
            row += [cell.trapped, cell.fitted, cell.per_thousand]
        rows.append(row)
    columns = ["月份"]
    for name in [*DISTRICTS.values(), "全市"]:
        columns += [f"{name} 困人", f"{name} 已装电梯", f"{name} 每千台困人"]
    live = Table("各区上线月份（首台电梯终端安装）", ["区县", "上线月份"],
                 [[name, go_live.get(code)] for code, name in DISTRICTS.items()])  # fmt: skip
    charts = []
    for index, (code, name) in enumerate(DISTRICTS.items()):
        label = f"{name}每千台已装电梯困人（上线 {go_live.get(code, '—')}）"
        charts.append((label, [(m[5:] + ("月*" if go_live.get(code) == m else "月"), r[3 + 3 * index])
                               for m, r in zip(months, rows, strict=True)]))  # fmt: skip
    return Section("每千台困人", "七、每千台电梯困人故障（逐月）", [Table("逐月", columns, rows), live], charts)


_SILENT = """
SELECT t.protocol, t.terminal_id, coalesce(e.district_code, s.district_code) AS district, ts.last_frame_at,
       coalesce(e.address, s.name) AS place
FROM terminals t LEFT JOIN terminal_sessions ts ON ts.protocol = t.protocol AND ts.terminal_id = t.terminal_id
     LEFT JOIN elevators e ON e.device_code = t.device_code LEFT JOIN stations s ON s.station_code = t.station_code
WHERE ts.last_frame_at IS NULL OR ts.last_frame_at < ?
ORDER BY ts.last_frame_at IS NOT NULL, ts.last_frame_at, t.protocol, t.terminal_id
"""
_UNCONNECTED = """
SELECT s.station_code, s.name, s.district_code AS district, s.scales,
       (SELECT count(*) FROM terminals t JOIN terminal_sessions ts ON ts.protocol = t.protocol
        AND ts.terminal_id = t.terminal_id WHERE t.protocol = 'gasfill' AND t.station_code = s.station_code
        AND ts.online = 1) AS online
FROM stations s WHERE s.status = 'active' ORDER BY s.station_code
"""


async def _open_problems(conn: aiosqlite.Connection, config: Config, counts: RegistryCounts,
                         counted: dict[str, dict[str, int]]) -> Section:  # fmt: skip
    silent_total, silent_rows = counts.silent
    silent = Table(f"已安装但超过{SILENT_AFTER_H}小时无数据的终端（共 {silent_total} 个）",
                   ["区县", "协议", "终端", "位置", "最后数据"], silent_rows,
                   note=(f"仅列前 {LIST_LIMIT} 个。" if silent_total > LIST_LIMIT else "") + _counted_at(counts))  # fmt: skip
    station_total, station_rows = counts.stations
    stations = Table(f"充装秤未全部联网的充装站（共 {station_total} 座）", ["区县", "站点代码", "名称", "充装秤", "在线"],
                     station_rows, note=_counted_at(counts))  # fmt: skip
    rules = config.rules
    overdue = await lifts.list_lifts(conn, inspection_overdue=True, order="inspection", limit=LIST_LIMIT,
                                     maintenance_interval_days=rules.maintenance_interval_days,
                                     inspection_due_days=rules.inspection_due_days)  # fmt: skip
    total = sum(c["inspection_overdue"] or 0 for c in counted.values())
    inspections = Table(f"定期检验超期的电梯（共 {total} 台）", ["区县", "设备代码", "地址", "下次检验日期"],
                        [[DISTRICTS.get(l.district_code, "—"), l.device_code, l.registry["address"], l.registry["next_inspection"]]
                         for l in overdue])  # fmt: skip
    return Section("待解决问题", "八、待解决问题", [silent, stations, inspections])


@dataclass(frozen=True, slots=True)
class RegistryCounts:
    """What the report counts over the whole registry — every terminal, lift state, vehicle, vehicle cylinder
    and station — counted every few minutes by the days recorder (publishing/plugin.py) instead of on each
    request, whose cost would grow with the city."""

    taken_at: datetime
    terminals: dict[str, list[int]]
    """District → [terminals, never reported]."""
    clocks: dict[str, int]
    """District → lifts whose latest status was stamped more than CLOCK_OFF_S from its arrival."""
    vehicles: dict[str, list[int]]
    """District → [vehicles, certificate valid, revoked, missing, vehicle cylinders, tagged]."""
    silent: tuple[int, list[list[Any]]]
    """Terminals silent SILENT_AFTER_H hours: (how many, the first LIST_LIMIT rows)."""
    stations: tuple[int, list[list[Any]]]
    """Active stations with scales not all online: (how many, the first LIST_LIMIT rows)."""
    gaps: dict[tuple[date, date], dict[str, int]]
    """Window of a phase → district → terminals with a long gap in it."""


def phase_windows(plan: Any, today: date) -> list[tuple[date, date]]:
    """The window of each phase begun by ``today``: its dates, cut at today."""
    return [(phase.starts_on, min(phase.ends_on, today)) for phase in plan.phases.values() if phase.starts_on <= today]


async def count_registry(conn: aiosqlite.Connection, *, now: datetime | None = None) -> RegistryCounts:
    """Count what ``RegistryCounts`` holds now (reads every terminal, lift state, vehicle and station)."""
    now = now or datetime.now(UTC)
    terminals = {row["district"]: [int(row["terminals"]), int(row["never"] or 0)]
                 for row in await conn.execute_fetchall(_NEVER)}  # fmt: skip
    clocks = {row["district"]: row["lifts"] for row in await conn.execute_fetchall(_CLOCKS)}
    vehicles = {row["district"]: row for row in await conn.execute_fetchall(_VEHICLES)}
    cylinders = {row["district"]: row for row in await conn.execute_fetchall(_VEHICLE_CYLINDERS)}
    per_district = {}
    for code in DISTRICTS:
        v, c = vehicles.get(code), cylinders.get(code)
        per_district[code] = [int(v["vehicles"]) if v else 0, int(v["valid"] or 0) if v else 0,
                              int(v["revoked"] or 0) if v else 0, int(v["missing"] or 0) if v else 0,
                              int(c["cylinders"]) if c else 0, int(c["tagged"]) if c else 0]  # fmt: skip
    silent_before = (now - timedelta(hours=SILENT_AFTER_H)).timestamp()
    silent_total = (await conn.execute_fetchall(f"SELECT count(*) FROM ({_SILENT})", (silent_before,)))[0][0]
    silent_rows = []
    for row in await conn.execute_fetchall(f"{_SILENT} LIMIT {LIST_LIMIT}", (silent_before,)):
        last = row["last_frame_at"]
        silent_rows.append([DISTRICTS.get(row["district"], "—"), row["protocol"], row["terminal_id"], row["place"],
                            None if last is None else datetime.fromtimestamp(last, CST).strftime("%Y-%m-%d %H:%M")])  # fmt: skip
    station_rows = [[DISTRICTS.get(row["district"], "—"), row["station_code"], row["name"], row["scales"] or 0, row["online"]]
                    for row in await conn.execute_fetchall(_UNCONNECTED) if not row["scales"] or row["online"] < row["scales"]]  # fmt: skip
    gaps = {window: await _gaps(conn, window) for window in phase_windows(await load_plan(conn), cst_today(now))}
    return RegistryCounts(now, terminals, clocks, per_district, (silent_total, silent_rows),
                          (len(station_rows), station_rows[:LIST_LIMIT]), gaps)  # fmt: skip


def as_rows(report: Evaluation) -> dict[str, Any]:
    """The report as plain values (tests compare it with recounts)."""
    return {section.key: {table.caption: table.rows for table in section.tables} for section in report.sections}
