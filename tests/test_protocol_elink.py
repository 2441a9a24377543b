"""ELink-200 codec, from the vendor's worked examples and captured frames (no server)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from conftest import fixture_bytes
from hypothesis import given, settings
from hypothesis import strategies as st

from wuhai_iot import events as ev
from wuhai_iot.protocols.base import DecodeError, Discarded
from wuhai_iot.protocols.elink import MAX_LENGTH, ElinkProtocol, crc16, encode_frame

NOW = datetime(2025, 11, 29, 7, 6, 41, tzinfo=UTC)
TERMINAL = bytes.fromhex("8613000100020003")
LOGIN = fixture_bytes("elink/login_vendor_example.hex")
STATUS = fixture_bytes("elink/status_vendor_example.hex")
elink = ElinkProtocol()


def frames(data: bytes) -> list[bytes | Discarded]:
    return elink.new_framer().feed(data)


def test_crc_check_value() -> None:
    assert crc16(b"123456789") == 0x29B1


def test_vendor_login_example_decodes_and_authenticates() -> None:
    message = elink.decode(LOGIN, NOW)
    assert (message.type, message.terminal_id, message.seq) == ("LOGIN", "8613000100020003", 1)
    assert message.device_time == datetime(2025, 11, 29, 7, 6, 40, tzinfo=UTC)
    (login,) = message.events
    assert isinstance(login, ev.Login)
    assert (login.firmware, login.report_interval_s) == ("EL200-13", 30)
    assert elink.verify_login(message, "k" * 16)
    assert not elink.verify_login(message, "k" * 15 + "x")
    assert elink.verify_login(message, None), "a terminal without a registered key needs no auth"
    assert message.dedup_key is None


def test_vendor_status_example_decodes_exactly() -> None:
    message = elink.decode(STATUS, NOW)
    (status,) = message.events
    assert isinstance(status, ev.ElevatorStatus)
    assert status.device_time == datetime(2025, 11, 29, 7, 6, 45, tzinfo=UTC)
    assert (status.floor, status.direction, status.door) == (7, ev.Direction.UP, ev.Door.CLOSED)
    assert (status.running, status.door_zone, status.occupied) == (True, False, True)
    assert (status.power, status.safety_circuit, status.door_lock, status.overload) == (True, True, True, False)
    assert (status.speed_mps, status.load_pct, status.trip_count, status.mode) == (1.5, 35, 123456, "normal")
    assert message.dedup_key == "1764400005:16:2"


def test_login_ack_carries_platform_time_and_reencodes_the_example() -> None:
    message = elink.decode(LOGIN, NOW)
    ack = elink.encode_reply(message, ev.Ack(ev.AckResult.ACCEPTED, NOW), 9, NOW)
    (decoded,) = frames(ack)
    assert decoded == ack
    assert ack[13] == 0x81 and ack[20:24] == bytes([0x01, 0x00, 0x01, 0x00])
    assert int.from_bytes(ack[24:28], "big") == int(NOW.timestamp())
    # The example frames are exactly what encode_frame builds from their fields.
    assert encode_frame(TERMINAL, 0x10, 2, 1764400005, STATUS[20:-2]) == STATUS


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("fault_trapped_raised", ev.ElevatorFault),
        ("fault_unknown_code_150", ev.ElevatorFault),
        ("fault_diagnostic_201", ev.TerminalDiagnostic),
        ("maint_start", ev.MaintenanceStart),
        ("maint_end", ev.MaintenanceEnd),
        ("command_reply_done", ev.CommandReply),
        ("heartbeat", ev.Heartbeat),
    ],
)
def test_captured_frames_decode(fixture: str, expected: type) -> None:
    (event,) = elink.decode(fixture_bytes(f"elink/{fixture}.hex"), NOW).events
    assert isinstance(event, expected)


def test_fault_codes_map_to_canonical_kinds_and_unknown_codes_are_kept() -> None:
    (trapped,) = elink.decode(fixture_bytes("elink/fault_trapped_raised.hex"), NOW).events
    assert isinstance(trapped, ev.ElevatorFault)
    assert (trapped.kind, trapped.vendor_code, trapped.active, trapped.floor) == ("trapped", "1", True, -1)
    (unknown,) = elink.decode(fixture_bytes("elink/fault_unknown_code_150.hex"), NOW).events
    assert isinstance(unknown, ev.ElevatorFault)
    assert (unknown.kind, unknown.vendor_code) == ("unknown_fault", "150")


def test_maintenance_visit_frames_carry_card_and_items() -> None:
    (start,) = elink.decode(fixture_bytes("elink/maint_start.hex"), NOW).events
    (end,) = elink.decode(fixture_bytes("elink/maint_end.hex"), NOW).events
    assert isinstance(start, ev.MaintenanceStart) and start.card == 123456
    assert isinstance(end, ev.MaintenanceEnd) and (end.card, end.items) == (123456, 31)
    assert ev.event_record(end)["items"] == 31


def test_batch_samples_keep_their_own_times() -> None:
    message = elink.decode(fixture_bytes("elink/status_batch_3.hex"), NOW)
    assert [e.floor for e in message.events] == [-1, 1, 2]  # type: ignore[attr-defined]
    assert [int(e.time.timestamp()) for e in message.events] == [1764399000, 1764399030, 1764399060]


def test_unset_clock_uses_receive_time() -> None:
    message = elink.decode(fixture_bytes("elink/status_clock_unset.hex"), NOW)
    (status,) = message.events
    assert status.device_time is None and status.time == NOW
    assert message.dedup_key == "0@2025-11-29:16:12"


def test_unsupported_type_and_bad_content_keep_terminal_and_seq() -> None:
    with pytest.raises(DecodeError) as unsupported:
        elink.decode(fixture_bytes("elink/unsupported_type_0x55.hex"), NOW)
    assert unsupported.value.unsupported and unsupported.value.seq == 13
    answer = elink.encode_error(unsupported.value, 1, NOW)
    assert answer is not None and answer[20:24] == bytes([0x55, 0x00, 13, 5])
    with pytest.raises(DecodeError) as bad:
        elink.decode(fixture_bytes("elink/status_bad_direction.hex"), NOW)
    assert not bad.value.unsupported and "direction 7" in bad.value.reason
    answer = elink.encode_error(bad.value, 1, NOW)
    assert answer is not None and answer[23] == 1




def test_framer_many_frames_in_one_chunk_with_garbage_between() -> None:
    out = frames(b"\x00\xffEL" + LOGIN + b"garbage" + STATUS + STATUS)
    assert [f for f in out if isinstance(f, bytes)] == [LOGIN, STATUS, STATUS]
    discarded = [f for f in out if isinstance(f, Discarded)]
    assert b"".join(d.data for d in discarded) == b"\x00\xffEL" + b"garbage"


def test_framer_bad_crc_then_good_frame() -> None:
    corrupted = bytearray(STATUS)
    corrupted[22] ^= 0xFF
    out = frames(bytes(corrupted) + LOGIN)
    assert out[-1] == LOGIN
    assert any(isinstance(f, Discarded) and f.reason == "bad CRC" for f in out)


def test_framer_oversized_length_is_skipped_not_awaited() -> None:
    oversized = b"EL\x01" + (MAX_LENGTH + 1).to_bytes(2, "big") + b"\x00" * 10
    out = frames(oversized + STATUS)
    assert out[-1] == STATUS
    assert isinstance(out[0], Discarded) and "length" in out[0].reason






status_records = st.tuples(
    st.integers(-127, 127),
    st.integers(0, 2),
    st.integers(0, 4),
    st.integers(0, 0x3FF),
    st.integers(0, 65535),
    st.integers(0, 255),
    st.integers(0, 2**32 - 1),
)


@settings(max_examples=200)
@given(st.integers(0, 65535), st.integers(1, 2**32 - 1), status_records, st.binary(max_size=20))
def test_valid_status_frames_round_trip(seq: int, clock: int, record: tuple, noise: bytes) -> None:
    floor, direction, door, flags, speed, load, trips = record
    body = bytes([floor & 0xFF, direction, door]) + flags.to_bytes(2, "big") + speed.to_bytes(2, "big")
    body += bytes([load]) + trips.to_bytes(4, "big")
    frame = encode_frame(TERMINAL, 0x10, seq, clock, body)
    out = [f for f in frames(noise.replace(b"E", b"") + frame) if isinstance(f, bytes)]
    assert out == [frame]
    (status,) = elink.decode(frame, NOW).events
    assert isinstance(status, ev.ElevatorStatus)
    assert (status.floor, status.speed_mps, status.trip_count) == (floor, speed / 1000, trips)
    assert status.running == bool(flags & 1) and status.occupied == bool(flags & 4)
    assert status.load_pct == (None if load == 255 else load)
