"""Web users, their roles and API tokens: the store, and the ``users`` and ``tokens`` commands.

Roles (issue 5): ``admin`` sees and does everything; ``district`` one district's lifts, stations,
cylinders and vehicles; ``police`` and ``transport`` look up vehicles and cylinders (read-only);
``station`` one filling station (unit = station code); ``maintenance`` one maintenance company's lifts
(unit = the company's name as in the census); ``expert`` (issue 22: the outside panel of the final acceptance)
reads the rollout, the evaluation reports and the lifts of every district and changes nothing.

Passwords are hashed with scrypt (standard library) and a per-user random salt; API tokens are random
and only their sha256 is stored, so a copy of the database file gives neither.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import enum
import functools
import getpass
import hashlib
import hmac
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiosqlite

from wuhai_iot.plugins.hookspecs import hookimpl
from wuhai_iot.registry.districts import DISTRICTS, UnknownDistrict, parse_district
from wuhai_iot.storage import audit
from wuhai_iot.storage.db import connect, immediate

EXIT_USAGE = 2
MIN_PASSWORD_LENGTH = 8

SCRYPT_DKLEN = 32


@dataclass(frozen=True, slots=True)
class ScryptCost:
    """scrypt's work factors. The default, n=2**14 and r=8, is OWASP's minimum recommendation (about 16 MiB
    and tens of ms per hash)."""

    n: int = 2**14
    r: int = 8
    p: int = 1


PASSWORD_COST = ScryptCost()
"""The cost of every new hash. Only the test suite lowers it (tests/conftest.py); each hash string carries its
own cost, and a login with a hash of another cost stores the password again at this one (``needs_rehash``)."""
TOKEN_PREFIX = "wh_"


class Role(enum.StrEnum):
    ADMIN = "admin"
    DISTRICT = "district"
    POLICE = "police"
    TRANSPORT = "transport"
    STATION = "station"
    MAINTENANCE = "maintenance"
    EXPERT = "expert"


class UserError(ValueError):
    """A user or token cannot be created as asked (the message says why)."""


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    name: str
    role: Role
    district_code: str | None
    unit: str | None
    active: bool
    created_at: float


# --- secrets -----------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> str:
    """A self-describing scrypt hash: ``scrypt$n$r$p$salt$hash`` (salt and hash in base64)."""
    salt = secrets.token_bytes(16)
    cost = PASSWORD_COST
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=cost.n, r=cost.r, p=cost.p, dklen=SCRYPT_DKLEN)
    return "$".join(["scrypt", str(cost.n), str(cost.r), str(cost.p), _b64(salt), _b64(digest)])


def needs_rehash(stored: str) -> bool:
    """Whether a stored hash was made at another cost than today's (a login then stores it anew)."""
    scheme, n, r, p, *_ = (stored.split("$") + ["", "", "", ""])[:4]
    cost = PASSWORD_COST
    return scheme != "scrypt" or (n, r, p) != (str(cost.n), str(cost.r), str(cost.p))


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (as made by ``hash_password``), in constant time."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
            dklen=len(expected), maxmem=0x7FFFFFFF,
        )  # fmt: skip
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


@functools.cache
def dummy_hash() -> str:
    """Checked against when the user does not exist, so that a login takes as long either way."""
    return hash_password(secrets.token_hex(16))


def new_secret() -> str:
    """A random, URL-safe secret (API tokens and session cookies)."""
    return secrets.token_urlsafe(32)


def secret_hash(secret: str) -> str:
    """How a token or session cookie is stored and looked up: its sha256 (hex)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


# --- the store ---------------------------------------------------------------------------------------


def _record(row: aiosqlite.Row) -> UserRecord:
    return UserRecord(
        id=row["id"], name=row["name"], role=Role(row["role"]), district_code=row["district_code"],
        unit=row["unit"], active=bool(row["active"]), created_at=row["created_at"],
    )  # fmt: skip


def check_user_fields(role: str, district: str | None, unit: str | None) -> tuple[Role, str | None, str | None]:
    """Validate a role with its district and unit; return (role, district code, unit)."""
    try:
        parsed_role = Role(role)
    except ValueError:
        raise UserError(f"unknown role {role!r}; expected one of {', '.join(r.value for r in Role)}") from None
    district_code = None
    if parsed_role is Role.DISTRICT:
        if not district:
            raise UserError("role district needs --district (a name such as 海勃湾区 or a code such as 150302)")
        try:
            district_code = parse_district(district)
        except UnknownDistrict as exc:
            raise UserError(str(exc)) from None
    elif district:
        raise UserError(f"--district applies to role district only, not {parsed_role}")
    unit = unit.strip() if unit else None
    if parsed_role is Role.STATION:
        if not unit or not unit.isdigit():
            raise UserError("role station needs --unit with the station code (digits, as in the census)")
        unit = str(int(unit))
    elif parsed_role is Role.MAINTENANCE:
        if not unit:
            raise UserError("role maintenance needs --unit with the maintenance company's name as in the census")
    elif unit:
        raise UserError(f"--unit applies to roles station and maintenance only, not {parsed_role}")
    return parsed_role, district_code, unit


async def _check_unit_exists(conn: aiosqlite.Connection, role: Role, unit: str | None) -> None:
    if role is Role.STATION:
        sql, what = "SELECT 1 FROM stations WHERE station_code = ?", f"no station {unit} in the registry"
    elif role is Role.MAINTENANCE:
        sql = "SELECT 1 FROM elevators WHERE maintenance_company = ? UNION SELECT 1 FROM workers WHERE unit = ?"
        what = f"no maintenance company {unit!r} in the registry (lifts or workers)"
    else:
        return
    params = (int(unit),) if role is Role.STATION else (unit, unit)  # type: ignore[arg-type]
    if await (await conn.execute(sql, params)).fetchone() is None:
        raise UserError(what)


async def add_user(
    conn: aiosqlite.Connection,
    name: str,
    role: str,
    password: str,
    *,
    district: str | None = None,
    unit: str | None = None,
    added_by: str | None = None,
) -> UserRecord:
    """Create a user (and its audit entry); UserError when a field is wrong or the name is taken."""
    name = name.strip()
    if not name or len(name) > 64 or any(c.isspace() for c in name):
        raise UserError("a user name is 1-64 characters without spaces")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    parsed_role, district_code, unit = check_user_fields(role, district, unit)
    await _check_unit_exists(conn, parsed_role, unit)
    password_hash = await asyncio.to_thread(hash_password, password)
    now = time.time()
    async with immediate(conn):
        if await (await conn.execute("SELECT 1 FROM users WHERE name = ?", (name,))).fetchone():
            raise UserError(f"user {name!r} exists already")
        cursor = await conn.execute(
            "INSERT INTO users (name, role, district_code, unit, password_hash, created_at) VALUES (?,?,?,?,?,?)",
            (name, parsed_role.value, district_code, unit, password_hash, now),
        )
        user_id = cursor.lastrowid
        await conn.execute(*audit.entry(
            added_by, "user.add", "user", name, details={"role": parsed_role.value, "district_code": district_code,
                                                         "unit": unit}, at=now,
        ))  # fmt: skip
    assert user_id is not None
    return UserRecord(user_id, name, parsed_role, district_code, unit, True, now)


async def get_user(conn: aiosqlite.Connection, name: str) -> tuple[UserRecord, str] | None:
    """The user and its password hash, or None."""
    row = await (await conn.execute("SELECT * FROM users WHERE name = ?", (name,))).fetchone()
    return None if row is None else (_record(row), row["password_hash"])


async def list_users(conn: aiosqlite.Connection) -> list[UserRecord]:
    return [_record(row) for row in await conn.execute_fetchall("SELECT * FROM users ORDER BY name")]


async def create_token(
    conn: aiosqlite.Connection, user_name: str, label: str | None = None, *, created_by: str | None = None
) -> str:
    """Create an API token for a user; return it (the only time it is seen: only its hash is kept)."""
    user = await _user_or_error(conn, user_name)
    if not user.active:
        raise UserError(f"user {user_name!r} is disabled")
    token = TOKEN_PREFIX + new_secret()
    now = time.time()
    async with immediate(conn):
        await conn.execute(
            "INSERT INTO api_tokens (token_hash, user_id, label, created_at) VALUES (?, ?, ?, ?)",
            (secret_hash(token), user.id, label, now),
        )
        await conn.execute(*audit.entry(created_by, "token.create", "user", user.name,
                                        details={"label": label}, at=now))  # fmt: skip
    return token


async def _user_or_error(conn: aiosqlite.Connection, name: str) -> UserRecord:
    found = await get_user(conn, name)
    if found is None:
        raise UserError(f"no user {name!r}")
    return found[0]


async def disable_user(conn: aiosqlite.Connection, name: str, *, disabled_by: str | None = None) -> int:
    """Disable a user: it can no longer log in, its sessions end and its tokens stop working at once (every
    request checks ``active``). Returns the number of sessions ended."""
    user = await _user_or_error(conn, name)
    now = time.time()
    async with immediate(conn):
        await conn.execute("UPDATE users SET active = 0 WHERE id = ?", (user.id,))
        ended = (await conn.execute("DELETE FROM web_sessions WHERE user_id = ?", (user.id,))).rowcount
        await conn.execute(*audit.entry(disabled_by, "user.disable", "user", user.name,
                                        details={"sessions_ended": ended}, at=now))  # fmt: skip
    return ended


async def revoke_tokens(conn: aiosqlite.Connection, user_name: str, *, revoked_by: str | None = None) -> int:
    """Revoke every API token of a user (they stop working at once); returns how many were still valid."""
    user = await _user_or_error(conn, user_name)
    now = time.time()
    async with immediate(conn):
        revoked = (await conn.execute(
            "UPDATE api_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL", (now, user.id)
        )).rowcount  # fmt: skip
        await conn.execute(*audit.entry(revoked_by, "token.revoke", "user", user.name,
                                        details={"tokens_revoked": revoked}, at=now))  # fmt: skip
    return revoked


# --- the commands ------------------------------------------------------------------------------------


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise UserError("no password on standard input (--password-stdin reads one line)")
        return password
    if not sys.stdin.isatty():
        raise UserError("no terminal to ask for the password on: give it on standard input with --password-stdin,"
                        " e.g. printf '%s\\n' \"$PASSWORD\" | wuhai-iot users add NAME --role ROLE --password-stdin")
    first = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("again: ") != first:
        raise UserError("the two passwords differ")
    return first


async def _with_database(args: argparse.Namespace, work: Callable[[aiosqlite.Connection], Awaitable[Any]]) -> Any:
    conn = await connect(args.settings.database.path)
    try:
        return await work(conn)
    finally:
        await conn.close()


def _run(args: argparse.Namespace, command: str, work: Callable[[aiosqlite.Connection], Awaitable[Any]],
         done: Callable[[Any], str]) -> int:  # fmt: skip
    """Run ``work(conn)`` on the configured database and print ``done(result)``; exit status 2 after printing
    why it was refused (a UserError) or why no password could be read."""
    try:
        result = asyncio.run(_with_database(args, work))
    except UserError as exc:
        print(f"wuhai-iot {command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    message = done(result)
    if message:  # (an empty user list prints nothing)
        print(message)
    return 0


def users_add_command(args: argparse.Namespace) -> int:
    try:
        check_user_fields(args.role, args.district, args.unit)
        password = _read_password(args)
    except EOFError:
        print("wuhai-iot users add: no password given (input ended)", file=sys.stderr)
        return EXIT_USAGE
    except UserError as exc:
        print(f"wuhai-iot users add: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return _run(args, "users add",
                lambda conn: add_user(conn, args.name, args.role, password, district=args.district, unit=args.unit),
                lambda user: f"user {user.name} added ({describe(user)})")  # fmt: skip


def describe(user: UserRecord) -> str:
    """The role and its scope in words, e.g. ``district 海勃湾区 (150302)``."""
    if user.district_code:
        return f"{user.role} {DISTRICTS.get(user.district_code, '?')} ({user.district_code})"
    if user.unit:
        return f"{user.role} {user.unit}"
    return str(user.role)


def users_list_command(args: argparse.Namespace) -> int:
    return _run(args, "users list", list_users, lambda users: "\n".join(
        f"{user.name}\t{describe(user)}{'' if user.active else '  (disabled)'}" for user in users))  # fmt: skip


def users_disable_command(args: argparse.Namespace) -> int:
    return _run(args, "users disable", lambda conn: disable_user(conn, args.name),
                lambda ended: f"user {args.name} disabled ({ended} session(s) ended; its tokens no longer work)")


def tokens_revoke_command(args: argparse.Namespace) -> int:
    return _run(args, "tokens revoke", lambda conn: revoke_tokens(conn, args.user),
                lambda revoked: f"{revoked} token(s) of {args.user} revoked")


def tokens_create_command(args: argparse.Namespace) -> int:
    return _run(args, "tokens create", lambda conn: create_token(conn, args.user, args.label), str)


@hookimpl
def register_commands(subparsers: "argparse._SubParsersAction[Any]") -> None:
    users = subparsers.add_parser("users", help="web users: add, list, disable")
    users_commands = users.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    add = users_commands.add_parser(
        "add",
        help="add a user (the password is asked for, or read from standard input)",
        description="Add a web user. Roles: " + ", ".join(r.value for r in Role)
        + ". Role district needs --district; station needs --unit STATION_CODE; maintenance needs --unit COMPANY.",
    )  # fmt: skip
    add.add_argument("name")
    add.add_argument("--role", required=True, help=", ".join(r.value for r in Role))
    add.add_argument("--district", help="role district: the district's name (海勃湾区) or code (150302)")
    add.add_argument("--unit", help="role station: the station code; role maintenance: the company's name")
    add.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    add.set_defaults(handler=users_add_command)
    listing = users_commands.add_parser("list", help="list the users with their roles and scopes")
    listing.set_defaults(handler=users_list_command)
    disable = users_commands.add_parser(
        "disable", help="disable a user: no more logins, its sessions end and its API tokens stop working at once"
    )
    disable.add_argument("name")
    disable.set_defaults(handler=users_disable_command)

    tokens = subparsers.add_parser("tokens", help="API tokens: create, revoke")
    tokens_commands = tokens.add_subparsers(dest="tokens_command", metavar="ACTION", required=True)
    create = tokens_commands.add_parser(
        "create", help="create an API token for a user and print it (it is stored hashed: shown only once)"
    )
    create.add_argument("--user", required=True)
    create.add_argument("--label", help="what the token is for, e.g. the calling system")
    create.set_defaults(handler=tokens_create_command)
    revoke = tokens_commands.add_parser("revoke", help="revoke every API token of a user (they stop working at once)")
    revoke.add_argument("--user", required=True)
    revoke.set_defaults(handler=tokens_revoke_command)
