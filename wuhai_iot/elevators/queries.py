"""Lift queries for the web pages and the JSON API: the one place that says what a lift looks like now.

Each lift joins the registry, its latest state (``elevator_state``), whether a terminal of it is online,
its open alarms and the overdue flags. Filters, ordering and keyset paging run in SQL.

Maintenance overdue (domain.md, TSG T5002-2017: at most 15 days between two visits) is counted in CST
calendar days from a *reference date*:

- the CST date on which the lift's last completed visit ended; or, when no visit has been recorded,
- the date the platform started tracking the lift: the earliest ``installed_on`` of its terminals (the
  platform sees visits only through a terminal's card reader). A terminal whose installation date is not
  in the census counts as installed long ago, so the lift is overdue at once: a missing date must never
  hide a lift from the overdue list.

A lift is overdue when more than ``maintenance_interval_days`` days have passed since its reference date.
A lift without any terminal is not tracked and never flagged (pages show it as "no terminal").

Inspection overdue: the next periodic inspection date is before today (CST); due soon: today or within
``inspection_due_days`` days.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

import aiosqlite

from wuhai_iot.clock import cst_date, cst_today, utc
from wuhai_iot.config import RulesConfig
from wuhai_iot.storage import figures
from wuhai_iot.storage.scope import ScopeColumns

DEFAULTS = RulesConfig()
STATE_COLUMNS = ("at", "received_at", "protocol", "terminal_id", "floor", "direction", "door", "running", "door_zone",
                 "occupied", "speed_mps", "load_pct", "power", "safety_circuit", "door_lock", "overload", "mode",
                 "trip_count")  # fmt: skip
STATE_FLAGS = ("running", "door_zone", "occupied", "power", "safety_circuit", "door_lock", "overload")
STATE_TIMES = ("at", "received_at")
SEVERITIES = ("critical", "major", "minor")

_SESSIONS = ("FROM terminals t JOIN terminal_sessions ts ON ts.protocol = t.protocol"
             " AND ts.terminal_id = t.terminal_id WHERE t.device_code = e.device_code")  # fmt: skip

# The flags, from the reference dates above: :overdue_before = today - interval, :today, :due_until.
_MAINTENANCE_OVERDUE = "coalesce(e.terminals > 0 AND e.maintenance_ref < :overdue_before, 0)"
_INSPECTION_OVERDUE = "e.next_inspection < :today"
_INSPECTION_DUE_SOON = "e.next_inspection BETWEEN :today AND :due_until"
_INSPECTION_DUE = "e.next_inspection <= :due_until"
_FLAGS = (f"{_MAINTENANCE_OVERDUE} AS maintenance_overdue, {_INSPECTION_OVERDUE} AS inspection_overdue,"
          f" {_INSPECTION_DUE_SOON} AS inspection_due_soon")  # fmt: skip

_MAINTENANCE_OVERDUE_CODES = "SELECT device_code FROM elevators WHERE terminals > 0 AND maintenance_ref < :overdue_before"
_INSPECTION_OVERDUE_CODES = "SELECT device_code FROM elevators WHERE next_inspection < :today"
_FLAGGED_CODES = {
    "maintenance_overdue": _MAINTENANCE_OVERDUE_CODES, "inspection_overdue": _INSPECTION_OVERDUE_CODES,
    "overdue": f"{_MAINTENANCE_OVERDUE_CODES} UNION ALL {_INSPECTION_OVERDUE_CODES}",
    "inspection_due": "SELECT device_code FROM elevators WHERE next_inspection <= :due_until",
}  # fmt: skip
"""The lifts with a flag as ranges of its indexes. A count (or a list in device code order on a day after the
fold boundaries) asks for its flag as ``e.device_code IN (...)`` too: the planner then reads those index entries
(the flagged lifts alone), instead of every lift. A list in device code order reads ``overdue_lifts`` instead
(``_OVERDUE_KINDS``): a page of it, not every overdue lift."""

_OVERDUE_KINDS = {"maintenance_overdue": "maintenance", "inspection_overdue": "inspection", "overdue": "any"}
"""The overdue filters and their kind of ``overdue_lifts`` (migration 0043: the lifts overdue as of the fold
boundaries, by kind and device code), which a list in device code order reads a page of, in order, joined to the
lifts whose flags it re-checks for the day asked (exact when that day is not after the boundaries)."""
_OVERDUE_SCOPE = ScopeColumns(district="o.district_code", company="o.company")
_OVERDUE_ORDER = ("o.device_code",)

# The lifts in scope with what is known of each. What used to be counted per lift and request (terminals,
# online terminals, open alarms, the last completed visit) is kept on the lift's row by the triggers of
# migration 0021, so filters and orders run on indexes (see storage/figures.py).
_LIFTS = f"""
SELECT e.*, {_FLAGS}, {", ".join(f"st.{name} AS state_{name}" for name in STATE_COLUMNS)},
       e.online_terminals > 0 AS online, (SELECT max(ts.last_frame_at) {_SESSIONS}) AS last_frame_at,
       CASE WHEN e.open_critical > 0 THEN 0 WHEN e.open_major > 0 THEN 1 WHEN e.open_alarms > 0 THEN 2 END AS worst,
       e.trapped_alarms AS trapped
FROM {{lifts}} LEFT JOIN elevator_state st ON st.device_code = e.device_code
"""

ORDERS: dict[str, tuple[str, ...]] = {
    "device_code": ("e.device_code",),
    "urgency": ("e.trapped_alarms = 0", "coalesce(worst, 3)", "e.device_code"),
    "maintenance": ("e.maintenance_ref", "e.device_code"),
    "inspection": ("e.next_inspection", "e.device_code"),
}
"""The columns each order sorts by. ``urgency``: trapped passengers first, then by the worst open alarm.
``maintenance``: longest since the reference date first. ``inspection``: the earliest next inspection first.
Every order but ``urgency`` pages by keyset on an index (``cursor_of`` gives a page's cursor)."""
Order = Literal["device_code", "urgency", "maintenance", "inspection"]
PAGED_ORDERS = ("device_code", "maintenance", "inspection")
CURSOR_SEPARATOR = "|"


@dataclass(slots=True)
class LiftView:
    device_code: str
    registry: dict[str, Any]
    """The registry row (address, user unit, maintenance company, district_code, rated speed ...)."""
    state: dict[str, Any] | None
    """The latest status (``elevator_state`` columns, times as datetimes, flags as bools), or None."""
    online: bool
    has_terminal: bool
    last_frame_at: datetime | None
    open_alarms: int
    worst_severity: str | None
    """critical, major or minor: the worst open alarm's severity."""
    trapped: bool
    """Passengers inside now: a trapped-passenger alarm whose condition is still active (once the doors
    open the lift is no longer trapped, even while the alarm waits for staff)."""
    last_maintenance_at: datetime | None
    """The end of the last completed maintenance visit."""
    maintenance_ref: str | None
    """The CST day (ISO) maintenance is counted from; '' when a terminal's installation date is unknown,
    None when the lift has no terminal (not tracked)."""
    days_since_maintenance: int | None
    """CST calendar days since that visit (None: no visit recorded)."""
    maintenance_overdue: bool
    inspection_overdue: bool
    inspection_due_soon: bool
    inspection_days_left: int
    """CST calendar days until the next periodic inspection (negative: overdue)."""
    terminal_list: list[dict[str, Any]] = field(default_factory=list)
    """Only from ``get_lift``: each terminal with its session (times as datetimes)."""

    @property
    def district_code(self) -> str:
        return str(self.registry["district_code"])



def _view(row: aiosqlite.Row, today: date, names: Sequence[str] | None = None) -> LiftView:
    """A lift from a row of ``_LIFTS`` (``names``: its column names, read once for a whole list)."""
    data = dict(zip(names or row.keys(), row))  # dict(row) looks every column up by name: 5x slower on 45 columns
    state = None
    if data["state_at"] is not None:
        state = {name: data[f"state_{name}"] for name in STATE_COLUMNS}
        for name in STATE_FLAGS:
            state[name] = None if state[name] is None else bool(state[name])
        for name in STATE_TIMES:
            state[name] = utc(state[name])
    registry = {name: data[name] for name in _REGISTRY_COLUMNS}
    last_visit = utc(data["last_visit_at"])
    return LiftView(
        device_code=data["device_code"],
        registry=registry,
        state=state,
        online=bool(data["online"]),
        has_terminal=data["terminals"] > 0,
        last_frame_at=utc(data["last_frame_at"]),
        open_alarms=data["open_alarms"],
        worst_severity=None if data["worst"] is None else SEVERITIES[data["worst"]],
        trapped=data["trapped"] > 0,
        last_maintenance_at=last_visit,
        maintenance_ref=data["maintenance_ref"],
        days_since_maintenance=None if last_visit is None else (today - cst_date(last_visit)).days,
        maintenance_overdue=bool(data["maintenance_overdue"]),
        inspection_overdue=bool(data["inspection_overdue"]),
        inspection_due_soon=bool(data["inspection_due_soon"]),
        inspection_days_left=(date.fromisoformat(data["next_inspection"]) - today).days,
    )


_REGISTRY_COLUMNS = (
    "device_code", "registration_no", "district_code", "address", "user_unit", "maintenance_company", "kind",
    "lowest_floor", "highest_floor", "rated_speed_mps", "rated_load_kg", "next_inspection", "pilot", "latitude",
    "longitude", "updated_at",
)  # fmt: skip


LIFT_SCOPE = ScopeColumns(district="e.district_code", company="e.maintenance_company")
"""The scope of rows joined to their lift as ``e`` (lifts, rescues, visits, daily figures): a station's holds none."""


def _flagged(where: list[str], params: dict[str, Any], today: date, maintenance_interval_days: int,
             inspection_due_days: int, indexed_by: str | None = None, overdue_first: bool = False) -> str:  # fmt: skip
    """The lifts' SQL: ``where`` narrows the lifts (named parameters in ``params``, to
    which the reference dates are added), read on the index ``indexed_by`` if given, or (``overdue_first``) each
    joined to a row ``o`` of ``overdue_lifts`` read first."""
    _reference_dates(params, today, maintenance_interval_days, inspection_due_days)
    lifts = "elevators e" + (f" INDEXED BY {indexed_by}" if indexed_by else "")
    if overdue_first:  # (CROSS JOIN: SQLite reads the tables in this order)
        lifts = "overdue_lifts o CROSS JOIN elevators e ON e.device_code = o.device_code"
    sql = _LIFTS.format(lifts=lifts)
    return sql + (" WHERE " + " AND ".join(where) if where else "")


def _reference_dates(params: dict[str, Any], today: date, maintenance_interval_days: int,
                     inspection_due_days: int) -> None:  # fmt: skip
    """The flags' reference dates (``:today``, ``:overdue_before``, ``:due_until``) added to ``params``."""
    params |= {"today": today.isoformat(),
               "overdue_before": (today - timedelta(days=maintenance_interval_days)).isoformat(),
               "due_until": (today + timedelta(days=inspection_due_days)).isoformat()}  # fmt: skip


def _filters(
    params: dict[str, Any],
    *,
    in_code_order: bool = True,
    online: bool | None = None,
    with_alarm: bool | None = None,
    trapped: bool | None = None,
    overdue: bool | None = None,
    maintenance_overdue: bool | None = None,
    inspection_overdue: bool | None = None,
    inspection_due_soon: bool | None = None,
    inspection_due: bool | None = None,
    search: str | None = None,
    district_code: str | None = None,
    maintenance_company: str | None = None,
) -> list[str]:
    """The lift filters (see ``list_lifts``) as conditions on the lifts' own columns (so that the overdue
    lists run on their indexes); ``in_code_order``: for a list in device code order, or a count (see
    ``_FLAGGED_CODES``)."""
    where: list[str] = []
    LIFT_SCOPE.narrow(where, params, district_code=district_code, maintenance_company=maintenance_company)
    if search:
        where.append("(e.device_code LIKE :search OR e.registration_no LIKE :search OR e.address LIKE :search)")
        params["search"] = f"%{search}%"
    if maintenance_overdue:
        # (the partial index's condition and its range, spelled out for the planner: the flag's coalesce hides them)
        where += ["e.terminals > 0", "e.maintenance_ref < :overdue_before"]
    wanted_flags = {"maintenance_overdue": maintenance_overdue, "inspection_overdue": inspection_overdue,
                    "overdue": overdue, "inspection_due": inspection_due}  # fmt: skip
    if in_code_order:  # (a list in its flag's own order reads that flag's index in order: no IN list then)
        where += [f"e.device_code IN ({_FLAGGED_CODES[flag]})" for flag, wanted in wanted_flags.items() if wanted]
    for condition, wanted in (("e.online_terminals > 0", online), ("e.open_alarms > 0", with_alarm),
                              ("e.trapped_alarms > 0", trapped),
                              (f"({_MAINTENANCE_OVERDUE} OR {_INSPECTION_OVERDUE})", overdue),
                              (_MAINTENANCE_OVERDUE, maintenance_overdue), (_INSPECTION_OVERDUE, inspection_overdue),
                              (_INSPECTION_DUE_SOON, inspection_due_soon), (_INSPECTION_DUE, inspection_due)):  # fmt: skip
        if wanted is not None:
            where.append(condition if wanted else f"NOT {condition}")
    return where


def cursor_of(lift: LiftView, order: Order = "device_code") -> str:
    """The keyset cursor that continues a list in ``order`` after ``lift`` (``list_lifts(after=...)``)."""
    if order == "device_code":
        return lift.device_code
    if order == "maintenance":
        return f"{lift.maintenance_ref or ''}{CURSOR_SEPARATOR}{lift.device_code}"
    if order == "inspection":
        return f"{lift.registry['next_inspection']}{CURSOR_SEPARATOR}{lift.device_code}"
    raise ValueError(f"lifts in {order} order are not paged")


async def list_lifts(
    conn: aiosqlite.Connection,
    *,
    after: str | None = None,
    limit: int | None = None,
    order: Order = "device_code",
    now: datetime | None = None,
    maintenance_interval_days: int = DEFAULTS.maintenance_interval_days,
    inspection_due_days: int = DEFAULTS.inspection_due_days,
    **filters: Any,
) -> list[LiftView]:
    """Lifts with their live state and flags, in ``order`` (see ORDERS), at most ``limit``.

    ``after`` is the keyset cursor (``cursor_of`` the last lift of the previous page) of every order but
    ``urgency``. ``filters``: ``online``, ``with_alarm``, ``trapped`` (people inside now), ``overdue``
    (maintenance or inspection overdue),
    ``maintenance_overdue``, ``inspection_overdue``, ``inspection_due_soon``, ``inspection_due`` (overdue or due
    soon) (each True, False or None),
    ``search`` (matches the device code, registration number or address), and the scope
    (``district_code``, ``maintenance_company``)."""
    if after is not None and order not in PAGED_ORDERS:
        raise ValueError(f"lifts in {order} order are not paged")
    params: dict[str, Any] = {}
    # Lifts with people inside are a handful, on their own index: the other filters are checked on each of them (no
    # flag's IN list, which reads every flagged lift; no district's flag index, which the planner may prefer).
    trapped_only = bool(filters.get("trapped"))
    today = cst_today(now)
    in_code_order = order == "device_code" and not trapped_only
    overdue_kind = await _overdue_kind(conn, filters, today, maintenance_interval_days) if in_code_order else None
    where = _filters(params, in_code_order=in_code_order and overdue_kind is None, **filters)
    columns = ORDERS[order]
    if overdue_kind is not None:
        where.append("o.kind = :overdue_kind")
        params["overdue_kind"] = overdue_kind
        _OVERDUE_SCOPE.narrow(where, params, district_code=filters.get("district_code"),
                              maintenance_company=filters.get("maintenance_company"))  # fmt: skip
        columns = _OVERDUE_ORDER
    if after is not None:
        keys = [after] if len(columns) == 1 else after.rsplit(CURSOR_SEPARATOR, 1)
        if len(keys) != len(columns):
            raise ValueError("not a cursor of this list")
        where.append(f"({', '.join(columns)}) > ({', '.join(f':after{i}' for i in range(len(keys)))})")
        params |= {f"after{i}": key for i, key in enumerate(keys)}
    sql = _flagged(where, params, today, maintenance_interval_days, inspection_due_days,
                   indexed_by="elevators_trapped" if trapped_only else None, overdue_first=overdue_kind is not None)
    sql += f" ORDER BY {', '.join(columns)}" + ("" if limit is None else f" LIMIT {int(limit)}")
    rows = await conn.execute_fetchall(sql, params)
    names = rows[0].keys() if rows else None
    return [_view(row, today, names) for row in rows]


async def _overdue_kind(conn: aiosqlite.Connection, filters: dict[str, Any], today: date,
                        maintenance_interval_days: int) -> str | None:  # fmt: skip
    """The kind of ``overdue_lifts`` a list in device code order reads for its overdue filter (the narrowest
    asked), or None: no overdue filter asked, or the day asked is after a boundary the lifts were kept for (just
    after a CST midnight, before the platform folds; never folded yet), when the list reads every overdue lift's
    code (``_FLAGGED_CODES``) as before. A boundary only moves forward, so one read here still holds for the list."""
    kind = next((kind for flag, kind in _OVERDUE_KINDS.items() if filters.get(flag)), None)
    if kind is None:
        return None
    boundaries = dict(await conn.execute_fetchall("SELECT figure, before FROM day_figure_folds"))
    asked = {"maintenance_ref": (today - timedelta(days=maintenance_interval_days)).isoformat(),
             "next_inspection": today.isoformat()}  # fmt: skip
    needed = {"maintenance": ("maintenance_ref",), "inspection": ("next_inspection",), "any": tuple(asked)}[kind]
    return kind if all(asked[figure] <= boundaries[figure] for figure in needed) else None


_COUNTS = {
    "lifts": "count(*)", "fitted": "sum(e.terminals > 0)", "online": "sum(e.terminals > 0 AND e.online_terminals > 0)",
    "open_alarms": "sum(e.open_alarms)", "trapped": "sum(e.trapped_alarms > 0)",
    "maintenance_overdue": f"sum({_MAINTENANCE_OVERDUE})", "inspection_overdue": f"sum({_INSPECTION_OVERDUE})",
    "inspection_due": f"sum({_INSPECTION_DUE})",
}  # fmt: skip
COUNTS = tuple(_COUNTS)
_SCOPE_FILTERS = frozenset({"district_code", "maintenance_company"})
_FLAG_FIGURES = {"online": "online", "trapped": "trapped", "maintenance_overdue": "maintenance_overdue",
                 "inspection_overdue": "inspection_overdue", "inspection_due": "inspection_due"}  # fmt: skip
"""The ``list_lifts`` filters that are running figures of their own: the lifts with the flag counted alone."""


async def count_lifts(
    conn: aiosqlite.Connection,
    *,
    counts: Sequence[str] = COUNTS,
    now: datetime | None = None,
    maintenance_interval_days: int = DEFAULTS.maintenance_interval_days,
    inspection_due_days: int = DEFAULTS.inspection_due_days,
    **filters: Any,
) -> dict[str, dict[str, int]]:
    """``list_lifts``'s lifts (same ``filters``) counted per district code: of ``COUNTS`` — lifts, fitted
    (with a terminal), online (fitted and online), open alarms, lifts with passengers trapped, maintenance
    overdue, inspection overdue, inspection due (overdue or due soon) — the ``counts`` asked for. A district without a lift in scope is left out.

    Within a scope alone (district, maintenance company), or the lifts alone with one flag of
    ``_FLAG_FIGURES``, the running figures answer, in a handful of rows; other filters (a search, two flags
    ...) count the matching lifts."""
    today = cst_today(now)
    given = {name: value for name, value in filters.items() if value is not None}
    flags = given.keys() - _SCOPE_FILTERS
    if not flags or (list(counts) == ["lifts"] and len(flags) == 1 and flags <= _FLAG_FIGURES.keys()):
        scope = {name: given[name] for name in given.keys() & _SCOPE_FILTERS}
        found = await figures.lift_counts(conn, today=today, maintenance_interval_days=maintenance_interval_days,
                                          inspection_due_days=inspection_due_days,
                                          counts=[*counts, *(_FLAG_FIGURES[flag] for flag in flags)], **scope)  # fmt: skip
        if not flags:
            return {code: {name: figures_of[name] for name in counts} for code, figures_of in found.items()}
        (flag,) = flags
        flagged = {code: figures_of[_FLAG_FIGURES[flag]] for code, figures_of in found.items()}
        # (a flag asked False counts the other lifts; a district with none left is left out, as in a recount)
        counted = {code: n if given[flag] else found[code]["lifts"] - n for code, n in flagged.items()}
        return {code: {"lifts": n} for code, n in counted.items() if n}
    params: dict[str, Any] = {}
    where = _filters(params, **filters)
    _reference_dates(params, today, maintenance_interval_days, inspection_due_days)
    columns = ", ".join(f"{_COUNTS[name]} AS {name}" for name in counts)
    rows = await conn.execute_fetchall(
        f"SELECT e.district_code, {columns} FROM elevators e{' WHERE ' + ' AND '.join(where) if where else ''}"
        " GROUP BY e.district_code", params)  # fmt: skip
    return {row["district_code"]: {name: row[name] for name in counts} for row in rows}


TOTAL_CAP = 1000
"""A list's total that no running figure gives (a search, two filters) is counted up to here ("1000+")."""


async def total_lifts(
    conn: aiosqlite.Connection,
    *,
    cap: int = TOTAL_CAP,
    now: datetime | None = None,
    maintenance_interval_days: int = DEFAULTS.maintenance_interval_days,
    inspection_due_days: int = DEFAULTS.inspection_due_days,
    **filters: Any,
) -> tuple[int, bool]:
    """How many lifts ``list_lifts`` lists with ``filters``, and whether there are more than that: a running
    figure where one answers (``count_lifts``: the scope alone, or with one flag), else the matching lifts
    counted up to ``cap`` (a page reads at most ``cap`` + 1 of them, whatever the size of the city)."""
    rules = {"now": now, "maintenance_interval_days": maintenance_interval_days,
             "inspection_due_days": inspection_due_days}  # fmt: skip
    flags = {name for name, value in filters.items() if value is not None} - _SCOPE_FILTERS
    if len(flags) <= 1 and flags <= _FLAG_FIGURES.keys():
        return sum(c["lifts"] for c in (await count_lifts(conn, counts=["lifts"], **rules, **filters)).values()), False
    params: dict[str, Any] = {}
    where = _filters(params, **filters)
    _reference_dates(params, cst_today(now), maintenance_interval_days, inspection_due_days)
    matching = "SELECT 1 FROM elevators e" + (" WHERE " + " AND ".join(where) if where else "")
    rows = await conn.execute_fetchall(f"SELECT count(*) FROM ({matching} LIMIT {int(cap) + 1})", params)
    found = int(rows[0][0])
    return min(found, cap), found > cap


async def get_lift(
    conn: aiosqlite.Connection,
    device_code: str,
    *,
    now: datetime | None = None,
    maintenance_interval_days: int = DEFAULTS.maintenance_interval_days,
    inspection_due_days: int = DEFAULTS.inspection_due_days,
    district_code: str | None = None,
    maintenance_company: str | None = None,
) -> LiftView | None:
    """One lift as in ``list_lifts`` plus its terminals and their sessions; None when unknown or outside
    the filters."""
    where, params = ["e.device_code = :device_code"], {"device_code": device_code}
    LIFT_SCOPE.narrow(where, params, district_code=district_code, maintenance_company=maintenance_company)
    today = cst_today(now)
    sql = _flagged(where, params, today, maintenance_interval_days, inspection_due_days)
    found = await (await conn.execute(sql, params)).fetchone()
    if found is None:
        return None
    lift = _view(found, today)
    terminals = await conn.execute_fetchall(
        "SELECT t.protocol, t.terminal_id, t.installed_on, ts.online, ts.peer, ts.firmware, ts.report_interval_s,"
        " ts.connected_at, ts.last_frame_at, ts.clock_wrong_at, ts.clock_wrong_device_time"
        " FROM terminals t LEFT JOIN terminal_sessions ts"
        " ON ts.protocol = t.protocol AND ts.terminal_id = t.terminal_id WHERE t.device_code = ?"
        " ORDER BY t.protocol, t.terminal_id",
        (device_code,),
    )
    lift.terminal_list = [
        dict(t) | {"online": bool(t["online"]), "connected_at": utc(t["connected_at"]),
                   "last_frame_at": utc(t["last_frame_at"]), "clock_wrong": t["clock_wrong_at"] is not None,
                   "clock_wrong_at": utc(t["clock_wrong_at"]),
                   "clock_wrong_device_time": utc(t["clock_wrong_device_time"])}
        for t in terminals
    ]  # fmt: skip
    return lift


async def trapped_now(
    conn: aiosqlite.Connection, *, district_code: str | None = None, maintenance_company: str | None = None,
    station_code: int | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Passengers trapped now: trapped-passenger alarms whose condition is still active, with the lift's
    address, oldest first (the banner on every page). A released passenger's alarm, even one staff have
    not handled yet, is not here: it waits in the alarm list. A station's scope holds no lift: nothing."""
    where: list[str] = ["a.kind = 'trapped'", "a.status != 'resolved'", "a.condition = 'active'",
                        "a.merged_into IS NULL"]
    params: dict[str, Any] = {}
    LIFT_SCOPE.narrow(where, params, district_code=district_code, maintenance_company=maintenance_company,
                      station_code=station_code)  # fmt: skip
    # CROSS JOIN keeps the alarms as the outer loop (SQLite does not reorder it): the few trapped now, on their
    # partial index (migration 0030), rather than every lift of the district looked up for alarms. INDEXED BY:
    # with statistics (ANALYZE) that index is mostly empty, and SQLite chose every open alarm instead (the
    # banner of every page then read all of them: ×4.7 its cost between 5,000 and 25,000 lifts).
    rows = await conn.execute_fetchall(
        "SELECT a.id, a.device_code, a.since, a.raised_at, a.status, a.condition, e.address, e.district_code"
        " FROM alarms a INDEXED BY alarms_trapped_now"
        f" CROSS JOIN elevators e ON e.device_code = a.device_code WHERE {' AND '.join(where)} ORDER BY a.raised_at",
        params,
    )
    return [dict(row) | {"since": utc(row["since"]), "raised_at": utc(row["raised_at"])} for row in rows]


async def lifts_by_code(conn: aiosqlite.Connection, device_codes: set[str]) -> dict[str, dict[str, Any]]:
    """Address, district and company of each lift (tables show where, not a 20-digit code)."""
    if not device_codes:
        return {}
    marks = ",".join("?" * len(device_codes))
    rows = await conn.execute_fetchall(
        "SELECT device_code, address, district_code, maintenance_company FROM elevators"
        f" WHERE device_code IN ({marks})", sorted(device_codes),
    )  # fmt: skip
    return {row["device_code"]: dict(row) for row in rows}


async def daily_figures(
    conn: aiosqlite.Connection,
    *,
    device_code: str | None = None,
    since_day: str | None = None,
    until_day: str | None = None,
    district_code: str | None = None,
    maintenance_company: str | None = None,
) -> list[dict[str, Any]]:
    """Per-lift per-day (CST) runs, running seconds, faults and online seconds, in ``[since_day, until_day]``."""
    where: list[str] = []
    params: list[Any] = []
    for clause, value in (
        ("d.device_code = ?", device_code),
        ("d.day >= ?", since_day),
        ("d.day <= ?", until_day),
    ):
        if value is not None:
            where.append(clause)
            params.append(value)
    LIFT_SCOPE.narrow(where, params, district_code=district_code, maintenance_company=maintenance_company)
    sql = "SELECT d.* FROM lift_daily d LEFT JOIN elevators e ON e.device_code = d.device_code"
    if where:
        sql += " WHERE " + " AND ".join(where)
    rows = await (await conn.execute(sql + " ORDER BY d.day, d.device_code", params)).fetchall()
    return [dict(row) for row in rows]
