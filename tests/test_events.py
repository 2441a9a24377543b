"""``positional_factory``: the fast constructor of the decoders' hot events makes the very same events."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from wuhai_iot import events as ev


def _event_classes(base: type[ev.Event] = ev.Event) -> list[type[ev.Event]]:
    """Every event class of the module (``slots=True`` leaves the slot-less originals behind as subclasses)."""
    classes = []
    for cls in base.__subclasses__():
        if getattr(ev, cls.__name__, None) is cls:
            classes += [cls, *_event_classes(cls)]
    return classes


@pytest.mark.parametrize("cls", _event_classes(), ids=lambda cls: cls.__name__)
def test_positional_factory_makes_what_the_dataclass_makes(cls: type[ev.Event]) -> None:
    now = datetime(2026, 11, 29, 5, 30, tzinfo=UTC)
    names = [field.name for field in dataclasses.fields(cls)]
    values = ["elink", "2023000000000042", 7, None, now] + [f"value of {name}" for name in names[5:]]
    made = ev.positional_factory(cls)(*values)
    expected = cls(**dict(zip(names, values, strict=True)))
    assert type(made) is cls
    assert made == expected and hash(made) == hash(expected) and repr(made) == repr(expected)
    assert made.time == now  # the event's own properties work
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.seq = 8  # type: ignore[misc]


def test_positional_factory_needs_every_field() -> None:
    make = ev.positional_factory(ev.Heartbeat)
    with pytest.raises(TypeError):
        make("elink", "2023000000000042", 7, None)
