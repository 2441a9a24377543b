"""Vehicles in the registry: JT/T 808 terminals bound to their vehicles, and what the vehicle rules read.

REGISTER is answered with the results of domain.md (4 terminal not in the registry, 2 plate not in the
registry, 3 terminal registered to another plate, 1 plate bound to another terminal, 0 accepted). The
authentication code is the census ``key``; without one the platform issues a code at the first REGISTER
and keeps it (``terminals.issued_key``) until the terminal sends UNREGISTER. A plate counts as bound to a
terminal once that terminal's REGISTER was accepted (``registered_at``).
"""

from __future__ import annotations

import math
import secrets
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import aiosqlite

from wuhai_iot import events as ev
from wuhai_iot.clock import cst_date
from wuhai_iot.events import Terminal
from wuhai_iot.storage.writer import BatchWriter

ACCEPTED, VEHICLE_TAKEN, VEHICLE_UNKNOWN, TERMINAL_TAKEN, TERMINAL_UNKNOWN = 0, 1, 2, 3, 4
EARTH_RADIUS_M = 6_371_000.0

PLATE_AS_TYPED_SQL = "replace(replace(replace(replace(upper(plate), '·', ''), '.', ''), ' ', ''), '-', '')"
"""A stored plate without its dot, spaces or dashes: the expression of the index ``vehicles_plate_typed``
(migration 0022; filling/trace.py looks a typed plate up the same way), so that a look-up by it reads one
index entry, not every vehicle."""


def normalise_plate(plate: str) -> str:
    """A plate as typed or sent, compared without the dot after the province letter, spaces or dashes, upper
    case (蒙L·T1234 = 蒙LT1234 = 蒙l t1234): what ``PLATE_AS_TYPED_SQL`` makes of the stored one."""
    return "".join(ch for ch in plate.upper() if ch not in "·.• -")


def registered_plate(lookup: sqlite3.Connection, typed: str) -> str | None:
    """The plate as registered for one sent or typed with or without the dot, spaces or lower case (two
    point reads on the caller's thread)."""
    row = lookup.execute("SELECT plate FROM vehicles WHERE plate = ?", (typed,)).fetchone()
    if row is None:
        row = lookup.execute(
            f"SELECT plate FROM vehicles WHERE {PLATE_AS_TYPED_SQL} = ? LIMIT 1", (normalise_plate(typed),)
        ).fetchone()
    return None if row is None else row[0]


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine) in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


class Registrar:
    """The request handlers for REGISTER and UNREGISTER (answered before and after login).

    REGISTER reads the registry with point reads on the event loop's thread (``Ingest.lookup``), like a
    login: on the reader thread, a fleet registering at once after a restart queued its REGISTERs behind
    each other for longer than the terminals wait for an answer (10,000 terminals: 3,000 REGISTERs)."""

    def __init__(self, lookup: sqlite3.Connection, writer: BatchWriter) -> None:
        self.lookup = lookup
        self.writer = writer

    async def register(self, terminal: Terminal, request: ev.Register) -> ev.Registration:
        lookup, key = self.lookup, (terminal.protocol, terminal.terminal_id)
        row = lookup.execute("SELECT plate FROM terminals WHERE protocol = ? AND terminal_id = ?", key).fetchone()
        if row is None:
            return ev.Registration(TERMINAL_UNKNOWN)
        plate = registered_plate(lookup, request.plate)
        if plate is None:
            return ev.Registration(VEHICLE_UNKNOWN)
        if row["plate"] != plate:
            return ev.Registration(TERMINAL_TAKEN)
        if lookup.execute(
            "SELECT 1 FROM terminals WHERE plate = ? AND protocol = ? AND terminal_id != ? AND registered_at IS NOT NULL"
            " LIMIT 1",
            (plate, *key),
        ).fetchone() is not None:  # fmt: skip
            return ev.Registration(VEHICLE_TAKEN)
        # Two REGISTERs of one terminal may overlap (a reconnect while the first is answered): the code kept is
        # the first one written, and every answer gives the code kept.
        await self.writer.write(
            [
                (
                    "UPDATE terminals SET registered_at = ?,"
                    " issued_key = CASE WHEN coalesce(key, '') = '' THEN coalesce(issued_key, ?) ELSE NULL END"
                    " WHERE protocol = ? AND terminal_id = ?",
                    (datetime.now(UTC).timestamp(), secrets.token_hex(8).upper(), *key),
                )
            ]
        )  # fmt: skip
        kept = lookup.execute(
            "SELECT coalesce(nullif(key, ''), issued_key) FROM terminals WHERE protocol = ? AND terminal_id = ?", key
        ).fetchone()
        if kept is None or not kept[0]:
            raise RuntimeError(f"terminal {terminal.terminal_id}: no authentication code after REGISTER")
        return ev.Registration(ACCEPTED, kept[0])

    async def unregister(self, terminal: Terminal, request: ev.Unregister) -> ev.Ack:
        """The terminal forgets its code: an issued code is forgotten too, and the plate is free again."""
        await self.writer.write(
            [
                (
                    "UPDATE terminals SET registered_at = NULL, issued_key = NULL WHERE protocol = ? AND terminal_id = ?",
                    (terminal.protocol, terminal.terminal_id),
                )
            ]
        )
        return ev.Ack(ev.AckResult.ACCEPTED, datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class Vehicle:
    plate: str
    district_code: str
    fuel: str
    """CNG or LNG: the working pressure and the fill rise that count."""
    certificate_valid: bool


@dataclass(frozen=True, slots=True)
class Station:
    station_code: int
    latitude: float
    longitude: float
    media: frozenset[str]
    licensed: bool
    """Active and its licence not expired (on the day the registry was read)."""


@dataclass
class Fleet:
    """What the vehicle rules read from the registry, loaded at start and refreshed periodically.

    Only vehicles' cylinders are held (what every record's tags are compared with): any other tag a reader
    sees is a point read (``lookup``), so the memory held grows with the vehicles, not with the city's
    household cylinders (2,000,000 tags held took ≈ 400 MB)."""

    lookup: sqlite3.Connection | None = None
    """A connection for point reads on the event loop's thread (``Ingest.lookup``); None: no other tag is known."""
    vehicles: dict[str, Vehicle] = field(default_factory=dict)
    vehicle_tags: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Tag UID → (cylinder code, the vehicle it is registered to) of every tagged vehicle cylinder."""
    tagged_cylinders: dict[str, dict[str, str]] = field(default_factory=dict)
    """Plate → {cylinder code: tag UID} of its tagged cylinders in service."""
    cylinders: dict[str, list[str]] = field(default_factory=dict)
    """Plate → codes of every cylinder registered to it."""
    stations: list[Station] = field(default_factory=list)
    """Stations with coordinates."""

    async def load(self, conn: aiosqlite.Connection, today: date | None = None) -> None:
        today = today or cst_date(datetime.now(UTC))
        vehicles = {}
        for row in await conn.execute_fetchall(
            "SELECT plate, district_code, fuel, certificate_no, certificate_status FROM vehicles"
        ):
            valid = bool(row[3]) and row[4] != "revoked"
            vehicles[row[0]] = Vehicle(row[0], row[1], row[2], valid)
        vehicle_tags: dict[str, tuple[str, str]] = {}
        tagged: dict[str, dict[str, str]] = {}
        cylinders: dict[str, list[str]] = {}
        for code, tag, plate, status in await conn.execute_fetchall(
            "SELECT cylinder_code, tag_uid, vehicle_plate, status FROM cylinders WHERE vehicle_plate IS NOT NULL"
        ):
            cylinders.setdefault(plate, []).append(code)
            if tag:
                vehicle_tags[tag] = (code, plate)
                if status == "in_service":
                    tagged.setdefault(plate, {})[code] = tag
        stations = [
            Station(row[0], row[1], row[2], frozenset(row[3].split("|")),
                    row[4] == "active" and date.fromisoformat(row[5]) >= today)
            for row in await conn.execute_fetchall(
                "SELECT station_code, latitude, longitude, media, status, licence_expiry FROM stations"
                " WHERE latitude IS NOT NULL AND longitude IS NOT NULL"
            )
        ]  # fmt: skip
        self.vehicles, self.vehicle_tags, self.tagged_cylinders = vehicles, vehicle_tags, tagged
        self.cylinders, self.stations = cylinders, stations

    def tag_owner(self, tag: str) -> tuple[str | None, str | None]:
        """(cylinder code, the vehicle it is registered to or None) of a tag; (None, None): not registered."""
        found = self.vehicle_tags.get(tag)
        if found is not None or self.lookup is None:
            return found or (None, None)
        row = self.lookup.execute(
            "SELECT cylinder_code, vehicle_plate FROM cylinders WHERE tag_uid = ?", (tag,)
        ).fetchone()
        return (None, None) if row is None else (row[0], row[1])

    def licensed_station_near(self, latitude: float, longitude: float, medium: str, radius_m: float) -> Station | None:
        """The nearest active, licensed station for ``medium`` within ``radius_m``, if any."""
        best: tuple[float, Station] | None = None
        for station in self.stations:
            if not station.licensed or medium not in station.media:
                continue
            if abs(station.latitude - latitude) > 0.01 or abs(station.longitude - longitude) > 0.015:
                continue  # (more than ~1 km away: no trigonometry)
            metres = distance_m(latitude, longitude, station.latitude, station.longitude)
            if metres <= radius_m and (best is None or metres < best[0]):
                best = (metres, station)
        return best[1] if best else None
