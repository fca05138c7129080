"""Benchmark: does a long soak grow holoload's memory, and how much do its results files take per window?

    python bench/soak_memory.py [--minutes 8] [--as-shipped] [--results-dir DIR]

Runs `python -m holoload scenarios/soak.toml` (its own embedded 3-node cluster) as a
subprocess, compressed to minutes at a higher load: 10 s warm-up, a soak phase of
`--minutes`, OLTP at 4 in flight per endpoint, ingest at 10 statements/s of 500 rows, a
split every 20 s, 1 s windows (`--as-shipped`: the file's own load, only the soak's length
set). Every second it reads VmRSS from /proc/<pid>/status of the holoload process (the
`python -m holoload` coordinator, not PostgreSQL) and of its worker processes, and follows the
run's events.jsonl to know when the soak phase starts and ends.

RSS climbs while bounded structures fill, then flattens: growth is judged only on the settled
part (`plateau.find_plateau`: the earliest start from which the slope no longer flattens, the
least-squares slope from there on). A soak that ends before it settles is UNSETTLED, not judged:
run longer. Target: < 20 MB/h, printed PASS/MISS/UNSETTLED; that and the run's own verdict never
change the exit code, 1 only when nothing could be measured. Also printed: the run's verdict,
windows against wall time, splits per node, the checker, the results directory's size and the
bytes written per window. Ends with one JSON line. The run is bounded (warm-up + soak + 4 min,
then SIGTERM) and the subprocess is always reaped.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plateau import Plateau, find_plateau  # bench/ is sys.path[0] when run as a script
from soak_io import EventTail, file_sizes, rss_kb, run_dirs, splits_per_node, tree_bytes, window_ends, worker_rss_kb

REPO_ROOT = Path(__file__).resolve().parent.parent
SCENARIO = REPO_ROOT / "scenarios" / "soak.toml"
WARMUP_S = 10
SAMPLE_INTERVAL_S = 1.0
RUN_SLACK_S = 240.0  # cluster start, 100k-row setup, the checker, summaries, cluster stop
STOP_GRACE_S = 60.0  # after SIGTERM: in-flight work drains, the checker runs, the cluster stops
TARGET_MB_PER_H = 20.0
MAX_MINUTES = 24 * 60
# The aggregator keeps the recent windows its windowed gates read: soak.toml's longest is
# window=1m, plus two windows (holoload/engine/load.py), so 63 windows of 1 s: no plateau before.
RING_WINDOWS = 63


def overrides(soak_s: int, *, as_shipped: bool = False) -> list[str]:
    """`--set` items compressing scenarios/soak.toml (phases.0 warm-up, phases.1 soak, chaos.0 split churn).

    as_shipped: only the soak's length; the file's own load, split interval and warm-up.
    """
    if as_shipped:
        return [f"phases.1.duration={soak_s}s"]
    return [
        "window=1s",
        f"phases.0.duration={WARMUP_S}s",
        f"phases.1.duration={soak_s}s",
        "phases.1.workloads.0.concurrency=4",  # oltp: in flight per endpoint (2 in the file)
        "phases.1.workloads.1.rate=10",  # ingest: 500-row statements/s over all endpoints (2)
        "phases.1.workloads.1.max_inflight=12",
        "chaos.0.every=20s",
        "chaos.0.start=10s",
        "chaos.0.jitter=2s",
    ]


class BenchError(Exception):
    """Nothing to report: holoload did not run, or the soak phase never showed up."""


@dataclass
class Sample:
    """One reading of the holoload process, on the wall clock events.jsonl uses."""

    ts: float
    rss_kb: int
    workers_kb: tuple[int, ...] = ()


def stop(proc: subprocess.Popen[bytes], log: Callable[[str], None]) -> None:
    """Stop holoload the way a user would and reap it: SIGTERM (graceful), again (at once), then SIGKILL."""
    for sig, wait_s in ((signal.SIGTERM, STOP_GRACE_S), (signal.SIGTERM, 30.0)):
        if proc.poll() is not None:
            return
        log(f"stopping holoload (pid {proc.pid}) with {sig.name}")
        proc.send_signal(sig)
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue
    log(f"holoload (pid {proc.pid}) ignored SIGTERM twice: SIGKILL to its process group")
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # its own session (start_new_session), so only its tree
    except ProcessLookupError:
        pass
    proc.wait()


@dataclass
class Soak:
    """What one compressed soak left: RSS samples, the soak's span, the results directory."""

    samples: list[Sample]
    span: tuple[float, float]
    run_dir: Path
    exit_code: int
    sizes_at_start: dict[str, int]
    sizes_at_end: dict[str, int]


def run_soak(soak_s: int, results: Path, log: Callable[[str], None], *, as_shipped: bool = False) -> Soak:
    cmd = [sys.executable, "-m", "holoload", str(SCENARIO), "--results-dir", str(results)]
    for item in overrides(soak_s, as_shipped=as_shipped):
        cmd += ["--set", item]
    log("$ " + " ".join(cmd))
    earlier = run_dirs(results)  # a kept --results-dir may hold older runs
    deadline = time.monotonic() + WARMUP_S + soak_s + RUN_SLACK_S
    samples: list[Sample] = []
    tail: EventTail | None = None
    run_dir: Path | None = None
    sizes_at_start: dict[str, int] = {}
    sizes_at_end: dict[str, int] = {}
    with (results / "holoload.out").open("wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            while proc.poll() is None:
                if time.monotonic() > deadline:
                    raise BenchError(f"holoload still running after {WARMUP_S + soak_s + RUN_SLACK_S:.0f} s")
                kb = rss_kb(proc.pid)
                if kb is not None:
                    samples.append(Sample(time.time(), kb, worker_rss_kb(proc.pid)))
                if run_dir is None and (new := run_dirs(results) - earlier):
                    run_dir = max(new)
                    tail = EventTail(run_dir / "events.jsonl")
                if tail is not None:
                    tail.poll()
                    span = tail.phase_span("soak")
                    if span is not None and not sizes_at_start:
                        sizes_at_start = file_sizes(run_dir)
                        log(f"soak phase started; RSS {kb_to_mb(kb or 0):.1f} MB")
                    if span is not None and span[1] is not None and not sizes_at_end:
                        sizes_at_end = file_sizes(run_dir)
                        log(f"soak phase ended; RSS {kb_to_mb(kb or 0):.1f} MB")
                time.sleep(SAMPLE_INTERVAL_S)
        finally:
            stop(proc, log)
    if run_dir is None or tail is None:
        raise BenchError(f"holoload exited {proc.returncode} without a results directory")
    tail.poll()
    span = tail.phase_span("soak")
    if span is None:
        raise BenchError(f"holoload exited {proc.returncode} before the soak phase started")
    start, end = span
    if end is None:  # holoload stopped inside the soak phase
        end = samples[-1].ts if samples else start
    sizes_at_end = sizes_at_end or file_sizes(run_dir)
    return Soak(samples, (start, end), run_dir, proc.returncode, sizes_at_start, sizes_at_end)


def kb_to_mb(kb: float) -> float:
    return kb / 1024.0


def slope_mb_per_h(samples: Sequence[Sample], origin: float) -> float:
    """Least-squares slope of RSS (MB) over time (hours)."""
    hours = [(s.ts - origin) / 3600.0 for s in samples]
    return statistics.linear_regression(hours, [kb_to_mb(s.rss_kb) for s in samples]).slope


def write_samples(soak: Soak, path: Path) -> None:
    """rss.csv: every sample, seconds from the soak phase's start (negative: warm-up and start-up)."""
    start, end = soak.span
    lines = ["ts,soak_s,in_soak,rss_kb,workers_rss_kb"]
    lines += [
        f"{s.ts:.3f},{s.ts - start:.3f},{int(start <= s.ts <= end)},{s.rss_kb},{' '.join(map(str, s.workers_kb))}"
        for s in soak.samples
    ]
    path.write_text("\n".join(lines) + "\n")


def analyse(soak: Soak) -> dict[str, Any]:
    start, end = soak.span
    inside = [s for s in soak.samples if start <= s.ts <= end]
    if len(inside) < 3:
        raise BenchError(f"only {len(inside)} RSS samples inside the soak phase")
    ends = window_ends(soak.run_dir / "timeseries.csv")
    windows = len(ends)
    # The aggregator keeps a ring of the last RING_WINDOWS windows for windowed gates: it fills
    # (bounded by design) during the first minute, so no plateau is looked for before it is full.
    first = min((n for n, ts in ends.items() if ts >= start), default=None)
    full = None if first is None else min((ts for n, ts in ends.items() if n >= first + RING_WINDOWS), default=None)
    plateau = find_plateau(
        [(s.ts - start, kb_to_mb(s.rss_kb)) for s in inside], not_before_s=(full - start) if full else 0.0
    )
    sizes = file_sizes(soak.run_dir)
    soak_windows = [ts for ts in ends.values() if start <= ts <= end]
    marginal = sum(soak.sizes_at_end.values()) - sum(soak.sizes_at_start.values()) if soak.sizes_at_start else None
    summary = json.loads((soak.run_dir / "summary.json").read_text())
    most = max((len(s.workers_kb) for s in inside), default=0)
    workers = [s.workers_kb for s in inside if most and len(s.workers_kb) == most]  # a worker read mid-exit is skipped
    return {
        "rss_start_mb": kb_to_mb(inside[0].rss_kb),
        "rss_end_mb": kb_to_mb(inside[-1].rss_kb),
        "rss_peak_mb": kb_to_mb(max(s.rss_kb for s in soak.samples)),
        "rss_growth_whole_soak_mb_per_h": slope_mb_per_h(inside, start),
        "plateau": plateau,
        "ring_full_s": full - start if full is not None else None,
        "workers_rss_start_mb": [round(kb_to_mb(kb), 1) for kb in workers[0]] if workers else [],
        "workers_rss_end_mb": [round(kb_to_mb(kb), 1) for kb in workers[-1]] if workers else [],
        "soak_samples": len(inside),
        "minutes": (end - start) / 60.0,
        "soak_windows": len(soak_windows),
        "windows": windows,
        "sizes": sizes,
        "results_dir_bytes": tree_bytes(soak.run_dir),
        "bytes_per_window": sum(sizes.values()) / windows if windows else None,
        "soak_bytes_per_window": marginal / max(1, len(soak_windows)) if marginal is not None else None,
        "splits": splits_per_node(soak.run_dir / "events.jsonl"),
        "verdict": summary.get("verdict"),
        "exit_code": soak.exit_code,
        "check": summary.get("check") or {},
        "client": summary.get("client") or {},
        "gates": summary.get("gates") or [],
        "phases": summary.get("phases") or {},
    }


def judged(plateau: Plateau) -> str:
    """PASS / MISS on the settled slope, UNSETTLED when the soak ended before the slope settled."""
    if plateau.slope_mb_per_h is None:
        return "UNSETTLED"
    return "PASS" if plateau.slope_mb_per_h < TARGET_MB_PER_H else "MISS"


def report(fig: dict[str, Any]) -> dict[str, Any]:
    plateau: Plateau = fig["plateau"]
    soak_ops = fig["phases"].get("soak", {}).get("ops", {})
    print(f"\nholoload run: verdict {fig['verdict']} (exit {fig['exit_code']})")
    for key, op in sorted(soak_ops.items()):
        ok_n, rate, errors = op.get("ok", 0), op.get("ops_per_s", 0), op.get("error_count")
        print(f"  soak {key:<16} {ok_n:>10,} ok {rate:>9,.0f}/s  errors {errors}  dropped {op.get('dropped')}")
    check = fig["check"]
    if check:
        counts = check.get("counts") or {}
        ledger = check.get("ledger") or {}
        print(
            f"  check complete={check.get('complete')} acknowledged={ledger.get('acknowledged')} "
            + " ".join(f"{k}={v}" for k, v in counts.items())
        )
    for node, counts in sorted(fig["splits"].items()):
        print(f"  splits on {node}: {counts['ok']} ok, {counts['failed']} failed")
    failed = [g for g in fig["gates"] if not g.get("passed")]
    for gate in failed:
        print(f"  gate FAIL {gate.get('name')}: {gate.get('observed_text')} ({gate.get('reason')})")
    client = fig["client"]
    if client:
        print(
            f"  windows: {client.get('ticks')} of {client.get('window_s')} s took {client.get('ticked_windows_s')} s; "
            f"client {'SATURATED' if client.get('saturated') else 'kept up'} "
            f"({client.get('strained_windows')} of {client.get('judged_windows')} windows strained)"
        )
    if client.get("saturated"):
        print("  note: holoload itself was saturated (client.ok failed): the figures below are of a run behind")
    print(f"\nholoload coordinator RSS over the soak phase ({fig['minutes']:.1f} min, {fig['soak_samples']} samples)")
    print(
        f"  start {fig['rss_start_mb']:.1f} MB, end {fig['rss_end_mb']:.1f} MB, "
        f"peak (whole run) {fig['rss_peak_mb']:.1f} MB"
    )
    if fig["workers_rss_start_mb"]:
        print(f"  workers: start {fig['workers_rss_start_mb']} MB, end {fig['workers_rss_end_mb']} MB")
    spans = ", ".join(f"{a:.0f}-{b:.0f}s {slope:+.0f}" for a, b, slope in plateau.spans)
    print(f"  slope per span (MB/h): {spans}")
    whole = fig["rss_growth_whole_soak_mb_per_h"]
    print(f"  growth (least-squares slope, all soak samples; not judged) {whole:+.2f} MB/h")
    print(f"  growth over the last half of the soak (not judged) {plateau.last_half_mb_per_h:+.2f} MB/h")
    verdict = judged(plateau)
    if plateau.start_s is not None and plateau.slope_mb_per_h is not None and plateau.halves is not None:
        a, b = plateau.halves
        print(
            f"  slope settled from {plateau.start_s:.0f} s (RSS {plateau.mb_at_start:.1f} MB there; its halves "
            f"{a:+.1f}, {b:+.1f} MB/h); growth from there (the figure judged) {plateau.slope_mb_per_h:+.2f} MB/h"
        )
        print(f"  {verdict} rss_growth_mb_per_h {plateau.slope_mb_per_h:+.2f} < {TARGET_MB_PER_H:g}")
    else:
        print(f"  {verdict}: the slope was still falling when the soak ended; growth not judged (try more --minutes)")
    size = fig["results_dir_bytes"]
    print(f"\nresults files over {fig['windows']} windows; the results directory holds {size:,} bytes")
    for name, size in fig["sizes"].items():
        per = size / fig["windows"] if fig["windows"] else 0
        print(f"  {name:<16} {size:>12,} bytes  {per:>9,.0f} per window")
    bpw = fig["bytes_per_window"] or 0.0
    print(f"  total            {sum(fig['sizes'].values()):>12,} bytes  {bpw:>9,.0f} per window")
    print(f"  i.e. about {bpw * 3600 / 2**20:,.1f} MiB per 3,600 windows (an hour of 1 s windows) at this load")
    if fig["soak_bytes_per_window"] is not None:
        print(f"  written during the soak phase only: {fig['soak_bytes_per_window']:,.0f} per window (info)")
    slope = plateau.slope_mb_per_h
    return {
        "bench": "soak_memory",
        "rss_growth_mb_per_h": None if slope is None else round(slope, 3),
        "growth_verdict": verdict,
        "plateau_start_s": plateau.start_s,
        "rss_plateau_mb": None if plateau.mb_at_start is None else round(plateau.mb_at_start, 3),
        "rss_growth_last_half_mb_per_h": round(plateau.last_half_mb_per_h, 3),
        "rss_growth_whole_soak_mb_per_h": round(fig["rss_growth_whole_soak_mb_per_h"], 3),
        "bytes_per_window": round(bpw, 1),
        "results_dir_bytes": fig["results_dir_bytes"],
        "rss_start_mb": round(fig["rss_start_mb"], 3),
        "rss_end_mb": round(fig["rss_end_mb"], 3),
        "workers_rss_end_mb": fig["workers_rss_end_mb"],
        "minutes": round(fig["minutes"], 3),
        "windows": fig["windows"],
        "run_verdict": fig["verdict"],
        "client_ok": fig["client"].get("ok"),
        "target_met": verdict == "PASS",
    }


def minutes_arg(text: str) -> float:
    value = float(text)
    if not 0.5 <= value <= MAX_MINUTES:
        raise argparse.ArgumentTypeError(f"expected 0.5..{MAX_MINUTES}, got {value:g}")
    return value


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through run_soak's finally, which stops holoload


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--minutes", type=minutes_arg, default=8.0, help="length of the soak phase (default 8)")
    parser.add_argument(
        "--as-shipped", action="store_true", help="the file's own load and split interval (only the soak's length set)"
    )
    parser.add_argument("--results-dir", type=Path, help="keep holoload's results here (default: a removed temp dir)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)

    def log(line: str) -> None:
        print(line, flush=True)

    soak_s = max(1, round(args.minutes * 60))
    with tempfile.TemporaryDirectory(prefix="holoload-soak-") as tmp:
        results = args.results_dir or Path(tmp)
        results.mkdir(parents=True, exist_ok=True)
        try:
            soak = run_soak(soak_s, results, log, as_shipped=args.as_shipped)
            write_samples(soak, results / "rss.csv")
            if soak.exit_code not in (0, 1):  # 0 PASS, 1 a gate failed: both measured a whole soak
                raise BenchError(f"holoload exited {soak.exit_code}")
            fig = analyse(soak)
        except (BenchError, OSError, ValueError) as exc:
            out = results / "holoload.out"
            tail = out.read_text(errors="replace")[-3000:] if out.exists() else ""
            print(f"bench failed: {exc}\n{tail}", file=sys.stderr)
            return 1
        data = report(fig)
        if args.results_dir:
            print(f"results: {soak.run_dir}, RSS samples: {results / 'rss.csv'}")
    print(json.dumps(data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
