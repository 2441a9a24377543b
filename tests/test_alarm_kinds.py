"""One vocabulary of alarm kinds: every kind the code raises is registered, and plugins add theirs."""

from __future__ import annotations

import ast
from collections.abc import Iterator

import aiosqlite
import pytest
from conftest import ROOT

from wuhai_iot.alarms.book import alarm_book
from wuhai_iot.alarms.kinds import AlarmKind, alarm_kinds, label_of
from wuhai_iot.alarms.model import Subject
from wuhai_iot.alarms.queries import list_alarms
from wuhai_iot.plugins import get_plugin_manager, hookimpl
from wuhai_iot.server import Platform
from wuhai_iot.web.metrics import exposition

RAISING_CALLS = {"raise_alarm": 1, "clear_alarm": 1, "record_alarm": 1, "Transition": 0, "Finding": 0,
                 "send_fault": 0}  # fmt: skip
"""Calls whose argument at this position is an alarm kind (the book's, the rules', the filling checks',
the simulated terminals')."""


def _name(node: ast.expr) -> str | None:
    return node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None


def _text(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value else None


def kinds_in_code(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, kind) of every alarm kind written as a literal: passed to a raising call or as ``kind=``, set
    as a rule class's ``kind``, compared with an alarm's ``.kind``, or in a protocol's FAULT_KINDS table."""
    for node in ast.walk(tree):
        found: list[ast.expr | None] = []
        if isinstance(node, ast.Call):
            position = RAISING_CALLS.get(_name(node.func) or "")
            if position is not None and len(node.args) > position:
                found.append(node.args[position])
            found += [keyword.value for keyword in node.keywords if keyword.arg == "kind"]
            if _name(node.func) == "get" and _name(getattr(node.func, "value", node.func)) == "FAULT_KINDS":
                found += node.args[1:]
        elif isinstance(node, ast.ClassDef):
            for statement in node.body:
                if isinstance(statement, ast.Assign) and any(_name(t) == "kind" for t in statement.targets):
                    found.append(statement.value)
        elif isinstance(node, ast.Compare) and isinstance(node.left, ast.Attribute) and node.left.attr == "kind":
            found += node.comparators
        elif isinstance(node, ast.Assign) and any(_name(t) == "FAULT_KINDS" for t in node.targets):
            if isinstance(node.value, ast.Dict):
                found += node.value.values
        for value in found:
            text = _text(value)
            if text is not None:
                yield node.lineno, text


def test_every_kind_raised_anywhere_is_registered() -> None:
    registered = alarm_kinds()
    seen: set[str] = set()
    unknown: list[str] = []
    for path in sorted((ROOT / "wuhai_iot").rglob("*.py")):
        for line, kind in kinds_in_code(ast.parse(path.read_text(encoding="utf-8"))):
            seen.add(kind)
            if kind not in registered:
                unknown.append(f"{path.relative_to(ROOT)}:{line}: {kind!r}")
    assert not unknown, "alarm kinds raised but not registered:\n" + "\n".join(unknown)
    # The scan does find the kinds of every way of raising one (a rule class, a transition, a protocol's table,
    # a filling finding, a comparison), so an empty result above means something.
    assert {"trapped", "offline", "stopped_outside_zone", "door_lock", "unknown_fault", "overfill", "short_fill"} <= seen


def test_the_scan_reports_an_unregistered_kind() -> None:
    code = 'book.raise_alarm(subject, "lift_on_fire", at)\nclass R:\n    name = kind = "smoke"\n'
    assert sorted(kind for _, kind in kinds_in_code(ast.parse(code))) == ["lift_on_fire", "smoke"]


def test_builtin_kinds_have_labels_severities_and_domains() -> None:
    kinds = alarm_kinds()
    assert kinds["trapped"] == AlarmKind("trapped", "critical", "困人", "elevators")
    assert kinds["overfill"] == AlarmKind("overfill", "major", "超装", "filling")
    assert {kind.domain for kind in kinds.values()} == {"elevators", "filling", "vehicles", "platform"}
    assert label_of("offline") == "终端离线" and label_of("gone_kind") == "gone_kind" and label_of(None) == "—"


def test_a_kind_needs_a_known_severity_and_an_identifier() -> None:
    with pytest.raises(ValueError, match="severity"):
        AlarmKind("smoke", "urgent", "烟雾", "vendor")
    with pytest.raises(ValueError, match="identifier"):
        AlarmKind("smoke alarm", "major", "烟雾", "vendor")


class SmokePlugin:
    @hookimpl
    def register_alarm_kinds(self) -> list[AlarmKind]:
        return [AlarmKind("machine_room_smoke", "critical", "机房烟雾", "smoke-vendor")]


@pytest.fixture
def smoke_plugin() -> Iterator[None]:
    get_plugin_manager().register(SmokePlugin(), name="smoke-vendor")
    yield
    get_plugin_manager().unregister(name="smoke-vendor")


async def test_a_plugin_adds_a_kind_through_register_alarm_kinds(
    smoke_plugin: None, platform: Platform, database: aiosqlite.Connection
) -> None:
    book = await alarm_book(platform)
    lift = Subject(device_code="31101503022012000101")
    await platform.writer.write(book.raise_alarm(lift, "machine_room_smoke", platform.started_at))  # type: ignore[arg-type]
    (alarm,) = await list_alarms(database)
    assert (alarm.kind, alarm.severity) == ("machine_room_smoke", "critical")
    assert label_of("machine_room_smoke") == "机房烟雾"
    assert 'wuhai_alarms_open{kind="machine_room_smoke"} 1' in await exposition(platform, database)


async def test_the_book_refuses_a_kind_nobody_registered(platform: Platform) -> None:
    book = await alarm_book(platform)
    with pytest.raises(ValueError, match="unknown alarm kind 'machine_room_smoke'"):
        book.raise_alarm(Subject(device_code="31101503022012000101"), "machine_room_smoke", platform.started_at)  # type: ignore[arg-type]


def test_a_kind_registered_twice_is_an_error(smoke_plugin: None) -> None:
    get_plugin_manager().register(SmokePlugin(), name="smoke-vendor-again")
    try:
        with pytest.raises(ValueError, match="registered twice"):
            alarm_kinds()
    finally:
        get_plugin_manager().unregister(name="smoke-vendor-again")
    assert "machine_room_smoke" in alarm_kinds()


def test_kinds_are_only_written_in_one_place() -> None:
    """No second table of kinds beside the registry (the labels once lived in the web layer too)."""
    labels = {kind.label for kind in alarm_kinds().values()}
    for path in (ROOT / "wuhai_iot" / "web").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not [label for label in labels if f'"{label}"' in text], path
