"""HdrHistogram interval log text (`latency.hlog`): the header and one tagged line per interval.

The format other HDR tools read (HdrHistogram's HistogramLogReader, HdrHistogramVisualizer,
hdrh's `HistogramLogReader`), version 1.3:

    #[Histogram log format version 1.3]
    #[StartTime: 1795312887.389 (seconds since epoch), 2026-11-22T02:01:27.389Z]
    #[BaseTime: 1795312887.389 (seconds since epoch)]
    "StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"
    Tag=main.w.insert@node1,0.000,1.000,4.095,HISTFAAAA...

Values are microseconds; `Interval_Max` is in milliseconds (max value unit ratio 1000);
timestamps are seconds relative to BaseTime.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

FORMAT_VERSION = "1.3"
#: The log's values are microseconds; Interval_Max is written in milliseconds.
MAX_VALUE_UNIT_RATIO = 1000.0
_UNSAFE = re.compile(r"[^A-Za-z0-9_.@:\-]")


def header(start_ts: float) -> str:
    """The log's header lines for a run that started at `start_ts` (seconds since the epoch)."""
    iso = datetime.fromtimestamp(start_ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return (
        f"#[Histogram log format version {FORMAT_VERSION}]\n"
        f"#[StartTime: {start_ts:.3f} (seconds since epoch), {iso}]\n"
        f"#[BaseTime: {start_ts:.3f} (seconds since epoch)]\n"
        '"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"\n'
    )


def tag(phase: str, workload: str, op: str, endpoint: str) -> str:
    """A log tag naming one op on one endpoint in one phase; no commas or spaces (the format's rule)."""
    return _UNSAFE.sub("_", f"{phase}.{workload}.{op}@{endpoint}")


def interval_line(tag_: str, start_s: float, length_s: float, max_us: int, payload: str) -> str:
    """One interval: `Tag=...,start,length,max_ms,payload` with start relative to BaseTime."""
    return f"Tag={tag_},{max(start_s, 0.0):.3f},{length_s:.3f},{max_us / MAX_VALUE_UNIT_RATIO:.3f},{payload}\n"


@dataclass(frozen=True, slots=True)
class Interval:
    """One interval line read back."""

    tag: str
    start_s: float
    length_s: float
    max_ms: float
    payload: str


def parse_line(line: str) -> Interval | None:
    """Read an interval line written by `interval_line`; None for headers, comments and torn lines."""
    if not line.startswith("Tag="):
        return None
    parts = line.rstrip("\n").split(",")
    if len(parts) != 5 or not parts[4]:
        return None
    try:
        return Interval(parts[0][4:], float(parts[1]), float(parts[2]), float(parts[3]), parts[4])
    except ValueError:
        return None
