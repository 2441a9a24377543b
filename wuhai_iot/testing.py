"""The contract every protocol passes: a vendor runs it against theirs with one line.

    from wuhai_iot.testing import ProtocolContract

    class TestAcme(ProtocolContract, protocol=AcmeProtocol(), fixtures=Path(__file__).parent / "fixtures"):
        pass

(or, outside pytest, ``check_protocol(AcmeProtocol(), fixtures_dir)``, which raises AssertionError).

``fixtures`` is a folder of frames, one a file: ``NAME.hex`` holds hex bytes (``#`` lines are comments),
any other file (``NAME.line``) its raw bytes. ``contract.toml`` beside them says what each must decode to;
every frame file needs an entry, under its name without the suffix:

    [spec_login]
    type = "LOGIN"                   # Message.type
    terminal_id = "861234567890123"
    seq = 1
    stored = false                   # whether it has a dedup_key (is stored); default: leave unchecked
    key = "secret"                   # a LOGIN: verify_login passes with this secret, fails with any other
    packets = 3                      # a message sent in 3 frames (split packets), back to back in the file
    events = [{event = "Login", firmware = "V4.0.2"}]   # each event's record must contain these items

    [bad_checksum]
    error = "checksum"               # decoding raises DecodeError whose reason contains this
    answered = true                  # ...and encode_error answers it (false: stays silent)

Events are decoded with ``received_at = RECEIVED_AT``. What is checked, for every protocol alike: the
frames decode to the expected events; any split of the stream of all frames gives the same frames;
garbage, truncated and oversize input never raise out of the framer or the decoder (only DecodeError),
keep the framer's buffer within ``max_buffered`` and account for every byte (each is handed on once: in
a frame, a ``Discarded`` or the buffer); a resend has the same dedup key; every answer and command the
protocol encodes (and the bad content answer built from ``header_error``, where the protocol has one) is
one whole frame of its own framing that names the same terminal; a LOGIN refuses bad auth; decoded
terminal ids have the protocol's own id format; ``sniff`` claims every frame and ``text_frames`` holds.
"""

from __future__ import annotations

import random
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from wuhai_iot import events as ev
from wuhai_iot.protocols.base import DecodeError, Discarded, Protocol, Reassembled, whole_message

RECEIVED_AT = datetime(2026, 12, 1, 4, 0, 0, tzinfo=UTC)
CONTRACT_FILE = "contract.toml"
GARBAGE_BYTES = 64 * 1024
"""How much garbage the robustness checks feed (in chunks of up to 4 KB)."""


@dataclass(frozen=True)
class Fixture:
    name: str
    data: bytes
    expect: dict[str, Any] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return "error" not in self.expect


def fixture_bytes(path: Path) -> bytes:
    """A frame file's bytes: hex for ``.hex`` (``#`` lines are comments), the raw bytes otherwise."""
    if path.suffix == ".hex":
        lines = path.read_text(encoding="utf-8").splitlines()
        return bytes.fromhex("".join(line for line in lines if not line.lstrip().startswith("#")))
    return path.read_bytes()


def load_fixtures(folder: Path) -> list[Fixture]:
    """Every frame file of ``folder`` with its expectation from ``contract.toml``."""
    contract_path = folder / CONTRACT_FILE
    contract = tomllib.loads(contract_path.read_text(encoding="utf-8")) if contract_path.exists() else {}
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name != CONTRACT_FILE and p.suffix != ".md")
    missing = [p.name for p in files if p.stem not in contract]
    assert not missing, f"{contract_path}: no entry for {', '.join(missing)}"
    unknown = sorted(set(contract) - {p.stem for p in files})
    assert not unknown, f"{contract_path}: entries without a frame file: {', '.join(unknown)}"
    assert files, f"{folder} has no frame files"
    return [Fixture(p.stem, fixture_bytes(p), contract[p.stem]) for p in files]


def _frames(items: list[bytes | Discarded]) -> list[bytes]:
    return [item for item in items if isinstance(item, bytes)]


def _messages(items: list[bytes | Discarded]) -> list[bytes]:
    """What is decoded of each frame handed on (a ``Reassembled`` frame: the whole message)."""
    return [whole_message(item) for item in items if isinstance(item, bytes)]


def _feed_all(protocol: Protocol, chunks: Iterator[bytes] | list[bytes]) -> list[bytes | Discarded]:
    framer = protocol.new_framer()
    out: list[bytes | Discarded] = []
    for chunk in chunks:
        out.extend(framer.feed(chunk))
        assert framer.buffered() <= framer.max_buffered, (
            f"{protocol.name} framer keeps {framer.buffered()} bytes, more than its max_buffered {framer.max_buffered}"
        )
    return out


def _decode_quietly(protocol: Protocol, frame: bytes) -> ev.Message | DecodeError:
    """Decode; anything but DecodeError fails the contract. A DecodeError must be answerable, and reading
    the frame's header (``header_error``) raises nothing either."""
    protocol.header_error(frame, "contract")
    try:
        return protocol.decode(frame, RECEIVED_AT)
    except DecodeError as error:
        protocol.encode_error(error, 1, RECEIVED_AT)
        return error


# -- the checks ------------------------------------------------------------------------------------------


def check_fixtures_decode(protocol: Protocol, fixtures: list[Fixture]) -> None:
    """Each frame file is cut as one frame and decodes to what contract.toml says."""
    for fixture in fixtures:
        where = f"{protocol.name} fixture {fixture.name}"
        frames = _frames(protocol.new_framer().feed(fixture.data))
        expect = fixture.expect
        if fixture.valid and "packets" in expect:
            assert len(frames) == expect["packets"] and b"".join(frames) == fixture.data, (
                f"{where}: the framer does not cut it into its {expect['packets']} packets"
            )
            assert isinstance(frames[-1], Reassembled) and frames[-1].message == fixture.data, (
                f"{where}: the last packet does not complete the message"
            )
        elif fixture.valid:
            assert frames == [fixture.data], f"{where}: the framer does not cut it as one whole frame"
        result = _decode_quietly(protocol, fixture.data)
        if not fixture.valid:
            assert isinstance(result, DecodeError), f"{where}: decoded, but contract.toml expects {expect['error']!r}"
            assert expect["error"] in result.reason, f"{where}: reason {result.reason!r} lacks {expect['error']!r}"
            if "answered" in expect:
                answer = protocol.encode_error(result, 1, RECEIVED_AT)
                assert (answer is not None) == expect["answered"], f"{where}: answered is {answer is not None}"
            continue
        assert isinstance(result, ev.Message), f"{where}: {result.reason}"
        for key in ("type", "terminal_id", "seq"):
            if key in expect:
                assert getattr(result, key) == expect[key], f"{where}: {key} is {getattr(result, key)!r}"
        if "stored" in expect:
            assert (result.dedup_key is not None) == expect["stored"], f"{where}: dedup_key {result.dedup_key!r}"
        if "events" in expect:
            records = [ev.event_record(event) for event in result.events]
            assert len(records) == len(expect["events"]), f"{where}: {len(records)} events: {records}"
            for number, (record, wanted) in enumerate(zip(records, expect["events"], strict=True)):
                differing = {key: record.get(key) for key, value in wanted.items() if record.get(key) != value}
                assert not differing, f"{where}: event {number} has {differing}, expected {wanted}"


def check_any_split(protocol: Protocol, fixtures: list[Fixture]) -> None:
    """The valid frames back to back, cut anywhere (every 2-way split, byte by byte, random chunks), give
    the same frames (and the same messages) in the same order."""
    alone = [item for f in fixtures if f.valid for item in _feed_all(protocol, [f.data])]
    valid, messages = _frames(alone), _messages(alone)
    stream = b"".join(valid)
    whole = _feed_all(protocol, [stream])
    cut_wrongly = f"{protocol.name}: the frames back to back are cut wrongly"
    assert (_frames(whole), _messages(whole)) == (valid, messages), cut_wrongly
    for cut in range(1, len(stream)):
        got = _feed_all(protocol, [stream[:cut], stream[cut:]])
        assert (_frames(got), _messages(got)) == (valid, messages), f"{protocol.name}: split at byte {cut} differs"
    one_by_one = _feed_all(protocol, (stream[i : i + 1] for i in range(len(stream))))
    assert (_frames(one_by_one), _messages(one_by_one)) == (valid, messages)
    rng = random.Random(16)
    for _ in range(50):
        chunks, pos = [], 0
        while pos < len(stream):
            size = rng.randint(1, 64)
            chunks.append(stream[pos : pos + size])
            pos += size
        got = _feed_all(protocol, chunks)
        assert (_frames(got), _messages(got)) == (valid, messages), f"{protocol.name}: random chunks give other frames"


def _garbage_streams(fixtures: list[Fixture], rng: random.Random) -> Iterator[bytes]:
    frames = [f.data for f in fixtures]
    alphabet = bytes(sorted(set(b"".join(frames)))) or bytes(range(256))
    yield bytes(rng.randrange(256) for _ in range(GARBAGE_BYTES))
    yield bytes(rng.choice(alphabet) for _ in range(GARBAGE_BYTES))  # the protocol's own bytes, in disorder
    for frame in frames:
        for _ in range(20):
            damaged = bytearray(frame)
            for _ in range(rng.randint(1, 4)):
                damaged[rng.randrange(len(damaged))] = rng.randrange(256)
            yield bytes(damaged)
        for cut in range(1, len(frame)):
            yield frame[:cut]  # truncated
        yield frame[: len(frame) // 2] + frame  # a frame cut short, then a whole one


def check_garbage(protocol: Protocol, fixtures: list[Fixture]) -> None:
    """Random, damaged and truncated input: the framer never raises, stays within ``max_buffered`` and
    accounts for every byte (frames + discarded + kept = what came in); the decoder raises nothing but
    DecodeError, on what the framer cuts and on the raw pieces."""
    rng = random.Random(16)
    for stream in _garbage_streams(fixtures, rng):
        chunks = []
        pos = 0
        while pos < len(stream):
            size = rng.randint(1, 4096)
            chunks.append(stream[pos : pos + size])
            pos += size
        framer = protocol.new_framer()
        out: list[bytes | Discarded] = []
        for chunk in chunks:
            out.extend(framer.feed(chunk))
            assert framer.buffered() <= framer.max_buffered, f"{protocol.name}: the framer keeps {framer.buffered()} bytes"
        given = sum(len(item) if isinstance(item, bytes) else len(item.data) for item in out) + framer.buffered()
        assert given == len(stream), f"{protocol.name}: the framer lost or invented bytes ({given} of {len(stream)})"
        for frame in _messages(out):
            _decode_quietly(protocol, frame)
        _decode_quietly(protocol, stream[:4096])


def check_oversize(protocol: Protocol, fixtures: list[Fixture]) -> None:
    """A frame's start followed by far more bytes than any frame holds keeps the buffer bounded, and
    the next valid frame after it still comes out."""
    good = next(f.data for f in fixtures if f.valid)
    for fixture in fixtures:
        head = fixture.data[: max(1, len(fixture.data) // 2)]
        filler = bytes([head[-1]]) * GARBAGE_BYTES
        chunks = [head, *(filler[i : i + 4096] for i in range(0, len(filler), 4096)), b"\n", good + good]
        frames = _messages(_feed_all(protocol, chunks))
        assert frames[-1:] == [good], f"{protocol.name}: after an oversize {fixture.name}, a valid frame is lost"
        for frame in frames:
            _decode_quietly(protocol, frame)


def check_resend_dedup(protocol: Protocol, fixtures: list[Fixture]) -> None:
    """A stored message received again (a second later, or the next day) has the same dedup key."""
    for fixture in fixtures:
        if not fixture.valid:
            continue
        first = protocol.decode(fixture.data, RECEIVED_AT)
        for later in (timedelta(seconds=1), timedelta(hours=3)):
            again = protocol.decode(fixture.data, RECEIVED_AT + later)
            assert again.dedup_key == first.dedup_key, f"{protocol.name} {fixture.name}: resend has another dedup key"


def _one_frame_naming(protocol: Protocol, data: bytes | None, terminal_id: str, what: str) -> None:
    assert data is not None, f"{protocol.name}: no bytes for {what}"
    assert _frames(protocol.new_framer().feed(data)) == [data], f"{protocol.name}: {what} is not one whole frame"
    named = _decode_quietly(protocol, data).terminal_id  # (an answer usually decodes as an unsupported type)
    assert named == terminal_id, f"{protocol.name}: {what} names terminal {named}, not {terminal_id}"


def check_encoders(protocol: Protocol, fixtures: list[Fixture]) -> None:
    """Every answer (each ACK result; a decision or tag info to a request) and every command the protocol
    carries is one whole frame of its own framing, naming the terminal it goes to."""
    for fixture in fixtures:
        result = _decode_quietly(protocol, fixture.data)
        if isinstance(result, DecodeError):
            if result.terminal_id is not None and result.seq is not None:
                answer = protocol.encode_error(result, 7, RECEIVED_AT)
                if answer is not None:
                    _one_frame_naming(protocol, answer, result.terminal_id, f"the error answer to {fixture.name}")
            continue
        message = result
        first = message.events[0] if message.events else None
        replies: list[ev.Reply] = [ev.Ack(code, RECEIVED_AT) for code in ev.AckResult]
        if isinstance(first, ev.FillRequest):
            replies = [ev.FillDecision(True, 0, 12000, "CODE-1", "ok"), ev.FillDecision(False, 3, 0, "", "no")]
        elif isinstance(first, ev.TagQuery):
            replies = [ev.TagInfo(False), ev.TagInfo(True, "CODE-1", "LPG", None, 0, 150301)]
        for reply in replies:
            data = protocol.encode_reply(message, reply, 7, RECEIVED_AT)
            _one_frame_naming(protocol, data, message.terminal_id, f"{reply!r} to {fixture.name}")
        if type(protocol).header_error is not Protocol.header_error:
            # The answer when the decoder fails on this frame unexpectedly: bad content, to the same seq.
            error = protocol.header_error(fixture.data, "decoder raised")
            assert error is not None and (error.terminal_id, error.seq) == (message.terminal_id, message.seq), (
                f"{protocol.name} {fixture.name}: header_error reads {error and (error.terminal_id, error.seq)}"
            )
            answer = protocol.encode_error(error, 7, RECEIVED_AT)
            _one_frame_naming(protocol, answer, message.terminal_id, f"the bad content answer to {fixture.name}")
    terminal = next((f.expect["terminal_id"] for f in fixtures if f.valid and "terminal_id" in f.expect), None)
    for code in protocol.commands:
        argument = 60 if code is ev.CommandCode.SET_INTERVAL else None
        assert terminal is not None, f"{protocol.name}: no fixture names a terminal_id to send commands to"
        data = protocol.encode_command(terminal, ev.TerminalCommand(code, argument), 9, RECEIVED_AT)
        _one_frame_naming(protocol, data, terminal, f"command {code.value}")


def check_login(protocol: Protocol, fixtures: list[Fixture]) -> None:
    """A LOGIN with a ``key`` in contract.toml passes with that secret, fails with another; without one it
    passes unless the protocol says ``login_without_key = False``."""
    logins = [f for f in fixtures if "key" in f.expect]
    assert logins, f"{protocol.name}: contract.toml gives no LOGIN fixture with its key"
    for fixture in logins:
        message = protocol.decode(fixture.data, RECEIVED_AT)
        key = fixture.expect["key"]
        assert protocol.verify_login(message, key), f"{protocol.name} {fixture.name}: refused with its own key"
        assert protocol.verify_login(message, None) == protocol.login_without_key, (
            f"{protocol.name}: a terminal without a secret "
            + ("needs no auth" if protocol.login_without_key else "is refused (login_without_key is False)")
        )
        for wrong in (key + "x", key[:-1], "x" + key[1:]):
            assert not protocol.verify_login(message, wrong), f"{protocol.name} {fixture.name}: accepted key {wrong!r}"


def check_identity(protocol: Protocol, fixtures: list[Fixture]) -> None:
    """Decoded terminal ids are canonical ids of the protocol's format; ``sniff`` claims every frame (and,
    until it can tell, says None); a text protocol's frames are text lines."""
    description = protocol.terminal_id_format.description
    assert description, f"{protocol.name}: terminal_id_format has no description"
    sniffs = type(protocol).sniff is not Protocol.sniff
    for fixture in fixtures:
        if fixture.valid:
            terminal = protocol.decode(fixture.data, RECEIVED_AT).terminal_id
            assert protocol.canonical_terminal_id(terminal) == terminal, (
                f"{protocol.name} {fixture.name}: decoded id {terminal!r} is not canonical"
            )
            if protocol.text_frames:
                assert fixture.data.endswith(b"\n") and fixture.data.isascii(), f"{fixture.name} is not a text line"
            if sniffs:
                assert protocol.sniff(fixture.data) is True, f"{protocol.name}: sniff does not claim {fixture.name}"
                for cut in range(len(fixture.data)):
                    assert protocol.sniff(fixture.data[:cut]) in (True, None), (
                        f"{protocol.name}: sniff refuses the first {cut} bytes of {fixture.name}"
                    )


CHECKS = (
    check_fixtures_decode,
    check_any_split,
    check_garbage,
    check_oversize,
    check_resend_dedup,
    check_encoders,
    check_login,
    check_identity,
)


def check_protocol(protocol: Protocol, fixtures_dir: Path) -> None:
    """Run every check of the contract; AssertionError names the first broken promise."""
    fixtures = load_fixtures(fixtures_dir)
    for check in CHECKS:
        check(protocol, fixtures)


class ProtocolContract:
    """The contract as a pytest class: one test per check. See the module docstring."""

    protocol: ClassVar[Protocol]
    fixtures: ClassVar[Path]

    def __init_subclass__(cls, protocol: Protocol | None = None, fixtures: Path | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if protocol is not None:
            cls.protocol = protocol
        if fixtures is not None:
            cls.fixtures = Path(fixtures)

    def _run(self, check: Any) -> None:
        check(self.protocol, load_fixtures(self.fixtures))

    def test_fixtures_decode_to_the_expected_events(self) -> None:
        self._run(check_fixtures_decode)

    def test_any_split_gives_the_same_frames(self) -> None:
        self._run(check_any_split)

    def test_garbage_and_truncated_input_never_raise_and_stay_bounded(self) -> None:
        self._run(check_garbage)

    def test_oversize_input_stays_bounded_and_the_next_frame_comes_out(self) -> None:
        self._run(check_oversize)

    def test_resends_have_the_same_dedup_key(self) -> None:
        self._run(check_resend_dedup)

    def test_answers_and_commands_are_whole_frames_naming_the_terminal(self) -> None:
        self._run(check_encoders)

    def test_login_refuses_bad_auth(self) -> None:
        self._run(check_login)

    def test_terminal_ids_sniff_and_text_frames(self) -> None:
        self._run(check_identity)
