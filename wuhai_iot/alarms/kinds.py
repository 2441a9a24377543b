"""The one vocabulary of alarm kinds: identifier, severity, Chinese label and the domain that raises it.

Kinds are contributed through the ``register_alarm_kinds`` hook: the elevator and filling packages add
theirs exactly as an outside plugin does. ``alarm_kinds()`` is the registry every layer reads (the alarm
book refuses a kind missing from it; pages, the API and /metrics list and label kinds from it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from wuhai_iot.plugins import get_plugin_manager

SEVERITIES = ("critical", "major", "minor")
"""Most severe first."""


@dataclass(frozen=True, slots=True)
class AlarmKind:
    name: str
    """The identifier stored in ``alarms.kind`` (``trapped``)."""
    severity: str
    """One of SEVERITIES."""
    label: str
    """What the pages show (``困人``)."""
    domain: str
    """Who raises it: ``elevators``, ``filling``, ``vehicles``, ``platform`` (the platform's own alarms, such as
    its disk's: alarms/system.py; only those who run it see them), or a plugin's name. (Not an alarm's
    ``sources``, which say whether the device or a rule reported it.)"""

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"alarm kind {self.name!r}: severity must be one of {', '.join(SEVERITIES)}")
        if not self.name or not self.name.isidentifier():
            raise ValueError(f"alarm kind {self.name!r}: the name must be an identifier")


_cache: tuple[object, Mapping[str, AlarmKind]] | None = None


def alarm_kinds() -> Mapping[str, AlarmKind]:
    """Every registered kind by name (in registration order). A name registered twice is an error.

    Collected once per set of registered plugins (a test may register one while running)."""
    global _cache
    manager = get_plugin_manager()
    key = (id(manager), frozenset(map(id, manager.get_plugins())))
    if _cache is not None and _cache[0] == key:
        return _cache[1]
    found: dict[str, AlarmKind] = {}
    for contributed in manager.hook.register_alarm_kinds():
        for kind in contributed or ():
            if kind.name in found:
                raise ValueError(f"alarm kind {kind.name!r} is registered twice")
            found[kind.name] = kind
    _cache = (key, found)
    return found


def severity_of(kind: str) -> str:
    """The severity of a registered kind; ValueError for an unknown one."""
    found = alarm_kinds().get(kind)
    if found is None:
        raise ValueError(f"unknown alarm kind {kind!r}")
    return found.severity


def label_of(kind: str | None) -> str:
    """The Chinese label of a kind; an unregistered one (a plugin since removed) shows as its name."""
    found = alarm_kinds().get(kind) if kind else None
    return found.label if found else ("—" if kind is None else kind)
