"""Reset-aware store of sampled node metrics: per-series first/last/min/max and counter deltas."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

from holoload.core.server.metrics import Labels, Sample, labels_text


class _Series:
    """What the store keeps of one (node, name, labels) series: no history."""

    __slots__ = (
        "kind",
        "first_ts",
        "last_ts",
        "first",
        "last",
        "last_finite",
        "min",
        "max",
        "accumulated",
        "resets",
        "string",
    )

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.first_ts: float | None = None  # of the first numeric value
        self.last_ts: float | None = None
        self.first: float | None = None  # first finite value (0 for a counter born mid-run)
        self.last: float | None = None  # last numeric value, NaN and inf included
        self.last_finite: float | None = None
        self.min: float | None = None
        self.max: float | None = None
        self.accumulated: float = 0
        self.resets = 0
        self.string: str | None = None

    def numeric(self, ts_s: float, value: float, born_at: float | None) -> None:
        self.last = value
        self.last_ts = ts_s
        if self.first_ts is None:
            self.first_ts = ts_s
        if not math.isfinite(value):
            return
        if self.min is None or value < self.min:
            self.min = value
        if self.max is None or value > self.max:
            self.max = value
        previous = self.last_finite
        self.last_finite = value
        if previous is None:
            if born_at is not None and self.kind == "counter" and value >= 0:
                # A counter that appears on a node already observed (a new shard after a split,
                # a new write target) counted from zero since the node's previous observation.
                self.first, self.first_ts, self.accumulated = 0, born_at, value
            else:
                self.first = value
        elif self.kind != "counter":
            return
        elif value >= previous:
            self.accumulated += value - previous
        else:
            # Backwards: the node restarted; what it shows now was counted since the restart.
            self.resets += 1
            self.accumulated += max(value, 0)

    def delta(self) -> float | None:
        if self.first is None or self.last_finite is None:
            return None
        if self.kind == "counter":
            return self.accumulated
        return self.last_finite - self.first

    def span_s(self) -> float:
        if self.first_ts is None or self.last_ts is None:
            return 0.0
        return self.last_ts - self.first_ts


class MetricsStore:
    """First/last/min/max and reset-aware counter deltas per (node, name, labels) series.

    Memory is bounded by the number of series, never by the run's length: nothing is kept per
    observation. Counters: a value lower than the previous one is a reset (node restart), so
    the delta adds the new value (counted since the restart) and never goes negative; a counter
    first seen on a node that was already observed counts from zero (so per-shard deltas add up
    to the node total across a split). Gauges and untyped series: delta is last - first.
    Non-finite values (NaN, inf) become `last` but never enter min/max or deltas.

    Queries take `node=None` to cover every node and `labels=None` to cover every label set;
    given labels select the series carrying at least those pairs.
    """

    def __init__(self) -> None:
        self._series: dict[tuple[str, str, Labels], _Series] = {}
        self._node_last_ts: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._series)

    def observe(self, node: str, ts_s: float, samples: list[Sample]) -> None:
        """Fold one scrape of a node into the series.

        Args:
            node: the node scraped.
            ts_s: when (seconds; any monotonic-enough clock, the same for every node).
            samples: what it served.
        """
        born_at = self._node_last_ts.get(node)
        for sample in samples:
            key = (node, sample.name, sample.labels)
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = _Series(sample.kind)
            if isinstance(sample.value, str):
                series.string = sample.value
                continue
            if sample.kind != "string":
                series.kind = sample.kind
            series.numeric(ts_s, sample.value, born_at)
        if samples:  # an empty scrape sets no baseline: later series must not count from zero
            self._node_last_ts[node] = ts_s

    def _select(self, name: str, node: str | None, labels: Mapping[str, str] | None) -> Iterator[_Series]:
        wanted = tuple(labels.items()) if labels else ()
        for (series_node, series_name, series_labels), series in self._series.items():
            if series_name != name or (node is not None and series_node != node):
                continue
            if wanted and not all(pair in series_labels for pair in wanted):
                continue
            if series.first_ts is not None:
                yield series

    def delta(self, name: str, node: str | None = None, labels: Mapping[str, str] | None = None) -> float | None:
        """Increase of a metric over the observed span, summed over the selected series.

        Args:
            name: the metric name.
            node: one node, or None for the sum over nodes.
            labels: label pairs the series must carry, or None for every label set.

        Returns:
            The sum of per-series deltas (reset-aware for counters), or None if no numeric
            series matches.
        """
        deltas = [d for s in self._select(name, node, labels) if (d := s.delta()) is not None]
        return sum(deltas) if deltas else None

    def rate(self, name: str, node: str | None = None, labels: Mapping[str, str] | None = None) -> float | None:
        """Per-second increase: each series' delta over its own observed span, summed.

        Args:
            name: the metric name.
            node: one node, or None for the sum of the per-node rates.
            labels: label pairs the series must carry, or None for every label set.

        Returns:
            The summed rate, or None if no matching series was observed over a span > 0.
        """
        rates = [
            d / s.span_s() for s in self._select(name, node, labels) if s.span_s() > 0 and (d := s.delta()) is not None
        ]
        return sum(rates) if rates else None

    def last(self, name: str, node: str | None = None, labels: Mapping[str, str] | None = None) -> float | None:
        """The latest numeric value, summed over the selected series (e.g. every node's).

        Args:
            name: the metric name.
            node: one node, or None for the sum over nodes.
            labels: label pairs the series must carry, or None for every label set.

        Returns:
            The sum of last values (NaN if one of them is NaN), or None if nothing matches.
        """
        values = [s.last for s in self._select(name, node, labels) if s.last is not None]
        return sum(values) if values else None

    def max(self, name: str, node: str | None = None, labels: Mapping[str, str] | None = None) -> float | None:
        """The largest finite value any selected series showed (for gauges: the peak seen).

        Not summed over nodes: peaks on different nodes need not coincide, so a sum of
        per-node maxima would be a value the cluster never showed. With node=None this is the
        worst node's peak.

        Args:
            name: the metric name.
            node: one node, or None for the largest over every node.
            labels: label pairs the series must carry, or None for every label set.

        Returns:
            The maximum, or None if no finite value matched.
        """
        values = [s.max for s in self._select(name, node, labels) if s.max is not None]
        return max(values) if values else None

    def min(self, name: str, node: str | None = None, labels: Mapping[str, str] | None = None) -> float | None:
        """The smallest finite value any selected series showed (the counterpart of `max`).

        Args:
            name: the metric name.
            node: one node, or None for the smallest over every node.
            labels: label pairs the series must carry, or None for every label set.

        Returns:
            The minimum, or None if no finite value matched.
        """
        values = [s.min for s in self._select(name, node, labels) if s.min is not None]
        return min(values) if values else None

    def resets(self, name: str | None = None, node: str | None = None) -> int:
        """How many counter resets (values going backwards) were seen.

        Args:
            name: one metric, or None for every metric.
            node: one node, or None for every node.

        Returns:
            The number of resets over the selected series.
        """
        return sum(
            series.resets
            for (series_node, series_name, _labels), series in self._series.items()
            if (name is None or series_name == name) and (node is None or series_node == node)
        )

    def nodes(self) -> list[str]:
        """Nodes observed at least once, sorted."""
        return sorted(self._node_last_ts)

    def names(self, node: str | None = None) -> list[str]:
        """Metric names seen (numeric or string), sorted.

        Args:
            node: one node, or None for every node.

        Returns:
            The distinct names.
        """
        return sorted({name for (n, name, _labels) in self._series if node is None or n == node})

    def string_values(self, node: str) -> dict[str, str]:
        """The latest string value of each string metric of a node.

        Args:
            node: the node.

        Returns:
            Name (with `{k=v;k=v}` appended when labelled) -> last string value.
        """
        values: dict[str, str] = {}
        for (series_node, name, labels), series in self._series.items():
            if series_node == node and series.string is not None:
                key = f"{name}{{{labels_text(labels)}}}" if labels else name
                values[key] = series.string
        return values
