"""Which server acknowledged which ids, and when: so a lost id range names its acknowledgement.

Writers note every acknowledged write (its id intervals, the server address its connection
reached, the monotonic time). Contiguous ids from one server within `resolution_ns` fold into one
run, so memory grows with writers x seconds, not with writes. After the checker found lost ids,
`describe` gives each lost range with the server that acknowledged it and when.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

NS_PER_S = 1_000_000_000


class _Run:
    __slots__ = ("start", "end", "server", "first_ns", "last_ns")

    def __init__(self, start: int, end: int, server: str, now_ns: int) -> None:
        self.start, self.end, self.server, self.first_ns, self.last_ns = start, end, server, now_ns, now_ns


class AckLog:
    """Acknowledged id runs by server and time.

    Args:
        origin_ns: the run's time zero (times are reported as seconds from it).
        wall_origin_s: the wall-clock time at origin_ns (for `acked_at`, epoch seconds).
        resolution_ns: how long one run may stretch in time.
        max_runs: a bound on memory; past it, new acknowledgements are counted but not kept.
    """

    def __init__(
        self, origin_ns: int, *, wall_origin_s: float = 0.0, resolution_ns: int = NS_PER_S, max_runs: int = 1_000_000
    ) -> None:
        self.origin_ns = origin_ns
        self.wall_origin_s = wall_origin_s  # the wall-clock time (epoch s) of origin_ns
        self.resolution_ns = resolution_ns
        self.max_runs = max_runs
        self.dropped = 0
        self._runs: list[_Run] = []
        self._open: dict[tuple[str, int], _Run] = {}  # (server, end) -> the run a next id may extend

    def note(self, ids: Sequence[tuple[int, int]], server: str, now_ns: int) -> None:
        """Ids [start, end) acknowledged by `server` at `now_ns`."""
        for start, end in ids:
            run = self._open.pop((server, start), None)
            if run is not None and now_ns - run.first_ns <= self.resolution_ns:
                run.end, run.last_ns = end, now_ns
            elif len(self._runs) >= self.max_runs:
                self.dropped += end - start
                continue
            else:
                run = _Run(start, end, server, now_ns)
                self._runs.append(run)
            self._open[(server, end)] = run

    def describe(
        self, lost: Iterable[tuple[int, int]], *, names: Mapping[str, str] | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Each lost range cut by who acknowledged it: ids, count, server (and its name), when.

        Args:
            lost: the lost id intervals [start, end), ascending.
            names: server address -> node name, when known.
            limit: at most this many rows.

        Returns:
            Rows ``{"ids": [start, end], "count", "acknowledged_by", "node", "acked_s": [first, last],
            "acked_at": [first, last]}`` (seconds from the origin; epoch seconds);
            ids with no record (e.g. acknowledged in a worker process) come as ``acknowledged_by: null``.
        """
        runs = sorted(self._runs, key=lambda r: r.start)
        starts = [r.start for r in runs]
        rows: list[dict[str, Any]] = []
        for lo, hi in lost:
            cursor = lo
            i = max(0, bisect_left(starts, lo) - 1)
            while cursor < hi and len(rows) < limit:
                while i < len(runs) and runs[i].end <= cursor:
                    i += 1
                if i >= len(runs) or runs[i].start >= hi:
                    rows.append(self._row(cursor, hi, None, names))
                    break
                run = runs[i]
                if run.start > cursor:
                    rows.append(self._row(cursor, run.start, None, names))
                    cursor = run.start
                    continue
                end = min(hi, run.end)
                rows.append(self._row(cursor, end, run, names))
                cursor = end
                i += 1
            if len(rows) >= limit:
                break
        return _merge_rows(rows)

    def _row(self, lo: int, hi: int, run: _Run | None, names: Mapping[str, str] | None) -> dict[str, Any]:
        server = None if run is None else run.server
        return {
            "ids": [lo, hi],
            "count": hi - lo,
            "acknowledged_by": server,
            "node": None if server is None else (names or {}).get(server, server),
            "acked_s": None if run is None else [self._offset(run.first_ns), self._offset(run.last_ns)],
            "acked_at": None if run is None else [self._wall(run.first_ns), self._wall(run.last_ns)],
        }

    def _offset(self, t_ns: int) -> float:
        return round((t_ns - self.origin_ns) / NS_PER_S, 3)

    def _wall(self, t_ns: int) -> float:
        return round(self.wall_origin_s + (t_ns - self.origin_ns) / NS_PER_S, 3)


def _merge_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Adjacent rows of one server fold into one (their time spans join)."""
    out: list[dict[str, Any]] = []
    for row in rows:
        last = out[-1] if out else None
        if last is not None and last["ids"][1] == row["ids"][0] and last["acknowledged_by"] == row["acknowledged_by"]:
            last["ids"][1] = row["ids"][1]
            last["count"] += row["count"]
            for key in ("acked_s", "acked_at"):
                if last[key] is not None and row[key] is not None:
                    last[key] = [min(last[key][0], row[key][0]), max(last[key][1], row[key][1])]
            continue
        out.append(row)
    return out
