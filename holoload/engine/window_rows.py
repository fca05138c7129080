"""Turns a closed window into display/timeseries rows (per endpoint and merged per op)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import fields, replace

from holoload.core.events import WindowRow
from holoload.core.stats import hlog
from holoload.core.stats.window import Aggregator, OpKey, OpStats, Window


def _ms(value_us: int | None) -> float | None:
    return None if value_us is None else value_us / 1000


def _row(
    workload: str, op: str, endpoint: str, stats: OpStats, seconds: float, total: OpStats | None = None
) -> WindowRow:
    p50, p95, p99 = stats.latency.percentiles_us((50, 95, 99))
    extra: dict[str, object] = {}
    if total is not None:
        t50, t95, t99 = total.latency.percentiles_us((50, 95, 99))
        extra = {
            "total_ok": total.ok,
            "total_errors": total.error_count,
            "total_p50_ms": _ms(t50),
            "total_p95_ms": _ms(t95),
            "total_p99_ms": _ms(t99),
            "total_max_ms": _ms(total.latency.max_us) if total.latency.count else None,
        }
    return WindowRow(
        workload=workload,
        op=op,
        endpoint=endpoint,
        ok=stats.ok,
        errors={cls.value: n for cls, n in stats.errors.items()},
        dropped=stats.dropped,
        retries=stats.retries,
        rows=stats.rows,
        ops_per_s=stats.ok / seconds if seconds > 0 else 0.0,
        p50_ms=_ms(p50),
        p95_ms=_ms(p95),
        p99_ms=_ms(p99),
        max_ms=_ms(stats.latency.max_us) if stats.latency.count else None,
        service_p99_ms=_ms(stats.service.percentile_us(99)),
        lag_p99_ms=_ms(stats.lag.percentile_us(99)),
        **extra,  # type: ignore[arg-type]
    )


def window_rows(window: Window, aggregator: Aggregator, phase: str) -> tuple[WindowRow, ...]:
    """Rows for every key of the current phase, then one merged ("*") row per workload.op.

    An op on one endpoint has the same figures in both rows: its "*" row is the endpoint row
    plus the phase totals, read from the window's and the totals' own stats (no merged copy,
    no second walk over the buckets).
    """
    groups: dict[tuple[str, str], list[OpKey]] = defaultdict(list)
    for key in window.stats:
        if key.phase == phase:
            groups[(key.workload, key.op)].append(key)
    stars: dict[tuple[str, str], WindowRow] = {}
    for (workload, op), keys in groups.items():
        if len(keys) == 1:
            stars[(workload, op)] = _row(
                workload, op, "*", window.stats[keys[0]], window.seconds, aggregator.totals[keys[0]]
            )
    rows: list[WindowRow] = []
    for key, stats in window.stats.items():
        if key.phase != phase:
            continue
        star = stars.get((key.workload, key.op))
        if star is not None:
            rows.append(replace(star, endpoint=key.endpoint, **_NO_TOTALS))  # type: ignore[arg-type]
        else:
            rows.append(_row(key.workload, key.op, key.endpoint, stats, window.seconds))
    for (workload, op), keys in groups.items():
        star = stars.get((workload, op))
        if star is None:
            merged = OpStats()
            total = OpStats()
            for key in keys:
                merged.merge(window.stats[key])
                total.merge(aggregator.totals[key])
            star = _row(workload, op, "*", merged, window.seconds, total)
        rows.append(star)
    return tuple(rows)


_NO_TOTALS = {f.name: f.default for f in fields(WindowRow) if f.name.startswith("total_")}


def encoded_histograms(window: Window) -> Iterator[tuple[str, int, str]]:
    """Each key's latency histogram of the window, HDR-encoded for latency.hlog."""
    for key, stats in window.stats.items():
        if stats.latency.count == 0:
            continue
        histogram = stats.latency.to_latency_histogram()
        payload = histogram.encode().decode("ascii")
        yield hlog.tag(key.phase, key.workload, key.op, key.endpoint), histogram.max_us or 0, payload
