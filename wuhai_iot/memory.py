"""Handing the C allocator's free memory back to the system after a peak.

glibc keeps what a process frees for its own later use: after a migration or a large census import (SQLite's
sorts and page cache, the rows of a file) a server kept hundreds of MiB resident that it no longer used —
799 MiB of 1,630 after migrating the province's database (README, memory at province scale)."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import logging
import os
from collections.abc import Callable

log = logging.getLogger(__name__)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # not glibc
        return None


def resident_bytes() -> int:
    """The process's resident memory now (0 where /proc is not there)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def give_back_free_memory() -> int | None:
    """Return the allocator's free memory to the system; the bytes the resident memory fell by, or None
    where the C library is not glibc. Blocks for the walk of the heap: call it from a thread."""
    trim = _malloc_trim()
    if trim is None:
        return None
    before = resident_bytes()
    trim(0)
    return max(0, before - resident_bytes())


async def give_back_after(what: str) -> None:
    """After ``what`` (a migration, an import) left a peak: give the free memory back, in a thread, and log it."""
    given = await asyncio.to_thread(give_back_free_memory)
    if given is not None:
        log.info("after %s: %.0f MiB of free memory given back to the system (resident now %.0f MiB)",
                 what, given / 2**20, resident_bytes() / 2**20)  # fmt: skip
