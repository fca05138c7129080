"""holoload runs for tests: targets for the session's nodes, CLI runs, their results directories.

Subprocess runs (``holoload_process``, ``run_cli``) and readers of what a run wrote (summary.json,
summary.txt, events.jsonl, run.log, batch_stats.csv); two small scenarios that several modules run.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from holoload.adapters.local.cluster import LocalNode
from tests.support import REPO

SALES = str(REPO / "scenarios" / "sales_facts.toml")


def write_target(tmp_path: Path, nodes: list[LocalNode], name: str = "session") -> str:
    """A per-node, range-partitioned target for real local nodes (like the embedded default)."""
    lines = [f'name = "{name}"', 'data = "per_node"', 'table_layout = "range_partitioned"']
    for node in nodes:
        lines += ["[[nodes]]", f'dsn = "{node.dsn}"']
    lines += ["[topology]", 'source = "partitions"', "[split]", 'method = "partition"']
    path = tmp_path / f"{name}-target.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def only_run_dir(base: Path) -> Path:
    (run,) = [p for p in base.iterdir() if p.is_dir()]
    return run


def summary_txt(run: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in (run / "summary.txt").read_text().splitlines())


def summary_json(run: Path) -> dict[str, Any]:
    return dict(json.loads((run / "summary.json").read_text()))


def batch_rows(run: Path) -> list[dict[str, str]]:
    with (run / "batch_stats.csv").open() as fh:
        return list(csv.DictReader(fh))


def events(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines() if line.strip()]


def run_log(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "run.log").read_text().splitlines() if line.strip()]


def holoload_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "holoload", *args]


@contextmanager
def holoload_process(tmp_path: Path, args: list[str], *, new_session: bool = False) -> Iterator[subprocess.Popen[str]]:
    """`python -m holoload ARGS` in the background, output to files; always reaped."""
    out = (tmp_path / "stdout.txt").open("w")
    err = (tmp_path / "stderr.txt").open("w")
    proc = subprocess.Popen(
        holoload_cmd(*args),
        cwd=REPO,
        stdout=out,
        stderr=err,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=new_session,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        out.close()
        err.close()


def output(tmp_path: Path) -> str:
    return (tmp_path / "stdout.txt").read_text() + (tmp_path / "stderr.txt").read_text()


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str, proc: subprocess.Popen[str]) -> None:
    """Poll until condition() holds; fail if the run exits first or time runs out."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"holoload exited ({proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout_s:g} s")
        time.sleep(0.01)


def events_text(results: Path) -> str:
    """The raw events.jsonl of the (single) run under results, or '' before it exists."""
    found = list(results.glob("*/events.jsonl")) if results.exists() else []
    try:
        return found[0].read_text() if found else ""
    except OSError:
        return ""


def has_event(results: Path, kind: str, **fields: object) -> bool:
    for line in events_text(results).splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line being written
        if event.get("kind") == kind and all(event.get(k) == v for k, v in fields.items()):
            return True
    return False


def log_has(results: Path, text: str) -> bool:
    found = list(results.glob("*/run.log")) if results.exists() else []
    try:
        return bool(found) and text in found[0].read_text()
    except OSError:
        return False


def cluster_workdir(run: Path) -> Path:
    """The embedded cluster's work dir, from run.log's `cluster` line 'local cluster in DIR (...)'."""
    for entry in run_log(run):
        detail = str(entry.get("detail", ""))
        if entry.get("event") == "cluster" and detail.startswith("local cluster in "):
            return Path(detail.removeprefix("local cluster in ").split(" (PostgreSQL", 1)[0])
    raise AssertionError(f"no 'local cluster in' line in {run / 'run.log'}")


def processes_using(directory: Path) -> list[str]:
    """Live processes whose command line names `directory` or whose cwd is inside it."""
    prefix = str(directory).rstrip("/") + "/"
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue  # gone, a zombie, or not ours to read
        if prefix in cmdline or (cwd + "/").startswith(prefix):
            found.append(f"{proc.name}: {cmdline.strip()} (cwd {cwd})")
    return found


def assert_cluster_gone(workdir: Path) -> None:
    """The work dir is removed and no process (postmaster or child) still uses it."""
    deadline = time.monotonic() + 3  # a postmaster that removed its pid file may take a moment to exit
    while (left := processes_using(workdir)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"processes still using {workdir}: {left}"
    assert not workdir.exists(), f"{workdir} was not removed: {sorted(p.name for p in workdir.iterdir())}"


def children_of(pid: int) -> list[int]:
    kids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            kids.append(int(proc.name))
    return kids


def run_cli(args: list[str], timeout_s: float = 180) -> subprocess.CompletedProcess[str]:
    """`python -m holoload ARGS` to the end, output captured."""
    cmd = [sys.executable, "-m", "holoload", *args]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout_s, check=False)


#: Two workloads (a ledgered insert, a paced read) for worker runs; DURATION via write_scenario.
WORKERS_SCENARIO = """
name = "workers"
window = "500ms"

[setup]
sql = ["DROP TABLE IF EXISTS worker_rows", "CREATE TABLE worker_rows (id BIGINT PRIMARY KEY, w INT)"]

[table]
name = "worker_rows"

[[phases]]
name = "main"
duration = "{duration}"

[[phases.workloads]]
name = "ingest"
executor = "constant-concurrency"
concurrency = 3

[[phases.workloads.ops]]
name = "insert"
sql = "INSERT INTO worker_rows (id, w) VALUES ($1, 1)"
params = [{{ gen = "seq", start = 1 }}]
ledger = {{ table = "worker_rows", id_column = "id", unique = true }}

[[phases.workloads]]
name = "paced"
executor = "constant-rate"
rate = 200
max_inflight = 5

[[phases.workloads.ops]]
name = "read"
sql = "SELECT count(*) FROM worker_rows WHERE id = $1"
params = [{{ gen = "uniform", min = 1, max = 1000 }}]

[gates]
lost = "lost == 0"
duplicated = "duplicated == 0"
"""


def write_scenario(tmp_path: Path, duration: str) -> str:
    path = tmp_path / "workers.toml"
    path.write_text(WORKERS_SCENARIO.format(duration=duration))
    return str(path)


#: A warm-up and a measured phase over one table, for runs a test kills, rebuilds or repeats.
REBUILD_SCENARIO = """
name = "rebuild"
window = "500ms"
[setup]
sql = ["DROP TABLE IF EXISTS rebuild_t", "CREATE TABLE rebuild_t (id BIGINT PRIMARY KEY, v INT)"]
[[phases]]
name = "warm"
duration = "1s"
measured = false
[[phases.workloads]]
name = "w"
executor = "constant-concurrency"
concurrency = 1
[[phases.workloads.ops]]
name = "ins"
sql = "INSERT INTO rebuild_t (id, v) VALUES ($1, 1)"
params = [{ gen = "seq" }]
[[phases]]
name = "main"
duration = "DURATION"
[[phases.workloads]]
name = "w"
executor = "constant-concurrency"
concurrency = 2
[[phases.workloads.ops]]
name = "ins"
sql = "INSERT INTO rebuild_t (id, v) VALUES ($1, 2)"
params = [{ gen = "seq", start = 1000000 }]
[[phases.workloads.ops]]
name = "read"
weight = 2
sql = "SELECT v FROM rebuild_t WHERE id = $1"
params = [{ gen = "uniform", min = 1, max = 1000 }]
[gates]
p99 = "p99(read) <= 10s"
"""


def scenario_file(tmp_path: Path, duration: str) -> str:
    path = tmp_path / "rebuild.toml"
    path.write_text(REBUILD_SCENARIO.replace("DURATION", duration))
    return str(path)


def main_windows(results: Path) -> int:
    found = list(results.glob("*/timeseries.csv"))
    return found[0].read_text().count(",main,") if found else 0
