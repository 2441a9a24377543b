"""Every benchmark still runs to its SUMMARY line, at a tiny size.

Benchmarks are not tests: their figures are not checked here (the README's table holds them). But a
benchmark is run by hand, now and then, and an API change can break one unnoticed until then.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT

BENCHMARKS = ROOT / "benchmarks"
TINY = {
    "bench_ingest.py": ["--terminals", "20", "--duration", "1"],
    "bench_fill_decision.py": ["--cylinders", "2000", "--requests", "30", "--load-rate", "200"],
    "bench_connections.py": ["--terminals", "40", "--hold", "2", "--heartbeat", "1", "--processes", "1"],
    "bench_pages.py": ["--lifts", "40", "--cylinders", "2000", "--factor", "2", "--status-per-day",
                       "2", "--requests", "3"],  # fmt: skip
    "bench_storage.py": ["--lifts", "40", "--minutes", "2"],
}


def test_jt808_ingest_runs_to_its_summary() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_ingest.py"), "--protocol", "jt808", *TINY["bench_ingest.py"]],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines()[-1].startswith("SUMMARY ingest jt808: "), result.stdout[-3000:]


def test_every_benchmark_has_a_tiny_size() -> None:
    assert set(TINY) == {path.name for path in BENCHMARKS.glob("bench_*.py")}


@pytest.mark.parametrize("script", sorted(TINY))
def test_benchmark_runs_to_its_summary(script: str) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *TINY[script]],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.stdout.splitlines()[-1].startswith("SUMMARY "), result.stdout[-3000:]
