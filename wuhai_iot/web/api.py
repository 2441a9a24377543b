"""The JSON API under ``/api/v1/`` (../shared/contract.md; examples in docs/api.md).

Bearer tokens (or the pages' own session cookie, with the CSRF header for changes); the same roles and
scopes as the pages: an object outside the caller's scope is 404, a forbidden action 403. Lists are
``{"items": [...], "next": cursor | null}``; times ISO-8601 UTC with ``Z``; a district is
``{"code", "name"}``; every error is ``{"error": message}``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from aiohttp import web

from wuhai_iot import events as ev
from wuhai_iot.alarms.book import acknowledge_alarm, resolve_alarm
from wuhai_iot.alarms.kinds import alarm_kinds
from wuhai_iot.alarms.model import (
    STATUSES,
    Alarm,
    AlarmAlreadyResolved,
    AlarmNotFound,
)
from wuhai_iot.alarms.queries import alarm_samples, get_alarm, list_alarms
from wuhai_iot.clock import CST, cst_day_bounds, cst_today
from wuhai_iot.elevators import maintenance, rescue
from wuhai_iot.elevators import queries as lifts
from wuhai_iot.elevators.plugin import monitoring
from wuhai_iot.filling import trace
from wuhai_iot.plugins.hookspecs import hookimpl
from wuhai_iot.registry.districts import DISTRICTS, UnknownDistrict, parse_district
from wuhai_iot.server import PLATFORM_KEY, Platform
from wuhai_iot.vehicles import queries as vehicle_queries
from wuhai_iot.storage import audit
from wuhai_iot.web import queries
from wuhai_iot.web.auth import (
    Permission,
    User,
    is_api,
    json_error,
    refusal,
    request_user,
    requires,
    web_database,
)

log = logging.getLogger(__name__)

DEFAULT_LIMIT, MAX_LIMIT = 50, 500
VEHICLE_ALARMS = 20
"""A vehicle's newest alarms in its answer (all of them: /api/v1/alarms?plate=)."""
MAX_TRACK_DAYS = 7
MAX_NOTE_LENGTH = 2000
ALARM_FIELDS = (
    "id", "kind", "severity", "condition", "status", "flapping", "device_code", "cylinder_code", "station_code", "plate",
    "system", "vendor_code", "since", "raised_at", "updated_at", "cleared_at", "acknowledged_at", "acknowledged_by",
    "acknowledge_note", "resolved_at", "resolved_by", "resolve_note", "detail",
)  # fmt: skip

routes = web.RouteTableDef()


# --- JSON shapes -------------------------------------------------------------------------------------


def iso(moment: datetime) -> str:
    """ISO-8601 in UTC with ``Z`` (milliseconds only when there are any)."""
    spec = "milliseconds" if moment.microsecond else "seconds"
    return moment.astimezone(UTC).isoformat(timespec=spec).replace("+00:00", "Z")


def district(code: str | None) -> dict[str, str] | None:
    return None if code is None else {"code": code, "name": DISTRICTS.get(code, code)}


_PLAIN = frozenset({str, int, float, bool})


def fields_of(record: Any) -> dict[str, Any]:
    """A dataclass's fields by name, their values as they are (``jsonable`` shapes them). ``dataclasses.asdict``
    deep-copies every value: a station's 50 latest decisions spent 5 ms copying their times."""
    return {field.name: getattr(record, field.name) for field in dataclasses.fields(record)}


def jsonable(value: Any) -> Any:
    """Times as ISO-8601 UTC strings, dates as ``YYYY-MM-DD``, dataclasses as objects, ``district_code`` as
    ``district: {"code", "name"}``, recursively."""
    if value is None or type(value) in _PLAIN:  # most values: skip the checks below (500 lifts hold ~15,000)
        return value
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(fields_of(value))
    if isinstance(value, dict):
        shaped = {}
        for key, item in value.items():  # (plain values inline: a 500-lift page has ~15,000 of them)
            if key == "district_code":
                shaped["district"] = district(item)
            elif item is None or type(item) in _PLAIN:
                shaped[key] = item
            else:
                shaped[key] = jsonable(item)
        return shaped
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    return value


def respond(data: Any, status: int = 200) -> web.Response:
    return web.json_response(jsonable(data), status=status, dumps=lambda d: json.dumps(d, ensure_ascii=False))


def alarm_json(alarm: Alarm) -> dict[str, Any]:
    record = {name: getattr(alarm, name) for name in ALARM_FIELDS}
    record["district_code"] = alarm.district_code
    return record


# --- request parameters ------------------------------------------------------------------------------


def encode_cursor(key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def page_parameters(request: web.Request, key_type: type) -> tuple[int, Any]:
    """``?limit=`` (default 50, at most 500) and the decoded ``?cursor=`` (None on the first page)."""
    text = request.query.get("limit", str(DEFAULT_LIMIT))
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise json_error(400, f"limit must be a whole number from 1 to {MAX_LIMIT}")
    cursor = request.query.get("cursor")
    if cursor is None:
        return int(text), None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        key = None
    if not isinstance(key, key_type) or isinstance(key, bool):
        raise json_error(400, "cursor is not one this API gave")
    return int(text), key


def paged(items: list[Any], limit: int, key: Callable[[Any], Any], shape: Callable[[Any], Any] = lambda i: i) -> web.Response:
    """One page of ``items`` (a query's ``limit + 1`` rows) with the cursor of the next page."""
    next_cursor = encode_cursor(key(items[limit - 1])) if len(items) > limit else None
    return respond({"items": [shape(item) for item in items[:limit]], "next": next_cursor})


def district_filter(request: web.Request, user: User) -> tuple[str | None, bool]:
    """The district to filter by (``?district=`` name or code, within the user's scope) and whether the
    asked district lies outside the scope (then the list is empty)."""
    own = user.scope.district_code
    text = request.query.get("district")
    if not text:
        return own, False
    try:
        asked = parse_district(text)
    except UnknownDistrict as exc:
        raise json_error(400, str(exc)) from None
    return asked, own is not None and asked != own


async def json_body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise json_error(400, "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise json_error(400, "the body must be a JSON object")
    return body


def platform_of(request: web.Request) -> Platform:
    return request.app[PLATFORM_KEY]


# --- lifts -------------------------------------------------------------------------------------------

LIFT_FIELDS = (
    "device_code", "registration_no", "district_code", "address", "user_unit", "maintenance_company", "kind",
    "lowest_floor", "highest_floor", "rated_speed_mps", "rated_load_kg", "next_inspection", "latitude", "longitude",
)  # fmt: skip


def elevator_json(lift: lifts.LiftView) -> dict[str, Any]:
    """The API's shape of a lift from ``lifts.list_lifts`` / ``get_lift``."""
    record = {name: lift.registry[name] for name in LIFT_FIELDS}
    record["pilot"] = bool(lift.registry["pilot"])
    record["online"] = lift.online
    record["last_frame_at"] = lift.last_frame_at
    state = lift.state
    record["last_status"] = None if state is None else {
        name: state[name] for name in ("floor", "direction", "door", "running", "door_zone", "occupied", "speed_mps",
                                       "at")
    }  # fmt: skip
    record["open_alarms"] = lift.open_alarms
    record["trapped"] = lift.trapped
    record["last_maintenance_at"] = lift.last_maintenance_at
    record["maintenance_overdue"] = lift.maintenance_overdue
    record["inspection_overdue"] = lift.inspection_overdue
    record["inspection_due_soon"] = lift.inspection_due_soon
    if lift.terminal_list:
        record["terminals"] = [
            {name: t[name] for name in ("protocol", "terminal_id", "installed_on", "online", "connected_at",
                                        "last_frame_at", "clock_wrong", "clock_wrong_at", "clock_wrong_device_time")}
            for t in lift.terminal_list
        ]  # fmt: skip
    return record


def _lift_filters(user: User) -> dict[str, Any]:
    scope = user.scope
    return {"district_code": scope.district_code, "maintenance_company": scope.maintenance_company}


def _lift_rules(request: web.Request) -> dict[str, Any]:
    rules = platform_of(request).config.rules
    return {"maintenance_interval_days": rules.maintenance_interval_days,
            "inspection_due_days": rules.inspection_due_days}  # fmt: skip


async def _get_lift(request: web.Request, user: User) -> lifts.LiftView:
    lift = await lifts.get_lift(web_database(request), request.match_info["device_code"],
                                **_lift_rules(request), **_lift_filters(user))  # fmt: skip
    if lift is None:
        raise json_error(404, "no such elevator")
    return lift


def flag_filter(request: web.Request, name: str) -> bool | None:
    """``?name=true|false`` (None when absent)."""
    text = request.query.get(name)
    if text is None:
        return None
    if text not in ("true", "false"):
        raise json_error(400, f"{name} must be true or false")
    return text == "true"


@routes.get("/api/v1/elevators")
@requires(Permission.VIEW_ELEVATORS)
async def elevators(request: web.Request) -> web.Response:
    """Lifts by device code (keyset-paged in SQL); ``?district=&maintenance_overdue=&inspection_overdue=``."""
    user = request_user(request)
    limit, after = page_parameters(request, str)
    flags = {name: flag for name in ("maintenance_overdue", "inspection_overdue")
             if (flag := flag_filter(request, name)) is not None}  # fmt: skip
    district_code, outside = district_filter(request, user)
    if outside:
        return respond({"items": [], "next": None})
    filters = _lift_filters(user) | {"district_code": district_code} | flags
    page = await lifts.list_lifts(web_database(request), after=after, limit=limit + 1, **_lift_rules(request),
                                  **filters)  # fmt: skip
    return paged(page, limit, key=lambda lift: lift.device_code, shape=elevator_json)


@routes.get("/api/v1/elevators/{device_code}")
@requires(Permission.VIEW_ELEVATORS, hidden=True)
async def elevator(request: web.Request) -> web.Response:
    return respond(elevator_json(await _get_lift(request, request_user(request))))


@routes.post("/api/v1/elevators/{device_code}/commands")
@requires(Permission.SEND_COMMANDS)
async def elevator_command(request: web.Request) -> web.Response:
    """Send a command to the lift's terminal: ``{"code": "report_status" | "set_interval" | "restart" |
    "set_clock", "argument": int | null}`` → 202 with the sequence its reply will carry."""
    user = request_user(request)
    platform = platform_of(request)
    lift = await _get_lift(request, user)
    body = await json_body(request)
    try:
        code = ev.CommandCode(body.get("code"))
    except ValueError:
        raise json_error(400, "code must be one of " + ", ".join(c.value for c in ev.CommandCode)) from None
    argument = body.get("argument")
    if argument is not None and (not isinstance(argument, int) or isinstance(argument, bool)):
        raise json_error(400, "argument must be a whole number or null")
    for terminal in lift.terminal_list:
        try:
            seq = await platform.send_command(terminal["protocol"], terminal["terminal_id"],
                                              ev.TerminalCommand(code, argument), requested_by=user.name)  # fmt: skip
        except LookupError:
            continue  # not connected now
        except ValueError as exc:
            raise json_error(400, str(exc)) from None
        break
    else:
        raise json_error(409, "the elevator's terminal is not connected")
    sent = {"device_code": lift.device_code, "protocol": terminal["protocol"],
            "terminal_id": terminal["terminal_id"], "seq": seq, "code": code.value, "argument": argument}  # fmt: skip
    await audit.record(platform.writer, user.name, "command.send", "elevator", lift.device_code,
                       district_code=lift.district_code, details=sent)  # fmt: skip
    return respond(sent, status=202)


# --- alarms ------------------------------------------------------------------------------------------


def readable_alarms(request: web.Request, *, hidden: bool = False) -> dict[str, Any]:
    """The filters of the alarms the user may read (403, or 404 when ``hidden``, for a user who may read none)."""
    filters = request_user(request).alarm_filters()
    if filters is None:
        raise refusal(request, 404 if hidden else 403)
    return filters


@routes.get("/api/v1/alarms")
async def alarm_list(request: web.Request) -> web.Response:
    """``?status=open|raised|acknowledged|resolved&kind=&device_code=&plate=&district=``"""
    user = request_user(request)
    scope = readable_alarms(request)
    limit, before_id = page_parameters(request, int)
    status = request.query.get("status") or None
    if status is not None and status != "open" and status not in STATUSES:
        raise json_error(400, "status must be open, raised, acknowledged or resolved")
    kind = request.query.get("kind") or None
    if kind is not None and kind not in alarm_kinds():
        raise json_error(400, f"unknown alarm kind {kind!r}")
    district_code, outside = district_filter(request, user)
    if outside:
        return respond({"items": [], "next": None})
    filters = scope | ({"district_code": district_code} if district_code else {})
    items = await list_alarms(
        web_database(request), status=status, kind=kind, device_code=request.query.get("device_code") or None,
        plate=request.query.get("plate") or None, before_id=before_id, limit=limit + 1, **filters,
    )  # fmt: skip
    return paged(items, limit, key=lambda alarm: alarm.id, shape=alarm_json)


def _alarm_id(request: web.Request) -> int:
    text = request.match_info["alarm_id"]
    if not text.isdigit():
        raise json_error(404, "no such alarm")
    return int(text)


@routes.get("/api/v1/alarms/{alarm_id}")
async def alarm_detail(request: web.Request) -> web.Response:
    scope = readable_alarms(request, hidden=True)
    alarm = await get_alarm(web_database(request), _alarm_id(request), **scope)
    if alarm is None:
        raise json_error(404, "no such alarm")
    return respond(alarm_json(alarm) | {"samples": await alarm_samples(web_database(request), alarm.id)})


async def _handle_alarm(request: web.Request, action: str) -> web.Response:
    user = request_user(request)
    alarm_id = _alarm_id(request)
    note = (await json_body(request)).get("note", "")
    if not isinstance(note, str) or len(note) > MAX_NOTE_LENGTH:
        raise json_error(400, f"note must be text of at most {MAX_NOTE_LENGTH} characters")
    platform = platform_of(request)
    handle = acknowledge_alarm if action == "acknowledge" else resolve_alarm
    try:
        alarm = await handle(platform, alarm_id, user=user.name, note=note, also=lambda changed: [audit.entry(
            user.name, f"alarm.{action}", "alarm", changed.id, district_code=changed.district_code,
            details={"kind": changed.kind, "note": note},
        )], **readable_alarms(request, hidden=True))  # fmt: skip
    except AlarmNotFound:
        raise json_error(404, "no such alarm") from None
    except AlarmAlreadyResolved:
        raise json_error(409, "the alarm is already resolved") from None
    return respond(alarm_json(alarm))


@routes.post("/api/v1/alarms/{alarm_id}/acknowledge")
@requires(Permission.HANDLE_ALARMS)
async def alarm_acknowledge(request: web.Request) -> web.Response:
    return await _handle_alarm(request, "acknowledge")


@routes.post("/api/v1/alarms/{alarm_id}/resolve")
@requires(Permission.HANDLE_ALARMS)
async def alarm_resolve(request: web.Request) -> web.Response:
    return await _handle_alarm(request, "resolve")


# --- rescues ----------------------------------------------------------------------------------------


def rescue_json(found: rescue.Rescue, alarm: Alarm | None = None) -> dict[str, Any]:
    record = {name: getattr(found, name) for name in (
        "alarm_id", "device_code", "district_code", "raised_at", "dispatched_at", "dispatched_to", "dispatched_by",
        "arrived_at", "arrival_source", "arrived_by", "released_at", "arrival_min", "late",
    )}  # fmt: skip
    if alarm is not None:
        record["alarm"] = alarm_json(alarm)
    return record


def _rescue_id(request: web.Request) -> int:
    text = request.match_info["alarm_id"]
    if not text.isdigit():
        raise json_error(404, "no such rescue")
    return int(text)


async def _get_rescue(request: web.Request, user: User) -> rescue.Rescue:
    found = await rescue.get_rescue(web_database(request), _rescue_id(request), **_lift_filters(user))
    if found is None:
        raise json_error(404, "no such rescue")
    return found


def _entry_time(body: dict[str, Any], name: str) -> datetime | None:
    """An optional ISO-8601 time of a staff entry (not in the future)."""
    text = body.get(name)
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise json_error(400, f"{name} must be an ISO-8601 time") from None
    if moment.tzinfo is None:
        raise json_error(400, f"{name} must carry its time zone (Z or +08:00)")
    if moment > datetime.now(UTC):
        raise json_error(400, f"{name} is in the future")
    return moment.astimezone(UTC)


@routes.get("/api/v1/rescues")
@requires(Permission.VIEW_ELEVATORS)
async def rescue_list(request: web.Request) -> web.Response:
    """Rescues newest first (keyset-paged); ``?district=&late=true|false&device_code=``."""
    user = request_user(request)
    limit, after = page_parameters(request, list)
    before = None
    if after is not None:
        if len(after) != 2 or not all(isinstance(v, (int, float)) for v in after):
            raise json_error(400, "cursor is not one this API gave")
        before = (float(after[0]), int(after[1]))
    late = flag_filter(request, "late")
    district_code, outside = district_filter(request, user)
    if outside:
        return respond({"items": [], "next": None})
    found = await rescue.list_rescues(
        web_database(request), late=late, device_code=request.query.get("device_code") or None, before=before,
        limit=limit + 1, **(_lift_filters(user) | {"district_code": district_code}),
    )  # fmt: skip
    return paged(found, limit, key=lambda r: [r.raised_at.timestamp(), r.alarm_id], shape=rescue_json)


@routes.get("/api/v1/rescues/{alarm_id}")
@requires(Permission.VIEW_ELEVATORS, hidden=True)
async def rescue_detail(request: web.Request) -> web.Response:
    """One rescue (by its trapped alarm's id) with the alarm."""
    user = request_user(request)
    found = await _get_rescue(request, user)
    return respond(rescue_json(found, await get_alarm(web_database(request), found.alarm_id)))


async def _record_rescue(request: web.Request, action: str) -> web.Response:
    user = request_user(request)
    if not user.can(Permission.VIEW_ELEVATORS):
        raise json_error(403, "not allowed")
    found = await _get_rescue(request, user)
    body = await json_body(request)
    tracker = monitoring(platform_of(request)).rescue
    try:
        if action == "dispatch":
            to = body.get("to")
            if not isinstance(to, str) or not to.strip() or len(to) > 200:
                raise json_error(400, "to must name who was sent (text of at most 200 characters)")
            at = _entry_time(body, "dispatched_at")
            details = {"to": to.strip(), "at": at and iso(at)}
            also = [audit.entry(user.name, "rescue.dispatch", "rescue", found.alarm_id,
                                district_code=found.district_code, details=details)]  # fmt: skip
            await tracker.record_dispatch(found.alarm_id, to=to.strip(), user=user.name, at=at, also=also)
        else:
            at = _entry_time(body, "arrived_at")
            also = [audit.entry(user.name, "rescue.arrival", "rescue", found.alarm_id,
                                district_code=found.district_code, details={"at": at and iso(at)})]  # fmt: skip
            await tracker.record_arrival(found.alarm_id, user=user.name, at=at, also=also)
    except rescue.RescueAlreadyRecorded as exc:
        raise json_error(409, str(exc)) from None
    updated = await rescue.get_rescue(web_database(request), found.alarm_id)
    assert updated is not None
    return respond(rescue_json(updated, await get_alarm(web_database(request), found.alarm_id)))


@routes.post("/api/v1/rescues/{alarm_id}/dispatch")
@requires(Permission.RECORD_RESCUES)
async def rescue_dispatch(request: web.Request) -> web.Response:
    """``{"to": "who was sent", "dispatched_at": ISO-8601 (default now)}``"""
    return await _record_rescue(request, "dispatch")


@routes.post("/api/v1/rescues/{alarm_id}/arrival")
@requires(Permission.RECORD_RESCUES)
async def rescue_arrival(request: web.Request) -> web.Response:
    """``{"arrived_at": ISO-8601 (default now)}``"""
    return await _record_rescue(request, "arrival")


# --- maintenance -------------------------------------------------------------------------------------


def visit_json(visit: maintenance.Visit) -> dict[str, Any]:
    return {"id": visit.id, "device_code": visit.device_code, "district_code": visit.district_code,
            "card": visit.card, "worker_name": visit.worker_name, "worker_company": visit.worker_company,
            "started_at": visit.started_at, "ended_at": visit.ended_at, "duration_min": visit.duration_min,
            "items": visit.items, "flags": visit.flags}  # fmt: skip


@routes.get("/api/v1/maintenance/visits")
@requires(Permission.VIEW_ELEVATORS)
async def maintenance_visits(request: web.Request) -> web.Response:
    """``?device_code=&flagged=true|false&district=``"""
    user = request_user(request)
    limit, before_id = page_parameters(request, int)
    flagged_text = request.query.get("flagged")
    if flagged_text not in (None, "true", "false"):
        raise json_error(400, "flagged must be true or false")
    district_code, outside = district_filter(request, user)
    if outside:
        return respond({"items": [], "next": None})
    visits = await maintenance.list_visits(
        web_database(request), device_code=request.query.get("device_code") or None,
        flagged=None if flagged_text is None else flagged_text == "true", by_id=True, before_id=before_id,
        limit=limit + 1, **(_lift_filters(user) | {"district_code": district_code}),
    )  # fmt: skip
    return paged(visits, limit, key=lambda visit: visit.id, shape=visit_json)


# --- cylinders, vehicles, stations, coverage ----------------------------------------------------------


def _trace_scope(user: User) -> dict[str, Any]:
    return {"district_code": user.scope.district_code, "station_code": user.scope.station_code}


def decision_json(decision: trace.DecisionRecord) -> dict[str, Any]:
    return fields_of(decision)


def fill_json(fill: trace.FillRecord) -> dict[str, Any]:
    return fields_of(fill) | {"added_g": fill.added_g}


@routes.get("/api/v1/cylinders/{code}")
@requires(Permission.VIEW_CYLINDERS, hidden=True)
async def cylinder(request: web.Request) -> web.Response:
    """A cylinder by its code or its tag UID: registry data, district, condition, owner station, vehicle,
    decisions, fills and alarms."""
    found = await trace.find_cylinder(web_database(request), request.match_info["code"],
                                      **_trace_scope(request_user(request)))  # fmt: skip
    if found is None:
        raise json_error(404, "no such cylinder")
    return respond(found.cylinder | {
        "district_code": found.district_code, "condition": found.condition,
        "owner_station_name": found.owner_station_name, "vehicle": found.vehicle,
        "last_completed_fill_at": found.last_completed_fill_at,
        "decisions": [decision_json(d) for d in found.decisions], "fills": [fill_json(f) for f in found.fills],
        "alarms": [alarm_json(a) for a in found.alarms],
    })  # fmt: skip


VEHICLE_LIST_FIELDS = (
    "plate", "district_code", "owner", "use", "fuel", "certificate_no", "certificate_status", "certificate_valid",
    "online", "terminals", "open_alarms",
)  # fmt: skip


def vehicle_list_json(listed: dict[str, Any]) -> dict[str, Any]:
    """A vehicle of the list: registry data, terminals, open alarms and its newest position (``null`` before the
    first report)."""
    record = {name: listed[name] for name in VEHICLE_LIST_FIELDS}
    record["position"] = None if listed["at"] is None else {
        name: listed[name] for name in ("at", "received_at", "latitude", "longitude", "speed_kmh", "pressure_mpa",
                                        "gas_lel_pct")
    }  # fmt: skip
    return record


@routes.get("/api/v1/vehicles")
@requires(Permission.VIEW_VEHICLES)
async def vehicle_list(request: web.Request) -> web.Response:
    """Vehicles by plate (keyset-paged); ``?district=&alarm=true&offline=true&certificate_invalid=true``."""
    user = request_user(request)
    limit, after = page_parameters(request, str)
    flags = {}
    for name in ("alarm", "offline", "certificate_invalid"):
        flag = flag_filter(request, name)
        if flag is False:
            raise json_error(400, f"{name} filters by true alone (leave it out for every vehicle)")
        flags[name] = bool(flag)
    district_code, outside = district_filter(request, user)
    if outside:
        return respond({"items": [], "next": None})
    found = await vehicle_queries.list_vehicles(web_database(request), district_code=district_code, after=after or "",
                                                limit=limit + 1, **flags)  # fmt: skip
    return paged(found, limit, key=lambda listed: listed["plate"], shape=vehicle_list_json)


@routes.get("/api/v1/vehicles/{plate}")
@requires(Permission.VIEW_VEHICLES, hidden=True)
async def vehicle(request: web.Request) -> web.Response:
    """A vehicle by plate (the middle dot optional), with its certificate, cylinders and their fills."""
    found = await trace.vehicle_trace(web_database(request), request.match_info["plate"],
                                      **_trace_scope(request_user(request)))  # fmt: skip
    if found is None:
        raise json_error(404, "no such vehicle")
    conn = web_database(request)
    plate = found.vehicle["plate"]
    live = await vehicle_queries.position(conn, plate)
    vehicle_alarms = await list_alarms(conn, plate=plate, limit=VEHICLE_ALARMS)
    return respond(found.vehicle | {
        "certificate_valid": found.certificate_valid, "cylinders": found.cylinders,
        "fills": [fill_json(f) for f in found.fills],
        "position": live[0] if live else None, "telemetry": live[1] if live else None,
        "alarms": [alarm_json(a) for a in vehicle_alarms],
    })  # fmt: skip


@routes.get("/api/v1/vehicles/{plate}/track")
@requires(Permission.VIEW_VEHICLES, hidden=True)
async def vehicle_track(request: web.Request) -> web.Response:
    """``?from=&to=`` (ISO-8601; default: today, CST): the track points in time order, at most 2,000 an
    answer; ``next`` is the ``from`` of the following page."""
    found = await trace.vehicle_trace(web_database(request), request.match_info["plate"],
                                      **_trace_scope(request_user(request)), limit=0)  # fmt: skip
    if found is None:
        raise json_error(404, "no such vehicle")
    start, end = cst_day_bounds(cst_today())
    try:
        if request.query.get("from"):
            start = _aware(datetime.fromisoformat(request.query["from"]))
        if request.query.get("to"):
            end = _aware(datetime.fromisoformat(request.query["to"]))
    except ValueError:
        raise json_error(400, "from and to must be ISO-8601 times") from None
    if end <= start or end - start > timedelta(days=MAX_TRACK_DAYS):
        raise json_error(400, f"to must be after from, at most {MAX_TRACK_DAYS} days later")
    points, following = await vehicle_queries.track(web_database(request), found.vehicle["plate"], start, end)
    return respond({"plate": found.vehicle["plate"], "from": start, "to": end, "points": points, "next": following})


def _aware(moment: datetime) -> datetime:
    """A time without zone is China Standard Time (what staff type)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=CST)


STATION_LIST_FIELDS = (
    "station_code", "name", "district_code", "licence_no", "licence_expiry", "media", "status", "scales",
    "scales_installed", "scales_online", "open_alarms",
)  # fmt: skip


def station_list_json(listed: dict[str, Any]) -> dict[str, Any]:
    """A station of the list: registry data, scales, open alarms and today's decisions and fills."""
    record = {name: listed[name] for name in STATION_LIST_FIELDS}
    record["today"] = {name: listed[name] for name in ("permitted", "denied", "fills")}
    return record


@routes.get("/api/v1/stations")
@requires(Permission.VIEW_STATIONS)
async def station_list(request: web.Request) -> web.Response:
    """Stations by station code (keyset-paged) with today's figures (CST day); ``?district=``."""
    user = request_user(request)
    limit, after = page_parameters(request, int)
    district_code, outside = district_filter(request, user)
    if outside:
        return respond({"items": [], "next": None})
    found = await queries.list_stations(web_database(request), day=cst_today(), district_code=district_code,
                                        station_code=user.scope.station_code, after=after, limit=limit + 1)  # fmt: skip
    return paged(found, limit, key=lambda listed: listed["station_code"], shape=station_list_json)


@routes.get("/api/v1/stations/{station_code}")
@requires(Permission.VIEW_STATIONS, hidden=True)
async def station(request: web.Request) -> web.Response:
    """A station with its scales, fills per day and decisions by reason over the last ``?days=`` (default
    30, at most 366) CST days, and its latest decisions."""
    text = request.match_info["station_code"]
    days_text = request.query.get("days", "30")
    if not days_text.isdigit() or not 1 <= int(days_text) <= 366:
        raise json_error(400, "days must be a whole number from 1 to 366")
    found = None
    if text.isdigit():
        found = await trace.station_trace(
            web_database(request), int(text), days=int(days_text),
            online_terminals=trace.online_scales(platform_of(request)), **_trace_scope(request_user(request)),
        )  # fmt: skip
    if found is None:
        raise json_error(404, "no such station")
    return respond(found.station | {
        "since": found.since, "scale_list": found.scales, "fills_per_day": found.fills_per_day,
        "permitted": found.permits, "denied": sum(found.denials_by_reason.values()),
        "fills": sum(day.fills for day in found.fills_per_day),
        "denials_by_reason": [{"reason": reason, "count": n} for reason, n in found.denials_by_reason.items()],
        "decisions": [decision_json(d) for d in found.decisions],
    })  # fmt: skip


def coverage_json(figures: dict[str, Any]) -> dict[str, Any]:
    return {
        "district_code": figures["district_code"],
        "phase": figures["phase"],
        "elevators": {"registered": figures["elevators"], "pilot": figures["pilot"],
                      "terminal_installed": figures["elevators_installed"], "online": figures["elevators_online"],
                      "online_95pct_last_7_days": figures["elevators_online_7d"]},
        "stations": {"registered": figures["stations"], "all_scales_connected": figures["stations_connected"]},
        "cylinders": {"registered": figures["cylinders"], "tagged": figures["cylinders_tagged"],
                      "filled_last_30_days": figures["cylinders_filled_30d"]},
        "vehicles": {"registered": figures["vehicles"], "valid_certificate": figures["vehicles_valid"]},
    }  # fmt: skip


@routes.get("/api/v1/coverage")
@requires(Permission.VIEW_COVERAGE)
async def coverage(request: web.Request) -> web.Response:
    """The rollout figures per district (domain.md "Rollout"); one page holds every district."""
    user = request_user(request)
    district_code, outside = district_filter(request, user)
    if outside:
        return respond({"items": [], "next": None})
    figures = await queries.coverage(web_database(request), today=cst_today(), district_code=district_code)
    return respond({"items": [coverage_json(f) for f in figures], "next": None})


@routes.get("/api/v1/me")
async def me(request: web.Request) -> web.Response:
    """Who the token or session belongs to, and what it may do."""
    user = request_user(request)
    return respond({"name": user.name, "role": user.role.value, "district_code": user.district_code,
                    "unit": user.unit, "permissions": sorted(user.permissions)})  # fmt: skip


# --- errors ------------------------------------------------------------------------------------------


@web.middleware
async def api_errors(request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
    """Every answer under /api/ is JSON: errors as ``{"error": ...}``, never HTML or a stack trace."""
    if not is_api(request):
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.content_type == "application/json" or exc.status < 400:
            raise
        return web.json_response({"error": exc.reason.lower()}, status=exc.status, headers=_kept_headers(exc))
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return web.json_response({"error": "internal error"}, status=500)


def _kept_headers(exc: web.HTTPException) -> dict[str, str]:
    """Headers of an error that still apply to its JSON version (``Allow`` of a 405)."""
    return {name: exc.headers[name] for name in ("Allow", "WWW-Authenticate") if name in exc.headers}


@hookimpl
def register_routes(app: web.Application, platform: Platform) -> None:
    app.middlewares.insert(0, api_errors)
    app.router.add_routes(routes)
