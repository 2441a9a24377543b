"""Live updates: Server-Sent Events with the open alarms and a lift's state, as HTML fragments.

Each stream polls the database twice a second with a cheap fingerprint query (the open-alarm index, the
lift's state row) and renders fragments only when something changed, so a new trapped-passenger alarm
is on every open page well within 2 s of its frame. The browser (``static/app.js``) swaps the fragments
into the elements with the same ids. Polling keeps this independent of how alarms are raised and
survives any number of tabs; streams end when the platform shuts down.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp import web

from wuhai_iot.alarms.queries import list_alarms
from wuhai_iot.elevators import queries as lifts
from wuhai_iot.plugins.hookspecs import hookimpl
from wuhai_iot.server import Platform
from wuhai_iot.web.auth import Permission, User, request_user, requires, web_database
from wuhai_iot.web.pages import alarm_scope, lift_filters, open_by_severity, rules_of
from wuhai_iot.web.templating import render_fragment

POLL_S = 0.5
KEEPALIVE_S = 15.0
STOPPING_KEY = web.AppKey("live_stopping", asyncio.Event)

OPEN_ALARMS_FINGERPRINT = (
    "SELECT count(*), max(id), max(updated_at), max(acknowledged_at), max(cleared_at) FROM alarms"
    " WHERE status != 'resolved'"
)


async def _fingerprint(request: web.Request, device_code: str | None) -> tuple[Any, ...]:
    conn = web_database(request)
    row = await (await conn.execute(OPEN_ALARMS_FINGERPRINT)).fetchone()
    # The banner says how long people have been trapped: refresh it every minute too.
    parts: list[Any] = [tuple(row), int(time.time() // 60)]
    if device_code is not None:
        state = await (await conn.execute(
            "SELECT e.at, e.received_at, (SELECT group_concat(ts.online || ts.last_frame_at) FROM terminals t"
            " JOIN terminal_sessions ts ON ts.protocol = t.protocol AND ts.terminal_id = t.terminal_id"
            " WHERE t.device_code = ?) FROM elevator_state e WHERE e.device_code = ?",
            (device_code, device_code),
        )).fetchone()  # fmt: skip
        parts.append(None if state is None else tuple(state))
    return tuple(parts)


async def _snapshot(request: web.Request, user: User, page_path: str, device_code: str | None) -> dict[str, Any]:
    """Counts and HTML fragments for the elements of the open page, keyed by element id."""
    conn = web_database(request)
    filters = user.scope.filters()
    readable = alarm_scope(user, filters)
    shown = await list_alarms(conn, status="open", most_urgent_first=True, limit=30, **readable)
    trapped = await lifts.trapped_now(conn, **filters) if user.can(Permission.VIEW_ELEVATORS) else []
    counts = await open_by_severity(conn, readable)
    counts.update(trapped=len(trapped), open=sum(counts.values()))
    context = {
        "user": user, "csrf_token": user.csrf_token, "path": page_path, "trapped": trapped,
        "open_alarms": shown,
        "lift_info": await lifts.lifts_by_code(conn, {a.device_code for a in shown if a.device_code}),
    }  # fmt: skip
    fragments = {
        "trapped-zone": render_fragment("_trapped_banner.html", context),
        "open-alarms": render_fragment("_open_alarms.html", context),
    }
    if device_code is not None:
        lift = await lifts.get_lift(conn, device_code, **rules_of(request), **lift_filters(request, user))
        if lift is not None:
            fragments["lift-state"] = render_fragment(
                "_lift_state.html", {"state": lift.state, "lift_online": lift.online, "lift_trapped": lift.trapped}
            )
            lift_alarms = await list_alarms(conn, device_code=device_code, limit=30, **filters)
            fragments["lift-alarms"] = render_fragment("_lift_alarms.html", {**context, "alarms": lift_alarms})
    return {"counts": counts, "fragments": fragments}


async def _stream(request: web.Request, device_code: str | None) -> web.StreamResponse:
    user = request_user(request)
    page_path = request.query.get("page", "/")
    if not page_path.startswith("/") or page_path.startswith("//"):
        page_path = "/"
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no",
    })  # fmt: skip
    await response.prepare(request)
    stopping = request.app[STOPPING_KEY]
    last_fingerprint: tuple[Any, ...] | None = None
    last_sent = time.monotonic()
    try:
        while not stopping.is_set():
            fingerprint = await _fingerprint(request, device_code)
            if fingerprint != last_fingerprint:
                snapshot = await _snapshot(request, user, page_path, device_code)
                await response.write(f"event: update\ndata: {json.dumps(snapshot, ensure_ascii=False)}\n\n".encode())
                last_fingerprint, last_sent = fingerprint, time.monotonic()
            elif time.monotonic() - last_sent > KEEPALIVE_S:
                await response.write(b": keep-alive\n\n")
                last_sent = time.monotonic()
            try:
                async with asyncio.timeout(POLL_S):
                    await stopping.wait()
            except TimeoutError:
                pass
    except (ConnectionResetError, ConnectionError):
        pass  # the browser went away
    return response


@requires(Permission.VIEW_ALARMS)
async def alarms_stream(request: web.Request) -> web.StreamResponse:
    """Open alarms and the trapped banner of the user's scope."""
    return await _stream(request, None)


@requires(Permission.VIEW_ELEVATORS, hidden=True)
async def lift_stream(request: web.Request) -> web.StreamResponse:
    """As ``alarms_stream``, plus one lift's live state and alarms (404 outside the user's scope)."""
    user = request_user(request)
    code = request.match_info["code"]
    if await lifts.get_lift(web_database(request), code, **rules_of(request), **lift_filters(request, user)) is None:
        raise web.HTTPNotFound()
    return await _stream(request, code)


@hookimpl
def register_routes(app: web.Application, platform: Platform) -> None:
    app[STOPPING_KEY] = asyncio.Event()

    async def stop_streams(app: web.Application) -> None:
        app[STOPPING_KEY].set()

    app.on_shutdown.append(stop_streams)
    app.router.add_get("/live/alarms", alarms_stream)
    app.router.add_get("/live/lifts/{code}", lift_stream)
