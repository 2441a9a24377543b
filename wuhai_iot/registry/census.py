"""The census import (``wuhai-iot import``): the registry templates of ../shared/census/README.md.

Each file is read whole, every cell validated, references checked against keys loaded once into memory
(plus what earlier files of the same import added) — all of it in a worker thread, so that a district's
58 MB file never holds the event loop of a running platform — and the good rows are upserted in chunks
of IMPORT_CHUNK_ROWS, a transaction each (through the platform's batch writer when it runs, so that
ingest commits between the chunks instead of waiting for the whole file). An import cut short leaves
the chunks before the cut; importing the file again completes it. Re-importing updates by key and never
deletes; an empty cell clears the stored value, a column missing from the file leaves it untouched.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import re
import sqlite3
import sys
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import aiosqlite

from wuhai_iot.clock import add_years
from wuhai_iot.memory import give_back_after
from wuhai_iot.plugins.hookspecs import hookimpl
from wuhai_iot.protocols.base import Binding
from wuhai_iot.protocols.gasfill import MAX_SCALE
from wuhai_iot.registry import census_messages
from wuhai_iot.registry.districts import DISTRICTS, UnknownDistrict, parse_district
from wuhai_iot.storage.db import connect, immediate

EXIT_OK, EXIT_UNREADABLE, EXIT_REJECTED = 0, 2, 3

KIND_ORDER = ("stations", "workers", "vehicles", "elevators", "cylinders", "terminals")
"""Dependency order: a kind may refer only to kinds before it."""

INSPECTION_INTERVAL_YEARS = {"household_lpg": 4, "vehicle_cng": 3, "vehicle_lng": 3, "industrial": 3}
"""Periodic inspection intervals of domain.md, used when the census leaves next_inspection out."""

CYLINDER_MEDIUM = {"household_lpg": "LPG", "vehicle_cng": "CNG", "vehicle_lng": "LNG"}
"""The medium each cylinder kind holds (industrial cylinders hold any)."""

UINT32_MAX = 0xFFFF_FFFF
IMPORT_CHUNK_ROWS = 250
"""Rows a transaction of an import writes: a few milliseconds of the writer's time."""

Write = Callable[[list[tuple[str, Sequence[Any]]]], Awaitable[None]]
"""Commits a list of (sql, parameters) statements in one transaction (``BatchWriter.write``)."""


class Refusal(ValueError):
    """A rule broken: ``code`` names it in census_messages, ``params`` fill its English and Chinese sentences
    (the exception's message is the English one)."""

    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(census_messages.english(code, params))
        self.code = code
        self.params = params

    @property
    def problem(self) -> str:
        """Chinese: what is wrong."""
        return census_messages.problem(self.code, self.params)

    @property
    def advice(self) -> str:
        """Chinese: what to do."""
        return census_messages.advice(self.code, self.params)


class CensusError(Refusal):
    """The import cannot start (a file whose kind cannot be told)."""


class Invalid(Refusal):
    """A cell, a row or a file breaks a rule."""


@dataclass(frozen=True)
class Rejection:
    file: str
    line: int
    """Line in the file; the header is line 1."""
    column: str
    """The census column at fault ("" for the row as a whole)."""
    value: str
    refusal: Invalid

    @property
    def code(self) -> str:
        return self.refusal.code

    @property
    def reason(self) -> str:
        """English, for the command line."""
        return str(self.refusal)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.column or 'row'}: {self.reason}"


@dataclass
class FileReport:
    file: str
    kind: str
    added: int = 0
    updated: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    failure: Invalid | None = None
    """Why nothing of the file could be imported (unreadable, missing column); None otherwise."""
    derived_next_inspection: int = 0
    """Cylinders whose next inspection was computed from the intervals of domain.md."""

    @property
    def error(self) -> str | None:
        """``failure`` in English (None when the file was read)."""
        return None if self.failure is None else str(self.failure)

    @property
    def rejected_rows(self) -> int:
        return len({r.line for r in self.rejected})

    def problems(self) -> list[tuple[Rejection, int]]:
        """Each column and kind of problem once, with its first rejection and how many there are, most first
        (a whole column filled the wrong way reads as one line)."""
        first: dict[tuple[str, str], Rejection] = {}
        counts: dict[tuple[str, str], int] = {}
        for rejection in self.rejected:
            key = (rejection.column, rejection.code)
            first.setdefault(key, rejection)
            counts[key] = counts.get(key, 0) + 1
        return [(first[key], n) for key, n in sorted(counts.items(), key=lambda item: -item[1])]

    def summary(self) -> str:
        if self.error:
            return f"{self.file} ({self.kind}): not imported: {self.error}"
        text = f"{self.file} ({self.kind}): {self.added} added, {self.updated} updated, {self.rejected_rows} rejected"
        if self.derived_next_inspection:
            text += (
                f"; next_inspection derived for {self.derived_next_inspection} cylinder(s)"
                " from last_inspection (or manufacture_date) + the periodic inspection interval"
            )
        return text


# -- cell parsers: text -> stored value, or Invalid -----------------------------------------------------


Parser = Callable[[str], Any]

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_INTEGER = re.compile(r"[+-]?\d+")
_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)")
_HEX = re.compile(r"[0-9A-Fa-f]+")
_CYLINDER_CODE = re.compile(r"[\x21-\x7e]{1,20}")


def text(max_length: int = 200) -> Parser:
    def parse(value: str) -> str:
        if len(value) > max_length:
            raise Invalid("too_long", max=max_length)
        return value

    return parse


def digits(count: int) -> Parser:
    pattern = re.compile(rf"\d{{{count}}}")

    def parse(value: str) -> str:
        if not pattern.fullmatch(value):
            raise Invalid("not_digits", value=value, count=count)
        return value

    return parse


def integer(low: int, high: int) -> Parser:
    def parse(value: str) -> int:
        if not _INTEGER.fullmatch(value):
            raise Invalid("not_integer", value=value)
        number = int(value)
        if not low <= number <= high:
            raise Invalid("integer_out_of_range", value=number, low=low, high=high)
        return number

    return parse


def real(low: float, high: float, *, low_inclusive: bool = True) -> Parser:
    def parse(value: str) -> float:
        if not _DECIMAL.fullmatch(value):
            raise Invalid("not_number", value=value)
        number = float(value)
        if number > high or number < low or (number == low and not low_inclusive):
            bound = "≥" if low_inclusive else ">"
            raise Invalid("number_out_of_range", value=value, bound=bound, low=f"{low:g}", high=f"{high:g}")
        return number

    return parse


def iso_date(value: str) -> str:
    try:
        if not _DATE.fullmatch(value):
            raise ValueError
        date.fromisoformat(value)
    except ValueError:
        raise Invalid("not_date", value=value) from None
    return value


def registered_protocol(value: str) -> str:
    """The name of a protocol some plugin serves (built-in or a vendor's)."""
    from wuhai_iot.plugins.manager import protocols  # (the manager imports this module)

    return choice(*sorted(protocols()))(value)


def choice(*allowed: str) -> Parser:
    """One of ``allowed``, matched without regard to case, stored as spelled in ``allowed``."""
    by_folded = {word.casefold(): word for word in allowed}

    def parse(value: str) -> str:
        try:
            return by_folded[value.casefold()]
        except KeyError:
            raise Invalid("not_one_of", value=value, allowed=", ".join(allowed)) from None

    return parse


def district(value: str) -> str:
    try:
        return parse_district(value)
    except UnknownDistrict:
        known = ", ".join(f"{name} ({code})" for code, name in DISTRICTS.items())
        known_zh = "、".join(f"{name}（{code}）" for code, name in DISTRICTS.items())
        raise Invalid("unknown_district", value=value, known=known, known_zh=known_zh) from None


def card(value: str) -> int:
    """Census cards are 8 digits; the number is what a controller reports (``00009001`` → 9001)."""
    if not re.fullmatch(r"\d{8}", value):
        raise Invalid("not_card", value=value)
    return int(value)


def media(value: str) -> str:
    one = choice("LPG", "CNG", "LNG")
    found: list[str] = []
    for part in value.split("|"):
        medium = one(part.strip())
        if medium not in found:
            found.append(medium)
    return "|".join(found)


def yes_no(value: str) -> int:
    return 1 if choice("Y", "N")(value) == "Y" else 0


def tag_uid(value: str) -> str:
    """A tag UID as upper-case hex: 4–16 bytes (GF-3: ISO 15693 tags have 8, EPC Gen2 tags 12)."""
    if not _HEX.fullmatch(value) or len(value) % 2 or not 8 <= len(value) <= 32:
        raise Invalid("not_tag_uid", value=value)
    return value.upper()


def cylinder_code(value: str) -> str:
    if not _CYLINDER_CODE.fullmatch(value):
        raise Invalid("not_cylinder_code", value=value)
    return value


station_code = integer(1, UINT32_MAX)


# -- the kinds ---------------------------------------------------------------------------------------


@dataclass
class Column:
    name: str
    parse: Parser
    required: bool = False
    """The column must be in the header and every row must have a value."""
    db: str = ""
    """The table's column; the census name when not given."""
    default: Any = None
    """Stored for an empty cell of an optional column."""

    def __post_init__(self) -> None:
        self.db = self.db or self.name


@dataclass(frozen=True)
class Kind:
    name: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    always_written: tuple[str, ...] = ()
    """Table columns computed by the row check, written whether or not the file has a column for them."""

    @property
    def table(self) -> str:
        return self.name

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind(
            "stations",
            key=("station_code",),
            columns=(
                Column("station_code", station_code, required=True),
                Column("name", text(), required=True),
                Column("district", district, required=True, db="district_code"),
                Column("address", text()),
                Column("licence_no", text(64), required=True),
                Column("licence_expiry", iso_date, required=True),
                Column("media", media, required=True),
                Column("scales", integer(0, MAX_SCALE)),
                Column("status", choice("active", "suspended"), default="active"),
                Column("latitude", real(-90, 90)),
                Column("longitude", real(-180, 180)),
            ),
        ),
        Kind(
            "workers",
            key=("card",),
            columns=(
                Column("card", card, required=True),
                Column("name", text(), required=True),
                Column("role", choice("maintenance", "filling_operator"), required=True),
                Column("unit", text(), required=True),
                Column("certificate_no", text(64)),
                Column("certificate_expiry", iso_date),
            ),
        ),
        Kind(
            "vehicles",
            key=("plate",),
            columns=(
                Column("plate", text(16), required=True),
                Column("district", district, required=True, db="district_code"),
                Column("owner", text(), required=True),
                Column("use", choice("taxi", "bus", "private", "freight", "other"), required=True),
                Column("fuel", choice("CNG", "LNG"), required=True),
                Column("certificate_no", text(64)),
                Column("certificate_issued", iso_date),
                Column("certificate_status", choice("valid", "revoked")),
            ),
        ),
        Kind(
            "elevators",
            key=("device_code",),
            columns=(
                Column("device_code", digits(20), required=True),
                Column("registration_no", text(64)),
                Column("district", district, required=True, db="district_code"),
                Column("address", text(), required=True),
                Column("user_unit", text(), required=True),
                Column("maintenance_company", text(), required=True),
                Column("kind", choice("traction", "hydraulic", "escalator", "moving_walk", "other")),
                Column("lowest_floor", integer(-20, 300)),
                Column("highest_floor", integer(-20, 300)),
                Column("rated_speed_mps", real(0, 20, low_inclusive=False)),
                Column("rated_load_kg", integer(1, 100_000)),
                Column("next_inspection", iso_date, required=True),
                Column("pilot", yes_no, default=0),
                Column("latitude", real(-90, 90)),
                Column("longitude", real(-180, 180)),
            ),
        ),
        Kind(
            "cylinders",
            key=("cylinder_code",),
            columns=(
                Column("cylinder_code", cylinder_code, required=True),
                Column("tag_uid", tag_uid),
                Column("kind", choice(*INSPECTION_INTERVAL_YEARS), required=True),
                Column("medium", choice("LPG", "CNG", "LNG", "OTHER"), required=True),
                Column("model", text(64)),
                Column("capacity_l", real(0, 10_000, low_inclusive=False)),
                Column("rated_fill_kg", real(0, 10_000, low_inclusive=False), required=True),
                Column("tare_kg", real(0, 10_000, low_inclusive=False), required=True),
                Column("manufacture_date", iso_date, required=True),
                Column("design_life_years", integer(1, 100), required=True),
                Column("last_inspection", iso_date),
                # Required by the template, but derived when the cell (or the column) is empty.
                Column("next_inspection", iso_date),
                Column("owner_station", station_code),
                Column("vehicle_plate", text(16)),
                # No default: an empty cell keeps a blacklisting or scrapping on record (see _check_cylinder).
                Column("status", choice("in_service", "scrapped", "blacklisted")),
            ),
            always_written=("next_inspection",),
        ),
        Kind(
            "terminals",
            key=("protocol", "terminal_id"),
            columns=(
                Column("protocol", registered_protocol, required=True),
                Column("terminal_id", text(32), required=True),
                Column("device_code", digits(20)),
                Column("key", text(256)),
                Column("installed_on", iso_date),
                Column("installer", text(128)),
                Column("plate", text(16)),
            ),
            always_written=("station_code", "scale"),
        ),
    )
}


def kind_of(path: str | Path) -> str:
    """The kind a file holds, from the start of its name (``elevators-haibowan-2026-11.csv``)."""
    name = Path(path).name.casefold()
    for kind in KIND_ORDER:
        if name.startswith(kind) and (len(name) == len(kind) or not name[len(kind)].isalnum()):
            return kind
    raise CensusError("kind_not_told", path=str(path), name=Path(path).name, kinds=", ".join(KIND_ORDER))


# -- what the registry already holds ---------------------------------------------------------------


@dataclass
class Registry:
    """The keys a file's rows are checked against, loaded once per file."""

    existing: set[Any]
    stations: set[int] = field(default_factory=set)
    vehicles: set[str] = field(default_factory=set)
    elevators: set[str] = field(default_factory=set)
    tags: dict[str, str] = field(default_factory=dict)
    """tag_uid → cylinder_code."""
    tag_of: dict[str, str] = field(default_factory=dict)
    """cylinder_code → tag_uid (the reverse of ``tags``)."""
    withdrawn: dict[str, str] = field(default_factory=dict)
    """cylinder_code → status of the cylinders on record as scrapped or blacklisted."""

    @classmethod
    def load(cls, conn: sqlite3.Connection, kind: Kind) -> Registry:
        def keys(sql: str) -> set[Any]:
            rows = conn.execute(sql).fetchall()
            return {row[0] if len(row) == 1 else tuple(row) for row in rows}

        registry = cls(existing=keys(f"SELECT {', '.join(kind.key)} FROM {kind.table}"))
        if kind.name in ("workers", "cylinders", "terminals"):
            registry.stations = keys("SELECT station_code FROM stations")
        if kind.name == "cylinders":
            registry.vehicles = keys("SELECT plate FROM vehicles")
            rows = conn.execute("SELECT tag_uid, cylinder_code FROM cylinders WHERE tag_uid IS NOT NULL").fetchall()
            registry.tags = {row[0]: row[1] for row in rows}
            registry.tag_of = {row[1]: row[0] for row in rows}
            rows = conn.execute("SELECT cylinder_code, status FROM cylinders WHERE status != 'in_service'").fetchall()
            registry.withdrawn = {row[0]: row[1] for row in rows}
        if kind.name == "terminals":
            registry.elevators = keys("SELECT device_code FROM elevators")
            registry.vehicles = keys("SELECT plate FROM vehicles")
        return registry

    def accept(self, kind: Kind, row: dict[str, Any]) -> None:
        """Record an accepted row, so that later rows of the file see it."""
        if kind.name == "cylinders":
            code, tag = row["cylinder_code"], row.get("tag_uid")
            previous = self.tag_of.pop(code, None)
            if previous is not None:
                del self.tags[previous]
            if tag is not None:
                self.tags[tag] = code
                self.tag_of[code] = tag


# -- row checks across columns and against the registry ----------------------------------------------

DERIVED = "_derived"
"""Set in a row whose next_inspection the check computed."""

Problem = tuple[str, Invalid]
"""The census column at fault and why."""
RowCheck = Callable[[dict[str, Any], Registry], Iterator[Problem]]
"""Yields each problem; may complete the row (derived and canonical values)."""


def _check_worker(row: dict[str, Any], registry: Registry) -> Iterator[Problem]:
    if row["role"] == "filling_operator":
        try:
            station = station_code(row["unit"])
        except Invalid:
            yield "unit", Invalid("operator_unit_not_station", value=row["unit"])
            return
        if station not in registry.stations:
            yield "unit", Invalid("station_not_registered", station=station)
        row["unit"] = str(station)


def _check_coordinates(row: dict[str, Any], registry: Registry) -> Iterator[Problem]:
    if (row.get("latitude") is None) != (row.get("longitude") is None):
        yield ("longitude" if row.get("longitude") is None else "latitude"), Invalid("coordinates_apart")


def _check_elevator(row: dict[str, Any], registry: Registry) -> Iterator[Problem]:
    low, high = row.get("lowest_floor"), row.get("highest_floor")
    if low is not None and high is not None and low > high:
        yield "highest_floor", Invalid("floors_reversed", high=high, low=low)
    yield from _check_coordinates(row, registry)


def _check_cylinder(row: dict[str, Any], registry: Registry) -> Iterator[Problem]:
    kind, medium = row["kind"], row["medium"]
    if kind in CYLINDER_MEDIUM and medium != CYLINDER_MEDIUM[kind]:
        yield "medium", Invalid("medium_mismatch", kind=kind, expected=CYLINDER_MEDIUM[kind], medium=medium)
    station, plate = row.get("owner_station"), row.get("vehicle_plate")
    if station is None and kind == "household_lpg":
        yield "owner_station", Invalid("owner_station_required")
    elif station is not None and station not in registry.stations:
        yield "owner_station", Invalid("station_not_registered", station=station)
    if kind.startswith("vehicle_"):
        if plate is None:
            yield "vehicle_plate", Invalid("vehicle_plate_required", kind=kind)
        elif plate not in registry.vehicles:
            yield "vehicle_plate", Invalid("vehicle_not_registered", plate=plate)
    elif plate is not None:
        yield "vehicle_plate", Invalid("plate_on_other_cylinder", kind=kind)
    last = row.get("last_inspection")
    if last is not None and last < row["manufacture_date"]:
        yield "last_inspection", Invalid("inspected_before_made", last=last, made=row["manufacture_date"])
    if "status" in row:
        on_record = registry.withdrawn.get(row["cylinder_code"])
        if on_record == "scrapped" and row["status"] not in (None, "scrapped"):
            yield "status", Invalid("scrapped_is_final")
        elif row["status"] is None:
            # A routine re-import must never silently lift a blacklisting (a stolen cylinder) or a scrapping.
            row["status"] = on_record or "in_service"
    tag = row.get("tag_uid")
    holder = registry.tags.get(tag) if tag else None
    if holder is not None and holder != row["cylinder_code"]:
        yield "tag_uid", Invalid("tag_taken", tag=tag, holder=holder)
    if row.get("next_inspection") is None:
        since = date.fromisoformat(last or row["manufacture_date"])
        row["next_inspection"] = add_years(since, INSPECTION_INTERVAL_YEARS[kind]).isoformat()
        row[DERIVED] = True


def _check_terminal(row: dict[str, Any], registry: Registry) -> Iterator[Problem]:
    """The protocol says what its ids look like and what its terminals are installed on."""
    from wuhai_iot.plugins.manager import protocols  # (the manager imports this module)

    protocol = protocols()[row["protocol"]]
    lift = row.get("device_code")
    row["station_code"] = row["scale"] = None
    try:
        row["terminal_id"] = terminal_id = protocol.canonical_terminal_id(row["terminal_id"])
    except ValueError as exc:
        id_format = protocol.terminal_id_format
        yield "terminal_id", Invalid("terminal_id_format", value=row["terminal_id"], protocol=protocol.name,
                                     detail=str(exc), format=id_format.chinese or id_format.description)
        return
    binding = protocol.binds_to
    plate = row.get("plate")
    if plate is not None and binding is not Binding.VEHICLE:
        yield "plate", Invalid("plate_on_fixed_terminal", protocol=protocol.name, binding=binding.value)
    if binding is Binding.STATION_SCALE:
        station, scale = protocol.station_scale(terminal_id)
        if station not in registry.stations:
            yield "terminal_id", Invalid("station_not_registered", station=station)
        row.update(station_code=station, scale=scale)
        if lift is not None:
            yield "device_code", Invalid("station_terminal_on_lift", protocol=protocol.name)
    elif binding is Binding.LIFT:
        if lift is None:
            yield "device_code", Invalid("lift_required", protocol=protocol.name)
        elif lift not in registry.elevators:
            yield "device_code", Invalid("lift_not_registered", lift=lift)
    elif binding is Binding.VEHICLE:
        if plate is None:
            yield "plate", Invalid("vehicle_required", protocol=protocol.name)
        elif plate not in registry.vehicles:
            yield "plate", Invalid("vehicle_not_registered", plate=plate)
        if lift is not None:
            yield "device_code", Invalid("vehicle_terminal_on_lift", protocol=protocol.name)
    else:
        yield "protocol", Invalid("binding_not_supported", protocol=protocol.name, binding=binding.value)


ROW_CHECKS: dict[str, RowCheck] = {
    "stations": _check_coordinates,
    "workers": _check_worker,
    "elevators": _check_elevator,
    "cylinders": _check_cylinder,
    "terminals": _check_terminal,
}


# -- reading and importing ---------------------------------------------------------------------------


def decode(data: bytes) -> str:
    """UTF-8 (with or without a byte-order mark), else GB18030."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise Invalid("bad_encoding", offset=exc.start) from None


Record = tuple[int, list[str] | Invalid]
"""A non-blank record of a file: its first line and its cells, or why it is not CSV."""


def _read(path: Path) -> tuple[list[str], list[Record]]:
    """The file's column names (folded to lower case) and its records after the header. A record that is
    not valid CSV is returned as such; the reader goes on with the next line."""
    try:
        content = decode(path.read_bytes())
    except OSError as exc:
        raise Invalid("unreadable", detail=exc.strerror) from None
    reader = csv.reader(io.StringIO(content, newline=""))
    records: list[Record] = []
    while True:
        line = reader.line_num + 1
        try:
            cells = [cell.strip() for cell in next(reader)]
        except StopIteration:
            break
        except csv.Error as exc:
            records.append((line, Invalid("bad_csv_row", detail=str(exc))))
            continue
        if any(cells):  # spreadsheets leave blank lines at the end
            records.append((line, cells))
    if not records or records[0][0] != 1 or isinstance(records[0][1], Invalid):
        raise Invalid("no_header")
    return [name.casefold() for name in records[0][1]], records[1:]


async def import_file(conn: aiosqlite.Connection, path: Path, kind_name: str, write: Write | None = None) -> FileReport:
    """Import one file of one kind: checked in a worker thread, written in chunks (``write``: through
    the platform's writer; without it, transactions on ``conn``)."""
    database = next(row[2] for row in await conn.execute_fetchall("PRAGMA database_list") if row[1] == "main")
    report, sql, values = await asyncio.to_thread(_check_file, database, path, kind_name)
    for start in range(0, len(values), IMPORT_CHUNK_ROWS):
        chunk = values[start : start + IMPORT_CHUNK_ROWS]
        if write is not None:
            await write([(sql, row) for row in chunk])
        else:
            await _commit_chunk(conn, sql, chunk)
    return report


def _check_file(database: str, path: Path, kind_name: str) -> tuple[FileReport, str, list[tuple[Any, ...]]]:
    """(In a worker thread.) The file's report, and the upsert and its rows for the accepted rows."""
    kind = KINDS[kind_name]
    report = FileReport(file=str(path), kind=kind_name)
    try:
        header, records = _read(path)
        present = _columns_present(kind, header)
    except Invalid as exc:
        report.failure = exc
        return report, "", []
    with closing(sqlite3.connect(database)) as keys:
        registry = Registry.load(keys, kind)
    check = ROW_CHECKS.get(kind_name)
    seen: dict[Any, int] = {}
    accepted: list[dict[str, Any]] = []

    for line, cells in records:
        if isinstance(cells, Invalid):
            report.rejected.append(Rejection(str(path), line, "", "", cells))
            continue
        row, problems = _parse_cells(present, cells)
        if not problems and check:
            problems = list(check(row, registry))
        if not problems:
            key = tuple(row[k] for k in kind.key) if len(kind.key) > 1 else row[kind.key[0]]
            if key in seen:
                problems = [(kind.key[-1], Invalid("key_repeated", value=row[kind.key[-1]], first=seen[key]))]
        for column, refusal in problems:
            index = header.index(column) if column in header else len(cells)
            value = cells[index] if index < len(cells) else ""
            report.rejected.append(Rejection(str(path), line, column, value, refusal))
        if problems:
            continue
        seen[key] = line
        registry.accept(kind, row)
        if key in registry.existing:
            report.updated += 1
        else:
            report.added += 1
        report.derived_next_inspection += bool(row.pop(DERIVED, False))
        accepted.append(row)

    columns = [column.db for _, column in present]
    columns += [name for name in kind.always_written if name not in columns]
    sql, values = _upsert(kind, columns, accepted)
    return report, sql, values


def _columns_present(kind: Kind, header: list[str]) -> list[tuple[int, Column]]:
    """The kind's columns found in the header, with their positions; Invalid when the file is unusable."""
    missing = [c.name for c in kind.columns if c.required and c.name not in header]
    if missing:
        raise Invalid("columns_missing", columns=", ".join(missing))
    repeated = sorted({name for name in header if name and header.count(name) > 1})
    if repeated:
        raise Invalid("columns_repeated", columns=", ".join(repeated))
    return [(header.index(c.name), c) for c in kind.columns if c.name in header]


def _parse_cells(present: list[tuple[int, Column]], cells: list[str]) -> tuple[dict[str, Any], list[Problem]]:
    """The row's stored values by table column, and each bad cell's problem."""
    row: dict[str, Any] = {}
    problems: list[Problem] = []
    for index, column in present:
        value = cells[index] if index < len(cells) else ""
        if not value:
            if column.required:
                problems.append((column.name, Invalid("required")))
            row[column.db] = column.default
            continue
        try:
            row[column.db] = column.parse(value)
        except Invalid as exc:
            problems.append((column.name, exc))
    return row, problems


def _upsert(kind: Kind, columns: list[str], rows: list[dict[str, Any]]) -> tuple[str, list[tuple[Any, ...]]]:
    """The statement that inserts or updates a row of ``kind`` (each holds every one of ``columns``),
    and its parameters for each of ``rows``."""
    updated_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    names = [*columns, "updated_at"]
    changes = ", ".join(f"{name} = excluded.{name}" for name in names if name not in kind.key)
    sql = (
        f"INSERT INTO {kind.table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
        f" ON CONFLICT ({', '.join(kind.key)}) DO UPDATE SET {changes}"
    )
    return sql, [(*(row[name] for name in columns), updated_at) for row in rows]


async def _commit_chunk(conn: aiosqlite.Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
    async with immediate(conn):
        await conn.executemany(sql, rows)


def _kind_of_file(path: Path) -> str:
    """``kind_of``, but a name that tells nothing because the file is not there says so."""
    try:
        return kind_of(path)
    except CensusError:
        if not path.exists():
            raise CensusError("no_such_file", path=str(path), name=path.name) from None
        raise


async def import_files(
    conn: aiosqlite.Connection, paths: Iterable[str | Path], kind: str | None = None, write: Write | None = None
) -> list[FileReport]:
    """Import census files in dependency order; a report per file (``write``: see ``import_file``).

    ``kind`` applies to every file; without it each file's name tells its kind. Raises CensusError
    (before importing anything) when a kind is unknown or cannot be told.
    """
    if kind is not None and kind not in KINDS:
        raise CensusError("unknown_kind", kind=kind, kinds=", ".join(KIND_ORDER))
    files = [(Path(p), kind or _kind_of_file(Path(p))) for p in paths]
    files.sort(key=lambda item: KIND_ORDER.index(item[1]))
    reports = [await import_file(conn, path, file_kind, write) for path, file_kind in files]
    await give_back_after("a census import")
    return reports


def exit_status(reports: Sequence[FileReport]) -> int:
    if any(r.error for r in reports):
        return EXIT_UNREADABLE
    if any(r.rejected for r in reports):
        return EXIT_REJECTED
    return EXIT_OK


# -- command line ------------------------------------------------------------------------------------


async def _run(args: argparse.Namespace) -> int:
    conn = await connect(args.settings.database.path)
    await conn.execute("PRAGMA cache_size = -65536")  # 64 MiB: index updates of large files stay in memory
    try:
        reports = await import_files(conn, args.files, args.kind)
    except CensusError as exc:
        print(f"wuhai-iot import: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    finally:
        await conn.close()
    for report in reports:
        print(report.summary(), file=sys.stderr if report.error else sys.stdout)
        for rejection in report.rejected:
            print(rejection)
    return exit_status(reports)


def _handle(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))


@hookimpl
def register_commands(subparsers: "argparse._SubParsersAction[Any]") -> None:
    parser = subparsers.add_parser(
        "import",
        help="import census and installation files (CSV) into the registry",
        description=(
            "Import census CSV files into the registry, in dependency order. Exit status: 0 every row"
            " imported, 3 some rows rejected (the rest imported), 2 a file could not be read at all."
        ),
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="CSV files; each name starts with its kind")
    parser.add_argument("--kind", choices=KIND_ORDER, help="the kind of every file (instead of the file names)")
    parser.set_defaults(handler=_handle)
