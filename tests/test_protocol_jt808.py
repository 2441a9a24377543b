"""JT/T 808 codec: the contract's worked examples, both editions, escaping in every position, split
packets, batches, malformed frames (bad check code, disagreeing length, unescaped 0x7E, oversize) and
vendor items; the answers of §4."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from conftest import FIXTURES, TerminalClient, fixture_bytes

from wuhai_iot import events as ev
from wuhai_iot.plugins.manager import protocols
from wuhai_iot.protocols import jt808 as j
from wuhai_iot.protocols.base import DecodeError, Discarded, Reassembled, whole_message
from wuhai_iot.server import Platform

NOW = datetime(2026, 12, 1, 2, 40, tzinfo=UTC)
PHONE = "013912345678"
PHONE_2019 = "00000000013912345678"

jt808 = j.Jt808Protocol()


def fixture(name: str) -> bytes:
    return fixture_bytes(f"jt808/{name}")


def decode(frame: bytes) -> ev.Message:
    return jt808.decode(frame, NOW)


def raw_frame(frame: bytes) -> bytes:
    """Header, body and check code of one escaped frame."""
    return j.unescape(frame[1:-1])


def with_check(raw_without_check: bytes) -> bytes:
    """An escaped frame around header and body, with a correct check code."""
    return b"\x7e" + j.escape(raw_without_check + bytes([j.xor_checksum(raw_without_check)])) + b"\x7e"


# --- §6 worked examples ---


def test_register_worked_example() -> None:
    message = decode(fixture("01_register_spec.hex"))
    assert (message.type, message.terminal_id, message.seq, message.dedup_key) == ("REGISTER", PHONE, 1, None)
    [register] = message.events
    assert register == ev.Register(
        protocol="jt808", terminal_id=PHONE, seq=1, device_time=None, received_at=NOW, province=15, city=300,
        maker="WHGAS", model="VT-808C", device_id="T000123", plate_colour=1, plate="蒙L12345",
    )  # fmt: skip


def test_register_response_worked_example() -> None:
    message = decode(fixture("01_register_spec.hex"))
    answer = jt808.encode_reply(message, ev.Registration(0, "A1B2C3D4"), 1, NOW)
    assert answer == fixture("02_platform_register_response_spec.hex")


def test_register_response_without_code_when_refused() -> None:
    message = decode(fixture("01_register_spec.hex"))
    answer = raw_frame(jt808.encode_reply(message, ev.Registration(2, "ignored"), 5, NOW))
    assert answer[:2] == b"\x81\x00" and answer[12:-1] == b"\x00\x01\x02"  # reply serial 1, result 2, no code


def test_authenticate_worked_example_and_its_response() -> None:
    message = decode(fixture("03_authenticate_spec.hex"))
    assert (message.type, message.seq) == ("AUTHENTICATE", 2)
    assert isinstance(message.events[0], ev.Login)
    assert jt808.verify_login(message, "A1B2C3D4")
    assert not jt808.verify_login(message, "A1B2C3D5")
    assert not jt808.verify_login(message, None)  # no code given or issued: refused
    answer = jt808.encode_reply(message, ev.Ack(ev.AckResult.ACCEPTED, NOW), 2, NOW)
    assert answer == fixture("04_platform_response_spec.hex")


def test_location_worked_example() -> None:
    message = decode(fixture("05_location_spec.hex"))
    assert (message.type, message.seq) == ("LOCATION", 3)
    assert message.device_time == datetime(2026, 12, 1, 2, 30, tzinfo=UTC)  # 10:30 CST
    assert message.dedup_key == f"{int(message.device_time.timestamp())}:512:3"
    [position] = message.events
    assert isinstance(position, ev.VehiclePosition)
    assert (position.latitude, position.longitude, position.altitude_m) == (39.6715, 106.826, 1090)
    assert (position.speed_kmh, position.course, position.acc_on, position.fixed) == (36.5, 90, True, True)
    assert (position.odometer_km, position.pressure_mpa, position.gas_lel_pct) == (12345.6, 18.5, 0.0)
    assert position.tags == ("E280116060000205",)
    assert (position.alarm_flags, position.extra_items, position.buffered) == (0, (), False)


def test_location_encoder_reproduces_the_worked_example() -> None:
    record = j.location_record(
        datetime(2026, 12, 1, 10, 30, tzinfo=j.CST), 39.6715, 106.826, speed_kmh=36.5, course=90,
        odometer_km=12345.6, pressure_mpa=18.5, gas_lel_pct=0.0, tags=("E280116060000205",),
    )  # fmt: skip
    assert j.encode_frame(j.LOCATION, PHONE, 3, record) == fixture("05_location_spec.hex")


def test_escaping_worked_example() -> None:
    frame = fixture("06_heartbeat_escaped_spec.hex")
    assert j.encode_frame(j.HEARTBEAT, PHONE, 0x7E7D, b"") == frame
    message = decode(frame)
    assert (message.type, message.seq, message.dedup_key) == ("HEARTBEAT", 0x7E7D, None)


def test_registered_as_plugin() -> None:
    registered = protocols()["jt808"]
    assert isinstance(registered, j.Jt808Protocol) and registered.default_port == 5808


# --- 2019 edition ---


def test_2019_register_authenticate_and_answer_in_the_terminals_edition() -> None:
    message = decode(fixture("07_register_2019.hex"))
    assert message.terminal_id == PHONE_2019
    [register] = message.events
    assert (register.maker, register.model, register.device_id, register.plate) == (
        "WHGAS-2019", "VT-808D", "T2019-000123", "蒙L12345",
    )  # fmt: skip
    answer = raw_frame(jt808.encode_reply(message, ev.Registration(0, "A1B2C3D4"), 7, NOW))
    assert answer[:2] == b"\x81\x00" and answer[2] & 0x40 and answer[4] == 1  # 2019 header, version 1
    assert answer[5:15].hex() == PHONE_2019 and answer[17:-1] == b"\x00\x01\x00A1B2C3D4"

    login = decode(fixture("08_authenticate_2019_nul_padded.hex"))
    assert login.events[0].firmware == "V2.1.0"
    assert jt808.verify_login(login, "A1B2C3D4")  # trailing NULs stripped (§7)


def test_2019_location_with_collision_sensor_fault_and_vendor_items() -> None:
    [position] = decode(fixture("09_location_2019_collision_vendor_items.hex")).events
    assert position.alarm_flags == (1 << 29) | 1
    assert (position.pressure_mpa, position.pressure_fault) == (None, True)
    assert (position.gas_lel_pct, position.gas_fault) == (12.5, False)
    assert (position.signal, position.satellites) == (25, 9)
    assert position.extra_items == ((0xE1, b"\x01\x02\x03"), (0xFE, b""))


# --- other messages ---


def test_batch_of_buffered_records() -> None:
    message = decode(fixture("10_batch_buffered_3.hex"))
    assert message.type == "BATCH" and len(message.events) == 3
    assert all(isinstance(e, ev.VehiclePosition) and e.buffered for e in message.events)
    times = [e.device_time for e in message.events]
    assert times == [datetime(2026, 12, 1, 1, minute, tzinfo=UTC) for minute in range(3)]
    assert message.device_time == times[-1]
    assert [e.pressure_mpa for e in message.events] == [15.0, 14.9, 14.8]


def test_regular_batch_is_not_buffered() -> None:
    records = [j.location_record(datetime(2026, 12, 1, 9, 0, tzinfo=j.CST), 39.6, 106.8)]
    message = decode(j.encode_frame(j.BATCH, PHONE, 9, j.batch_body(records, buffered=False)))
    assert not message.events[0].buffered


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"\x00\x00\x01", "batch of 0 records"),
        (b"\x00\x02\x01\x00\x1c" + bytes(28), "batch says 2 records, has 1"),
        (b"\x00\x01\x02\x00\x1c" + bytes(28), "batch type 2"),
        (b"\x00\x01\x01\x00\x1d" + bytes(28), "runs past the batch"),
    ],
)
def test_bad_batches_are_bad_messages(body: bytes, problem: str) -> None:
    frame = j.encode_frame(j.BATCH, PHONE, 9, body)
    with pytest.raises(DecodeError, match=problem) as caught:
        decode(frame)
    answer = raw_frame(jt808.encode_error(caught.value, 4, NOW))
    assert answer[:2] == b"\x80\x01" and answer[12:-1] == b"\x00\x09\x07\x04\x02"  # result 2, bad message


def test_location_without_fix_time_has_no_device_time() -> None:
    message = decode(fixture("11_location_no_fix_time.hex"))
    [position] = message.events
    assert position.device_time is None and position.time == NOW
    assert message.dedup_key == "-:512:5"


def test_terminal_response_location_reply_and_unregister() -> None:
    reply = decode(fixture("12_terminal_response.hex"))
    [event] = reply.events
    assert isinstance(event, ev.CommandReply) and (event.command_seq, event.result) == (9, "done")
    assert reply.dedup_key is not None
    location = decode(fixture("14_location_reply.hex"))
    assert location.type == "LOCATION_REPLY" and isinstance(location.events[0], ev.VehiclePosition)
    unregister = decode(fixture("13_unregister.hex"))
    assert isinstance(unregister.events[0], ev.Unregister) and unregister.dedup_key is None


def test_location_query_command() -> None:
    frame = jt808.encode_command(PHONE, ev.TerminalCommand(ev.CommandCode.REPORT_STATUS), 9, NOW)
    assert raw_frame(frame)[:4] == b"\x82\x01\x00\x00" and raw_frame(frame)[10:12] == b"\x00\x09"
    with pytest.raises(ValueError):
        jt808.encode_command(PHONE, ev.TerminalCommand(ev.CommandCode.RESTART), 9, NOW)


def test_encrypted_and_unsupported_messages_are_answered_not_supported() -> None:
    for name, serial, message_id in (("16_encrypted_body.hex", 10, b"\x00\x02"),
                                     ("17_unsupported_0x0900.hex", 11, b"\x09\x00")):  # fmt: skip
        with pytest.raises(DecodeError) as caught:
            decode(fixture(name))
        assert caught.value.unsupported
        answer = raw_frame(jt808.encode_error(caught.value, 1, NOW))
        assert answer[12:-1] == serial.to_bytes(2, "big") + message_id + b"\x03"


def test_bad_time_is_a_bad_message() -> None:
    record = bytearray(j.location_record(None, 39.6, 106.8))
    record[22:28] = bytes.fromhex("261301103000")  # month 13
    with pytest.raises(DecodeError, match="time 261301103000") as caught:
        decode(j.encode_frame(j.LOCATION, PHONE, 12, bytes(record)))
    assert not caught.value.unsupported and caught.value.seq == 12


# --- the framer: escaping, resynchronisation, malformed frames ---

ALL_FIXTURES = [p.name for p in sorted((FIXTURES / "jt808").glob("*.hex"))
                if "bad_check" not in p.name and "split" not in p.name]  # (split packets: their own tests below)


def test_framer_cuts_every_fixture_fed_byte_by_byte_and_at_once() -> None:
    frames = [fixture(name) for name in ALL_FIXTURES]
    stream = b"".join(frames)
    framer = jt808.new_framer()
    out: list[bytes | Discarded] = []
    for byte in stream:
        out += framer.feed(bytes([byte]))
    assert out == frames
    assert jt808.new_framer().feed(stream) == frames


def test_empty_frames_and_a_frame_without_its_opening_flag() -> None:
    a, b, c = fixture("06_heartbeat_escaped_spec.hex"), fixture("13_unregister.hex"), fixture("05_location_spec.hex")
    # Two flags in a row: the first is skipped (counted). A good frame's closing flag is its own: a frame that
    # lacks its opening flag is lost alone, the next one is not. Every byte is accounted for once.
    out = jt808.new_framer().feed(b"\x7e" + a + b[1:] + c)
    assert out == [Discarded(b"\x7e", "empty frame"), a, Discarded(b[1:-1], "no frame start"),
                   Discarded(b"\x7e", "empty frame"), c]  # fmt: skip


@pytest.mark.parametrize("special", [0x7E, 0x7D])
def test_escaping_in_every_position(special: int) -> None:
    """Every byte of header, body and check code may be 0x7E or 0x7D; the frame survives each."""
    base = raw_frame(fixture("09_location_2019_collision_vendor_items.hex"))[:-1]
    for position in range(len(base) + 1):
        raw = bytearray(base)
        if position < len(base):
            raw[position] = special
            frame = with_check(bytes(raw))
        else:  # the check code itself: steer it with the last byte of the 0xE1 vendor item
            offset = base.index(b"\xe1\x03\x01\x02\x03") + 4
            raw[offset] ^= j.xor_checksum(bytes(raw)) ^ special
            assert j.xor_checksum(bytes(raw)) == special
            frame = with_check(bytes(raw))
        assert 0x7E not in frame[1:-1]
        [item] = jt808.new_framer().feed(b"\x00" + frame + b"\x7e")[1:]  # (a bad frame's flag: its own)
        assert raw_frame(frame)[:-1] == bytes(raw), position
        if isinstance(item, Discarded):
            # Properties, version and phone number mean something else with this byte (length, BCD)
            # but the frame is still cut whole, and never for its escaping.
            assert 2 <= position <= 14 and item.data == frame and "0x7d" not in item.reason, position
        else:
            assert item == frame, position
            try:
                assert decode(frame).terminal_id == PHONE_2019, position
            except DecodeError as exc:  # a value the field cannot hold (BCD time, message id): header read
                assert exc.terminal_id == PHONE_2019 and position not in (15, 16), position


def test_escaped_values_in_the_body_decode_exactly() -> None:
    value = bytes([0x7E, 0x7D, 0x7E, 0x02, 0x7D, 0x01])
    record = j.location_record(None, 39.6, 106.8, extra_items=((0xE0, value),))
    frame = j.encode_frame(j.LOCATION, PHONE, 0x7D7E, record)
    [position] = decode(frame).events
    assert position.extra_items == ((0xE0, value),) and decode(frame).seq == 0x7D7E


def test_bad_escape_is_dropped() -> None:
    good = fixture("13_unregister.hex")
    bad = good[:-2] + b"\x7d\x03\x7e"
    out = jt808.new_framer().feed(bad + good)
    assert isinstance(out[0], Discarded) and "0x7d" in out[0].reason and out[1:] == [good]


def test_bad_check_code_is_dropped_and_the_next_frame_decodes() -> None:
    bad, good = fixture("15_location_bad_check_code.hex"), fixture("06_heartbeat_escaped_spec.hex")
    out = jt808.new_framer().feed(bad + good)
    assert out == [Discarded(bad, "check code 0x06, computed 0xf9"), good]
    assert decode(good).type == "HEARTBEAT"
    with pytest.raises(DecodeError, match="check code"):
        decode(bad)  # and ``wuhai-iot decode`` says why


def test_body_length_that_disagrees_is_dropped() -> None:
    raw = bytearray(raw_frame(fixture("05_location_spec.hex"))[:-1])
    raw[3] += 1  # says 55 bytes, 54 present
    frame = with_check(bytes(raw))
    good = fixture("13_unregister.hex")
    out = jt808.new_framer().feed(frame + good)
    assert out == [Discarded(frame, "body length 55 disagrees with the 54 bytes present"), good]


def test_unescaped_0x7e_inside_a_body_costs_only_that_frame() -> None:
    record = j.location_record(None, 39.6, 106.8, extra_items=((0xE5, b"\x01\x7e\x02"),))
    escaped = j.encode_frame(j.LOCATION, PHONE, 20, record)
    careless = escaped.replace(b"\x7d\x02", b"\x7e")  # firmware that forgot to escape it
    good = fixture("13_unregister.hex")
    out = jt808.new_framer().feed(careless + good)
    assert [item for item in out if not isinstance(item, Discarded)] == [good]
    dropped = [item for item in out if isinstance(item, Discarded)]
    # Cut at the stray flag: two pieces, each dropped (the stray flag opens the second), every byte once.
    assert len(dropped) == 2 and dropped[0].data + dropped[1].data == careless and dropped[1].data[0] == 0x7E


def test_frame_over_1100_bytes_is_dropped_and_the_longest_valid_frame_is_kept() -> None:
    # The longest frame a header allows: 2019 header with packet fields (21) + 1,023-byte body + check.
    body = bytes(range(256)) * 3 + bytes(255)  # 1,023 bytes, many of them 0x7e/0x7d
    longest = j.encode_frame(0x0900, PHONE_2019, 1, body, 2019, packet=(1, 1))
    assert len(raw_frame(longest)) == 1045
    oversize_raw = raw_frame(longest)[:-1] + bytes(1100 - 1045 + 1)  # 1,101 bytes with its check code
    oversize = with_check(oversize_raw)
    framer = jt808.new_framer()
    out = framer.feed(oversize + longest)
    assert out[0] == Discarded(oversize, "frame of 1101 bytes (un-escaped), over 1100") and out[1:] == [longest]
    exactly_1100 = with_check(oversize_raw[:-1])
    assert "disagrees" in jt808.new_framer().feed(exactly_1100 + b"\x7e")[0].reason  # 1,100 is not over


def test_no_closing_flag_keeps_the_buffer_bounded() -> None:
    framer = jt808.new_framer()
    out = framer.feed(b"\x7e" + b"\x01" * 5000)
    assert isinstance(out[0], Discarded) and "no closing flag" in out[0].reason
    good = fixture("13_unregister.hex")
    assert framer.feed(b"\x02\x03" + good)[-1:] == [good]


def test_garbage_before_the_first_flag() -> None:
    good = fixture("13_unregister.hex")
    assert jt808.new_framer().feed(b"AT+OK\r\n" + good) == [Discarded(b"AT+OK\r\n", "no frame start"), good]


# --- split messages ---


def long_batch(records: int = 40) -> bytes:
    return j.batch_body(
        [j.location_record(datetime(2026, 12, 1, 8, minute, tzinfo=j.CST), 39.6 + minute / 1e4, 106.8,
                           pressure_mpa=19.0, gas_lel_pct=0.5, tags=("E280116060000205",),
                           extra_items=((0xE2, b"\x7e\x7d"),))
         for minute in range(records)]
    )  # fmt: skip


def test_split_packets_are_reassembled_and_each_is_answered() -> None:
    body = long_batch()
    packets = j.encode_split(j.BATCH, PHONE, 100, body, packet_size=500)
    assert len(packets) == 5 and len(body) > 2000
    framer = jt808.new_framer()
    out: list[bytes | Discarded] = []
    for packet in packets:
        for offset in range(0, len(packet), 7):  # split across segments too
            out += framer.feed(packet[offset : offset + 7])
    assert out == packets and isinstance(out[4], Reassembled) and out[4].message == b"".join(packets)
    for number, packet in enumerate(out[:4], 1):
        message = decode(packet)
        assert (message.type, message.seq, message.dedup_key) == ("BATCH_PACKET", 99 + number, None)
        assert isinstance(message.events[0], ev.Heartbeat)  # answered at once, stored with the whole
    whole = decode(out[4].message)
    assert (whole.type, whole.seq, len(whole.events)) == ("BATCH", 104, 40)  # answered with the last serial
    assert whole.events[39].extra_items == ((0xE2, b"\x7e\x7d"),)


def test_split_packets_arriving_out_of_order() -> None:
    packets = j.encode_split(j.BATCH, PHONE, 7, long_batch(20), packet_size=400)
    framer = jt808.new_framer()
    out = framer.feed(packets[1]) + framer.feed(packets[0]) + framer.feed(packets[2])
    assert out == [packets[1], packets[0], packets[2]] and len(decode(whole_message(out[2])).events) == 20


def test_incomplete_split_message_is_dropped_after_60_s() -> None:
    now = [1000.0]
    framer = j.Jt808Framer(clock=lambda: now[0])
    packets = j.encode_split(j.BATCH, PHONE, 1, long_batch(20), packet_size=400)
    assert framer.feed(packets[0]) == [packets[0]]
    now[0] += 61
    good = fixture("13_unregister.hex")
    out = framer.feed(packets[1] + good)
    # Its packet was handed on (and answered) when it came: no byte is discarded twice, the state goes.
    assert out[0] == Discarded(b"", "split message incomplete after 60 s (packets 1 of 3)")
    assert out[1:] == [packets[1], good]  # the late packet starts a new, incomplete message


def test_packets_that_do_not_belong_together_are_a_bad_message() -> None:
    a = j.encode_split(j.BATCH, PHONE, 1, long_batch(20), packet_size=400)
    b = j.encode_split(j.BATCH, PHONE, 50, long_batch(20), packet_size=400)
    with pytest.raises(DecodeError, match="not consecutive"):
        decode(a[0] + b[1] + a[2])


# --- on the platform's listener ---


async def test_listener_drops_bad_frames_and_refuses_messages_before_authentication(platform: Platform) -> None:
    client = await TerminalClient.connect(platform, "jt808")
    try:
        await client.send(fixture("15_location_bad_check_code.hex") + fixture("05_location_spec.hex"))
        answer = raw_frame(await client.receive())
        assert answer[:2] == b"\x80\x01" and answer[12:-1] == b"\x00\x03\x02\x00\x01"  # LOCATION 3: result 1
        counters = platform.listeners["jt808"].counters
        assert counters.bytes_discarded == len(fixture("15_location_bad_check_code.hex"))
        await client.send(fixture("17_unsupported_0x0900.hex"))
        assert raw_frame(await client.receive())[12:-1] == b"\x00\x0b\x09\x00\x03"  # not supported
    finally:
        await client.close()


def test_identity_sniff_and_commands() -> None:
    assert jt808.canonical_terminal_id(PHONE) == PHONE and jt808.canonical_terminal_id(PHONE_2019) == PHONE_2019
    with pytest.raises(ValueError, match="12 or 20 digits"):
        jt808.canonical_terminal_id("1391234567")
    assert jt808.sniff(b"") is None and jt808.sniff(b"\x7e") is None
    assert jt808.sniff(fixture("01_register_spec.hex")[:2]) and jt808.sniff(fixture("05_location_spec.hex")[:5])
    assert jt808.sniff(b"EL\x01") is False and jt808.sniff(b"\x7e\x81") is False
    assert jt808.commands == {ev.CommandCode.REPORT_STATUS}
