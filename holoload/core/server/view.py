"""What gates read of the cluster's own signals: sampled metrics and topology series."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from holoload.core.server.metrics_store import MetricsStore

#: Prefixes of series that come from topology readings (`topology_diff.summary`).
TOPOLOGY_PREFIXES = ("topology.", "split.")


def is_topology_series(name: str) -> bool:
    return name.startswith(TOPOLOGY_PREFIXES)


@dataclass(slots=True)
class _Span:
    first: float
    last: float
    low: float
    high: float
    first_ts: float
    last_ts: float


class TopologySeries:
    """First/last/min/max of each numeric topology summary value (`topology.shards`, `split.successes`)."""

    def __init__(self) -> None:
        self._spans: dict[str, _Span] = {}

    def observe(self, ts_s: float, summary: Mapping[str, object]) -> None:
        for key, value in summary.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            name = key if is_topology_series(key) else f"topology.{key}"
            v = float(value)
            span = self._spans.get(name)
            if span is None:
                self._spans[name] = _Span(v, v, v, v, ts_s, ts_s)
            else:
                span.last, span.last_ts = v, ts_s
                span.low, span.high = min(span.low, v), max(span.high, v)

    def get(self, name: str) -> _Span | None:
        return self._spans.get(name)

    def names(self) -> list[str]:
        return sorted(self._spans)


class ServerView:
    """Answers `delta`, `rate`, `last`, `peak`, `max`, `min` of metrics and topology series.

    Args:
        metrics: the run's metrics store (per node, reset-aware counters).
        topology: the run's topology series.
        node_names: target node names, so `node=2` means the second node as well as "node2".
    """

    def __init__(self, metrics: MetricsStore, topology: TopologySeries, node_names: list[str]) -> None:
        self.metrics = metrics
        self.topology = topology
        self.node_names = node_names

    def node(self, wanted: str | None) -> str | None:
        """Resolve a `node=` keyword: a node name, or a 1-based index."""
        if wanted is None or wanted in self.node_names:
            return wanted
        if wanted.isdigit() and 1 <= int(wanted) <= len(self.node_names):
            return self.node_names[int(wanted) - 1]
        return wanted

    def value(self, how: str, name: str, node: str | None = None) -> float | None:
        """`how` is delta, rate, last, peak/max or min; None when the series was never sampled."""
        if is_topology_series(name):
            span = self.topology.get(name)
            if span is None:
                return None
            seconds = span.last_ts - span.first_ts
            return {
                "delta": span.last - span.first,
                "rate": (span.last - span.first) / seconds if seconds > 0 else None,
                "last": span.last,
                "peak": span.high,
                "max": span.high,
                "min": span.low,
            }[how]
        resolved = self.node(node)
        if how == "delta":
            return self.metrics.delta(name, resolved)
        if how == "rate":
            return self.metrics.rate(name, resolved)
        if how == "last":
            return self.metrics.last(name, resolved)
        if how in ("peak", "max"):
            return self.metrics.max(name, resolved)
        return self.metrics.min(name, resolved)
