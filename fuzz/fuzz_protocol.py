"""Fuzz one wire protocol's framer, decoder and encoders with atheris (coverage-guided, libFuzzer).

Not part of the test suite (the property tests in tests/test_properties.py run there); run it by hand
for a while, one protocol at a time, keeping what it finds in the protocol's corpus:

    pip install -e '.[fuzz]'
    python fuzz/fuzz_protocol.py elink device_fixtures/fuzz/elink -max_total_time=600

The corpus folders start from the protocol's example frames (``--seed`` copies them in). A finding is
any exception out of the framer, any exception but ``DecodeError`` out of the decoder, an answer that
cannot be encoded, or a framer holding more than HELD_LIMIT bytes; atheris then writes the input to a
``crash-*`` file, which becomes a fixture and a test once the fault is fixed.
"""

from __future__ import annotations

import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from wuhai_iot import events as ev
    from wuhai_iot.plugins import protocols
    from wuhai_iot.protocols.base import DecodeError, Discarded

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 29, tzinfo=UTC)
HELD_LIMIT = 4096


def held(framer: object) -> int:
    return sum(len(value) for value in vars(framer).values() if isinstance(value, (bytes, bytearray)))


def target(name: str):  # type: ignore[no-untyped-def]
    protocol = protocols()[name]

    def one_input(data: bytes) -> None:
        provider = atheris.FuzzedDataProvider(data)
        cuts = provider.ConsumeIntListInRange(provider.ConsumeIntInRange(0, 8), 0, 64)
        stream = provider.ConsumeBytes(provider.remaining_bytes())
        framer = protocol.new_framer()
        position = 0
        for size in [*cuts, len(stream)]:
            piece, position = stream[position : position + size], position + size
            for item in framer.feed(piece):
                if isinstance(item, Discarded):
                    continue
                try:
                    message = protocol.decode(item, NOW)
                except DecodeError as error:
                    protocol.encode_error(error, 1, NOW)
                    continue
                # Every answer the platform may give to what decoded must encode.
                first = message.events[0] if message.events else None
                if isinstance(first, ev.FillRequest):
                    protocol.encode_reply(message, ev.FillDecision(permit=False, reason=99, message="拒绝"), 1, NOW)
                elif isinstance(first, ev.TagQuery):
                    protocol.encode_reply(message, ev.TagInfo(found=False), 1, NOW)
                elif isinstance(first, ev.Register):
                    continue
                else:
                    protocol.encode_reply(message, ev.Ack(ev.AckResult.ACCEPTED, NOW), 1, NOW)
            if held(framer) > HELD_LIMIT:
                raise AssertionError(f"the framer holds {held(framer)} bytes")

    return one_input


def seed(name: str, corpus: Path) -> None:
    """Copy the protocol's example frames into the corpus folder (as raw bytes)."""
    corpus.mkdir(parents=True, exist_ok=True)
    for path in sorted((ROOT / "device_fixtures" / name).glob("*")):
        if path.suffix == ".line":
            shutil.copyfile(path, corpus / f"seed-{path.stem}")
        elif path.suffix == ".hex":
            text = "".join(line for line in path.read_text(encoding="utf-8").splitlines(True)
                           if not line.lstrip().startswith("#"))  # fmt: skip
            try:
                (corpus / f"seed-{path.stem}").write_bytes(b"\x00" + bytes.fromhex("".join(text.split())))
            except ValueError:
                continue


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in protocols():
        raise SystemExit(f"usage: fuzz_protocol.py PROTOCOL [CORPUS] [libFuzzer options]; protocols: "
                         f"{', '.join(sorted(protocols()))}")  # fmt: skip
    name = sys.argv.pop(1)
    if "--seed" in sys.argv:
        sys.argv.remove("--seed")
        seed(name, ROOT / "device_fixtures" / "fuzz" / name)
    atheris.Setup(sys.argv, target(name))
    atheris.Fuzz()


if __name__ == "__main__":
    main()
