"""The allocator's free memory is given back to the system after a peak (a migration, a census import)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from conftest import CENSUS

from wuhai_iot.memory import give_back_free_memory, resident_bytes
from wuhai_iot.registry.census import import_files
from wuhai_iot.storage import db

pytestmark = pytest.mark.skipif(give_back_free_memory() is None, reason="the C library is not glibc")


def test_the_free_memory_of_a_peak_is_given_back() -> None:
    # A peak of 200 MiB in blocks the C allocator serves (Python's own allocator takes those up to 512 bytes),
    # freed but for one block in a thousand: those keep the heap from shrinking on its own, as what a
    # migration or an import leaves behind does.
    blocks = [bytes(1024) for _ in range(200_000)]
    kept = blocks[::1000]
    del blocks
    before = resident_bytes()
    given = give_back_free_memory()
    assert given is not None and given > 100 * 2**20, f"{given} bytes given back"
    assert resident_bytes() <= before - given // 2
    assert len(kept) == 200


async def test_a_migration_and_a_census_import_give_back_their_peak(tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    caplog.set_level(logging.INFO, logger="wuhai_iot.memory")
    conn = await db.connect(tmp_path / "platform.sqlite3")
    try:
        assert any(record.getMessage().startswith("after migrating to ") for record in caplog.records)
        caplog.clear()
        reports = await import_files(conn, sorted(CENSUS.glob("*.csv")))
        assert reports and not any(report.error for report in reports)
        assert any(record.getMessage().startswith("after a census import: ") for record in caplog.records)
    finally:
        await conn.close()
