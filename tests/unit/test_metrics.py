"""Node metrics core: HoloFusion and Prometheus parsing, families, the reset-aware store, CSV rows."""

from __future__ import annotations

import math

import pytest

from holoload.core.server.metrics import (
    HOLOFUSION_GAUGE_MARKERS,
    Sample,
    detect_format,
    labels_text,
    parse_holofusion,
    parse_metrics,
    parse_prometheus,
    rows,
)
from holoload.core.server.metrics_store import MetricsStore
from tests.support import fixture_text

BEFORE = fixture_text("metrics_node1_before.txt")
AFTER = fixture_text("metrics_node1_after.txt")

PROMETHEUS = """\
# HELP http_requests_total Requests served.
# TYPE http_requests_total counter
http_requests_total{method="get",code="200"} 1027
http_requests_total{method="post",code="400",path="C:\\\\dir \\"q\\"\\nnext"} 3
# HELP jobs Jobs processed (declared without _total).
# TYPE jobs counter
jobs 7
# TYPE queue_depth gauge
queue_depth{shard="1"} 4
queue_depth{shard="2"} NaN
# TYPE request_seconds histogram
request_seconds_bucket{le="0.05"} 24054
request_seconds_bucket{le="0.1"} 33444
request_seconds_bucket{le="+Inf"} 144320
request_seconds_sum 53423.5
request_seconds_count 144320
# TYPE rpc_seconds summary
rpc_seconds{quantile="0.99"} 0.25
rpc_seconds_sum 1.7560473e+07
rpc_seconds_count 2693
temperature -Inf
"""


def _by_name(samples: list[Sample]) -> dict[str, Sample]:
    return {s.name: s for s in samples}


# --- HoloFusion parsing -------------------------------------------------------------------------


@pytest.mark.parametrize("text", [BEFORE, AFTER], ids=["before", "after"])
def test_every_holofusion_fixture_line_becomes_a_sample_in_order(text: str) -> None:
    """Each `name=value` line of the byte-exact fixture is one unlabelled sample, in file order."""
    samples = parse_holofusion(text)
    lines = text.splitlines()
    assert [s.name for s in samples] == [line.partition("=")[0] for line in lines]
    assert all(s.labels == () for s in samples)


def test_holofusion_values_are_numeric_or_strings() -> None:
    """Integers stay exact ints; ids, statuses and the empty last_error stay strings."""
    after = _by_name(parse_holofusion(AFTER))
    assert after["tx_begin_count"].value == 12
    assert isinstance(after["tx_begin_count"].value, int)
    assert after["active_query_0_started_at_unix_ns"].value == 1_763_764_000_000_000_000
    assert after["ingest_job_0_status"] == Sample("ingest_job_0_status", (), "running", "string")
    assert after["ingest_job_0_last_error"] == Sample("ingest_job_0_last_error", (), "", "string")
    assert after["active_query_0_id"].value == "q00000000000000af"
    assert after["active_query_0_statement"].kind == "string"


def test_holofusion_numeric_syntax_matches_the_http_parser() -> None:
    """Decimals, exponents and Rust's NaN/inf are floats; `1_000` and `x=y` are strings."""
    values = {s.name: s.value for s in parse_holofusion("a=1\nb=-2\nc=1.5\nd=2e3\ne=x=y\nf=1_000\ng=NaN\nh=-inf\n")}
    assert values["a"] == 1 and values["b"] == -2 and values["c"] == 1.5 and values["d"] == 2000.0
    assert values["e"] == "x=y" and values["f"] == "1_000"
    assert isinstance(values["g"], float) and math.isnan(values["g"])
    assert values["h"] == -math.inf


def test_holofusion_counters_and_gauges_follow_the_name_rule() -> None:
    """Levels (depths, in-flight, circuit state, lag, peaks, rates, timestamps) are gauges; the rest counters."""
    kinds = {s.name: s.kind for s in parse_holofusion(AFTER)}
    gauges = {
        "active_query_sessions",
        "ingest_jobs_tracked",
        "admission_write_queue_depth",
        "admission_write_queue_depth_peak",
        "distributed_write_target_127_0_0_1_15052_circuit_state",
        "ingest_job_0_rows_per_second",
        "ingest_job_0_queue_depth",
        "ingest_job_0_inflight_rows",
        "ingest_job_0_inflight_bytes",
        "ingest_job_0_inflight_rpcs",
        "ingest_job_0_started_at_unix_ns",
        "ingest_job_0_shard_2_lag",
        "active_query_0_started_at_unix_ns",
    }
    for name in gauges:
        assert kinds[name] == "gauge", name
    for name in (
        "tx_conflict_count",
        "distributed_write_apply_rows",
        "admission_reject_count",
        "distributed_write_target_127_0_0_1_15052_circuit_open_count",
        "ingest_job_0_rows_ingested",
        "admission_write_wait_ns_total",
        "ingest_jobs_started",
    ):
        assert kinds[name] == "counter", name
    numeric_gauges = {n for n, k in kinds.items() if k == "gauge"}
    assert numeric_gauges == {
        n for n, k in kinds.items() if k != "string" and any(m in n for m in HOLOFUSION_GAUGE_MARKERS)
    }


def test_holofusion_line_without_equals_is_rejected_with_its_number() -> None:
    """A malformed line raises ValueError naming the line."""
    with pytest.raises(ValueError, match="line 2"):
        parse_holofusion("a=1\nno equals here\n")


# --- Prometheus parsing -------------------------------------------------------------------------


def test_prometheus_labels_escapes_and_types() -> None:
    """Labels are sorted pairs, escapes are decoded, `# TYPE` sets counter/gauge/untyped."""
    samples = parse_prometheus(PROMETHEUS)
    requests = [s for s in samples if s.name == "http_requests_total"]
    assert requests[0] == Sample("http_requests_total", (("code", "200"), ("method", "get")), 1027, "counter")
    assert dict(requests[1].labels)["path"] == 'C:\\dir "q"\nnext'
    depth = [s for s in samples if s.name == "queue_depth"]
    assert [s.kind for s in depth] == ["gauge", "gauge"] and math.isnan(float(depth[1].value))
    assert _by_name(samples)["temperature"] == Sample("temperature", (), -math.inf, "untyped")


def test_prometheus_counter_declared_without_total_keeps_its_served_name() -> None:
    """`# TYPE jobs counter` / `jobs 7` stays `jobs` (the client library would rename it `jobs_total`)."""
    names = {s.name for s in parse_prometheus(PROMETHEUS)}
    assert "jobs" in names and "jobs_total" not in names


def test_prometheus_histogram_and_summary_are_flattened() -> None:
    """Buckets carry `le` (with `+Inf`); _sum/_count are cumulative counters; quantiles are gauges."""
    samples = parse_prometheus(PROMETHEUS)
    buckets = [(dict(s.labels)["le"], s.value, s.kind) for s in samples if s.name == "request_seconds_bucket"]
    assert buckets == [("0.05", 24054, "counter"), ("0.1", 33444, "counter"), ("+Inf", 144320, "counter")]
    by_name = _by_name(samples)
    assert by_name["request_seconds_sum"] == Sample("request_seconds_sum", (), 53423.5, "counter")
    assert by_name["request_seconds_count"].value == 144320
    assert by_name["rpc_seconds"] == Sample("rpc_seconds", (("quantile", "0.99"),), 0.25, "gauge")
    assert by_name["rpc_seconds_count"].kind == "counter"


def test_invalid_prometheus_text_raises_value_error() -> None:
    """Garbage is a ValueError, not a library-specific exception."""
    with pytest.raises(ValueError, match="invalid Prometheus"):
        parse_prometheus('broken{label="x"\n')


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (BEFORE, "holofusion"),
        ("  a = 1\n", "holofusion"),
        ("", "holofusion"),
        (PROMETHEUS, "prometheus"),
        ("\nup 1\n", "prometheus"),
        ('up{job="x"} 1\n', "prometheus"),
    ],
)
def test_detect_format_by_the_first_line(text: str, expected: str) -> None:
    """A comment or `name value`/`name{` is Prometheus; `name=value` is HoloFusion."""
    assert detect_format(text) == expected


def test_parse_metrics_dispatches_on_the_detected_format() -> None:
    """parse_metrics gives the same samples as the format's own parser."""
    assert parse_metrics(AFTER) == parse_holofusion(AFTER)
    assert repr(parse_metrics(PROMETHEUS)) == repr(parse_prometheus(PROMETHEUS))  # repr: NaN != NaN


# --- the store ----------------------------------------------------------------------------------


def _before_after_store() -> MetricsStore:
    store = MetricsStore()
    store.observe("node1", 100.0, parse_holofusion(BEFORE))
    store.observe("node1", 110.0, parse_holofusion(AFTER))
    return store


def test_counter_deltas_between_the_fixtures() -> None:
    """Deltas are after - before: one conflict, 50,000 applied rows, 3 retryable failures on the new target."""
    store = _before_after_store()
    assert store.delta("tx_conflict_count") == 1
    assert store.delta("distributed_write_apply_rows") == 50_000
    assert store.delta("distributed_write_apply_ops", node="node1") == 53
    assert store.delta("tx_begin_count") == 0
    assert store.rate("distributed_write_apply_rows") == pytest.approx(5_000.0)
    assert store.resets() == 0  # gauges going down (rows_per_second 41,000 -> 38,000) are no resets


def test_a_counter_born_mid_run_counts_from_zero_so_shards_add_up() -> None:
    """Shard 2 appears after the split; per-shard deltas (9,999 + 40,001) sum to the node's 50,000."""
    store = _before_after_store()
    shard_deltas = [store.delta(f"distributed_write_shard_{n}_apply_rows") for n in (1, 2)]
    assert shard_deltas == [9_999, 40_001]
    assert sum(d for d in shard_deltas if d is not None) == store.delta("distributed_write_apply_rows")
    rates = [store.rate(f"distributed_write_shard_{n}_apply_rows") for n in (1, 2)]
    assert sum(r for r in rates if r is not None) == pytest.approx(store.rate("distributed_write_apply_rows"))
    assert store.delta("distributed_write_target_127_0_0_1_15052_retryable_failures") == 3


def test_series_in_the_first_scrape_are_not_counted_from_zero() -> None:
    """What a node shows at its first observation is the baseline, not an increase."""
    store = MetricsStore()
    store.observe("node1", 0.0, parse_holofusion(AFTER))
    assert store.delta("distributed_write_apply_rows") == 0
    assert store.rate("distributed_write_apply_rows") is None  # a single point has no span


def test_gauges_report_last_max_min_and_plain_delta() -> None:
    """A gauge's delta is last - first (may be negative); max/min are the extremes seen."""
    store = _before_after_store()
    store.observe("node1", 120.0, parse_holofusion(BEFORE))
    assert store.last("admission_write_queue_depth_peak") == 0
    assert store.max("admission_write_queue_depth_peak") == 3
    assert store.min("ingest_job_0_inflight_rows") == 0
    assert store.max("ingest_job_0_inflight_rows") == 4096
    assert store.delta("ingest_jobs_tracked") == 0
    assert store.max("ingest_job_0_shard_2_lag") == 12  # born mid-run: gauges take no zero baseline


def test_a_counter_going_backwards_is_a_reset_not_a_negative_delta() -> None:
    """After a restart the delta adds what was counted since; resets are counted; rate stays positive."""
    store = MetricsStore()
    for ts, value in [(0.0, 100), (10.0, 150), (20.0, 30), (30.0, 80)]:
        store.observe("n1", ts, [Sample("ops", (), value, "counter")])
    assert store.delta("ops") == 50 + 30 + 50
    assert store.resets("ops") == 1
    assert store.resets("ops", node="n2") == 0
    rate = store.rate("ops")
    assert rate is not None and rate == pytest.approx(130 / 30)


def test_queries_sum_over_nodes_or_select_one() -> None:
    """node=None sums deltas, rates and last values over nodes; max takes the worst node."""
    store = MetricsStore()
    store.observe("n1", 0.0, [Sample("ops", (), 10, "counter"), Sample("depth", (), 1, "gauge")])
    store.observe("n2", 0.0, [Sample("ops", (), 500, "counter"), Sample("depth", (), 2, "gauge")])
    store.observe("n1", 10.0, [Sample("ops", (), 30, "counter"), Sample("depth", (), 7, "gauge")])
    store.observe("n2", 5.0, [Sample("ops", (), 600, "counter"), Sample("depth", (), 5, "gauge")])
    assert store.delta("ops", node="n1") == 20
    assert store.delta("ops", node="n2") == 100
    assert store.delta("ops") == 120
    assert store.rate("ops") == pytest.approx(2.0 + 20.0)  # each node over its own span
    assert store.last("depth") == 12
    assert store.max("depth") == 7 and store.max("depth", node="n2") == 5
    assert store.nodes() == ["n1", "n2"]
    assert store.delta("missing") is None and store.last("ops", node="n3") is None


def test_label_selection_matches_a_subset_of_pairs() -> None:
    """labels=None sums every label set; given labels select series carrying those pairs."""
    store = MetricsStore()
    for ts, ok, failed in [(0.0, 100, 1), (10.0, 160, 4)]:
        store.observe(
            "n1",
            ts,
            [
                Sample("req_total", (("code", "200"), ("method", "get")), ok, "counter"),
                Sample("req_total", (("code", "500"), ("method", "get")), failed, "counter"),
            ],
        )
    assert store.delta("req_total") == 63
    assert store.delta("req_total", labels={"code": "500"}) == 3
    assert store.delta("req_total", labels={"method": "get", "code": "200"}) == 60
    assert store.delta("req_total", labels={"code": "404"}) is None


def test_non_finite_values_are_last_but_never_enter_deltas_or_extremes() -> None:
    """A NaN reading is reported as last, while max and delta ignore it."""
    store = MetricsStore()
    store.observe("n1", 0.0, [Sample("t", (), 5.0, "gauge"), Sample("c", (), 1, "counter")])
    store.observe("n1", 1.0, [Sample("t", (), math.nan, "gauge"), Sample("c", (), math.inf, "counter")])
    store.observe("n1", 2.0, [Sample("t", (), 4.0, "gauge"), Sample("c", (), 3, "counter")])
    store.observe("n1", 3.0, [Sample("t", (), math.nan, "gauge")])
    last = store.last("t")
    assert last is not None and math.isnan(last)
    assert store.max("t") == 5.0 and store.delta("t") == -1.0
    assert store.delta("c") == 2 and store.resets("c") == 0


def test_string_values_names_and_memory_stay_per_series() -> None:
    """String samples are kept per node; many observations add no memory beyond one entry per series."""
    store = MetricsStore()
    store.observe("node1", 0.0, parse_holofusion(BEFORE))
    series = len(store)
    for i in range(1, 200):
        store.observe("node1", float(i), parse_holofusion(BEFORE))
    assert len(store) == series == 86
    store.observe("node1", 300.0, parse_holofusion(AFTER))
    strings = store.string_values("node1")
    assert strings["ingest_job_0_status"] == "running"
    assert strings["ingest_job_0_last_error"] == ""
    assert strings["active_query_0_statement"] == "insert"
    assert "tx_begin_count" not in strings
    assert store.string_values("node2") == {}
    assert "active_query_0_id" in store.names() and store.names("node2") == []
    assert store.delta("ingest_job_0_status") is None  # strings have no numeric delta


# --- metrics.csv rows ---------------------------------------------------------------------------


def test_rows_are_long_format_with_numbers_and_strings() -> None:
    """One (ts, node, name, labels, value) row per sample; string values are written too."""
    out = rows("node1", 12.5, parse_holofusion(AFTER))
    assert len(out) == 105
    assert out[0] == (12.5, "node1", "pushdown_support_exact", "", 0)
    assert (12.5, "node1", "ingest_job_0_status", "", "running") in out
    assert (12.5, "node1", "ingest_job_0_last_error", "", "") in out


def test_row_labels_are_k_equals_v_joined_by_semicolons_with_escapes() -> None:
    """Labels render as `k=v;k=v`; separators inside values are backslash-escaped."""
    out = rows("n", 1.0, parse_prometheus(PROMETHEUS))
    assert out[0][3] == "code=200;method=get"
    assert labels_text((("k", "a;b=c\\d\ne"),)) == "k=a\\;b\\=c\\\\d\\ne"


def test_an_empty_scrape_sets_no_baseline() -> None:
    """After an empty first scrape, the first real one is still the baseline, not a jump from zero."""
    store = MetricsStore()
    store.observe("n1", 0.0, [])
    store.observe("n1", 1.0, [Sample("ops", (), 500, "counter")])
    assert store.delta("ops") == 0
