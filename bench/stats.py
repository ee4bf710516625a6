"""Percentiles without numpy: nearest-rank on the sorted samples."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(samples: Sequence[float], p: float) -> float:
    """The nearest-rank p-th percentile (p in 0..100) of a non-empty sample."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def summary(samples: Sequence[float], scale: float = 1000.0) -> dict[str, float | int]:
    """count, p50, p95, p99 and max, times `scale` (seconds → milliseconds by default)."""
    if not samples:
        return {"count": 0}
    return {
        "count": len(samples),
        "p50": round(percentile(samples, 50) * scale, 2),
        "p95": round(percentile(samples, 95) * scale, 2),
        "p99": round(percentile(samples, 99) * scale, 2),
        "max": round(max(samples) * scale, 2),
    }
