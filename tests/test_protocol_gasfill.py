"""GF-3 codec: the vendor document's worked examples, the framer's resynchronisation, answers;
and one LOGIN through the real platform on loopback."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, date, datetime

import pytest
from conftest import FIXTURES, TerminalClient, fixture_bytes
from hypothesis import given
from hypothesis import strategies as st

from wuhai_iot import events as ev
from wuhai_iot.plugins.manager import protocols
from wuhai_iot.protocols.base import DecodeError, Discarded
from wuhai_iot.protocols.gasfill import (
    ACK,
    FILL_DECISION,
    FILL_REQUEST,
    FILL_RESULT,
    HEARTBEAT,
    LOGIN,
    TAG_INFO,
    TAG_QUERY,
    GasfillProtocol,
    crc16,
    encode_frame,
)
from wuhai_iot.server import Platform

NOW = datetime(2025, 11, 29, 7, 10, 5, tzinfo=UTC)
KEY = "station-150301-k"
STATION, SCALE = 150301, 2

gasfill = GasfillProtocol()


def fixture(name: str) -> bytes:
    return fixture_bytes(f"gasfill/{name}")


def decode(frame: bytes) -> ev.Message:
    return gasfill.decode(frame, NOW)


def tagged(tag: bytes) -> bytes:
    return bytes([len(tag)]) + tag


def fill_request_body(tag: bytes, gross: int = 21350, card: int = 9001, medium: int = 1) -> bytes:
    return tagged(tag) + gross.to_bytes(4, "little") + card.to_bytes(4, "little") + bytes([medium])


def login_frame(key: str | None, clock: int = 1764400000, seq: int = 1) -> bytes:
    material = STATION.to_bytes(4, "little") + bytes([SCALE]) + clock.to_bytes(4, "little")
    auth = hmac.new(key.encode(), material, hashlib.sha256).digest()[:16] if key else bytes(16)
    return encode_frame(STATION, SCALE, LOGIN, seq, b"GF-3.2.1" + clock.to_bytes(4, "little") + auth)


def split_frame(frame: bytes) -> dict[str, int | bytes]:
    """Header fields and body of an encoded frame, read straight from the §1 offsets."""
    length = int.from_bytes(frame[1:3], "little")
    assert frame[0] == 0x02 and frame[5 + length] == 0x03 and len(frame) == 6 + length
    assert int.from_bytes(frame[3 + length : 5 + length], "little") == crc16(frame[1 : 3 + length])
    return {
        "cmd": frame[3],
        "seq": frame[4],
        "station": int.from_bytes(frame[5:9], "little"),
        "scale": frame[9],
        "body": frame[10 : 3 + length],
    }


# --- §5 worked examples ---


def test_crc_check_value() -> None:
    assert crc16(b"123456789") == 0x4B37


def test_login_example_decodes_and_verifies() -> None:
    message = decode(fixture("01_login_spec.hex"))
    assert (message.type, message.terminal_id, message.seq) == ("LOGIN", "150301-2", 1)
    assert message.dedup_key is None
    [login] = message.events
    assert isinstance(login, ev.Login)
    assert login.firmware == "GF-3.2.1"
    assert login.device_time == message.device_time == datetime.fromtimestamp(1764400000, UTC)
    assert login.report_interval_s == 30
    assert gasfill.verify_login(message, KEY)


def test_login_with_wrong_key_or_auth_fails_and_without_key_passes() -> None:
    example = decode(fixture("01_login_spec.hex"))
    assert not gasfill.verify_login(example, "station-150301-x")
    assert gasfill.verify_login(example, None)
    assert gasfill.verify_login(decode(login_frame(None)), None)
    assert not gasfill.verify_login(decode(login_frame(None)), KEY)
    # The clock is part of the signed material: another clock with the same auth fails.
    frame = bytearray(fixture("01_login_spec.hex"))
    body = bytes(frame[10:38])
    other_clock = (1764400001).to_bytes(4, "little")
    replayed = encode_frame(STATION, SCALE, LOGIN, 1, body[:8] + other_clock + body[12:])
    assert not gasfill.verify_login(decode(replayed), KEY)


def test_fill_request_example() -> None:
    message = decode(fixture("02_fill_request_spec.hex"))
    assert (message.type, message.terminal_id, message.seq, message.device_time) == (
        "FILL_REQUEST", "150301-2", 5, None,
    )  # fmt: skip
    assert message.dedup_key is None
    [request] = message.events
    assert request == ev.FillRequest(
        protocol="gasfill",
        terminal_id="150301-2",
        seq=5,
        device_time=None,
        received_at=NOW,
        tag="E004015012345678",
        gross_before_g=21350,
        operator_card=9001,
        medium="LPG",
    )


def test_deny_example_is_encoded_byte_exact() -> None:
    request = decode(fixture("02_fill_request_spec.hex"))
    decision = ev.FillDecision(
        permit=False, reason=2, net_limit_g=0, cylinder_code="LPG-YSP35.5-0012345", message="检验过期"
    )
    frame = gasfill.encode_reply(request, decision, 5, NOW)
    assert frame == fixture("03_platform_fill_decision_deny_spec.hex")


def test_fill_result_example() -> None:
    message = decode(fixture("04_fill_result_spec.hex"))
    ended = datetime.fromtimestamp(1764400200, UTC)
    assert (message.type, message.seq, message.device_time) == ("FILL_RESULT", 7, ended)
    [result] = message.events
    assert result == ev.FillResult(
        protocol="gasfill",
        terminal_id="150301-2",
        seq=7,
        device_time=ended,
        received_at=NOW,
        request_seq=6,
        tag="E004015012345679",
        gross_before_g=14100,
        gross_after_g=27950,
        duration_s=95,
        outcome=0,
        ended_at=ended,
    )
    assert message.dedup_key == "FILL_RESULT:6:E004015012345679:14100:27950"


def test_fill_result_resent_after_login_has_the_same_dedup_key() -> None:
    original = fixture("04_fill_result_spec.hex")
    resent = encode_frame(STATION, SCALE, FILL_RESULT, 40, original[10:-3])
    assert decode(resent).seq == 40
    assert decode(resent).dedup_key == decode(original).dedup_key


# --- the other fixtures ---


def test_tag_query_fixture() -> None:
    message = decode(fixture("05_tag_query.hex"))
    assert message.type == "TAG_QUERY" and message.dedup_key is None and message.device_time is None
    [query] = message.events
    assert isinstance(query, ev.TagQuery) and query.tag == "E004015012345678"


def test_heartbeat_fixture_keeps_the_status_bits() -> None:
    message = decode(fixture("06_heartbeat.hex"))
    assert message.type == "HEARTBEAT" and message.dedup_key is None and message.device_time is None
    [beat] = message.events
    assert isinstance(beat, ev.Heartbeat) and beat.signal == 0b101


def test_epc_tag_fill_request_fixture() -> None:
    message = decode(fixture("07_fill_request_epc_tag.hex"))
    assert message.terminal_id == "150301-3"
    [request] = message.events
    assert isinstance(request, ev.FillRequest)
    assert (request.tag, request.medium, request.gross_before_g, request.operator_card) == (
        "3034257BF400B7800004CB2F", "CNG", 85000, 9002,
    )  # fmt: skip


def test_registered_as_plugin() -> None:
    registered = protocols()["gasfill"]
    assert isinstance(registered, GasfillProtocol)
    assert (registered.default_port, registered.sequence_modulus()) == (5710, 256)


# --- framer ---

ALL_FIXTURES = sorted((FIXTURES / "gasfill").glob("*.hex"))




def test_framer_cuts_merged_frames_in_one_read() -> None:
    frames = [fixture(p.name) for p in ALL_FIXTURES]
    assert gasfill.new_framer().feed(b"".join(frames)) == frames


def test_stx_and_etx_inside_a_frame_need_no_escaping() -> None:
    frame = encode_frame(STATION, SCALE, TAG_QUERY, 2, tagged(b"\x02\x03\x02\x03\x03\x02"))
    framer = gasfill.new_framer()
    assert framer.feed(b"\x03\x02\x03" + frame) == [Discarded(b"\x03\x02\x03", "no frame start"), frame]
    assert decode(frame).events[0].tag == "020302030302"


def test_bad_crc_then_good_frame_decodes_the_good_one() -> None:
    damaged = bytearray(fixture("02_fill_request_spec.hex"))
    damaged[-3] ^= 0xFF
    good = fixture("06_heartbeat.hex")
    out = gasfill.new_framer().feed(bytes(damaged) + good)
    assert out == [Discarded(bytes(damaged), "bad CRC"), good]
    assert decode(good).type == "HEARTBEAT"


def test_damaged_frame_whose_inner_stx_looks_long_does_not_hold_back_the_next_frame() -> None:
    # 150301 is 1d 4b 02 00 and the scale is 2: "02 00 02" inside reads as a frame of LEN 512.
    damaged = bytearray(fixture("04_fill_result_spec.hex"))
    damaged[15] ^= 0x01
    good = fixture("02_fill_request_spec.hex")
    framer = gasfill.new_framer()
    before = framer.feed(bytes(damaged))
    assert all(isinstance(item, Discarded) for item in before)
    out = before + framer.feed(good)
    assert [item for item in out if not isinstance(item, Discarded)] == [good]
    assert b"".join(item.data for item in out if isinstance(item, Discarded)) == bytes(damaged)


def test_length_above_512_is_dropped_byte_by_byte() -> None:
    too_long = b"\x02" + (513).to_bytes(2, "little") + b"\x10\x05"
    good = fixture("06_heartbeat.hex")
    out = gasfill.new_framer().feed(too_long + good)
    assert out == [Discarded(too_long, "length 513 outside 7..512"), good]


def test_missing_etx_is_dropped() -> None:
    good = fixture("06_heartbeat.hex")
    no_etx = good[:-1] + b"\x04"
    out = gasfill.new_framer().feed(no_etx + good)
    assert out == [Discarded(no_etx, "no ETX"), good]




# --- answers ---


@pytest.mark.parametrize(
    ("result", "code"),
    [
        (ev.AckResult.ACCEPTED, 0),
        (ev.AckResult.BAD_CONTENT, 1),
        (ev.AckResult.UNSUPPORTED, 1),
        (ev.AckResult.UNKNOWN_TERMINAL, 2),
        (ev.AckResult.AUTH_FAILED, 3),
        (ev.AckResult.NOT_LOGGED_IN, 4),
    ],
)
def test_ack_carries_the_acknowledged_cmd_and_seq(result: ev.AckResult, code: int) -> None:
    login = decode(fixture("01_login_spec.hex"))
    fields = split_frame(gasfill.encode_reply(login, ev.Ack(result, NOW), 300, NOW))
    assert fields == {
        "cmd": ACK, "seq": 300 % 256, "station": STATION, "scale": SCALE, "body": bytes([LOGIN, 1, code]),
    }  # fmt: skip


def test_permit_decision_carries_the_net_limit() -> None:
    request = decode(fixture("02_fill_request_spec.hex"))
    decision = ev.FillDecision(
        permit=True, reason=0, net_limit_g=14500, cylinder_code="LPG-1", message="允许充装"
    )
    fields = split_frame(gasfill.encode_reply(request, decision, 9, NOW))
    body = fields["body"]
    assert fields["cmd"] == FILL_DECISION and fields["seq"] == 9
    assert body[:8] == bytes([5, 0, 0, 0]) + (14500).to_bytes(4, "little")
    assert body[8:28] == b"LPG-1".ljust(20, b"\0")
    assert body[28:] == bytes([12]) + "允许充装".encode()


def test_deny_never_carries_a_net_limit() -> None:
    request = decode(fixture("02_fill_request_spec.hex"))
    decision = ev.FillDecision(permit=False, reason=99, net_limit_g=5000)
    body = split_frame(gasfill.encode_reply(request, decision, 1, NOW))["body"]
    assert body[:8] == bytes([5, 1, 99, 0, 0, 0, 0, 0])
    assert body[8:] == bytes(20) + b"\x00"


@pytest.mark.parametrize(
    ("message", "shown"),
    [
        ("检" * 21, "检" * 20),  # 63 bytes: cut after the 20th character (60 bytes)
        ("a" + "检" * 20, "a" + "检" * 19),  # 61 bytes: the 20th character would end at byte 61
        ("ab" + "检" * 20, "ab" + "检" * 19),  # 62 bytes: its first two bytes fit, the character does not
        ("a" * 60, "a" * 60),
    ],
)
def test_display_message_is_cut_at_a_character_boundary(message: str, shown: str) -> None:
    request = decode(fixture("02_fill_request_spec.hex"))
    decision = ev.FillDecision(permit=False, reason=1, message=message)
    body = split_frame(gasfill.encode_reply(request, decision, 1, NOW))["body"]
    assert body[29:].decode() == shown and body[28] == len(shown.encode()) <= 60


def test_tag_info_answer() -> None:
    query = decode(fixture("05_tag_query.hex"))
    info = ev.TagInfo(
        found=True,
        cylinder_code="LPG-YSP35.5-0012345",
        medium="LPG",
        next_inspection=date(2027, 3, 9),
        status=3,
        owner_station=150301,
    )
    fields = split_frame(gasfill.encode_reply(query, info, 12, NOW))
    header = (fields["cmd"], fields["seq"], fields["station"], fields["scale"])
    assert header == (TAG_INFO, 12, STATION, SCALE)
    assert fields["body"] == (
        b"\x01"
        + b"LPG-YSP35.5-0012345\x00"
        + b"\x01"
        + (20270309).to_bytes(4, "little")
        + b"\x03"
        + (150301).to_bytes(4, "little")
    )


def test_tag_info_not_found() -> None:
    query = decode(fixture("05_tag_query.hex"))
    body = split_frame(gasfill.encode_reply(query, ev.TagInfo(found=False), 1, NOW))["body"]
    assert body == b"\x00" + bytes(20) + b"\x09" + bytes(4) + b"\x00" + bytes(4)


def test_cylinder_code_longer_than_20_is_refused() -> None:
    request = decode(fixture("02_fill_request_spec.hex"))
    with pytest.raises(ValueError, match="cylinder code"):
        gasfill.encode_reply(request, ev.FillDecision(permit=False, reason=1, cylinder_code="X" * 21), 1, NOW)


def test_encode_command_is_refused() -> None:
    with pytest.raises(ValueError, match="no platform commands"):
        gasfill.encode_command("150301-2", ev.TerminalCommand(ev.CommandCode.RESTART), 1, NOW)


# --- errors ---


def test_unknown_cmd_is_unsupported_and_answered_with_result_1() -> None:
    frame = encode_frame(STATION, SCALE, 0x42, 17, b"\x00")
    with pytest.raises(DecodeError) as caught:
        decode(frame)
    error = caught.value
    assert (error.unsupported, error.terminal_id, error.seq) == (True, "150301-2", 17)
    fields = split_frame(gasfill.encode_error(error, 3, NOW) or b"")
    assert fields == {"cmd": ACK, "seq": 3, "station": STATION, "scale": SCALE, "body": bytes([0x42, 17, 1])}


@pytest.mark.parametrize(
    "body",
    [
        fill_request_body(bytes(8), medium=4),  # unknown medium
        fill_request_body(bytes(3)),  # tag shorter than 4
        fill_request_body(bytes(17)),  # tag longer than 16
        fill_request_body(bytes(8))[:-1],  # body one byte short
        fill_request_body(bytes(8)) + b"\x00",  # body one byte long
        b"",
    ],
)
def test_bad_fill_request_is_bad_content(body: bytes) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(encode_frame(STATION, SCALE, FILL_REQUEST, 6, body))
    error = caught.value
    assert (error.unsupported, error.terminal_id, error.seq) == (False, "150301-2", 6)
    assert split_frame(gasfill.encode_error(error, 4, NOW) or b"")["body"] == bytes([FILL_REQUEST, 6, 1])


def test_bad_outcome_and_bad_heartbeat_are_bad_content() -> None:
    result = bytearray(fixture("04_fill_result_spec.hex")[10:-3])
    result[-5] = 4
    with pytest.raises(DecodeError, match="outcome"):
        decode(encode_frame(STATION, SCALE, FILL_RESULT, 7, bytes(result)))
    with pytest.raises(DecodeError, match="HEARTBEAT"):
        decode(encode_frame(STATION, SCALE, HEARTBEAT, 7, b"\x01\x02"))


def test_damaged_frame_is_not_answered() -> None:
    frame = bytearray(fixture("06_heartbeat.hex"))
    frame[10] ^= 0x01
    with pytest.raises(DecodeError) as caught:
        decode(bytes(frame))
    assert caught.value.terminal_id is None
    assert gasfill.encode_error(caught.value, 1, NOW) is None


# --- properties ---




@given(
    st.binary(max_size=80),
    st.integers(0, 255),
    st.sampled_from([LOGIN, HEARTBEAT, FILL_REQUEST, FILL_RESULT, TAG_QUERY, 0x7F]),
)
def test_arbitrary_bodies_in_valid_frames_only_ever_raise_decode_error(
    body: bytes, seq: int, cmd: int
) -> None:
    try:
        message = decode(encode_frame(STATION, SCALE, cmd, seq, body))
    except DecodeError as error:
        assert error.terminal_id == "150301-2" and error.seq == seq
    else:
        assert message.seq == seq and message.terminal_id == "150301-2"


tags = st.binary(min_size=4, max_size=16)
u32 = st.integers(0, 2**32 - 1)


@given(
    station=u32,
    scale=st.integers(1, 64),
    seq=st.integers(0, 255),
    request_seq=st.integers(0, 255),
    tag=tags,
    before=u32,
    after=u32,
    duration=st.integers(0, 65535),
    outcome=st.integers(0, 3),
    ended=st.integers(1, 2**32 - 1),
    garbage=st.binary(max_size=40),
    chunk=st.integers(1, 50),
)
def test_generated_fill_results_round_trip_through_the_framer(
    station: int,
    scale: int,
    seq: int,
    request_seq: int,
    tag: bytes,
    before: int,
    after: int,
    duration: int,
    outcome: int,
    ended: int,
    garbage: bytes,
    chunk: int,
) -> None:
    body = (
        bytes([request_seq])
        + tagged(tag)
        + before.to_bytes(4, "little")
        + after.to_bytes(4, "little")
        + duration.to_bytes(2, "little")
        + bytes([outcome])
        + ended.to_bytes(4, "little")
    )
    frame = encode_frame(station, scale, FILL_RESULT, seq, body)
    stream = garbage + frame
    framer = gasfill.new_framer()
    out: list[bytes | Discarded] = []
    for i in range(0, len(stream), chunk):
        out += framer.feed(stream[i : i + chunk])
    frames = [item for item in out if isinstance(item, bytes)]
    # Garbage may itself hold a valid frame only by construction, never by chance here.
    assert frames[-1] == frame
    [result] = decode(frames[-1]).events
    assert isinstance(result, ev.FillResult)
    assert (result.terminal_id, result.seq, result.request_seq, result.tag) == (
        f"{station}-{scale}", seq, request_seq, tag.hex().upper(),
    )  # fmt: skip
    assert (result.gross_before_g, result.gross_after_g, result.duration_s, result.outcome) == (
        before, after, duration, outcome,
    )  # fmt: skip
    assert result.ended_at == datetime.fromtimestamp(ended, UTC)


@given(seq=st.integers(0, 255), tag=tags, gross=u32, card=u32, medium=st.sampled_from(sorted(ev.MEDIA)))
def test_generated_fill_requests_round_trip(seq: int, tag: bytes, gross: int, card: int, medium: int) -> None:
    frame = encode_frame(STATION, SCALE, FILL_REQUEST, seq, fill_request_body(tag, gross, card, medium))
    assert gasfill.new_framer().feed(frame) == [frame]
    [request] = decode(frame).events
    assert isinstance(request, ev.FillRequest)
    assert (request.seq, request.tag, request.gross_before_g, request.operator_card, request.medium) == (
        seq, tag.hex().upper(), gross, card, ev.MEDIA[medium],
    )  # fmt: skip


# --- loopback: the real platform ---


async def test_login_example_is_accepted_by_the_platform(platform: Platform) -> None:
    client = await TerminalClient.connect(platform, "gasfill")
    try:
        await client.send(fixture("01_login_spec.hex"))
        fields = split_frame(await client.receive())
        assert (fields["cmd"], fields["station"], fields["scale"]) == (ACK, STATION, SCALE)
        assert fields["body"] == bytes([LOGIN, 1, 0])
    finally:
        await client.close()


async def test_login_with_a_wrong_key_is_refused_and_closed(platform: Platform) -> None:
    client = await TerminalClient.connect(platform, "gasfill")
    try:
        await client.send(login_frame("station-150301-x"))
        assert split_frame(await client.receive())["body"] == bytes([LOGIN, 1, 3])
        assert await client.closed_by_platform()
    finally:
        await client.close()
