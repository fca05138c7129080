"""What soak_memory.py reads while holoload runs and after: /proc, events.jsonl, timeseries.csv, sizes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

RESULT_FILES = ("timeseries.csv", "latency.hlog", "metrics.csv", "events.jsonl")
WORKER_MODULE = b"holoload.engine.worker_main"


@dataclass
class EventTail:
    """Follows events.jsonl as holoload appends it; keeps the `phase` events' start times."""

    path: Path
    offset: int = 0
    phases: dict[str, float] = field(default_factory=dict)

    def poll(self) -> None:
        try:
            with self.path.open("rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
        except FileNotFoundError:
            return
        end = chunk.rfind(b"\n")
        if end < 0:
            return  # no complete line yet
        self.offset += end + 1
        for line in chunk[: end + 1].splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("kind") == "phase":
                self.phases.setdefault(str(event.get("phase")), float(event["ts"]))

    def phase_span(self, name: str) -> tuple[float, float | None] | None:
        """(start, end) of a phase: it ends where the next phase starts (None while it runs)."""
        start = self.phases.get(name)
        if start is None:
            return None
        later = [ts for ts in self.phases.values() if ts > start]
        return start, min(later) if later else None


def rss_kb(pid: int) -> int | None:
    """VmRSS of a live process, from /proc/<pid>/status (None once it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None  # a zombie has no VmRSS line


def worker_rss_kb(parent: int) -> tuple[int, ...]:
    """VmRSS of each worker process (`holoload.engine.worker_main`) whose parent is `parent`."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) != parent or WORKER_MODULE not in (stat.parent / "cmdline").read_bytes():
                continue
        except (OSError, IndexError, ValueError):
            continue
        kb = rss_kb(int(stat.parent.name))
        if kb is not None:
            out.append(kb)
    return tuple(sorted(out))


def tree_bytes(root: Path) -> int:
    """Bytes of every file under a directory (the results directory's size)."""
    total = 0
    for path in root.rglob("*"):
        try:
            total += path.stat().st_size if path.is_file() else 0
        except OSError:
            continue
    return total


def file_sizes(run_dir: Path | None) -> dict[str, int]:
    sizes = {}
    for name in RESULT_FILES:
        try:
            sizes[name] = (run_dir / name).stat().st_size if run_dir else 0
        except OSError:
            sizes[name] = 0
    return sizes


def run_dirs(results: Path) -> set[Path]:
    return {p for p in results.glob("soak_*") if p.is_dir()}


def window_ends(timeseries: Path) -> dict[int, float]:
    """Window number (counted over the whole run) -> when it closed, from timeseries.csv."""
    ends: dict[int, float] = {}
    with timeseries.open() as fh:
        next(fh, None)
        for line in fh:
            cols = line.split(",", 4)
            if len(cols) > 3:
                ends.setdefault(int(cols[3]), float(cols[0]))
    return ends


def splits_per_node(events: Path) -> dict[str, dict[str, int]]:
    """ok / failed split statements per node, from the chaos_finished events of split actions.

    A split on a per-node target reports one "<node>: ..." part per node, "; "-separated; a part
    saying "split failed" is that node's failure.
    """
    out: dict[str, dict[str, int]] = {}
    for line in events.read_text(errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("kind") != "chaos_finished" or event.get("action") != "split" or event.get("step") != "fire":
            continue
        for part in str(event.get("detail", "")).split("; "):
            node, sep, rest = part.partition(": ")
            if not sep:
                continue
            counts = out.setdefault(node, {"ok": 0, "failed": 0})
            counts["failed" if "split failed" in rest else "ok"] += 1
    return out
