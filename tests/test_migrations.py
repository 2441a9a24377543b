"""Schema migrations on a database written by an earlier version."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from conftest import FIXTURES, fixture_bytes

from wuhai_iot.pipeline.ingest import MESSAGE_INSERT
from wuhai_iot.protocols.elink import ElinkProtocol
from wuhai_iot.protocols.lmt import LmtProtocol
from wuhai_iot.storage import db

RECEIVED = datetime(2026, 11, 29, 0, 30, 2, tzinfo=UTC)


def earlier_key(key: str) -> str:
    """Keys used to end with the device time: 'time:code:seq' was 'code:seq:time'."""
    time, rest = key.split(":", 1)
    return f"{rest}:{time}"


async def test_stored_dedup_keys_lead_with_the_time_and_a_resend_after_the_upgrade_is_stored_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "earlier.sqlite3"
    earlier = await db.connect(path, migrate=False)
    await db.apply_migrations(earlier, through=9)
    await earlier.close()
    messages = [
        ElinkProtocol().decode(fixture_bytes("elink/status_vendor_example.hex"), RECEIVED),
        LmtProtocol().decode((FIXTURES / "lmt" / "spec_status.line").read_bytes(), RECEIVED),
    ]
    others = [("gasfill", "150301-1", "FILL_RESULT:6:E004015012345679:14100:27950"), ("acme", "7", "no-time")]
    conn = sqlite3.connect(path, isolation_level=None)
    for message in messages:
        assert message.dedup_key is not None
        conn.execute(MESSAGE_INSERT, (message.protocol, message.terminal_id, earlier_key(message.dedup_key),
                                      message.type, message.seq, None, RECEIVED.timestamp(), b""))  # fmt: skip
    for protocol, terminal, key in others:
        conn.execute(MESSAGE_INSERT, (protocol, terminal, key, "X", 1, None, RECEIVED.timestamp(), b""))
    conn.close()

    await (await db.connect(path)).close()

    conn = sqlite3.connect(path, isolation_level=None)
    stored = {row[0]: row[1] for row in conn.execute("SELECT protocol, dedup_key FROM messages")}
    assert stored == {"elink": "1764400005:16:2", "lmt": "20261129083000:ST:17", "gasfill": others[0][2],
                      "acme": "no-time"}  # fmt: skip
    for message in messages:  # the terminal resends what it sent before the upgrade
        resend = (message.protocol, message.terminal_id, message.dedup_key, message.type, message.seq, None,
                  RECEIVED.timestamp(), b"")  # fmt: skip
        assert conn.execute(MESSAGE_INSERT, resend).rowcount == 0
    assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 4
    conn.close()


async def test_an_alarm_may_be_about_the_platform_itself_and_the_alarm_triggers_stay(tmp_path: Path) -> None:
    """0032 relaxes the alarms' subject CHECK in place: an alarm about a part of the platform (``system``) is
    stored, one about nothing is still refused, and the running figures' triggers on alarms (0021) remain."""
    path = tmp_path / "upgraded.sqlite3"
    earlier = await db.connect(path, migrate=False)
    await db.apply_migrations(earlier, through=31)
    await earlier.close()
    upgraded = await db.connect(path)
    await upgraded.close()
    conn = sqlite3.connect(path, isolation_level=None)
    columns = "kind, severity, sources, active_sources, condition, since, raised_at, updated_at, created_at, detail"
    values = "'disk_space', 'major', 'rule', 'rule', 'active', 0, 0, 0, 0, '{}'"
    conn.execute(f"INSERT INTO alarms ({columns}, system) VALUES ({values}, 'disk')")
    assert conn.execute("SELECT counted_district FROM alarms WHERE system = 'disk'").fetchone() == (None,)
    assert conn.execute("SELECT count(*) FROM figures WHERE figure LIKE 'open:%'").fetchone() == (0,), "not counted"
    try:
        conn.execute(f"INSERT INTO alarms ({columns}) VALUES ({values})")
        raise AssertionError("an alarm about nothing was stored")
    except sqlite3.IntegrityError as exc:
        assert "CHECK" in str(exc)
    triggers = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"
                                                 " AND tbl_name = 'alarms'")}  # fmt: skip
    assert {"alarms_lift_insert", "alarms_lift_update", "alarms_lift_delete"} <= triggers
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()
