"""Property: for any status sequence, the alarms from records delivered live, in order, equal the alarms from
the same records delivered as STATUS_BATCH-sized batches after an outage (kinds, since, raised and cleared
times, flapping). The rule engine is driven as a plain object, with the built-in rules and a real alarm
book; offline is left out (the outage itself is what differs).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from wuhai_iot import events as ev
from wuhai_iot.alarms.book import AlarmBook
from wuhai_iot.alarms.model import Alarm
from wuhai_iot.config import RulesConfig
from wuhai_iot.elevators.rules.builtin import builtin_rules
from wuhai_iot.elevators.rules.engine import RuleEngine
from wuhai_iot.events import Terminal

LIFT = "31101503022012000101"
TERMINAL = Terminal("elink", "8613000100020003", device_code=LIFT, report_interval_s=30)
T0 = 1_796_000_000

record = st.fixed_dictionaries({
    "gap": st.integers(1, 50),
    "door": st.sampled_from([ev.Door.CLOSED, ev.Door.CLOSED, ev.Door.OPEN, ev.Door.UNKNOWN]),
    "running": st.booleans(),
    "occupied": st.sampled_from([True, True, False, None]),
    "zone": st.sampled_from([True, False, None]),
    "power": st.sampled_from([True, True, True, False]),
    "speed": st.sampled_from([0.0, 1.0, 2.3]),
})  # fmt: skip


def status(line: dict[str, Any], t: int, received: float) -> ev.ElevatorStatus:
    return ev.ElevatorStatus(
        protocol="elink", terminal_id=TERMINAL.terminal_id, seq=t % 65536,
        device_time=datetime.fromtimestamp(t, UTC), received_at=datetime.fromtimestamp(received, UTC),
        floor=3, direction=ev.Direction.UP if line["running"] else ev.Direction.STOPPED, door=line["door"],
        running=line["running"], door_zone=line["zone"], occupied=line["occupied"],
        speed_mps=line["speed"] if line["running"] else 0.0, power=line["power"],
    )  # fmt: skip


def engine() -> tuple[RuleEngine, dict[int, Alarm]]:
    rules = RulesConfig()
    book = AlarmBook(None, None, rules)  # type: ignore[arg-type]  # (raise/clear only build statements)
    engine = RuleEngine(book, builtin_rules(rules), rules)
    engine.registry = {LIFT: {"rated_speed_mps": 1.75}}
    alarms: dict[int, Alarm] = {}

    def keep(alarm: Alarm, change: str) -> list[Any]:
        alarms[alarm.id] = alarm
        return []

    book.observers.append(keep)
    return engine, alarms


def summary(alarms: dict[int, Alarm]) -> list[tuple[Any, ...]]:
    return sorted(
        (a.kind, a.since.timestamp(), a.raised_at.timestamp(), a.cleared_at and a.cleared_at.timestamp(),
         a.flapping, a.episodes)
        for a in alarms.values() if a.merged_into is None and a.kind != "offline"
    )  # fmt: skip


def live(lines: list[dict[str, Any]], end: int) -> list[tuple[Any, ...]]:
    """Each record received when it happens; the platform ticks every second in between."""
    rules, alarms = engine()
    t = T0
    for line in lines:
        for second in range(t + 1, t + line["gap"]):
            rules.tick(datetime.fromtimestamp(second, UTC))
        t += line["gap"]
        rules.consume(TERMINAL, [status(line, t, t + 0.05)])
    for second in range(t + 1, end + 1):
        rules.tick(datetime.fromtimestamp(second, UTC))
    return summary(alarms)


def batched(lines: list[dict[str, Any]], end: int, sizes: list[int], outage_s: int) -> list[tuple[Any, ...]]:
    """Nothing until ``outage_s`` after the end; then the records in batches, then a heartbeat at the end."""
    rules, alarms = engine()
    back = end + outage_s
    times = list(_times(lines))
    start = 0
    for size in sizes:
        chunk = list(zip(lines[start : start + size], times[start : start + size], strict=True))
        if chunk:
            rules.consume(TERMINAL, [status(line, t, back) for line, t in chunk])
        start += size
    if start < len(lines):
        rules.consume(TERMINAL, [status(line, t, back) for line, t in zip(lines[start:], times[start:], strict=True)])
    at = datetime.fromtimestamp(back + 1, UTC)
    if rules.heard(TERMINAL, datetime.fromtimestamp(end, UTC), at):
        rules.catch_up(TERMINAL, at)
    rules.tick(at)
    return summary(alarms)


def _times(lines: list[dict[str, Any]]) -> list[int]:
    t, out = T0, []
    for line in lines:
        t += line["gap"]
        out.append(t)
    return out


@settings(max_examples=60)
@given(
    lines=st.lists(record, min_size=1, max_size=40),
    sizes=st.lists(st.integers(1, 60), min_size=1, max_size=5),
    outage_s=st.integers(60, 3 * 3600),
)
def test_in_order_and_batched_after_an_outage_give_the_same_alarms(
    lines: list[dict[str, Any]], sizes: list[int], outage_s: int
) -> None:
    end = _times(lines)[-1] + 60
    assert batched(lines, end, sizes, outage_s) == live(lines, end)
