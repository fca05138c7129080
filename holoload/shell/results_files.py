"""Reading what a run appended to its results directory, tolerating a torn last line (a killed run)."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from holoload.core.compare.regression import window_series


def finite(value: Any) -> float | None:
    """A CSV/JSON cell as a finite float, or None (blank, text, nan, inf)."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def read_jsonl(path: Path, notes: list[str]) -> list[dict[str, Any]]:
    """Records with a numeric ts; undecodable lines (a write cut short) are counted and skipped."""
    out, bad = [], 0
    try:
        with path.open("rb") as fh:
            for line in fh:
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError:
                    bad += line.strip() != b""
                    continue
                ok = isinstance(record, dict) and finite(record.get("ts")) is not None
                out += [record] if ok else []
                bad += not ok
    except OSError as exc:
        notes.append(f"{path.name}: cannot read ({exc})")
    if bad:
        notes.append(f"{path.name}: {bad} damaged line(s) skipped (a truncated write?)")
    return sorted(out, key=lambda r: float(r["ts"]))


def read_csv(path: Path, notes: list[str] | None) -> Iterator[dict[str, str]]:
    """Rows as dicts; rows with the wrong number of fields are counted as damaged and skipped."""
    bad = 0
    try:
        with path.open(newline="", errors="replace") as fh:
            reader = csv.reader(line.replace("\0", "") for line in fh)
            header = next(reader, [])
            for row in reader:
                if len(row) == len(header):
                    yield dict(zip(header, row, strict=True))
                else:
                    bad += bool(row)
    except (OSError, csv.Error) as exc:
        if notes is not None:
            notes.append(f"{path.name}: read stopped early ({exc})")
    if bad and notes is not None:
        notes.append(f"{path.name}: {bad} damaged line(s) skipped (a truncated write?)")


def read_window_series(
    root: Path, phases: list[str], notes: list[str] | None = None
) -> dict[str, dict[str, list[float]]]:
    """Per-window p95/p99/ops_per_s of the given (measured) phases from ``root/timeseries.csv``.

    Returns ``{}`` when the file is absent (a canary, or a run that never closed a window).
    """
    path = root / "timeseries.csv"
    if not path.exists() or not phases:
        return {}
    return window_series(read_csv(path, notes), phases)
