"""Property tests for every installed protocol's framer and decoder, and for the census importer.

For any bytes cut at any points: nothing raises out of a framer, nothing but ``DecodeError`` out of a
decoder, the frames are the same as when the stream comes whole, and what a framer holds stays bounded.
For any cells in a census file: the importer reports every row as accepted or rejected and raises nothing.
"""

from __future__ import annotations

import csv
import io
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import FIXTURES, import_census
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wuhai_iot.plugins import protocols
from wuhai_iot.protocols.base import DecodeError, Discarded
from wuhai_iot.registry import census

NOW = datetime(2026, 11, 29, 0, 0, tzinfo=UTC)
PROTOCOLS = protocols()
HELD_LIMIT = 4096
"""Bytes a framer may hold between feeds, whatever it was fed (the longest frame of any is ~1 KB)."""


def fixture_frames(name: str) -> list[bytes]:
    """The protocol's own example frames from device_fixtures/ (hex files, or text lines)."""
    frames = []
    for path in sorted((FIXTURES / name).glob("*")):
        if path.suffix == ".line":
            frames.append(path.read_bytes())
        elif path.suffix == ".hex":
            text = "".join(line for line in path.read_text(encoding="utf-8").splitlines(True)
                           if not line.lstrip().startswith("#"))  # fmt: skip
            try:
                frames.append(bytes.fromhex("".join(text.split())))
            except ValueError:
                continue
    return frames


def held(framer: object) -> int:
    """What a framer keeps between feeds (its buffers, whatever their names)."""
    return sum(len(value) for value in vars(framer).values() if isinstance(value, (bytes, bytearray)))


def feed(name: str, pieces: list[bytes]) -> tuple[list[bytes], int]:
    framer = PROTOCOLS[name].new_framer()
    frames: list[bytes] = []
    most = 0
    for piece in pieces:
        frames += [item for item in framer.feed(piece) if not isinstance(item, Discarded)]
        most = max(most, held(framer))
    return frames, most


@st.composite
def streams(draw: st.DrawFn, name: str) -> tuple[bytes, list[int]]:
    """Example frames and garbage in any order, and points to cut the stream at."""
    examples = fixture_frames(name)
    parts = draw(st.lists(st.one_of(st.sampled_from(examples), st.binary(max_size=300)), max_size=12))
    stream = b"".join(parts)
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=20)))
    return stream, cuts


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_any_split_gives_the_same_frames_and_nothing_raises(name: str) -> None:
    assert fixture_frames(name), f"device_fixtures/{name} holds example frames"

    @settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
    @given(streams(name))
    def check(case: tuple[bytes, list[int]]) -> None:
        stream, cuts = case
        whole, _ = feed(name, [stream])
        pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
        split, most = feed(name, pieces)
        assert split == whole
        assert most <= HELD_LIMIT
        for frame in whole:
            try:
                PROTOCOLS[name].decode(frame, NOW)
            except DecodeError:
                pass

    check()


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_endless_garbage_keeps_the_framer_bounded(name: str) -> None:
    framer = PROTOCOLS[name].new_framer()
    for chunk in (b"\x00" * 65536, bytes(range(256)) * 256, b"#" * 65536, b"\x7e" + b"\x01" * 65535):
        framer.feed(chunk)
        assert held(framer) <= HELD_LIMIT


@pytest.fixture(scope="module")
def registry_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import asyncio

    path = tmp_path_factory.mktemp("census") / "registry.sqlite3"
    asyncio.run(import_census(path))
    return path


cells = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(census.KIND_ORDER), rows=st.lists(st.lists(cells, max_size=14), max_size=6),
       raw=st.binary(max_size=200))  # fmt: skip
def test_census_files_of_any_cells_are_reported_row_by_row(
    registry_database: Path, tmp_path_factory: pytest.TempPathFactory, kind: str, rows: list[list[str]], raw: bytes
) -> None:
    header = [column.name for column in census.KINDS[kind].columns]
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows(rows)
    folder = tmp_path_factory.mktemp("files")
    good_csv, raw_file = folder / f"{kind}.csv", folder / f"raw-{kind}.csv"
    good_csv.write_text(text.getvalue(), encoding="utf-8")
    raw_file.write_bytes(raw)
    report, _, values = census._check_file(str(registry_database), good_csv, kind)
    data_rows = [row for row in rows if any(cell.strip() for cell in row)]
    assert report.error is None
    assert report.added + report.updated == len(values)
    assert len(values) + len({r.line for r in report.rejected}) == len(data_rows)
    report, _, _ = census._check_file(str(registry_database), raw_file, kind)  # any bytes: a report, no exception
    assert isinstance(report, census.FileReport)
    with sqlite3.connect(registry_database) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
