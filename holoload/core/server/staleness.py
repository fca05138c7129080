"""Standby staleness: how long after the primary acknowledged a write it is visible on each standby.

The sampler (adapters/pg/staleness.py) notes, every interval, the primary's WAL position and how long
each standby took to replay up to it; everything acknowledged before the sample is then visible
there. `staleness(NODE).p50|p99|max` gates read those samples per standby node (`node2`...).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import Any

from holoload.core.gates.model import FIELD, GateFunction, Kind

STALENESS_FIELDS = frozenset({"p50", "p99", "max"})
MAX_SAMPLES = 20_000


class StalenessSamples:
    """Per node: the most recent staleness samples in seconds (a bounded ring)."""

    def __init__(self, max_samples: int = MAX_SAMPLES) -> None:
        self._max = max_samples
        self.by_node: dict[str, deque[float]] = {}
        self.timeouts: dict[str, int] = {}

    def add(self, node: str, seconds: float) -> None:
        self.by_node.setdefault(node, deque(maxlen=self._max)).append(seconds)

    def timed_out(self, node: str) -> None:
        """A sample that did not become visible within the sampler's timeout (not a value)."""
        self.timeouts[node] = self.timeouts.get(node, 0) + 1

    def stat_s(self, node: str, which: str) -> float | None:
        """p50, p99 or max of a node's samples (nearest rank); None without samples."""
        values = sorted(self.by_node.get(node, ()))
        if not values:
            return None
        if which == "max":
            return values[-1]
        q = 0.5 if which == "p50" else 0.99
        return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]

    def summary(self) -> dict[str, dict[str, Any]]:
        return {
            node: {
                "samples": len(values),
                "timeouts": self.timeouts.get(node, 0),
                **{f"{w}_s": round(v, 4) for w in ("p50", "p99", "max") if (v := self.stat_s(node, w)) is not None},
            }
            for node, values in sorted(self.by_node.items())
        }


def _staleness(ctx: object, name: str, keywords: Mapping[str, str]) -> float | None:
    samples = getattr(ctx, "staleness", None)
    return samples.stat_s(name, keywords[FIELD]) if isinstance(samples, StalenessSamples) else None


STALENESS = GateFunction(
    "staleness",
    Kind.DURATION,
    _staleness,
    missing_reason="no staleness samples of standby '{op}' (a replicated cluster's standby, e.g. node2)",
    fields=STALENESS_FIELDS,
    server_side=lambda _node: True,  # a node name, not an op
    hint="staleness(node).p50|p99|max",
)
