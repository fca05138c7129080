"""Node metrics: HoloFusion `name=value` and Prometheus text parsed into samples, and a store."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from prometheus_client.parser import text_string_to_metric_families

Labels = tuple[tuple[str, str], ...]
Format = Literal["holofusion", "prometheus"]
#: One long-format `metrics.csv` row: ts, node, name, labels (`k=v;k=v`), value.
MetricRow = tuple[float, str, str, str, float | str]
METRICS_CSV_HEADER = ("ts", "node", "name", "labels", "value")

#: HoloFusion prints no TYPE lines. A numeric HoloFusion metric is a gauge when its name
#: contains one of these fragments, else a counter. Gauges are levels that go up and down
#: (queue depths, in-flight work, circuit state, lag, peaks, rates, timestamps, tracked jobs);
#: everything else HoloFusion prints is a monotonically increasing count.
HOLOFUSION_GAUGE_MARKERS = (
    "queue_depth",
    "inflight",
    "circuit_state",
    "active_query_sessions",
    "_lag",
    "_peak",
    "rows_per_second",
    "_at_unix_ns",
    "jobs_tracked",
)

_INT_RE = re.compile(r"[+-]?\d+", re.ASCII)
_FLOAT_RE = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?", re.ASCII)
# What Rust's f64 Display prints for non-finite values.
_SPECIAL_FLOATS = {"NaN", "inf", "-inf", "+inf"}
_HOLOFUSION_LINE_RE = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*[ \t]*=")


@dataclass(frozen=True, slots=True)
class Sample:
    """One metric value read from a node.

    `value` is a number or a string. Integers are kept as `int` (the `float` annotation admits
    them), so large counts and nanosecond timestamps stay exact. `kind` is "counter", "gauge",
    "untyped", "info", or "string" for a string value. `labels` are sorted by key.
    """

    name: str
    labels: Labels
    value: float | str
    kind: str


# ---------------------------------------------------------------------------------------------
# Parsing


def parse_holofusion(text: str) -> list[Sample]:
    """Parse HoloFusion `name=value` lines, one sample per non-blank line, in order.

    Integers stay int, decimals/exponents (and NaN/inf) become float, anything else is a string
    sample (kind "string"), including the empty value of `ingest_job_0_last_error=`. The value
    is everything after the first `=`, trimmed. Numeric kinds follow `HOLOFUSION_GAUGE_MARKERS`.

    Args:
        text: the `/metrics` body.

    Returns:
        The samples, without labels.

    Raises:
        ValueError: a non-blank line has no `=` or an empty name (the message gives its number).
    """
    samples: list[Sample] = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, raw = line.partition("=")
        name = name.strip()
        if not sep:
            raise ValueError(f"metrics line {line_no}: expected name=value, got {line[:80]!r}")
        if not name:
            raise ValueError(f"metrics line {line_no}: empty metric name in {line[:80]!r}")
        value = _holofusion_value(raw.strip())
        samples.append(Sample(name, (), value, holofusion_kind(name, value)))
    return samples


def holofusion_kind(name: str, value: float | str) -> str:
    """Classify a HoloFusion metric: "string", else "gauge" per the markers, else "counter".

    Args:
        name: the metric name.
        value: its parsed value.

    Returns:
        The sample kind.
    """
    if isinstance(value, str):
        return "string"
    if any(marker in name for marker in HOLOFUSION_GAUGE_MARKERS):
        return "gauge"
    return "counter"


def _holofusion_value(raw: str) -> float | str:
    if _INT_RE.fullmatch(raw):
        return int(raw)
    if _FLOAT_RE.fullmatch(raw) or raw in _SPECIAL_FLOATS:
        return float(raw)
    return raw


def parse_prometheus(text: str) -> list[Sample]:
    """Parse the Prometheus text exposition format with `prometheus_client`'s parser.

    Histograms and summaries are flattened into their samples (`_bucket` with its `le` label,
    `_sum`, `_count`, and summary quantiles). Cumulative samples (counter `_total`, `_bucket`,
    `_sum`, `_count`) are kind "counter"; gauges and summary quantiles "gauge"; "info" stays
    "info"; anything without a TYPE line is "untyped". Counter names are kept as served:
    the client library renames `# TYPE foo counter` samples to `foo_total`, which is undone.
    Sample timestamps and exemplars are ignored (the sampler's time is what counts).

    Args:
        text: the exposition body.

    Returns:
        The samples in exposition order.

    Raises:
        ValueError: the text is not valid exposition format.
    """
    renamed_counters = _counters_renamed_by_client(text)
    samples: list[Sample] = []
    try:
        for family in text_string_to_metric_families(text):
            for raw in family.samples:
                name = raw.name
                if family.type == "counter" and family.name in renamed_counters and name.endswith("_total"):
                    name = name[: -len("_total")]
                labels = tuple(sorted(raw.labels.items()))
                samples.append(Sample(name, labels, raw.value, _prometheus_kind(family.type, family.name, name)))
    except (ValueError, IndexError, KeyError) as exc:
        raise ValueError(f"invalid Prometheus exposition: {exc or type(exc).__name__}") from exc
    return samples


def _counters_renamed_by_client(text: str) -> set[str]:
    """Names declared `# TYPE <name> counter` without `_total` (the client appends it)."""
    names: set[str] = set()
    for line in text.splitlines():
        parts = line.split(None, 3)
        if len(parts) == 4 and parts[0] == "#" and parts[1] == "TYPE" and parts[3].strip() == "counter":
            name = parts[2].strip('"')
            if not name.endswith("_total"):
                names.add(name)
    return names


def _prometheus_kind(family_type: str, family_name: str, name: str) -> str:
    suffix = name[len(family_name) :] if name.startswith(family_name) else ""
    if family_type == "counter":
        return "gauge" if suffix == "_created" else "counter"
    if family_type in ("histogram", "summary"):
        if suffix in ("_bucket", "_sum", "_count"):
            return "counter"
        return "gauge"
    if family_type in ("gauge", "gaugehistogram", "stateset"):
        return "gauge"
    if family_type == "info":
        return "info"
    return "untyped"


def detect_format(text: str) -> Format:
    """Tell HoloFusion `name=value` text from Prometheus exposition text.

    The first non-blank line decides: a `#` comment, or a name followed by `{` or a space and
    a value, is Prometheus; a name followed by `=` is HoloFusion. Empty text is "holofusion".

    Args:
        text: a `/metrics` body.

    Returns:
        "holofusion" or "prometheus".
    """
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            return "prometheus"
        return "holofusion" if _HOLOFUSION_LINE_RE.match(stripped) else "prometheus"
    return "holofusion"


def parse_metrics(text: str) -> list[Sample]:
    """Parse a `/metrics` body in whichever format `detect_format` finds.

    Args:
        text: a `/metrics` body.

    Returns:
        The samples.

    Raises:
        ValueError: the text is malformed for its detected format.
    """
    if detect_format(text) == "prometheus":
        return parse_prometheus(text)
    return parse_holofusion(text)


# ---------------------------------------------------------------------------------------------
# The store


def labels_text(labels: Labels) -> str:
    r"""Render labels as `k=v;k=v` for `metrics.csv`; `\`, `;`, `=` and newlines are escaped.

    Args:
        labels: sorted (key, value) pairs.

    Returns:
        The text ("" without labels).
    """
    return ";".join(f"{_escape_label(k)}={_escape_label(v)}" for k, v in labels)


def _escape_label(text: str) -> str:
    return text.replace("\\", "\\\\").replace(";", "\\;").replace("=", "\\=").replace("\n", "\\n")


def rows(node: str, ts_s: float, samples: list[Sample]) -> list[MetricRow]:
    """Long-format `metrics.csv` rows for one observation (columns `METRICS_CSV_HEADER`).

    Args:
        node: the node the samples came from.
        ts_s: when they were taken (Unix seconds).
        samples: the parsed samples; numeric and string values are both written.

    Returns:
        One row per sample.
    """
    return [(ts_s, node, s.name, labels_text(s.labels), s.value) for s in samples]
