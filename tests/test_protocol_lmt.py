"""LMT-4 codec: the vendor document's examples, framing, errors, answers and commands (no server)."""

from __future__ import annotations

import functools
import hashlib
import hmac
import operator
import random
from datetime import UTC, datetime

import pytest
from conftest import FIXTURES
from hypothesis import given
from hypothesis import strategies as st

from wuhai_iot import events as ev
from wuhai_iot.alarms.kinds import alarm_kinds
from wuhai_iot.plugins import protocols
from wuhai_iot.protocols.base import DecodeError, Discarded
from wuhai_iot.protocols.lmt import CST, LmtProtocol, encode_line

lmt = LmtProtocol()
TERMINAL = "861234567890123"
SECRET = "secret-lmt-key01"
NOW = datetime(2026, 11, 29, 0, 30, tzinfo=UTC)
"""2026-11-29 08:30:00 in China Standard Time, the moment of the document's examples."""
RECEIVED = datetime(2026, 11, 29, 0, 30, 2, tzinfo=UTC)
SPEC_LINES = ("spec_login.line", "spec_status.line", "spec_trap_raised.line", "spec_maint_start.line")


def line(name: str) -> bytes:
    return (FIXTURES / "lmt" / name).read_bytes()


def decode(data: bytes) -> ev.Message:
    return lmt.decode(data, RECEIVED)


def frames_of(framer_output: list[bytes | Discarded]) -> list[bytes]:
    return [item for item in framer_output if isinstance(item, bytes)]


def xor(text: str) -> str:
    """The checksum as the document defines it, computed independently of the codec."""
    return f"{functools.reduce(operator.xor, text.encode(), 0):02X}"


def test_registered_as_builtin_plugin() -> None:
    protocol = protocols()["lmt"]
    assert isinstance(protocol, LmtProtocol)
    assert protocol.default_port == 5702


# --- the vendor document's examples ------------------------------------------------------------------


def test_spec_login() -> None:
    message = decode(line("spec_login.line"))
    assert (message.type, message.terminal_id, message.seq, message.dedup_key) == ("LOGIN", TERMINAL, 1, None)
    assert message.device_time == NOW
    assert message.events == [
        ev.Login(protocol="lmt", terminal_id=TERMINAL, seq=1, device_time=NOW, received_at=RECEIVED,
                 firmware="LMT-4.1", report_interval_s=30)  # fmt: skip
    ]
    assert lmt.verify_login(message, SECRET)


def test_spec_status() -> None:
    message = decode(line("spec_status.line"))
    assert (message.type, message.seq, message.dedup_key) == ("ST", 17, "20261129083000:ST:17")
    assert message.events == [
        ev.ElevatorStatus(
            protocol="lmt", terminal_id=TERMINAL, seq=17, device_time=NOW, received_at=RECEIVED,
            floor=12, direction=ev.Direction.UP, door=ev.Door.CLOSED, running=True, door_zone=False,
            occupied=True, speed_mps=1.5, load_pct=40, power=True, safety_circuit=None, mode="normal",
        )
    ]  # fmt: skip


def test_spec_trap_in_basement() -> None:
    message = decode(line("spec_trap_raised.line"))
    assert (message.type, message.seq, message.dedup_key) == ("EV", 18, "20261129083000:EV:18")
    assert message.events == [
        ev.ElevatorFault(protocol="lmt", terminal_id=TERMINAL, seq=18, device_time=NOW, received_at=RECEIVED,
                         kind="trapped", vendor_code="TRAP", active=True, floor=-1)  # fmt: skip
    ]


def test_spec_maintenance_start() -> None:
    message = decode(line("spec_maint_start.line"))
    assert (message.type, message.seq, message.dedup_key) == ("MS", 19, "20261129083000:MS:19")
    assert message.events == [
        ev.MaintenanceStart(protocol="lmt", terminal_id=TERMINAL, seq=19, device_time=NOW, received_at=RECEIVED,
                            card=123456)  # fmt: skip
    ]


def test_spec_answer_encodes_byte_exact() -> None:
    status = decode(line("spec_status.line"))
    assert lmt.encode_reply(status, ev.Ack(ev.AckResult.ACCEPTED, NOW), 900, NOW) == line("spec_ack_status.line")


@pytest.mark.parametrize("name", [*SPEC_LINES, "spec_ack_status.line"])
def test_spec_checksums_are_xor_between_hash_and_star(name: str) -> None:
    text = line(name).decode("ascii").rstrip("\r\n")
    body, checksum = text[1:].split("*")
    assert xor(body) == checksum
    _, terminal, seq, time_text, type_, payload = body.split(",", 5)
    assert encode_line(terminal, int(seq), time_text, type_, payload) == line(name)


def test_cst_time_across_midnight_is_previous_utc_day() -> None:
    message = decode(encode_line(TERMINAL, 3, "20261201050000", "HB"))
    assert message.device_time == datetime(2026, 11, 30, 21, 0, tzinfo=UTC)


# --- more device lines ---------------------------------------------------------------------------------


def test_status_basement_b2() -> None:
    (status,) = decode(line("status_basement_b2.line")).events
    assert isinstance(status, ev.ElevatorStatus)
    assert (status.terminal_id, status.seq, status.floor) == ("869012345678901", 4120, -2)
    assert (status.direction, status.door, status.running) == (ev.Direction.DOWN, ev.Door.OPENING, False)
    assert (status.door_zone, status.occupied, status.speed_mps, status.load_pct) == (True, False, 0.0, None)
    assert (status.power, status.safety_circuit, status.mode) == (True, True, "normal")


def test_status_unknown_keys_are_ignored_in_any_order() -> None:
    (status,) = decode(line("status_unknown_keys.line")).events
    assert isinstance(status, ev.ElevatorStatus)
    assert (status.floor, status.direction, status.door, status.running) == (3, ev.Direction.DOWN, ev.Door.CLOSED, True)
    assert (status.speed_mps, status.load_pct, status.mode, status.safety_circuit) == (0.25, 0, "inspection", True)


def test_status_missing_keys() -> None:
    (status,) = decode(encode_line(TERMINAL, 5, "20261129083000", "ST", "fl=1")).events
    assert isinstance(status, ev.ElevatorStatus)
    assert (status.direction, status.door, status.running) == (ev.Direction.STOPPED, ev.Door.UNKNOWN, False)
    assert (status.door_zone, status.occupied, status.speed_mps, status.load_pct) == (None, None, None, None)
    assert (status.power, status.safety_circuit, status.mode) == (None, None, None)


@pytest.mark.parametrize(
    ("word", "mode"),
    [("N", "normal"), ("I", "inspection"), ("F", "fire"), ("M", "maintenance"), ("X", "out_of_service")],
)
def test_status_modes(word: str, mode: str) -> None:
    (status,) = decode(encode_line(TERMINAL, 5, "20261129083000", "ST", f"mode={word}")).events
    assert isinstance(status, ev.ElevatorStatus) and status.mode == mode


@pytest.mark.parametrize(
    ("word", "kind"),
    [
        ("TRAP", "trapped"), ("DOOR_OPEN_RUN", "door_open_moving"), ("OVER_TOP", "overshoot_top"),
        ("OVER_BOTTOM", "overshoot_bottom"), ("OVERSPEED", "overspeed"), ("STOP_OUT_ZONE", "stopped_outside_zone"),
        ("DOOR_FAULT", "door_fault"), ("POWER_FAIL", "power_lost"), ("SAFETY_OPEN", "safety_circuit"),
        ("LOCK_FAULT", "door_lock"), ("ALARM_BTN", "alarm_button"), ("REOPEN", "reopening"),
    ],
)  # fmt: skip
def test_event_words_map_to_canonical_kinds(word: str, kind: str) -> None:
    (fault,) = decode(encode_line(TERMINAL, 6, "20261129083000", "EV", f"st=0;code={word}")).events
    assert isinstance(fault, ev.ElevatorFault)
    assert (fault.kind, fault.vendor_code, fault.active, fault.floor) == (kind, word, False, None)
    assert alarm_kinds()[kind].domain == "elevators"


def test_unknown_event_code_is_kept() -> None:
    (fault,) = decode(line("event_unknown_code.line")).events
    assert isinstance(fault, ev.ElevatorFault)
    assert (fault.kind, fault.vendor_code, fault.active, fault.floor) == ("unknown_fault", "ROPE_SLIP", True, 3)


def test_trap_cleared() -> None:
    (fault,) = decode(line("event_trap_cleared.line")).events
    assert isinstance(fault, ev.ElevatorFault)
    assert (fault.kind, fault.active, fault.floor) == ("trapped", False, -1)


def test_heartbeat_is_never_stored() -> None:
    message = decode(line("heartbeat.line"))
    assert (message.type, message.seq, message.dedup_key) == ("HB", 20, None)
    assert message.events == [
        ev.Heartbeat(protocol="lmt", terminal_id=TERMINAL, seq=20,
                     device_time=datetime(2026, 11, 29, 0, 31, tzinfo=UTC), received_at=RECEIVED, signal=23)
    ]  # fmt: skip
    (bare,) = decode(line("heartbeat_bare_newline.line")).events
    assert isinstance(bare, ev.Heartbeat) and bare.signal is None


def test_command_reply() -> None:
    message = decode(line("command_reply.line"))
    (reply,) = message.events
    assert isinstance(reply, ev.CommandReply)
    assert (message.dedup_key, reply.command_seq, reply.result) == ("20261129083204:RS:21", 7, "done")
    (refused,) = decode(encode_line(TERMINAL, 22, "20261129083204", "RS", "res=NO;cmd=8")).events
    assert isinstance(refused, ev.CommandReply) and (refused.command_seq, refused.result) == (8, "refused")


def test_maintenance_end() -> None:
    message = decode(line("maint_end.line"))
    (end,) = message.events
    assert isinstance(end, ev.MaintenanceEnd)
    assert (message.dedup_key, end.card, end.items) == ("20261129091530:ME:40", 123456, 31)
    assert end.device_time == datetime(2026, 11, 29, 1, 15, 30, tzinfo=UTC)


def test_resend_has_the_same_dedup_key_and_a_new_time_does_not() -> None:
    first = decode(line("spec_status.line"))
    resend = lmt.decode(line("spec_status.line"), datetime(2026, 11, 29, 3, 0, tzinfo=UTC))
    later = decode(encode_line(TERMINAL, 17, "20261129083010", "ST", "fl=12"))
    assert first.dedup_key == resend.dedup_key != later.dedup_key


# --- errors --------------------------------------------------------------------------------------------


def test_bad_checksum_is_rejected_and_answered_err() -> None:
    with pytest.raises(DecodeError) as caught:
        decode(line("bad_checksum.line"))
    assert (caught.value.terminal_id, caught.value.seq, caught.value.unsupported) == (TERMINAL, 17, False)
    assert "checksum" in caught.value.reason
    body = f"LMT,{TERMINAL},17,20261129083000,ACK,ERR"
    assert lmt.encode_error(caught.value, 901, NOW) == f"#{body}*{xor(body)}\r\n".encode()


def test_unsupported_type_is_answered_err() -> None:
    with pytest.raises(DecodeError) as caught:
        decode(line("unsupported_type.line"))
    assert (caught.value.terminal_id, caught.value.seq, caught.value.unsupported) == (TERMINAL, 41, True)
    answer = lmt.encode_error(caught.value, 902, NOW)
    assert answer is not None and answer.startswith(b"#LMT,861234567890123,41,20261129083000,ACK,ERR*")


@pytest.mark.parametrize(
    ("type_", "payload", "reason"),
    [
        ("ST", "fl=5;dir=Q;door=C;run=0", "dir=Q"),
        ("ST", "door=X", "door=X"),
        ("ST", "run=2", "run=2"),
        ("ST", "spd=fast", "spd=fast"),
        ("ST", "fl=B0", "fl=B0"),
        ("ST", "fl=1;fl=2", "twice"),
        ("ST", "fl", "key=value"),
        ("EV", "code=TRAP;st=7", "st=7"),
        ("EV", "code=TRAP", "st"),
        ("EV", "st=1", "code"),
        ("MS", "card=0012345", "card"),
        ("ME", "items=3", "card"),
        ("RS", "cmd=7;res=MAYBE", "res=MAYBE"),
        ("RS", "res=OK", "cmd"),
        ("HB", "csq=40", "csq=40"),
    ],
)
def test_bad_values_are_answered_err(type_: str, payload: str, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(encode_line(TERMINAL, 42, "20261129091700", type_, payload))
    assert (caught.value.terminal_id, caught.value.seq, caught.value.unsupported) == (TERMINAL, 42, False)
    assert reason in caught.value.reason
    assert lmt.encode_error(caught.value, 903, NOW) is not None


def test_bad_direction_fixture() -> None:
    with pytest.raises(DecodeError, match="dir=Q") as caught:
        decode(line("status_bad_direction.line"))
    assert (caught.value.terminal_id, caught.value.seq) == (TERMINAL, 42)


@pytest.mark.parametrize("time_text", ["20261329083000", "2026112908300", "20261129083000Z", "00000000000000"])
def test_bad_time_is_answered_err(time_text: str) -> None:
    with pytest.raises(DecodeError, match="bad time") as caught:
        decode(encode_line(TERMINAL, 43, time_text, "HB"))
    assert (caught.value.terminal_id, caught.value.seq) == (TERMINAL, 43)


@pytest.mark.parametrize(
    ("data", "terminal", "seq"),
    [
        (b"#LMT,86123456789012,5,20261129083000,HB*00\r\n", None, None),
        (b"#LMT,861234567890123,70000,20261129083000,HB*00\r\n", TERMINAL, None),
        (b"no frame at all\r\n", None, None),
        (b"#LMT,861234567890123,5,20261129083000,HB\r\n", TERMINAL, 5),
        (b"#LMT,861234567890123,5,20261129083000,HB*6b\r\n", TERMINAL, 5),
        (b"#LMT,861234567890123,5,20261129\xff83000,HB*00\r\n", TERMINAL, 5),
        (b"\x00\x17zz#LMT,861234567890123,5,20261129083000,HB*64\r\n", TERMINAL, 5),
    ],
)
def test_unreadable_lines_are_answered_err_only_with_terminal_and_seq(
    data: bytes, terminal: str | None, seq: int | None
) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(data)
    assert (caught.value.terminal_id, caught.value.seq) == (terminal, seq)
    answer = lmt.encode_error(caught.value, 904, NOW)
    assert (answer is not None) == (seq is not None)


def test_other_protocol_name_is_answered_err() -> None:
    body = f"LMX,{TERMINAL},5,20261129083000,HB"
    with pytest.raises(DecodeError, match="not LMT") as caught:
        decode(f"#{body}*{xor(body)}\r\n".encode())
    assert (caught.value.terminal_id, caught.value.seq) == (TERMINAL, 5)


# --- framing -------------------------------------------------------------------------------------------




def test_several_lines_in_one_chunk_with_bare_newline_and_empty_lines() -> None:
    stream = line("spec_status.line") + b"\r\n" + line("heartbeat_bare_newline.line") + line("maint_end.line")
    output = lmt.new_framer().feed(stream)
    assert output == [
        line("spec_status.line"),
        Discarded(b"\r\n", "empty line"),
        line("heartbeat_bare_newline.line"),
        line("maint_end.line"),
    ]
    assert [decode(frame).type for frame in frames_of(output)] == ["ST", "HB", "ME"]


def test_over_long_line_is_cut_answered_err_and_the_next_line_decodes() -> None:
    long_line = encode_line(TERMINAL, 50, "20261129083000", "ST", "fl=1;pad=" + "x" * 900)
    framer = lmt.new_framer()
    output = framer.feed(long_line[:300]) + framer.feed(long_line[300:] + line("spec_status.line")[:10])
    output += framer.feed(line("spec_status.line")[10:])
    frames = frames_of(output)
    assert frames[0] == long_line[:513]
    assert b"".join(item.data for item in output if isinstance(item, Discarded)) == long_line[513:]
    with pytest.raises(DecodeError, match="line longer than 512 bytes") as caught:
        decode(frames[0])
    assert (caught.value.terminal_id, caught.value.seq) == (TERMINAL, 50)
    assert lmt.encode_error(caught.value, 905, NOW) is not None
    assert decode(frames[1]).events == decode(line("spec_status.line")).events
    assert len(frames) == 2


def padded_status(total_length: int) -> bytes:
    """A valid status line of exactly ``total_length`` bytes including ``\\r\\n``."""
    short = encode_line(TERMINAL, 51, "20261129083000", "ST", "fl=1;pad=")
    return encode_line(TERMINAL, 51, "20261129083000", "ST", "fl=1;pad=" + "x" * (total_length - len(short)))


def test_line_of_exactly_512_bytes_is_accepted_and_513_is_not() -> None:
    framer = lmt.new_framer()
    fits, too_long = padded_status(512), padded_status(513)
    assert (len(fits), len(too_long)) == (512, 513)
    frames = frames_of(framer.feed(fits + too_long + line("heartbeat.line")))
    assert frames == [fits, too_long, line("heartbeat.line")]
    assert decode(frames[0]).seq == 51
    with pytest.raises(DecodeError, match="longer than 512"):
        decode(frames[1])


def test_garbage_before_hash_is_a_frame_answered_err() -> None:
    good = line("spec_maint_start.line")
    ascii_garbage, binary_garbage = frames_of(lmt.new_framer().feed(b"+CME ERROR: 3" + good + b"\x00\xff" + good))
    with pytest.raises(DecodeError, match="garbage before") as caught:
        decode(ascii_garbage)
    assert (caught.value.terminal_id, caught.value.seq) == (TERMINAL, 19)
    with pytest.raises(DecodeError, match="not ASCII") as caught:
        decode(binary_garbage)
    assert (caught.value.terminal_id, caught.value.seq) == (TERMINAL, 19)


# --- answers and commands ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "word"),
    [
        (ev.AckResult.ACCEPTED, "OK"), (ev.AckResult.BAD_CONTENT, "ERR"), (ev.AckResult.UNKNOWN_TERMINAL, "UNKNOWN"),
        (ev.AckResult.AUTH_FAILED, "AUTH"), (ev.AckResult.NOT_LOGGED_IN, "LOGIN"), (ev.AckResult.UNSUPPORTED, "ERR"),
    ],
)  # fmt: skip
def test_ack_words(result: ev.AckResult, word: str) -> None:
    answer = lmt.encode_reply(decode(line("maint_end.line")), ev.Ack(result, NOW), 906, NOW)
    body = f"LMT,{TERMINAL},40,20261129083000,ACK,{word}"
    assert answer == f"#{body}*{xor(body)}\r\n".encode()


def test_login_ack_carries_platform_time_only_when_ok() -> None:
    login = decode(line("spec_login.line"))
    now = datetime(2026, 11, 29, 16, 5, 9, tzinfo=UTC)
    ok = lmt.encode_reply(login, ev.Ack(ev.AckResult.ACCEPTED, now), 907, now)
    body = f"LMT,{TERMINAL},1,20261130000509,ACK,OK;t=20261130000509"
    assert ok == f"#{body}*{xor(body)}\r\n".encode()
    refused = lmt.encode_reply(login, ev.Ack(ev.AckResult.AUTH_FAILED, now), 908, now)
    assert refused.startswith(f"#LMT,{TERMINAL},1,20261130000509,ACK,AUTH*".encode())


@pytest.mark.parametrize(
    ("command", "payload"),
    [
        (ev.TerminalCommand(ev.CommandCode.REPORT_STATUS), "q=ST"),
        (ev.TerminalCommand(ev.CommandCode.SET_INTERVAL, 60), "iv=60"),
        (ev.TerminalCommand(ev.CommandCode.RESTART), "reboot=1"),
    ],
)
def test_commands(command: ev.TerminalCommand, payload: str) -> None:
    body = f"LMT,{TERMINAL},7,20261129083000,CMD,{payload}"
    assert lmt.encode_command(TERMINAL, command, 7, NOW) == f"#{body}*{xor(body)}\r\n".encode()


def test_commands_lmt_cannot_express() -> None:
    with pytest.raises(ValueError, match="set_clock"):
        lmt.encode_command(TERMINAL, ev.TerminalCommand(ev.CommandCode.SET_CLOCK), 7, NOW)
    with pytest.raises(ValueError, match="interval"):
        lmt.encode_command(TERMINAL, ev.TerminalCommand(ev.CommandCode.SET_INTERVAL), 7, NOW)


# --- login authentication ------------------------------------------------------------------------------


def login_with_key(key: str | None, time_text: str = "20261129083000") -> ev.Message:
    payload = "fw=LMT-4.1;iv=30" + ("" if key is None else f";key={key}")
    return decode(encode_line(TERMINAL, 1, time_text, "LOGIN", payload))


def test_login_key_is_hmac_of_terminal_and_time_text() -> None:
    time_text = "20261201120000"
    key = hmac.new(SECRET.encode(), (TERMINAL + time_text).encode(), hashlib.sha256).hexdigest()[:32]
    assert lmt.verify_login(login_with_key(key, time_text), SECRET)
    assert not lmt.verify_login(login_with_key(key, "20261201120001"), SECRET)
    assert not lmt.verify_login(login_with_key(key.upper(), time_text), SECRET)


def test_login_with_wrong_secret_or_no_key() -> None:
    spec_login = decode(line("spec_login.line"))
    assert not lmt.verify_login(spec_login, "secret-lmt-key02")
    assert not lmt.verify_login(login_with_key("0"), SECRET)
    assert not lmt.verify_login(login_with_key(None), SECRET)


@pytest.mark.parametrize("secret", [None, ""])
def test_terminal_without_secret_needs_no_key(secret: str | None) -> None:
    assert lmt.verify_login(login_with_key("0"), secret)
    assert lmt.verify_login(decode(line("spec_login.line")), secret)


# --- properties ----------------------------------------------------------------------------------------






status_values = st.fixed_dictionaries(
    {},
    optional={
        "fl": st.one_of(st.integers(-9, 150).map(str), st.integers(1, 9).map(lambda n: f"B{n}")),
        "dir": st.sampled_from("UDS"),
        "door": st.sampled_from(["O", "C", "OP", "CL"]),
        "run": st.sampled_from("01"),
        "dz": st.sampled_from("01"),
        "occ": st.sampled_from("01"),
        "spd": st.integers(0, 1000).map(lambda cm: f"{cm / 100:.2f}"),
        "mode": st.sampled_from("NIFMX"),
        "pwr": st.sampled_from("01"),
        "ld": st.integers(0, 150).map(str),
        "sc": st.sampled_from("01"),
        "zz": st.text("abc123", max_size=5),
    },
)


@given(
    values=status_values,
    seq=st.integers(0, 65535),
    moment=st.datetimes(datetime(2000, 1, 2), datetime(2099, 12, 30), timezones=st.just(UTC)),
    order_seed=st.integers(0, 1000),
    cut=st.integers(0, 200),
    bare_newline=st.booleans(),
)
def test_generated_status_lines_round_trip(
    values: dict[str, str], seq: int, moment: datetime, order_seed: int, cut: int, bare_newline: bool
) -> None:
    items = list(values.items())
    random.Random(order_seed).shuffle(items)
    time_text = moment.astimezone(CST).strftime("%Y%m%d%H%M%S")
    data = encode_line(TERMINAL, seq, time_text, "ST", ";".join(f"{k}={v}" for k, v in items))
    if bare_newline:
        data = data[:-2] + b"\n"
    framer = lmt.new_framer()
    frames = frames_of(framer.feed(data[:cut]) + framer.feed(data[cut:]))
    assert frames == [data]
    message = decode(frames[0])
    (status,) = message.events
    assert isinstance(status, ev.ElevatorStatus)
    assert (message.seq, message.device_time) == (seq, moment.replace(microsecond=0))
    floor = values.get("fl")
    assert status.floor == (None if floor is None else -int(floor[1:]) if floor.startswith("B") else int(floor))
    assert status.direction == {"U": "up", "D": "down", "S": "stopped"}[values.get("dir", "S")]
    assert status.door == {"O": "open", "C": "closed", "OP": "opening", "CL": "closing", None: "unknown"}[
        values.get("door")
    ]
    assert status.running == (values.get("run") == "1")
    for key, attribute in [("dz", "door_zone"), ("occ", "occupied"), ("pwr", "power"), ("sc", "safety_circuit")]:
        assert getattr(status, attribute) == (None if key not in values else values[key] == "1")
    assert status.speed_mps == (None if "spd" not in values else float(values["spd"]))
    assert status.load_pct == (None if "ld" not in values else int(values["ld"]))
    assert (status.mode is None) == ("mode" not in values)
