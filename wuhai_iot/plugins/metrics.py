"""What a plugin contributes to ``GET /metrics`` through the ``collect_metrics`` hook."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Metric:
    """One metric family in Prometheus's terms: a name, its type, help text and labelled samples."""

    name: str
    """``wuhai_...``; a counter's name ends in ``_total``."""
    type: Literal["counter", "gauge"]
    help: str
    samples: Sequence[tuple[Mapping[str, str], float]]
    """(labels, value) pairs; ``({}, value)`` for a metric without labels."""
