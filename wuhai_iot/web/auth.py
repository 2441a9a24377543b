"""Who is asking and what they may see: sessions, API tokens, CSRF, roles and scopes for web handlers.

Every request passes ``authenticate`` (a middleware): it finds the user from the session cookie or an
``Authorization: Bearer`` token, refuses anonymous requests to any route not marked ``@public``
(pages: redirect to /login; /api/: 401 JSON) and checks the CSRF token of every state-changing
request authenticated by cookie (form field ``csrf_token`` or header ``X-CSRF-Token``). Handlers then
say what they need::

    from wuhai_iot.web.auth import Permission, request_user, requires, web_database

    @requires(Permission.VIEW_ELEVATORS)                  # a list page: 403 for a role without it
    async def lift_list(request: web.Request) -> web.Response:
        user = request_user(request)                      # a User (never None under @requires)
        lifts = await list_elevators(web_database(request), **user.scope.filters())
        return render(request, "lifts.html", {"user": user, "lifts": lifts})

    @requires(Permission.VIEW_ELEVATORS, hidden=True)     # one object: 404 for a role without it
    async def lift_detail(request: web.Request) -> web.Response:
        user = request_user(request)
        lift = await get_elevator(web_database(request), request.match_info["code"], **user.scope.filters())
        if lift is None:                                  # outside the user's district: the same 404
            raise web.HTTPNotFound()
        ...

    @requires(Permission.HANDLE_ALARMS)                   # an action: 403 for a role without it
    async def acknowledge(request: web.Request) -> web.Response:
        form = await request.post()                       # the CSRF token was checked already
        ...

In a template every form that POSTs carries
``<input type="hidden" name="csrf_token" value="{{ user.csrf_token }}">``; page JavaScript sends the
same value in an ``X-CSRF-Token`` header. Read forms with ``await request.post()`` (the middleware
has read the body already; ``request.multipart()`` would find it consumed).

``Scope.filters()`` gives the keyword filters of the internal query APIs (``district_code``,
``maintenance_company``, ``station_code``); ``Scope.allows(...)`` checks an object already fetched.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import hmac
import json
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiosqlite
from aiohttp import web

from wuhai_iot.logs import fields
from wuhai_iot.plugins.hookspecs import hookimpl
from wuhai_iot.registry.districts import DISTRICTS
from wuhai_iot.registry.users import (
    Role,
    dummy_hash,
    hash_password,
    needs_rehash,
    new_secret,
    secret_hash,
    verify_password,
)
from wuhai_iot.server import PLATFORM_KEY, Platform
from wuhai_iot.storage import audit
from wuhai_iot.storage.writer import Statement
from wuhai_iot.web import guard
from wuhai_iot.web.templating import render

log = logging.getLogger(__name__)

SESSION_COOKIE = "wuhai_session"
LOGIN_COOKIE = "wuhai_login"
"""Holds the login form's own CSRF token (there is no session yet to hold it)."""
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC_PATHS = frozenset({"/healthz", "/login"})
PUBLIC_PREFIXES = ("/static/",)
LOGIN_FAILURES_ALLOWED = 10
"""Failed logins of one name (from any addresses) in the window before it is refused to failing addresses."""
ADDRESS_FAILURES_ALLOWED = 20
"""Failed logins from one address (any names) in the window before it is refused."""
LOGIN_FAILURE_WINDOW_S = 900.0
THROTTLE_MAX_KEYS = 10_000

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
WEB_DB_KEY = web.AppKey("web_database", aiosqlite.Connection)
PAGES_CACHE_MIB = 16
"""SQLite's page cache on the pages' connection (SQLite's default: 2 MiB). The pages read the upper levels of
the same indexes and running figures over and over; at 25,000 lifts those no longer fit in 2 MiB, and every
request read them again from the system's file cache (measured at 25,000 lifts: p50 of the lift pages 8-15 %
lower with 64 MiB). 16 MiB did as well at both benchmark sizes and at the province (worst p95 40 ms, 42 with
64 MiB) for 20 MiB less resident memory there. Bounded: the cache never holds more."""


class Permission(enum.StrEnum):
    VIEW_ELEVATORS = "view_elevators"
    """Lifts, their state, maintenance visits, inspections, rescues (scoped by district or company)."""
    VIEW_ALARMS = "view_alarms"
    """Alarms within the user's scope (lifts for maintenance companies, the station's for a station)."""
    VIEW_VEHICLE_ALARMS = "view_vehicle_alarms"
    """The alarms of vehicles within the user's scope (police and transport: these alone, no lift or station
    alarm)."""
    HANDLE_ALARMS = "handle_alarms"
    RECORD_RESCUES = "record_rescues"
    """Enter a rescue's dispatch (who was sent, when) and arrival."""
    SEND_COMMANDS = "send_commands"
    VIEW_STATIONS = "view_stations"
    VIEW_CYLINDERS = "view_cylinders"
    VIEW_VEHICLES = "view_vehicles"
    VIEW_COVERAGE = "view_coverage"
    """Rollout figures, dashboards and monthly reports."""
    VIEW_EVALUATION = "view_evaluation"
    """The phase evaluation reports and the accepted installations (whole city)."""
    MANAGE_PLAN = "manage_plan"
    """Record the plan's phases and targets."""
    IMPORT_CENSUS = "import_census"
    MANAGE_USERS = "manage_users"
    VIEW_AUDIT = "view_audit"
    VIEW_METRICS = "view_metrics"


P = Permission
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.DISTRICT: frozenset({P.VIEW_ELEVATORS, P.VIEW_ALARMS, P.HANDLE_ALARMS, P.RECORD_RESCUES, P.SEND_COMMANDS,
                              P.VIEW_STATIONS, P.VIEW_CYLINDERS, P.VIEW_VEHICLES, P.VIEW_COVERAGE}),
    Role.POLICE: frozenset({P.VIEW_CYLINDERS, P.VIEW_VEHICLES, P.VIEW_VEHICLE_ALARMS}),
    Role.TRANSPORT: frozenset({P.VIEW_CYLINDERS, P.VIEW_VEHICLES, P.VIEW_VEHICLE_ALARMS}),
    Role.STATION: frozenset({P.VIEW_STATIONS, P.VIEW_ALARMS, P.HANDLE_ALARMS}),
    Role.MAINTENANCE: frozenset({P.VIEW_ELEVATORS, P.VIEW_ALARMS, P.HANDLE_ALARMS, P.RECORD_RESCUES, P.SEND_COMMANDS}),
    Role.EXPERT: frozenset({P.VIEW_ELEVATORS, P.VIEW_ALARMS, P.VIEW_STATIONS, P.VIEW_COVERAGE, P.VIEW_EVALUATION}),
}  # fmt: skip
"""What each role may see and do; the scope (district, company, station) narrows it further."""


@dataclass(frozen=True, slots=True)
class Scope:
    """The part of the city a user may see. ``None`` everywhere: the whole city."""

    district_code: str | None = None
    maintenance_company: str | None = None
    station_code: int | None = None

    def filters(self) -> dict[str, Any]:
        """Keyword filters for the query APIs (only the ones that narrow)."""
        return {key: value for key in ("district_code", "maintenance_company", "station_code")
                if (value := getattr(self, key)) is not None}  # fmt: skip

    def allows(
        self,
        *,
        district_code: str | None = None,
        maintenance_company: str | None = None,
        station_code: int | None = None,
    ) -> bool:
        """Whether an object with these attributes is inside the scope (an attribute not given fails a
        scope that narrows by it)."""
        if self.district_code is not None and district_code != self.district_code:
            return False
        if self.maintenance_company is not None and maintenance_company != self.maintenance_company:
            return False
        if self.station_code is not None and (station_code is None or int(station_code) != self.station_code):
            return False
        return True

    @property
    def whole_city(self) -> bool:
        return not self.filters()


@dataclass(frozen=True, slots=True)
class User:
    """The user behind a request."""

    id: int
    name: str
    role: Role
    district_code: str | None
    unit: str | None
    via: str
    """``session`` (cookie) or ``token`` (bearer)."""
    csrf_token: str | None = None
    """For forms and page JavaScript; None for token users (no CSRF with bearer tokens)."""

    def can(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS[self.role]

    @property
    def scope(self) -> Scope:
        if self.role is Role.DISTRICT:
            return Scope(district_code=self.district_code)
        if self.role is Role.STATION:
            return Scope(station_code=int(self.unit or 0))
        if self.role is Role.MAINTENANCE:
            return Scope(maintenance_company=self.unit)
        return Scope()

    @property
    def sees_platform_alarms(self) -> bool:
        """Whether the platform's own alarms (its disk: alarms/system.py) are for this user: those who run the
        platform, who may see the system page."""
        return self.can(Permission.VIEW_METRICS)

    def alarm_filters(self) -> dict[str, Any] | None:
        """The filters of the alarms this user may read (``alarms.queries``), or None when it may read none:
        its scope (with the platform's own alarms for those who run it), and only vehicles' alarms for a user
        who may read those alone."""
        if self.can(Permission.VIEW_ALARMS):
            return self.scope.filters() | {"platform_alarms": self.sees_platform_alarms}
        if self.can(Permission.VIEW_VEHICLE_ALARMS):
            return self.scope.filters() | {"vehicles_only": True}
        return None

    @property
    def district_name(self) -> str | None:
        return DISTRICTS.get(self.district_code) if self.district_code else None

    @property
    def permissions(self) -> frozenset[Permission]:
        return ROLE_PERMISSIONS[self.role]


USER_KEY = web.RequestKey("wuhai_user", User)
"""Where the middleware puts the user."""


def request_user(request: web.Request) -> User:
    """The authenticated user (handlers behind ``@requires``/``@require_role``, or any non-public route)."""
    user = request.get(USER_KEY)
    if user is None:
        raise refusal(request, 401)
    return user


def optional_user(request: web.Request) -> User | None:
    """The user, or None on a public route visited anonymously."""
    return request.get(USER_KEY)


def web_database(request: web.Request) -> aiosqlite.Connection:
    """The web layer's read connection (never used for writes: they go through ``platform.writer``)."""
    return request.app[WEB_DB_KEY]


def is_api(request: web.Request) -> bool:
    """Whether the request is for a machine (the JSON API or /metrics): errors as JSON, never a redirect."""
    return request.path in ("/api", "/metrics") or request.path.startswith("/api/")


def json_error(status: int, message: str) -> web.HTTPException:
    """An HTTP error whose body is ``{"error": message}`` (the API's errors)."""
    error_class = _ERRORS.get(status, web.HTTPInternalServerError)
    return error_class(text=json.dumps({"error": message}, ensure_ascii=False), content_type="application/json")


_ERRORS: dict[int, type[web.HTTPException]] = {
    cls.status_code: cls for cls in vars(web).values()
    if isinstance(cls, type) and issubclass(cls, web.HTTPError) and cls.status_code > 0
    and cls not in (web.HTTPMethodNotAllowed, web.HTTPRequestEntityTooLarge)  # they take more arguments
}
_API_MESSAGES = {401: "authentication required", 403: "forbidden", 404: "not found"}


def refusal(request: web.Request, status: int) -> web.HTTPException:
    """What to raise when a request may not go on: 401 (anonymous), 403 (forbidden action) or 404
    (an object the user may not see). Pages: an anonymous user is sent to /login."""
    if is_api(request):
        error = json_error(status, _API_MESSAGES.get(status, "refused"))
        if status == 401:
            error.headers["WWW-Authenticate"] = 'Bearer realm="wuhai-iot"'
        return error
    if status == 401:
        return web.HTTPFound("/login?next=" + quote(request.path_qs, safe=""))
    return {403: web.HTTPForbidden, 404: web.HTTPNotFound}[status]()


def requires(*permissions: Permission, hidden: bool = False) -> Callable[[Handler], Handler]:
    """Let a handler run only for a user with every permission; otherwise 403, or 404 when ``hidden``
    (a single object: do not confirm it exists)."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            user = request_user(request)
            if not all(user.can(p) for p in permissions):
                raise refusal(request, 404 if hidden else 403)
            return await handler(request)

        return guarded

    return decorate


def require_role(*roles: Role | str, hidden: bool = False) -> Callable[[Handler], Handler]:
    """Let a handler run only for users of these roles; otherwise 403, or 404 when ``hidden``."""
    allowed = {Role(role) for role in roles}

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            if request_user(request).role not in allowed:
                raise refusal(request, 404 if hidden else 403)
            return await handler(request)

        return guarded

    return decorate


def public(handler: Handler) -> Handler:
    """Mark a route handler as open to anonymous visitors (the login page)."""
    handler.wuhai_public = True  # type: ignore[attr-defined]
    return handler


# --- finding the user --------------------------------------------------------------------------------

USER_COLUMNS = "u.id, u.name, u.role, u.district_code, u.unit"


def _user(row: aiosqlite.Row, via: str, csrf_token: str | None = None) -> User:
    return User(row["id"], row["name"], Role(row["role"]), row["district_code"], row["unit"], via, csrf_token)


def csrf_for(session_token: str) -> str:
    """The session's CSRF token: derived from the cookie, so neither is stored in clear."""
    return secret_hash("csrf:" + session_token)


async def user_for_session(conn: aiosqlite.Connection, session_token: str) -> User | None:
    row = await (await conn.execute(
        f"SELECT {USER_COLUMNS} FROM web_sessions s JOIN users u ON u.id = s.user_id"
        " WHERE s.token_hash = ? AND s.expires_at > ? AND u.active = 1",
        (secret_hash(session_token), time.time()),
    )).fetchone()  # fmt: skip
    return None if row is None else _user(row, "session", csrf_for(session_token))


async def user_for_token(conn: aiosqlite.Connection, token: str) -> User | None:
    row = await (await conn.execute(
        f"SELECT {USER_COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id"
        " WHERE t.token_hash = ? AND t.revoked_at IS NULL AND u.active = 1",
        (secret_hash(token),),
    )).fetchone()  # fmt: skip
    return None if row is None else _user(row, "token")


def _is_public(request: web.Request) -> bool:
    if request.path in PUBLIC_PATHS or request.path.startswith(PUBLIC_PREFIXES):
        return True
    if request.match_info.http_exception is not None:
        # An unknown API path is a plain 404; an unknown page sends a visitor to log in first, like
        # any other page (which pages exist is not told to strangers).
        return is_api(request)
    return getattr(request.match_info.route.handler, "wuhai_public", False)


def _same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison (of bytes: ``compare_digest`` refuses non-ASCII text)."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


async def _submitted_csrf(request: web.Request) -> str | None:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        value = (await request.post()).get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Put the user on the request; refuse anonymous requests to non-public routes; check CSRF."""
    conn = request.app[WEB_DB_KEY]
    user: User | None = None
    authorization = request.headers.get("Authorization")
    if authorization is not None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            user = await user_for_token(conn, token.strip())
        if user is None:
            # A wrong token is never silently anonymous: the caller must learn it is wrong.
            raise json_error(401, "invalid or revoked token") if is_api(request) else web.HTTPUnauthorized()
    else:
        session_token = request.cookies.get(SESSION_COOKIE)
        if session_token:
            user = await user_for_session(conn, session_token)
    request[USER_KEY] = user
    if user is None:
        if not _is_public(request):
            raise refusal(request, 401)
    elif user.via == "session" and request.method not in SAFE_METHODS:
        submitted = await _submitted_csrf(request)
        if not submitted or not _same_secret(submitted, user.csrf_token or ""):
            log.warning("CSRF token missing or wrong: %s %s by %s", request.method, request.path, user.name)
            raise json_error(403, "CSRF token missing or wrong") if is_api(request) else web.HTTPForbidden(
                text="表单已过期或来源无法确认（CSRF 校验未通过），请刷新页面后重试。"
            )
    return await handler(request)


# --- login and logout --------------------------------------------------------------------------------


class LoginThrottle:
    """Slows password guessing without letting anyone lock the real user out.

    Failed logins are counted by address and by name within a window. An address with
    ``address_allowed`` failures is refused whatever name it tries (one address guessing many names).
    A name with ``allowed`` failures is refused only to addresses that have failed in the window
    (many addresses guessing one name): from an address with no failure, such as the real user's,
    the right password still logs in. Both tables are bounded (``max_keys`` each, the oldest forgotten
    first), so that guessing with invented names or addresses cannot grow memory."""

    def __init__(
        self,
        allowed: int = LOGIN_FAILURES_ALLOWED,
        window_s: float = LOGIN_FAILURE_WINDOW_S,
        address_allowed: int = ADDRESS_FAILURES_ALLOWED,
        max_keys: int = THROTTLE_MAX_KEYS,
    ) -> None:
        self.allowed = allowed
        self.address_allowed = address_allowed
        self.window_s = window_s
        self.max_keys = max_keys
        self._by_name: OrderedDict[str, deque[float]] = OrderedDict()
        self._by_address: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, table: OrderedDict[str, deque[float]], key: str) -> int:
        failures = table.get(key)
        if failures is None:
            return 0
        while failures and failures[0] < time.monotonic() - self.window_s:
            failures.popleft()
        if not failures:
            del table[key]
            return 0
        return len(failures)

    def blocked(self, name: str, address: str) -> bool:
        address_failures = self._recent(self._by_address, address)
        if address_failures >= self.address_allowed:
            return True
        return address_failures > 0 and self._recent(self._by_name, name) >= self.allowed

    def failed(self, name: str, address: str) -> None:
        now = time.monotonic()
        for table, key in ((self._by_name, name), (self._by_address, address)):
            failures = table.get(key)
            if failures is None:
                failures = table[key] = deque(maxlen=max(self.allowed, self.address_allowed))
                if len(table) > self.max_keys:
                    table.popitem(last=False)
            else:
                table.move_to_end(key)
            failures.append(now)

    def succeeded(self, name: str, address: str) -> None:
        self._by_name.pop(name, None)
        self._by_address.pop(address, None)

    @property
    def size(self) -> int:
        """Names and addresses remembered."""
        return len(self._by_name) + len(self._by_address)


THROTTLE_KEY = web.AppKey("login_throttle", LoginThrottle)


def _safe_next(target: str | None) -> str:
    """Only a path on this site may be where a login leads: no scheme or ``//host``, no backslash, and
    no control character or space (browsers drop tabs and line breaks: ``/%09/evil.example`` would
    become ``//evil.example``)."""
    if (not target or not target.startswith("/") or target.startswith("//") or "\\" in target
            or any(ord(char) < 0x21 or ord(char) == 0x7F for char in target)):  # fmt: skip
        return "/"
    return target


def _secure(request: web.Request) -> bool:
    """Whether cookies are marked Secure: over HTTPS (behind a proxy, as it says), or when configured."""
    return request.secure or request.app[PLATFORM_KEY].config.web.secure_cookies


def _render_login(request: web.Request, *, csrf: str, error: str | None, name: str, status: int) -> web.Response:
    target = _safe_next(request.query.get("next"))
    context = {"csrf_token": csrf, "error": error, "name": name, "next": target, "user": None}
    return render(request, "login.html", context, status=status)


@public
async def login_page(request: web.Request) -> web.StreamResponse:
    user = optional_user(request)
    if user is not None:
        raise web.HTTPFound(_safe_next(request.query.get("next")))
    csrf = request.cookies.get(LOGIN_COOKIE) or new_secret()
    response = _render_login(request, csrf=csrf, error=None, name="", status=200)
    response.set_cookie(LOGIN_COOKIE, csrf, httponly=True, samesite="Lax", path="/login", secure=_secure(request))
    return response


def _log_sign_in(request: web.Request, name: str, refused: str | None) -> None:
    """One line per sign-in: the user name and the address, and why it was refused (never the password)."""
    context = fields(user=name, peer=request.remote, reason=refused)
    if refused is None:
        log.info("sign-in of %s from %s", name, request.remote, extra=context)
    else:
        log.warning("sign-in of %s from %s refused: %s", name, request.remote, refused, extra=context)


@public
async def login_submit(request: web.Request) -> web.StreamResponse:
    platform: Platform = request.app[PLATFORM_KEY]
    form = await request.post()
    name = str(form.get("name", "")).strip()
    password = str(form.get("password", ""))
    cookie_csrf = request.cookies.get(LOGIN_COOKIE, "")
    form_csrf = str(form.get(CSRF_FIELD, ""))
    if not cookie_csrf or not _same_secret(cookie_csrf, form_csrf):
        raise web.HTTPForbidden(text="登录表单已过期（CSRF 校验未通过），请刷新登录页后重试。")
    throttle = request.app[THROTTLE_KEY]
    if throttle.blocked(name, request.remote or ""):
        _log_sign_in(request, name, "too many failed sign-ins")
        return _render_login(request, csrf=cookie_csrf, error="登录失败次数过多，请15分钟后再试。", name=name, status=429)
    row = await (await request.app[WEB_DB_KEY].execute(
        f"SELECT {USER_COLUMNS}, u.password_hash, u.active FROM users u WHERE u.name = ?", (name,)
    )).fetchone()  # fmt: skip
    stored_hash = row["password_hash"] if row is not None else await asyncio.to_thread(dummy_hash)
    password_ok = await asyncio.to_thread(verify_password, password, stored_hash)
    if row is None or not password_ok or not row["active"]:
        _log_sign_in(request, name, "unknown user" if row is None else "wrong password" if not password_ok else "disabled")
        throttle.failed(name, request.remote or "")
        await audit.record(platform.writer, None, "login.failed", "user", name, details={"peer": request.remote})
        return _render_login(request, csrf=cookie_csrf, error="用户名或密码错误。", name=name, status=401)
    throttle.succeeded(name, request.remote or "")
    _log_sign_in(request, name, None)
    session_token = new_secret()
    now = time.time()
    lifetime_s = platform.config.web.session_hours * 3600
    rehashed: list[Statement] = []
    if needs_rehash(stored_hash):  # (made at an older cost: stored again at today's)
        new_hash = await asyncio.to_thread(hash_password, password)
        rehashed.append(("UPDATE users SET password_hash = ? WHERE id = ?", (new_hash, row["id"])))
    await platform.writer.write([
        *rehashed,
        ("DELETE FROM web_sessions WHERE expires_at <= ?", (now,)),
        ("INSERT INTO web_sessions (token_hash, user_id, created_at, expires_at, peer) VALUES (?, ?, ?, ?, ?)",
         (secret_hash(session_token), row["id"], now, now + lifetime_s, request.remote)),
        audit.entry(name, "login", "user", name, district_code=row["district_code"], details={"peer": request.remote}),
    ])  # fmt: skip
    response = web.HTTPFound(_safe_next(str(form.get("next") or request.query.get("next") or "/")))
    response.set_cookie(SESSION_COOKIE, session_token, max_age=int(lifetime_s), httponly=True, samesite="Lax",
                        path="/", secure=_secure(request))  # fmt: skip
    response.del_cookie(LOGIN_COOKIE, path="/login")
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    """End the session (POST with the CSRF token, like every other change)."""
    user = request_user(request)
    platform: Platform = request.app[PLATFORM_KEY]
    statements = [audit.entry(user.name, "logout", "user", user.name, district_code=user.district_code)]
    session_token = request.cookies.get(SESSION_COOKIE)
    if user.via == "session" and session_token:
        statements.append(("DELETE FROM web_sessions WHERE token_hash = ?", (secret_hash(session_token),)))
    await platform.writer.write(statements)
    response = web.HTTPFound("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


@hookimpl
def register_routes(app: web.Application, platform: Platform) -> None:
    """Install the middleware, the web layer's database connection and the login/logout routes."""
    app[THROTTLE_KEY] = LoginThrottle()

    async def open_database(app: web.Application) -> None:
        app[WEB_DB_KEY] = conn = await platform.open_database()
        await conn.execute(f"PRAGMA cache_size = -{PAGES_CACHE_MIB * 1024}")

    app.on_startup.append(open_database)
    guard.install(app, platform.config)  # (its middlewares first: around authentication)
    app.middlewares.append(authenticate)
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login_submit)
    app.router.add_post("/logout", logout)
