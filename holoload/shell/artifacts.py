"""Results directory writers: events.jsonl and snapshots as the run goes, summaries at the end."""

from __future__ import annotations

import contextlib
import csv
import gzip
import os
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from holoload.core.events import BatchFinished, Event, MetricsSampled, SnapshotTaken, TopologyChanged, WindowClosed
from holoload.core.isolation.history import Txn, dump_history
from holoload.core.server.metrics import METRICS_CSV_HEADER
from holoload.core.stats import hlog
from holoload.engine.isolation_run import history_file

_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


def results_dir_for(base: str | Path, scenario: str, started: datetime) -> Path:
    """Create `<base>/<scenario>_<UTC timestamp>` (suffixed _2, _3... if taken) and return it.

    Raises:
        OSError: the directory cannot be created.
    """
    stamp = started.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    Path(base).mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        path = Path(base) / (f"{scenario}_{stamp}" if n == 1 else f"{scenario}_{stamp}_{n}")
        try:
            path.mkdir()  # atomic: two runs in the same second get different directories
            return path
        except FileExistsError:
            continue
    raise OSError(f"too many runs of {scenario} at {stamp} in {base}")


class ArtifactWriter:
    """Writes each event as it arrives (flushed per line) so a crash keeps what was measured.

    Args:
        root: the run's results directory (created here).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.snapshots = root / "snapshots"
        self._events: IO[bytes] | None = None
        self._metrics_fh: IO[str] | None = None
        self._metrics_csv: Any = None
        self.batches: list[BatchFinished] = []
        self.write_errors: list[str] = []

    def open(self) -> ArtifactWriter:
        self.snapshots.mkdir(parents=True, exist_ok=True)
        self._events = (self.root / "events.jsonl").open("ab")
        return self

    def close(self) -> None:
        for fh in (self._events, self._metrics_fh):
            if fh is not None:
                fh.close()
        self._events = self._metrics_fh = None
        self._metrics_csv = None

    def emit(self, event: Event) -> None:
        """Append the event to events.jsonl; snapshots also become files under snapshots/."""
        if isinstance(event, BatchFinished):
            self.batches.append(event)
        try:
            if isinstance(event, MetricsSampled):
                self._metrics(event)
                if event.ok:
                    return  # samples go to metrics.csv; a failed poll is an event worth keeping
            if isinstance(event, WindowClosed):
                return  # windows go to timeseries.csv (TimeseriesWriter), not the event log
            if isinstance(event, TopologyChanged):
                self._topology(event)
            if isinstance(event, SnapshotTaken):
                name = _SAFE_NAME.sub("_", event.name)
                (self.snapshots / name).write_bytes(event.text.encode())
            self._append(event.to_dict())
        except OSError as exc:  # a full disk must not kill the run; it is reported at the end
            self.write_errors.append(f"{type(event).__name__}: {exc}")

    def _metrics(self, event: MetricsSampled) -> None:
        if self._metrics_csv is None:
            self._metrics_fh = (self.root / "metrics.csv").open("a", newline="")
            self._metrics_csv = csv.writer(self._metrics_fh, lineterminator="\n")
            self._metrics_csv.writerow(METRICS_CSV_HEADER)
        self._metrics_csv.writerows(
            (f"{ts:.3f}", node, name, labels, value) for ts, node, name, labels, value in event.rows
        )
        assert self._metrics_fh is not None
        self._metrics_fh.flush()

    def _topology(self, event: TopologyChanged) -> None:
        with (self.root / "topology.jsonl").open("ab") as fh:
            for change in event.changes:
                fh.write(orjson.dumps({"ts": event.ts, **change, "summary": dict(event.summary)}) + b"\n")

    def _append(self, record: dict[str, Any]) -> None:
        if self._events is None:
            return
        self._events.write(orjson.dumps(record) + b"\n")
        self._events.flush()

    def write_batch_stats(self) -> Path:
        """batch_stats.csv: index,label,rows,elapsed_ms,row_delta,status (one row per batch)."""
        path = self.root / "batch_stats.csv"
        with path.open("w", newline="") as fh:
            out = csv.writer(fh, lineterminator="\n")
            out.writerow(["index", "label", "rows", "elapsed_ms", "row_delta", "status"])
            for b in self.batches:
                delta = "" if b.row_delta is None else b.row_delta
                out.writerow([b.index, b.label, b.rows, f"{b.elapsed_s * 1000:.1f}", delta, b.status])
        return path

    def write_json(self, name: str, data: Any) -> None:
        """One JSON file in the results directory, written atomically (raises OSError)."""
        _atomic_write(self.root / name, orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")

    def write_summary(self, summary: dict[str, Any], text_keys: list[tuple[str, Any]]) -> None:
        """summary.json (everything) and summary.txt (the bash canary's key=value lines)."""
        _atomic_write(self.root / "summary.json", orjson.dumps(summary, option=orjson.OPT_INDENT_2) + b"\n")
        lines = "".join(f"{key}={_plain(value)}\n" for key, value in text_keys)
        _atomic_write(self.root / "summary.txt", lines.encode())


def _plain(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


TIMESERIES_COLUMNS = (
    "ts",
    "elapsed_s",
    "phase",
    "window",
    "workload",
    "op",
    "endpoint",
    "ok",
    "errors",
    "dropped",
    "retries",
    "rows",
    "ops_per_s",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
    "service_p99_ms",
    "lag_p99_ms",
)


class HlogWriter:
    """latency.hlog: an HdrHistogram interval log, one tagged line per op and endpoint per window.

    Appended and flushed as each window closes, so a killed run loses at most the open window.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] | None = None
        self.write_errors: list[str] = []

    def emit(self, event: Event) -> None:
        if not isinstance(event, WindowClosed) or not event.histograms or self.write_errors:
            return
        start_ts = event.ts - event.elapsed_s  # the run's base time: the aggregator's start
        window_start = event.elapsed_s - event.seconds
        try:
            if self._fh is None:
                self._fh = self.path.open("a")
                self._fh.write(hlog.header(start_ts))
            for tag, max_us, payload in event.histograms:
                self._fh.write(hlog.interval_line(tag, window_start, event.seconds, max_us, payload))
            self._fh.flush()
        except OSError as exc:
            self.write_errors.append(f"{self.path.name}: {exc}")

    def close(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.close()
            self._fh = None


class _WindowCsv:
    """A CSV appended as windows close: opened (and its header written) on the first row, flushed
    after each window; a write error is kept, never raised (a full disk must not end the run)."""

    columns: tuple[str, ...] = ()

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] | None = None
        self._csv: Any = None
        self.write_errors: list[str] = []

    def rows(self, event: WindowClosed) -> list[list[Any]] | None:
        """This window's rows; None when the window has nothing for this file (no file is made for it)."""
        raise NotImplementedError

    def emit(self, event: Event) -> None:
        if not isinstance(event, WindowClosed):
            return
        rows = self.rows(event)
        if rows is None:
            return
        try:
            if self._fh is None:
                self._fh = self.path.open("a", newline="")
                self._csv = csv.writer(self._fh, lineterminator="\n")
                self._csv.writerow(self.columns)
            self._csv.writerows(rows)
            self._fh.flush()
        except OSError as exc:
            problem = f"{self.path.name}: {exc}"
            if not self.write_errors or self.write_errors[-1] != problem:  # a full disk says it once
                self.write_errors.append(problem)

    def close(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.close()
            self._fh = None


class TimeseriesWriter(_WindowCsv):
    """timeseries.csv: one row per (workload, op, endpoint) per window, appended as windows close."""

    columns = TIMESERIES_COLUMNS

    def rows(self, event: WindowClosed) -> list[list[Any]] | None:
        return [
            [
                f"{event.ts:.3f}",
                f"{event.elapsed_s:.3f}",
                event.phase,
                event.index,
                r.workload,
                r.op,
                r.endpoint,
                r.ok,
                sum(r.errors.values()),
                r.dropped,
                r.retries,
                r.rows,
                f"{r.ops_per_s:.1f}",
                _num(r.p50_ms),
                _num(r.p95_ms),
                _num(r.p99_ms),
                _num(r.max_ms),
                _num(r.service_p99_ms),
                _num(r.lag_p99_ms),
            ]
            for r in event.rows
        ]


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


CLIENT_HEALTH_COLUMNS = (
    "ts",
    "elapsed_s",
    "phase",
    "window",
    "window_s",
    "actual_s",
    "tick_late_ms",
    "process",
    "lag_p99_ms",
    "lag_max_ms",
    "probes",
    "cpu_s",
    "cpu_share",
    "late_drops",
    "drives_load",
    "strained",
)


class ClientHealthWriter(_WindowCsv):
    """client_health.csv: holoload's own health, one row per process per window (see core/stats/client_health.py)."""

    columns = CLIENT_HEALTH_COLUMNS

    def rows(self, event: WindowClosed) -> list[list[Any]] | None:
        health = event.client
        if health is None:
            return None
        late = "" if health.tick_late_s is None else f"{health.tick_late_s * 1000:.1f}"
        strained = "; ".join(event.client_strain)
        return [
            [
                f"{event.ts:.3f}",
                f"{event.elapsed_s:.3f}",
                event.phase,
                event.index,
                f"{health.window_s:g}",
                f"{health.actual_s:.4f}",
                late,
                name,
                _num(p.lag_p99_ms),
                _num(p.lag_max_ms),
                p.probes,
                f"{p.cpu_s:.4f}",
                "" if p.cpu_share is None else f"{p.cpu_share:.3f}",
                p.late_drops,
                int(p.drives_load),
                strained,
            ]
            for name, p in health.processes
        ]


def write_histories(root: Path, histories: Mapping[str, Sequence[Txn]]) -> list[str]:
    """Each transactional workload's list-append history as `history-<workload>.jsonl.gz` (`holoload check`
    reads it); returns the problems (a history that cannot be written never changes the verdict)."""
    problems: list[str] = []
    for name, txns in histories.items():
        path = root / history_file(name)
        try:
            with gzip.open(path, "wt", encoding="utf-8", compresslevel=5) as out:
                for line in dump_history(txns):
                    out.write(line + "\n")
        except OSError as exc:
            problems.append(f"{path.name}: {exc}")
    return problems
