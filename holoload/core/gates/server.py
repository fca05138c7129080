"""Gate functions over the cluster's sampled signals: `delta(tx_conflict_count) <= 10`,
`rate(admission_reject_count) == 0`, `max(topology.shards) >= 2`, `delta(split.successes) >= 1`,
per node (`node=2`) or summed over nodes.

`rate(x)` reads the op `x` when the run has one and the metric `x` otherwise; `max`/`min` read a
topology series when the name starts with `topology.` or `split.` and op latency otherwise. Each is
defined once here and listed in `holoload.core.gates.language.FUNCTIONS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from holoload.core.gates import load as load_gates
from holoload.core.gates.model import GateFunction, Kind, Measurement, NoData
from holoload.core.server.view import ServerView, is_topology_series

SERVER_KEYWORDS = frozenset({"node"})


def _server(ctx: object) -> ServerView | None:
    server = getattr(ctx, "server", None)
    return server if isinstance(server, ServerView) else None


Measure = Callable[[object, str, Mapping[str, str]], Measurement]


def _series(how: str) -> Measure:
    def measure(ctx: object, name: str, keywords: Mapping[str, str]) -> Measurement:
        server = _server(ctx)
        if server is None:
            return None
        node = keywords.get("node")
        value = server.value(how, name, node)
        if how in ("delta", "rate") and server.value("last", name, node) is not None:
            if server.value("rate", name, node) is None:  # one sample: no span to measure an increase over
                return NoData(f"one sample of series '{name}': {how}() needs two")
        return value

    return measure


def _always_series(_name: str) -> bool:
    return True


def _server_function(how: str, kind: Kind) -> GateFunction:
    return GateFunction(
        how,
        kind,
        _series(how),
        SERVER_KEYWORDS,
        missing_reason="no samples of series '{op}'",
        server_side=_always_series,
    )


def _rate_either() -> GateFunction:
    server_rate = _series("rate")

    def measure(ctx: object, name: str, keywords: Mapping[str, str]) -> Measurement:
        if isinstance(ctx, load_gates.LoadGateContext) and ctx.agg.keys(name, ctx.phases):
            return load_gates.measure_rate(ctx, name, keywords)
        return server_rate(ctx, name, keywords)

    return GateFunction(
        "rate",
        Kind.RATE,
        measure,
        frozenset({"window", "node", "phase"}),
        missing_reason="no samples of op or series '{op}'",
        series_fallback=True,
        hint="rate (ops or metrics; window=, node=, phase=)",
    )


def _extreme(latency: GateFunction) -> GateFunction:
    how = latency.name
    topology = _series(how)

    def measure(ctx: object, name: str, keywords: Mapping[str, str]) -> Measurement:
        if is_topology_series(name):
            return topology(ctx, name, keywords)
        value: Measurement = latency.measure(ctx, name, keywords)  # type: ignore[arg-type]
        return value

    def kind_of(name: str) -> Kind:
        return Kind.NUMBER if is_topology_series(name) else Kind.DURATION

    return GateFunction(
        how,
        Kind.DURATION,
        measure,
        latency.keywords | SERVER_KEYWORDS,
        missing_reason="no samples of op or topology series '{op}'",
        kind_of=kind_of,
        server_side=is_topology_series,
        hint=f"{how} (an op, or a topology series such as topology.shards)",
    )


DELTA = _server_function("delta", Kind.NUMBER)
LAST = _server_function("last", Kind.NUMBER)
PEAK = _server_function("peak", Kind.NUMBER)
#: `rate(op)`: the op's throughput when the run has that op; otherwise `rate(metric)`.
RATE = _rate_either()
#: `max(topology.shards)`: a topology series (a number); `max(op)`: the op's slowest latency.
MAX = _extreme(load_gates.OP_MAX)
MIN = _extreme(load_gates.OP_MIN)
