"""Run a soak for real and watch it from outside: the servers' sessions and locks, holoload's memory and CPU.

    python bench/soak_watch.py [--minutes 60] [--interval 10] [--results-dir DIR] [-- EXTRA holoload ARGS]

Starts `python -m holoload scenarios/soak.toml --set phases.1.duration=<minutes>m` (the shipped
file otherwise unchanged: its own embedded 3-node cluster, 1 s windows, a split every minute)
and, every `--interval` seconds while it runs:

- on every node (DSNs from the run's run.log): holoload's sessions by state, any session
  `idle in transaction` (holoload's own, by application_name, and all; for holoload's, the age of
  its transaction: a split between two statements is idle for a moment, one left behind ages), the
  oldest open transaction's age, and sessions waiting on a lock (`wait_event_type = 'Lock'`);
- the RSS and CPU seconds of the holoload process and of every process it started (workers);
- how many windows the run has closed (timeseries.csv) against the wall time of its phases.

Each sample is one JSON line in `<run>/soak_watch.jsonl`. At the end it prints a summary:
verdict and exit code, windows against wall time, coordinator RSS at start, on the plateau
(median of the last half) and at the end, the largest idle-in-transaction count seen (holoload's
and any), lock waits, split successes and failures per node from events.jsonl, the checker's
results from summary.json, and the results directory's size; then one JSON line.
The run is bounded: soak + warm-up + 10 min slack, then SIGTERM, then SIGKILL 90 s later.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
SCENARIO = REPO_ROOT / "scenarios" / "soak.toml"
SLACK_S = 600.0
KILL_AFTER_S = 90.0
PSQL_TIMEOUT_S = 10.0
STUCK_S = 5  # a holoload session idle in a transaction this old was left behind, not between statements

SESSIONS_SQL = """
SELECT coalesce(application_name, ''), coalesce(state, ''), coalesce(wait_event_type, ''),
       coalesce(extract(epoch FROM now() - xact_start)::bigint, -1)
FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
"""


def psql() -> str:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"), reverse=True):
        return str(candidate)
    return "psql"


def query(dsn: str, sql: str) -> list[list[str]] | None:
    """Rows of a query through psql as the postgres user's trust login; None when the node does not answer."""
    try:
        done = subprocess.run(
            [psql(), dsn, "-X", "-A", "-t", "-F", "\t", "-c", sql],
            capture_output=True,
            text=True,
            timeout=PSQL_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return [line.split("\t") for line in done.stdout.splitlines() if line.strip()]


def node_dsns(run: Path) -> dict[str, str]:
    """node name -> DSN, from run.log's cluster_started line."""
    log = run / "run.log"
    if not log.exists():
        return {}
    for line in log.read_text(errors="replace").splitlines():
        if '"cluster_started"' in line:
            dsns = json.loads(line).get("nodes", [])
            return {f"node{i}": dsn for i, dsn in enumerate(dsns, start=1)}
    return {}


def proc_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children[parent].append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def proc_figures(pid: int) -> dict[str, Any] | None:
    try:
        status = (Path("/proc") / str(pid) / "status").read_text()
        stat = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
        cmdline = (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    rss = re.search(r"VmRSS:\s+(\d+) kB", status)
    ticks = os.sysconf("SC_CLK_TCK")
    return {
        "pid": pid,
        "rss_mb": int(rss.group(1)) / 1024 if rss else 0.0,
        "cpu_s": (int(stat[11]) + int(stat[12])) / ticks,
        "cmd": cmdline[:80],
    }


def windows_closed(run: Path) -> dict[str, int]:
    """Distinct windows per phase in timeseries.csv so far."""
    path = run / "timeseries.csv"
    seen: dict[str, set[str]] = defaultdict(set)
    if path.exists():
        with open(path, newline="") as fh:
            for row in csv.DictReader(fh):
                seen[row["phase"]].add(row["window"])
    return {phase: len(ws) for phase, ws in seen.items()}


def sample(run: Path, holoload_pid: int, dsns: dict[str, str], started: float) -> dict[str, Any]:
    nodes: dict[str, Any] = {}
    for name, dsn in dsns.items():
        rows = query(dsn, SESSIONS_SQL)
        if rows is None:
            nodes[name] = {"answered": False}
            continue
        ours = [r for r in rows if r[0].startswith("holoload")]
        nodes[name] = {
            "answered": True,
            "sessions": len(rows),
            "holoload_sessions": len(ours),
            "idle_in_tx": sum(1 for r in rows if r[1].startswith("idle in transaction")),
            "holoload_idle_in_tx": sum(1 for r in ours if r[1].startswith("idle in transaction")),
            # a statement boundary inside a split's transaction is idle in transaction for a moment;
            # one left behind (issue 13's wedge) ages: its transaction's age tells the two apart
            "holoload_idle_in_tx_age_s": max(
                (int(r[3]) for r in ours if r[1].startswith("idle in transaction")), default=-1
            ),
            "lock_waits": sum(1 for r in rows if r[2] == "Lock"),
            "oldest_xact_s": max((int(r[3]) for r in rows), default=-1),
            "by_state": dict(Counter(r[1] or "?" for r in rows)),
        }
    procs = [f for pid in proc_tree(holoload_pid) if (f := proc_figures(pid)) is not None]
    python = [p for p in procs if "python" in p["cmd"] or "holoload" in p["cmd"]]
    return {
        "t_s": round(time.monotonic() - started, 1),
        "nodes": nodes,
        "coordinator": next((p for p in python if p["pid"] == holoload_pid), None),
        "workers": [p for p in python if p["pid"] != holoload_pid],
        "windows": windows_closed(run),
    }


def find_run(results: Path, after: float) -> Path | None:
    runs = [p for p in results.glob("soak_*") if p.is_dir() and p.stat().st_mtime >= after - 5]
    return max(runs, key=lambda p: p.stat().st_mtime) if runs else None


def split_counts(run: Path) -> dict[str, dict[str, int]]:
    """ok / failed split steps per node, from each step's detail (`node1: split at ...; node2: ...`);
    a step whose detail names no node counts under 'all'."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"ok": 0, "failed": 0})
    path = run / "events.jsonl"
    if not path.exists():
        return {}
    for line in path.read_text(errors="replace").splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if event.get("kind") != "chaos_finished" or event.get("action") != "split":
            continue
        parts = re.findall(r"(?:^|; )(node\d+): (.*?)(?=; node\d+: |$)", str(event.get("detail", "")))
        if not parts:
            counts[event.get("node") or "all"]["ok" if event.get("ok") else "failed"] += 1
        for node, outcome in parts:
            counts[node]["ok" if outcome.startswith("split at") and "skipped" not in outcome else "failed"] += 1
    return dict(counts)


def phase_wall_s(run: Path) -> dict[str, float]:
    """Seconds from each phase's start event to the next phase's (or the last event)."""
    path = run / "events.jsonl"
    starts: list[tuple[str, float]] = []
    last = 0.0
    if path.exists():
        for line in path.read_text(errors="replace").splitlines():
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            last = max(last, float(event.get("ts", 0)))
            if event.get("kind") == "phase":
                starts.append((event.get("phase", "?"), float(event["ts"])))
    ends = [ts for _, ts in starts[1:]] + [last]
    return {name: round(end - ts, 1) for (name, ts), end in zip(starts, ends, strict=True)}


def dir_size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="soak phase length (default 60)")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between samples (default 10)")
    parser.add_argument("--results-dir", type=Path, default=None)
    parser.add_argument("extra", nargs="*", help="more holoload arguments (after --)")
    args = parser.parse_args(argv)
    results = args.results_dir or Path(tempfile.mkdtemp(prefix="soak-watch-"))
    cmd = [
        sys.executable,
        "-m",
        "holoload",
        str(SCENARIO),
        "--set",
        f"phases.1.duration={args.minutes:g}m",
        "--results-dir",
        str(results),
        *args.extra,
    ]
    print("running:", " ".join(cmd), flush=True)
    started = time.monotonic()
    wall_started = time.time()
    deadline = started + args.minutes * 60 + SLACK_S
    out = open(results / "holoload.out", "w") if results.exists() else None  # noqa: SIM115
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=out or subprocess.DEVNULL, stderr=subprocess.STDOUT)
    run: Path | None = None
    samples: list[dict[str, Any]] = []
    signalled = False
    try:
        while proc.poll() is None:
            now = time.monotonic()
            if now > deadline and not signalled:
                print("soak_watch: time is up, SIGTERM", flush=True)
                proc.send_signal(signal.SIGTERM)
                signalled, deadline = True, now + KILL_AFTER_S
            elif now > deadline:
                proc.kill()
                break
            run = run or find_run(results, wall_started)
            dsns = node_dsns(run) if run else {}
            if run and dsns:
                s = sample(run, proc.pid, dsns, started)
                samples.append(s)
                with open(run / "soak_watch.jsonl", "a") as fh:
                    fh.write(json.dumps(s) + "\n")
                idle = sum(n.get("holoload_idle_in_tx", 0) for n in s["nodes"].values())
                coord = s["coordinator"] or {}
                print(
                    f"[{s['t_s']:7.0f}s] windows {s['windows']} rss {coord.get('rss_mb', 0):.0f} MB "
                    f"cpu {coord.get('cpu_s', 0):.0f}s workers {[round(w['rss_mb']) for w in s['workers']]} MB "
                    f"holoload idle-in-tx {idle} lock waits {sum(n.get('lock_waits', 0) for n in s['nodes'].values())}",
                    flush=True,
                )
            time.sleep(args.interval)
    finally:
        if proc.poll() is None:
            proc.kill()
        code = proc.wait()
        if out:
            out.close()
    run = run or find_run(results, wall_started)
    report(run, code, samples, time.monotonic() - started)
    return 0 if run else 1


def report(run: Path | None, code: int, samples: list[dict[str, Any]], wall_s: float) -> None:
    summary: dict[str, Any] = {}
    if run and (run / "summary.json").exists():
        summary = json.loads((run / "summary.json").read_text())
    rss = [s["coordinator"]["rss_mb"] for s in samples if s.get("coordinator")]
    half = rss[len(rss) // 2 :]
    nodes = [n for s in samples for n in s["nodes"].values() if n.get("answered")]
    windows = windows_closed(run) if run else {}
    walls = phase_wall_s(run) if run else {}
    result = {
        "verdict": summary.get("verdict"),
        "exit_code": code,
        "wall_s": round(wall_s, 1),
        "windows": windows,
        "phase_wall_s": walls,
        "rss_mb_start": round(rss[0], 1) if rss else None,
        "rss_mb_plateau_median": round(statistics.median(half), 1) if half else None,
        "rss_mb_end": round(rss[-1], 1) if rss else None,
        "rss_mb_max": round(max(rss), 1) if rss else None,
        "max_holoload_idle_in_tx": max((n["holoload_idle_in_tx"] for n in nodes), default=None),
        "max_holoload_idle_in_tx_age_s": max((n.get("holoload_idle_in_tx_age_s", -1) for n in nodes), default=None),
        "holoload_idle_in_tx_over_5s": sum(1 for n in nodes if n.get("holoload_idle_in_tx_age_s", -1) >= STUCK_S),
        "max_idle_in_tx_any": max((n["idle_in_tx"] for n in nodes), default=None),
        "max_lock_waits": max((n["lock_waits"] for n in nodes), default=None),
        "samples": len(samples),
        "splits": split_counts(run) if run else {},
        "check": summary.get("check") or summary.get("checker"),
        "results_dir": str(run) if run else None,
        "results_mb": round(dir_size_mb(run), 1) if run else None,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    raise SystemExit(main())
