"""Frames files: what ``wuhai-iot decode --file`` reads, ``replay`` sends and a capture records (``wuhai-iot
capture start``, or every connection of a protocol with ``[protocols.NAME] capture_dir``).

One frame a line, as a person would write it down:

- a binary protocol's frame as hex (spaces allowed): ``45 4c 01 00 1b ...``;
- a text protocol's frame (``Protocol.text_frames``) as its text, without the line ending, which is
  added back as ``\\r\\n`` (``#LMT,861234567890123,1,...*4F``); ``hex:`` before a line gives its exact bytes;
- ``+SECONDS`` before the frame (``+1.5 45 4c ...``): wait that long before sending it (``replay``);
- ``<`` before the frame: the platform's answer, recorded by ``capture``; ``replay`` skips it;
- empty lines and lines starting with ``;`` are comments; so are lines starting with ``#`` for a binary
  protocol (the ``device_fixtures`` files can be read as they are).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from wuhai_iot.protocols.base import Protocol

_DELAY = re.compile(r"\+([0-9]+(?:\.[0-9]+)?)\s+")
CAPTURE_POLL_S = 1.0
"""How soon the running platform takes up a capture asked for (or stopped) on the command line."""
CAPTURE_MAX_BYTES = 1_000_000
"""Most bytes one capture file gets (one connection's with ``capture_dir``, one ``capture start``'s)."""


@dataclass(frozen=True, slots=True)
class CapturedFrame:
    line: int
    data: bytes
    delay_s: float = 0.0
    answer: bool = False
    """True for the platform's answer (``<``): recorded, not sent by ``replay``."""


class BadFramesFile(ValueError):
    pass


def parse_frames(text: str, protocol: Protocol) -> list[CapturedFrame]:
    """The frames of a frames file; BadFramesFile naming the line when one cannot be read."""
    frames: list[CapturedFrame] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(";") or (line.startswith("#") and not protocol.text_frames):
            continue
        delay, answer = 0.0, False
        match = _DELAY.match(line)
        if match:
            delay, line = float(match.group(1)), line[match.end() :]
        if line.startswith("<"):
            answer, line = True, line[1:].lstrip()
        try:
            data = frame_bytes(line, protocol)
        except ValueError as exc:
            raise BadFramesFile(f"line {number}: {exc}") from None
        frames.append(CapturedFrame(number, data, delay, answer))
    return frames


def read_frames(path: Path, protocol: Protocol) -> list[CapturedFrame]:
    return parse_frames(path.read_text(encoding="utf-8"), protocol)


def frame_bytes(text: str, protocol: Protocol) -> bytes:
    """One frame as written in a frames file (or on the ``decode`` command line)."""
    if text.startswith("hex:"):
        return bytes.fromhex("".join(text[4:].split()))
    if protocol.text_frames:
        return text.encode("utf-8") + b"\r\n"
    try:
        return bytes.fromhex("".join(text.split()))
    except ValueError:
        raise ValueError(f"not hex: {text[:40]!r}") from None


def frame_text(data: bytes, protocol: Protocol) -> str:
    """How a frame is written to a frames file (the inverse of ``frame_bytes``)."""
    if protocol.text_frames and data.endswith(b"\n"):
        body = data.rstrip(b"\r\n")
        readable = body.isascii() and body.decode("ascii").isprintable()
        if readable and body and not body.startswith((b"hex:", b"+", b"<", b";")):
            return body.decode("ascii")
    return ("hex: " if protocol.text_frames else "") + data.hex(" ")


class CaptureFile:
    """Records frames to a frames file, as ``replay`` sends them again: one connection's, or one terminal's
    over its connections.

    Frames in are written with the delay since the previous one (``+1.250``), answers as ``<`` lines,
    discarded bytes and logins as ``;`` comments. At most ``max_bytes`` are written: a capture is a
    debugging aid and must not fill the disk whatever a terminal sends.
    """

    def __init__(self, path: Path, protocol: Protocol, max_bytes: int = CAPTURE_MAX_BYTES) -> None:
        self.path = path
        self.protocol = protocol
        self._file = path.open("a", encoding="utf-8")
        self._left = max_bytes
        self._last: float | None = None
        self.frames = 0
        """Frames in recorded so far."""

    def frame_in(self, data: bytes, at: float) -> None:
        delay = 0.0 if self._last is None else max(0.0, at - self._last)
        self._last = at
        if self._left > 0:
            self.frames += 1
        self._write(f"+{delay:.3f} {frame_text(data, self.protocol)}")

    def answer(self, data: bytes) -> None:
        self._write(f"< {frame_text(data, self.protocol)}")

    def note(self, text: str) -> None:
        self._write(f"; {text}")

    def _write(self, line: str) -> None:
        if self._left <= 0:
            return
        self._left -= len(line) + 1
        if self._left <= 0:
            line = f"; capture stopped: {CAPTURE_MAX_BYTES} bytes written"
        self._file.write(line + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()
