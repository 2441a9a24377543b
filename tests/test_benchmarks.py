"""Every benchmark still runs to its SUMMARY line, at a tiny size.

Benchmarks are not tests: their figures are not checked here (the README's table holds them). But a
benchmark is run by hand, now and then, and an API change can break one unnoticed until then.

The tiny runs mostly wait (on their own load generators and posts, which are processes of their own, and on
loopback sockets), so they are all started at once: the module takes about as long as the longest.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT

BENCHMARKS = ROOT / "benchmarks"
TINY = {
    "bench_ingest.py": ["--terminals", "20", "--duration", "1"],
    "bench_fill_decision.py": ["--cylinders", "2000", "--requests", "30", "--load-rate", "200", "--load-terminals",
                               "20"],  # fmt: skip
    "bench_connections.py": ["--terminals", "40", "--hold", "2", "--heartbeat", "1", "--processes", "1"],
    "bench_pages.py": ["--lifts", "40", "--cylinders", "2000", "--factor", "2", "--status-per-day",
                       "2", "--requests", "3"],  # fmt: skip
    "bench_storage.py": ["--lifts", "40", "--minutes", "2"],
    "bench_reconnect.py": ["--terminals", "40", "--processes", "1"],
}
RUNS = {script: [script, *args] for script, args in TINY.items()}
RUNS["bench_ingest.py jt808"] = ["bench_ingest.py", "--protocol", "jt808", *TINY["bench_ingest.py"]]
RUNS["soak.py"] = ["soak.py", "--duration", "30", "--window", "10", "--lifts", "40", "--interval-s", "5"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[subprocess.Popen[bytes], Path]]]:
    """Every tiny run, started together; each one's output goes to a file (a full pipe would hold it up)."""
    folder = tmp_path_factory.mktemp("benchmarks")
    started = {}
    for name, (script, *args) in RUNS.items():
        output = folder / name.replace(" ", "-")  # (.out and .err are added to the name)
        with Path(f"{output}.out").open("wb") as out, Path(f"{output}.err").open("wb") as err:
            process = subprocess.Popen([sys.executable, str(BENCHMARKS / script), *args], cwd=ROOT, stdout=out,
                                       stderr=err)  # fmt: skip
        started[name] = (process, output)
    yield started
    for process, _ in started.values():
        if process.poll() is None:
            process.kill()
            process.wait()


def finished(runs: dict[str, tuple[subprocess.Popen[bytes], Path]], name: str) -> tuple[int, str, str]:
    process, output = runs[name]
    status = process.wait(timeout=240)
    return status, Path(f"{output}.out").read_text(encoding="utf-8"), Path(f"{output}.err").read_text(encoding="utf-8")


def test_jt808_ingest_runs_to_its_summary(runs: dict[str, tuple[subprocess.Popen[bytes], Path]]) -> None:
    status, out, err = finished(runs, "bench_ingest.py jt808")
    assert status == 0, err[-3000:]
    assert out.splitlines()[-1].startswith("SUMMARY ingest jt808: "), out[-3000:]


def test_every_benchmark_has_a_tiny_size() -> None:
    assert set(TINY) == {path.name for path in BENCHMARKS.glob("bench_*.py")}


@pytest.mark.parametrize("script", sorted(TINY))
def test_benchmark_runs_to_its_summary(runs: dict[str, tuple[subprocess.Popen[bytes], Path]], script: str) -> None:
    status, out, err = finished(runs, script)
    assert status == 0, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    assert out.splitlines()[-1].startswith("SUMMARY "), out[-3000:]


def test_soak_runs_to_its_summary_and_stays_flat(runs: dict[str, tuple[subprocess.Popen[bytes], Path]]) -> None:
    """benchmarks/soak.py at a tiny size (30 s, 40 lifts): it runs, and nothing grows."""
    status, out, err = finished(runs, "soak.py")
    assert status == 0, err[-3000:]
    summary = out.splitlines()[-1]
    assert summary.startswith("SUMMARY soak: ") and summary.endswith(": flat"), out[-3000:]
