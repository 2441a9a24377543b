"""Normalised events: what every protocol decodes into and every later layer consumes.

Protocols turn frames into these; the ingest pipeline, the rules and storage never see a wire format.
All times are timezone-aware UTC. ``device_time`` is the terminal's own clock (``None`` when the
terminal says its clock is not set); ``received_at`` is when the platform read the frame.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from typing import TypeVar

import orjson

MEDIA: dict[int, str] = {1: "LPG", 2: "CNG", 3: "LNG", 9: "OTHER"}
"""GF-3 medium codes, shared with the registry's medium words."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Common header of every normalised event."""

    protocol: str
    terminal_id: str
    seq: int
    device_time: datetime | None
    received_at: datetime

    @property
    def time(self) -> datetime:
        """The event's time: the device's clock, or the receive time when the clock is not set."""
        return self.device_time or self.received_at


@dataclass(frozen=True, slots=True, kw_only=True)
class Login(Event):
    firmware: str
    report_interval_s: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Heartbeat(Event):
    signal: int | None = None
    """Signal quality (CSQ 0-31) or, for filling controllers, the status bit field."""


class Direction(enum.StrEnum):
    UP = "up"
    DOWN = "down"
    STOPPED = "stopped"


class Door(enum.StrEnum):
    CLOSED = "closed"
    OPENING = "opening"
    OPEN = "open"
    CLOSING = "closing"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True, kw_only=True)
class ElevatorStatus(Event):
    """One status sample. ``None`` means the terminal did not report that value."""

    floor: int | None
    direction: Direction
    door: Door
    running: bool
    door_zone: bool | None
    occupied: bool | None
    speed_mps: float | None
    load_pct: int | None = None
    power: bool | None = None
    safety_circuit: bool | None = None
    door_lock: bool | None = None
    overload: bool | None = None
    mode: str | None = None
    """normal, inspection, fire, maintenance, out_of_service, independent"""
    trip_count: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ElevatorFault(Event):
    """A fault the terminal itself detected, raised or cleared."""

    kind: str
    """A lift alarm kind (``elevators.plugin.LIFT_ALARM_KINDS``); ``unknown_fault`` for a code not in the
    protocol's table."""
    vendor_code: str
    """The vendor's own code as text (ELink number, LMT word)."""
    active: bool
    floor: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TerminalDiagnostic(Event):
    """Terminal self-diagnostics (ELink codes 200-255): logged, never an alarm."""

    code: int
    active: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class MaintenanceStart(Event):
    card: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MaintenanceEnd(Event):
    card: int
    items: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandReply(Event):
    command_seq: int
    result: str
    """done, refused or unsupported"""
    data: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class FillRequest(Event):
    tag: str
    """Tag UID as upper-case hex."""
    gross_before_g: int
    operator_card: int
    medium: str
    """LPG, CNG, LNG or OTHER"""


@dataclass(frozen=True, slots=True, kw_only=True)
class FillResult(Event):
    request_seq: int
    tag: str
    gross_before_g: int
    gross_after_g: int
    duration_s: int
    outcome: int
    """0 completed, 1 aborted by operator, 2 stopped by the scale's limit, 3 equipment fault"""
    ended_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class TagQuery(Event):
    tag: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Register(Event):
    """A terminal asks to be bound to its vehicle and to be given its authentication code.

    Answered before any login (JT/T 808 REGISTER) with a ``Registration``."""

    province: int
    city: int
    maker: str
    model: str
    device_id: str
    plate_colour: int
    """0: no plate issued yet, ``plate`` is then the VIN."""
    plate: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Unregister(Event):
    """The terminal forgets its authentication code (JT/T 808 UNREGISTER)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class VehiclePosition(Event):
    """One location record of a vehicle terminal, with the cylinder readings wired into it.

    ``None`` means the terminal did not report that item; a sensor reporting its fault value sets
    ``pressure_fault``/``gas_fault`` and leaves the reading ``None`` (stored, never compared)."""

    alarm_flags: int
    """JT/T 808 alarm bits as sent (bit 29 collision/rollover, 0 emergency, ...)."""
    status_flags: int
    latitude: float
    longitude: float
    altitude_m: int
    speed_kmh: float
    course: int
    acc_on: bool
    fixed: bool
    odometer_km: float | None = None
    signal: int | None = None
    satellites: int | None = None
    pressure_mpa: float | None = None
    pressure_fault: bool = False
    gas_lel_pct: float | None = None
    gas_fault: bool = False
    tags: tuple[str, ...] | None = None
    """Cylinder tag UIDs (upper-case hex) the vehicle's reader saw since the last report."""
    extra_items: tuple[tuple[int, bytes], ...] = ()
    """Items the platform does not read (vendor ids 0xE0-0xFF and others), kept raw."""
    buffered: bool = False
    """Sent in a batch of reports buffered while the terminal had no network."""


# --- The platform's answers, protocol-neutral; each protocol encodes them in its own words. ---


class AckResult(enum.IntEnum):
    ACCEPTED = 0
    BAD_CONTENT = 1
    UNKNOWN_TERMINAL = 2
    AUTH_FAILED = 3
    NOT_LOGGED_IN = 4
    UNSUPPORTED = 5


@dataclass(frozen=True, slots=True)
class Ack:
    result: AckResult
    server_time: datetime


@dataclass(frozen=True, slots=True)
class FillDecision:
    permit: bool
    reason: int
    """0 permitted; deny reasons of GF-3 §4 (99 = platform error)."""
    net_limit_g: int = 0
    cylinder_code: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True)
class TagInfo:
    found: bool
    cylinder_code: str = ""
    medium: str = "OTHER"
    next_inspection: date | None = None
    status: int = 0
    """0 in service, 1 scrapped or past design life, 2 blacklisted, 3 inspection overdue"""
    owner_station: int = 0


@dataclass(frozen=True, slots=True)
class Registration:
    """The answer to a ``Register``: result 0 accepted (with the authentication code), 1 vehicle bound to
    another terminal, 2 vehicle not in the registry, 3 terminal bound to another vehicle, 4 terminal not in
    the registry (the JT/T 808 0x8100 results)."""

    result: int
    auth_code: str = ""


Reply = Ack | FillDecision | TagInfo | Registration


class CommandCode(enum.StrEnum):
    REPORT_STATUS = "report_status"
    SET_INTERVAL = "set_interval"
    RESTART = "restart"
    SET_CLOCK = "set_clock"


@dataclass(frozen=True, slots=True)
class Terminal:
    """A registered terminal that has logged in on a connection."""

    protocol: str
    terminal_id: str
    device_code: str | None = None
    """The lift it watches (elink, lmt)."""
    station_code: int | None = None
    """The filling station and post (gasfill)."""
    scale: int | None = None
    report_interval_s: int | None = None
    plate: str | None = None
    """The vehicle it rides in (jt808)."""
    installed_from: datetime | None = None
    """The start (CST) of its installation date: a device time before it is a wrong clock."""


@dataclass(frozen=True, slots=True)
class TerminalCommand:
    """A command the platform sends to a terminal."""

    code: CommandCode
    argument: int | None = None


@dataclass(slots=True)
class Message:
    """One decoded frame: its header, its normalised events and what identifies a resend of it."""

    protocol: str
    terminal_id: str
    type: str
    """The protocol's name for the message type (e.g. ``STATUS``, ``ST``, ``FILL_REQUEST``)."""
    seq: int
    device_time: datetime | None
    received_at: datetime
    events: list[Event] = field(default_factory=list)
    dedup_key: str | None = None
    """Equal for a resend of the same message; ``None`` for messages that are never stored (heartbeats).

    Lead it with the device time where the message has one (``"1764400005:16:2"``): the index that
    finds resends is ordered by this key, so a batch of messages from many terminals lands on its last
    few pages instead of one page per terminal."""
    wire: object = None
    """Protocol-private details needed to answer this message (e.g. the raw type code)."""


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


E = TypeVar("E", bound=Event)


def positional_factory(cls: type[E]) -> Callable[..., E]:
    """A constructor of the event class ``cls`` taking every field positionally, in field order.

    For decoders' hot messages (thousands of status samples a second): a frozen dataclass's ``__init__``
    sets each field through ``object.__setattr__``, which costs about 2 µs for a status's 19 fields;
    the slots' own descriptors take half that. The instance is the same (equal, frozen, hashable);
    like the generated ``__init__`` of ``dataclasses`` itself, the function is built as source text.
    """
    names = _field_names(cls)
    namespace: dict[str, object] = {"new": object.__new__, "cls": cls}
    body = ["    instance = new(cls)"]
    for name in names:
        namespace[f"set_{name}"] = getattr(cls, name).__set__  # the slot's member descriptor
        body.append(f"    set_{name}(instance, {name})")
    source = f"def make({', '.join(names)}):\n" + "\n".join(body) + "\n    return instance\n"
    exec(source, namespace)  # noqa: S102 - text built from the dataclass's own field names
    make = namespace["make"]
    make.__qualname__ = f"positional_factory({cls.__name__})"  # type: ignore[attr-defined]
    return make  # type: ignore[return-value]


def event_record(event: Event) -> dict[str, object]:
    """The event as a JSON-ready dict (``event`` = class name, times as ISO-8601 UTC)."""
    return orjson.loads(event_json(event))  # type: ignore[no-any-return]


def _json_default(value: object) -> object:
    if isinstance(value, Event):
        record: dict[str, object] = {"event": type(value).__name__}
        for name in _field_names(type(value)):
            record[name] = getattr(value, name)
        return record
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


_JSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_UTC_Z


def event_json(event: Event) -> str:
    """One event as the JSON of its ``event_record`` (orjson: it writes datetimes and enums natively)."""
    return orjson.dumps(event, default=_json_default, option=_JSON_OPTIONS).decode()
