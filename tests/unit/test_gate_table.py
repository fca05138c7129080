"""The gate function table: each name defined once, the same whatever was imported, and the
functions that read an op or a server series by their argument (`max`, `min`, `rate`)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Mapping

import pytest

from holoload.core.gates.language import FUNCTIONS, Call, GateSyntaxError, parse_gate
from holoload.core.gates.load import LoadGateContext
from holoload.core.gates.model import FunctionFamily, FunctionTable, GateContext, GateFunction, Kind
from holoload.core.gates.verdicts import evaluate
from holoload.core.server.metrics import Sample
from holoload.core.server.metrics_store import MetricsStore
from holoload.core.server.view import ServerView, TopologySeries
from holoload.core.stats.histogram import LatencyHistogram
from holoload.core.stats.window import NS_PER_S, Aggregator, OpKey

#: Every gate function the docs (scenarios.md, chaos.md) name, by its fixed name.
DOCUMENTED = {
    "min",
    "max",
    "mean",
    "count",
    "error_rate",
    "rate",
    "errors",
    "dropped",
    "retries",
    "max_gap",
    "delta",
    "last",
    "peak",
    "chaos",
    "recovery",
    "outage",
    "staleness",
    "isolation",
}


def _nothing(ctx: GateContext, op: str, keywords: Mapping[str, str]) -> float | None:
    return None


def test_the_table_holds_every_documented_function_once_and_percentiles_as_a_family() -> None:
    """The fixed names are exactly the documented ones; p50/p99.9 come from the one family."""
    assert FUNCTIONS.names == DOCUMENTED
    for name in ("p50", "p95", "p99.9", "p100"):
        function = FUNCTIONS.lookup(name)
        assert function is not None and function.name == name and function.kind is Kind.DURATION
    assert FUNCTIONS.lookup("p101") is None and FUNCTIONS.lookup("register_function") is None


def test_a_name_given_twice_is_refused_when_the_table_is_built() -> None:
    """Defining a function twice, or a fixed name a family also matches, is an error, not an override."""
    one = GateFunction("tally", Kind.NUMBER, _nothing)
    with pytest.raises(ValueError, match="'tally' is defined twice"):
        FunctionTable([one, GateFunction("tally", Kind.DURATION, _nothing)])
    with pytest.raises(ValueError, match="'max' is defined twice"):
        FUNCTIONS.extended(GateFunction("max", Kind.NUMBER, _nothing))
    family = FunctionFamily(re.compile(r"p(\d+)"), lambda m: one, "p<N>")
    with pytest.raises(ValueError, match="'p7' is also a name of p<N>"):
        FunctionTable([GateFunction("p7", Kind.NUMBER, _nothing)], [family])


#: What a fresh interpreter prints about every documented function after importing `modules`.
_PROBE = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
from holoload.core.gates.language import FUNCTIONS
out = {}
for name in sorted(FUNCTIONS.names) + ["p99"]:
    f = FUNCTIONS.lookup(name)
    out[name] = [f.kind.value, sorted(f.keywords), f.measure.__qualname__, f.series_fallback,
                 None if f.server_side is None else [f.server_side("topology.shards"), f.server_side("insert")]]
print(json.dumps(out))
"""


def _functions_after_importing(*modules: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *modules], capture_output=True, text=True, check=True, timeout=60
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_what_a_name_means_does_not_depend_on_which_modules_were_imported_first() -> None:
    """The table is the same whether the gates, the server gates, the scenario or the CLI came first."""
    alone = _functions_after_importing()
    assert set(alone) == DOCUMENTED | {"p99"}
    for first in ("holoload.core.gates.server", "holoload.core.gates.load", "holoload.shell.cli"):
        assert _functions_after_importing(first) == alone, first


# ------------------------------------------------------------------ max, min and rate by argument

KEY = OpKey("main", "w", "insert", "node1")


def _run_with_one_op_and_the_cluster() -> LoadGateContext:
    """10 s of `insert` (20 successes of 5 ms to 40 ms) with metrics and topology sampled over the same 10 s."""
    agg = Aggregator(0)
    agg.phase_started("main", 0)
    rec = agg.recorder(KEY, 0)
    for i in range(20):
        done_ns = (i + 1) * NS_PER_S // 2
        latency_ns = (5 + 35 * (i % 2)) * 1_000_000
        rec.success(done_ns - latency_ns, done_ns - latency_ns, done_ns)
    agg.close_window(10 * NS_PER_S)
    metrics, topology = MetricsStore(), TopologySeries()
    for t, count, shards in ((0.0, 100.0, 2), (5.0, 120.0, 1), (10.0, 150.0, 4)):
        metrics.observe("node1", t, [Sample("admission_reject_count", (), count, "counter")])
        topology.observe(t, {"shards": shards})
    server = ServerView(metrics, topology, ["node1"])
    return LoadGateContext(agg, ["main"], 10 * NS_PER_S, server=server)


def _measured(text: str, ctx: object) -> float | None:
    verdict = evaluate("g", parse_gate(text), ctx)  # type: ignore[arg-type]
    return verdict.observed


@pytest.mark.parametrize(
    ("text", "kind", "observed"),
    [
        ("max(topology.shards) >= 0", Kind.NUMBER, 4.0),  # a topology series: its largest value
        ("min(topology.shards) >= 0", Kind.NUMBER, 1.0),
        ("max(insert) >= 0s", Kind.DURATION, 0.04),  # an op: its slowest latency
        ("min(insert) >= 0s", Kind.DURATION, 0.005),
        ("rate(insert) >= 0/s", Kind.RATE, 2.0),  # an op of the run: its successes per second
        ("rate(admission_reject_count) >= 0/s", Kind.RATE, 5.0),  # no such op: the metric's rate
    ],
)
def test_max_min_and_rate_read_an_op_or_a_server_series_by_their_argument(
    text: str, kind: Kind, observed: float
) -> None:
    """One definition each, two meanings told apart by the argument (docs/scenarios.md)."""
    gate = parse_gate(text)
    assert isinstance(gate.left, Call) and gate.left.kind is kind
    assert _measured(text, _run_with_one_op_and_the_cluster()) == pytest.approx(observed, rel=0.01)


def test_a_topology_max_is_a_number_and_an_op_max_a_duration() -> None:
    """The argument decides the kind, so each side is compared with its own kind of threshold."""
    with pytest.raises(GateSyntaxError, match="is a duration"):
        parse_gate("max(insert) >= 2")
    with pytest.raises(GateSyntaxError, match="is a number"):
        parse_gate("max(topology.shards) >= 2s")
    refs = parse_gate("max(topology.shards) >= 2").references()
    assert (refs.ops, refs.series) == (frozenset(), frozenset({"topology.shards"}))
    assert parse_gate("max(insert) <= 2s").references().ops == frozenset({"insert"})
    assert parse_gate("rate(insert) >= 1/s").references().maybe_series == frozenset({"insert"})


class _HistogramOnly:
    """What the canary's aggregator offers gates: histograms and scalars, no windows."""

    def __init__(self) -> None:
        self.batch = LatencyHistogram()
        for ms in (10, 20, 30):
            self.batch.record_us(ms * 1000)

    def histogram(self, op: str) -> LatencyHistogram | None:
        return self.batch if op == "batch_20k" else None

    def scalar(self, name: str) -> float | None:
        return None


@pytest.mark.parametrize(
    ("text", "observed"),
    [
        ("p50(batch_20k) <= 1s", 0.02),
        ("max(batch_20k) <= 1s", 0.03),
        ("min(batch_20k) <= 1s", 0.01),
        ("mean(batch_20k) <= 1s", 0.02),
        ("count(batch_20k) >= 1", 3.0),
    ],
)
def test_op_functions_read_a_plain_histogram_context_too(text: str, observed: float) -> None:
    """The canary's context (histograms only) gets the same op functions as sustained load."""
    assert _measured(text, _HistogramOnly()) == pytest.approx(observed, rel=0.01)
