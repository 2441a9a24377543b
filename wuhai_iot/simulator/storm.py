"""A whole ELink fleet connecting and logging in at once, as after a platform restart.

Run in processes of their own (``storm`` is a ``multiprocessing`` target), each opening its share of the
connections all at once and sending LOGIN the moment each connects. Each terminal's time is from the common
start to its LOGIN ACK. A terminal whose connection was refused or reset tries again a second later, as a
real one does. The connections are held until the process is told to hang up, so that what the platform
does while they log in can be told from what it does when they all go. The load of
``benchmarks/bench_reconnect.py`` and ``tests/test_reconnect_storm.py``.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import Sequence

from wuhai_iot.protocols import elink
from wuhai_iot.runner import loop_factory
from wuhai_iot.simulator.elink import login_frame
from wuhai_iot.simulator.load import Identity, raise_open_file_limit

RETRY_S = 1.0
"""A terminal whose connection failed tries again this much later."""
GIVE_UP_S = 60.0
"""A terminal without its LOGIN ACK this long after the start gives up (its time is None)."""
SPARE_FILES = 100


async def log_in(terminal: Identity, port: int, start_at: float, held: list[asyncio.StreamWriter]) -> float | None:
    """Seconds from ``start_at`` (wall clock) to this terminal's LOGIN ACK; None when it never came. The
    connection is added to ``held``."""
    while time.time() - start_at < GIVE_UP_S:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(RETRY_S)
            continue
        try:
            bcd = bytes.fromhex(terminal.terminal_id)
            writer.write(login_frame(bcd, terminal.key, int(time.time()), 0, 30, firmware="EL200-13"))
            framer = elink.ElinkFramer()
            while True:
                data = await reader.read(4096)
                if not data:
                    break
                for frame in framer.feed(data):
                    if isinstance(frame, bytes) and frame[13] == elink.ACK and frame[20] == elink.LOGIN:
                        if frame[23] != 0:
                            raise RuntimeError(f"login of {terminal.terminal_id} refused: result {frame[23]}")
                        held.append(writer)
                        return time.time() - start_at
        except (ConnectionError, OSError):
            pass
        writer.close()
        await asyncio.sleep(RETRY_S)
    return None


def storm(terminals: Sequence[Identity], port: int, ready: multiprocessing.Queue, control: multiprocessing.Queue,
          results: multiprocessing.Queue) -> None:  # fmt: skip
    """One load process: put True on ``ready``, take the common start (Unix time) from ``control``, log every
    terminal in at once, put their times on ``results``; then hang up when ``control`` says so (any value)."""
    raise_open_file_limit(len(terminals) + SPARE_FILES)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        start_at = await loop.run_in_executor(None, control.get)
        held: list[asyncio.StreamWriter] = []
        await asyncio.sleep(max(0.0, start_at - time.time()))
        times = await asyncio.gather(*(log_in(t, port, start_at, held) for t in terminals))
        results.put(list(times))
        await loop.run_in_executor(None, control.get)
        for writer in held:
            writer.close()
        await asyncio.gather(*(writer.wait_closed() for writer in held), return_exceptions=True)

    ready.put(True)
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(main())


class Storm:
    """The load processes of one storm, started from the platform's event loop without blocking it."""

    def __init__(self, terminals: Sequence[Identity], port: int, processes: int) -> None:
        spawn = multiprocessing.get_context("spawn")
        self._ready, self._results = spawn.Queue(), spawn.Queue()
        share = -(-len(terminals) // processes)
        self._controls = [spawn.Queue() for _ in range(0, len(terminals), share)]
        self._workers = [
            spawn.Process(target=storm, args=(terminals[i : i + share], port, self._ready, control, self._results))
            for i, control in zip(range(0, len(terminals), share), self._controls, strict=True)
        ]

    async def run(self) -> list[float | None]:
        """Start the processes, start the storm 1 s after the last is ready; every terminal's time, in
        no particular order."""
        # Started from a thread: handing a process its share blocks until it has read it, and the loop (the
        # platform's, in the benchmark) must not wait meanwhile. Times count from the common start, once
        # every process is ready (not from their start-up).
        for worker in self._workers:
            await asyncio.to_thread(worker.start)
        for _ in self._workers:
            await asyncio.to_thread(self._ready.get, True, 120)
        start_at = time.time() + 1.0
        for control in self._controls:
            control.put(start_at)
        times: list[float | None] = []
        for _ in self._workers:
            times += await asyncio.to_thread(self._results.get, True, GIVE_UP_S + 60)
        return times

    async def hang_up(self) -> None:
        """Every terminal closes its connection at once; wait for the processes to end."""
        for control in self._controls:
            control.put(True)
        for worker in self._workers:
            await asyncio.to_thread(worker.join, 30)
            if worker.is_alive():
                worker.kill()
