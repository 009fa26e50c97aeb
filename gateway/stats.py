"""Bounded windows of recent measurements (latency, pacing jitter) and their percentiles."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence

import numpy as np

DEFAULT_WINDOW = 2000  # recent values kept per window: about 40 s of 20 ms frames
DEFAULT_PERCENTILES = (50, 95, 99)


def percentiles(values: Iterable[float], ps: Sequence[float] = DEFAULT_PERCENTILES) -> dict[str, float | None]:
    """{"p50": ..., "p95": ..., "p99": ...} of the values; None for each when there are none."""
    data = np.fromiter(values, dtype=np.float64)
    if data.size == 0:
        return {f"p{p:g}": None for p in ps}
    return {f"p{p:g}": float(v) for p, v in zip(ps, np.percentile(data, ps))}


class Window:
    """The most recent `maxlen` values of one measurement; O(1) to add."""

    def __init__(self, maxlen: int = DEFAULT_WINDOW) -> None:
        self._values: deque[float] = deque(maxlen=maxlen)

    def add(self, value: float) -> None:
        self._values.append(value)

    def values(self) -> list[float]:
        return list(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def summary(self, ps: Sequence[float] = DEFAULT_PERCENTILES) -> dict[str, float | int | None]:
        """Count and percentiles, ready for a stats() dict or a JSON report."""
        return {"count": len(self._values), **percentiles(self._values, ps)}
