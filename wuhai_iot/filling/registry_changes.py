"""Registry changes that matter at once: blacklist, scrap or reinstate a cylinder, revoke a vehicle's
cylinder registration certificate, suspend or re-activate a filling station.

The change is committed to the registry row itself (with an audit-log entry in the same transaction);
the fill decision reads the registry on every request, so the very next FILL_REQUEST sees it, whichever
process made the change. The web layer calls ``change_registry`` (or the named functions); the CLI is
``wuhai-iot cylinders|vehicles|stations <action> KEY``.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import aiosqlite

from wuhai_iot.clock import add_years, cst_today
from wuhai_iot.filling.cylinders import HOUSEHOLD
from wuhai_iot.storage import audit
from wuhai_iot.storage.db import connect, immediate

EXIT_NOT_FOUND, EXIT_REFUSED = 1, 3


class RegistryChangeError(Exception):
    """The change cannot be made."""


class NotRegistered(RegistryChangeError, LookupError):
    """No such cylinder, vehicle or station."""


class ChangeRefused(RegistryChangeError):
    """The object's current state does not allow the change (a scrapped cylinder stays scrapped)."""


@dataclass(frozen=True, slots=True)
class Change:
    object_type: str
    table: str
    key_column: str
    status_column: str
    new_status: str
    allowed_from: tuple[str | None, ...]
    district_sql: str
    """The object's district (for the audit log), from its key."""


_CYLINDER_DISTRICT = (
    "SELECT coalesce(v.district_code, s.district_code) FROM cylinders c"
    " LEFT JOIN vehicles v ON v.plate = c.vehicle_plate LEFT JOIN stations s ON s.station_code = c.owner_station"
    " WHERE c.cylinder_code = ?"
)
CHANGES: dict[tuple[str, str], Change] = {
    ("cylinders", "blacklist"): Change(
        "cylinder", "cylinders", "cylinder_code", "status", "blacklisted", ("in_service",), _CYLINDER_DISTRICT
    ),
    ("cylinders", "scrap"): Change(
        "cylinder", "cylinders", "cylinder_code", "status", "scrapped", ("in_service", "blacklisted"),
        _CYLINDER_DISTRICT,
    ),
    ("cylinders", "reinstate"): Change(
        "cylinder", "cylinders", "cylinder_code", "status", "in_service", ("blacklisted",), _CYLINDER_DISTRICT
    ),
    ("vehicles", "revoke"): Change(
        "vehicle", "vehicles", "plate", "certificate_status", "revoked", (None, "valid"),
        "SELECT district_code FROM vehicles WHERE plate = ?",
    ),
    ("stations", "suspend"): Change(
        "station", "stations", "station_code", "status", "suspended", ("active",),
        "SELECT district_code FROM stations WHERE station_code = ?",
    ),
    ("stations", "activate"): Change(
        "station", "stations", "station_code", "status", "active", ("suspended",),
        "SELECT district_code FROM stations WHERE station_code = ?",
    ),
}  # fmt: skip

HELP = {
    "cylinders": "blacklist, scrap or reinstate a cylinder (effective on the next fill request)",
    "vehicles": "revoke a vehicle's cylinder registration certificate",
    "stations": "suspend or re-activate a filling station",
}
ACTION_HELP = {
    "blacklist": "the cylinder is reported stolen, seized or recalled: every fill is denied (reason 6)",
    "scrap": "the cylinder is scrapped: its code is void, every fill is denied (reason 3)",
    "reinstate": "a blacklisted cylinder is back in service",
    "revoke": "the vehicle's cylinder registration certificate is revoked: its cylinders are denied (reason 8)",
    "suspend": "the station may not fill until re-activated: every request is denied (reason 7)",
    "activate": "a suspended station may fill again",
}


async def change_registry(
    conn: aiosqlite.Connection,
    group: str,
    action: str,
    key: str | int,
    *,
    actor: str | None,
    reason: str | None = None,
) -> bool:
    """Apply one change in its own transaction; False when the object was already in that state.

    Raises NotRegistered, or ChangeRefused when the current state does not allow it.
    """
    change = CHANGES[(group, action)]
    if change.object_type == "station":
        try:
            key = int(key)
        except ValueError:
            raise NotRegistered(f"{key!r} is not a station code") from None
    async with immediate(conn):
        row = await (
            await conn.execute(
                f"SELECT {change.status_column} FROM {change.table} WHERE {change.key_column} = ?", (key,)
            )
        ).fetchone()
        if row is None:
            raise NotRegistered(f"no {change.object_type} {key} in the registry")
        previous = row[0]
        if previous == change.new_status:
            return False
        if previous not in change.allowed_from:
            raise ChangeRefused(f"{change.object_type} {key} is {previous}: it cannot be changed to {change.new_status}")
        now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        await conn.execute(
            f"UPDATE {change.table} SET {change.status_column} = ?, updated_at = ? WHERE {change.key_column} = ?",
            (change.new_status, now, key),
        )
        await _audit(conn, change.district_sql, actor, "registry.change", change.object_type, key,
                     {"action": action, "previous": previous, "status": change.new_status, "reason": reason})  # fmt: skip
    return True


async def _audit(conn: aiosqlite.Connection, district_sql: str, actor: str | None, action: str, object_type: str,
                 key: str | int, details: dict[str, Any]) -> None:  # fmt: skip
    """The audit entry of a registry change, in the district ``district_sql`` finds for ``key``."""
    district = await (await conn.execute(district_sql, (key,))).fetchone()
    await conn.execute(*audit.entry(actor, action, object_type, key, district_code=district[0] if district else None,
                                    details=details))  # fmt: skip


def inspection_interval_years(cylinder: Any) -> int:
    """The cylinder's own periodic-inspection interval as the registry has it (last to next inspection: taxis'
    may be shorter); without a last inspection, domain.md's (household LPG 4 years, other cylinders 3)."""
    if cylinder["last_inspection"]:
        days = (date.fromisoformat(cylinder["next_inspection"]) - date.fromisoformat(cylinder["last_inspection"])).days
        if days >= 300:
            return round(days / 365.25)
    return 4 if cylinder["kind"] == HOUSEHOLD else 3


async def record_inspection(
    conn: aiosqlite.Connection, code: str, on: date, *, actor: str | None, reason: str | None = None
) -> bool:
    """Staff recorded an inspection of the cylinder on ``on``: its last and next inspection dates change, and
    a collision of its vehicle before now no longer blocks it (fill reason 12). Audited.

    Raises NotRegistered, or ChangeRefused for a scrapped cylinder or a date in the future."""
    if on > cst_today():
        raise ChangeRefused(f"inspection date {on.isoformat()} is in the future")
    async with immediate(conn):
        row = await (
            await conn.execute("SELECT kind, status, last_inspection, next_inspection FROM cylinders"
                               " WHERE cylinder_code = ?", (code,))
        ).fetchone()  # fmt: skip
        if row is None:
            raise NotRegistered(f"no cylinder {code} in the registry")
        if row["status"] == "scrapped":
            raise ChangeRefused(f"cylinder {code} is scrapped")
        next_inspection = add_years(on, inspection_interval_years(row)).isoformat()
        now = datetime.now(UTC)
        await conn.execute(
            "UPDATE cylinders SET last_inspection = ?, next_inspection = ?, inspection_recorded_at = ?, updated_at = ?"
            " WHERE cylinder_code = ?",
            (on.isoformat(), next_inspection, now.timestamp(), now.isoformat(timespec="seconds").replace("+00:00", "Z"),
             code),
        )  # fmt: skip
        await _audit(conn, _CYLINDER_DISTRICT, actor, "cylinder.inspected", "cylinder", code,
                     {"date": on.isoformat(), "previous_last_inspection": row["last_inspection"],
                      "next_inspection": next_inspection, "reason": reason})  # fmt: skip
    return True


async def blacklist_cylinder(conn: aiosqlite.Connection, code: str, *, actor: str | None, reason: str | None = None) -> bool:
    return await change_registry(conn, "cylinders", "blacklist", code, actor=actor, reason=reason)


async def scrap_cylinder(conn: aiosqlite.Connection, code: str, *, actor: str | None, reason: str | None = None) -> bool:
    return await change_registry(conn, "cylinders", "scrap", code, actor=actor, reason=reason)


async def reinstate_cylinder(conn: aiosqlite.Connection, code: str, *, actor: str | None, reason: str | None = None) -> bool:
    return await change_registry(conn, "cylinders", "reinstate", code, actor=actor, reason=reason)


async def revoke_vehicle_certificate(
    conn: aiosqlite.Connection, plate: str, *, actor: str | None, reason: str | None = None
) -> bool:
    return await change_registry(conn, "vehicles", "revoke", plate, actor=actor, reason=reason)


async def suspend_station(conn: aiosqlite.Connection, code: int, *, actor: str | None, reason: str | None = None) -> bool:
    return await change_registry(conn, "stations", "suspend", code, actor=actor, reason=reason)


async def activate_station(conn: aiosqlite.Connection, code: int, *, actor: str | None, reason: str | None = None) -> bool:
    return await change_registry(conn, "stations", "activate", code, actor=actor, reason=reason)


# -- command line ------------------------------------------------------------------------------------


def add_commands(subparsers: "argparse._SubParsersAction[Any]") -> None:
    """``wuhai-iot cylinders|vehicles|stations <action> KEY [--reason TEXT]``."""
    groups: dict[str, list[str]] = {}
    for group, action in CHANGES:
        groups.setdefault(group, []).append(action)
    for group, actions in groups.items():
        parser = subparsers.add_parser(
            group,
            help=HELP[group],
            description=f"{HELP[group]}. Exit status: 0 done (or already so), {EXIT_NOT_FOUND} not in the"
            f" registry, {EXIT_REFUSED} the current state does not allow it (a scrapped cylinder stays scrapped).",
        )
        commands = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
        for action in actions:
            change = CHANGES[(group, action)]
            command = commands.add_parser(action, help=ACTION_HELP[action])
            command.add_argument("key", metavar=change.key_column.upper())
            command.add_argument("--reason", help="why (kept in the audit log)")
            command.set_defaults(handler=_handle, group=group)
        if group == "cylinders":
            command = commands.add_parser(
                "inspected",
                help="record an inspection of the cylinder: new inspection dates, and a vehicle collision"
                " before now no longer blocks its fills (reason 12)",
            )
            command.add_argument("key", metavar="CYLINDER_CODE")
            command.add_argument("--date", type=date.fromisoformat, default=None,
                                 help="the inspection date YYYY-MM-DD (default: today, CST)")  # fmt: skip
            command.add_argument("--reason", help="a note (kept in the audit log)")
            command.set_defaults(handler=_handle_inspected, group=group)


def _handle(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))


def _handle_inspected(args: argparse.Namespace) -> int:
    return asyncio.run(_run_inspected(args))


async def _run_inspected(args: argparse.Namespace) -> int:
    on = args.date or cst_today()

    async def inspect(conn: aiosqlite.Connection) -> str:
        await record_inspection(conn, args.key, on, actor=f"cli:{getpass.getuser()}", reason=args.reason)
        return f"cylinder {args.key}: inspected on {on.isoformat()}"

    return await _run_refusable(args, "cylinders inspected", inspect)


async def _run(args: argparse.Namespace) -> int:
    async def change(conn: aiosqlite.Connection) -> str:
        changed = await change_registry(
            conn, args.group, args.action, args.key, actor=f"cli:{getpass.getuser()}", reason=args.reason
        )
        known = CHANGES[(args.group, args.action)]
        return f"{known.object_type} {args.key}: {'now' if changed else 'already'} {known.new_status}"

    return await _run_refusable(args, f"{args.group} {args.action}", change)


async def _run_refusable(
    args: argparse.Namespace, command: str, work: Callable[[aiosqlite.Connection], Awaitable[str]]
) -> int:
    """Run one registry command on the database: print what it did, or why it was refused (exit 1 or 3)."""
    conn = await connect(args.settings.database.path)
    try:
        done = await work(conn)
    except NotRegistered as exc:
        print(f"wuhai-iot {command}: {exc}", file=sys.stderr)
        return EXIT_NOT_FOUND
    except ChangeRefused as exc:
        print(f"wuhai-iot {command}: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    finally:
        await conn.close()
    print(done)
    return 0
