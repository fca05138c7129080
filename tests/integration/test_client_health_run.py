"""holoload watching itself in real runs: a planted CPU hog fails `client.ok`, a healthy run passes it."""

from __future__ import annotations

import csv
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from holoload.adapters.local.cluster import LocalNode
from tests.support.engine import per_node_target, run_scenario

SCENARIO = """
name = "selfwatch"
[setup]
sql = ["DROP TABLE IF EXISTS selfwatch_rows", "CREATE TABLE selfwatch_rows (id bigint PRIMARY KEY, at timestamptz)"]
[[phases]]
name = "main"
duration = "{duration}"
[[phases.workloads]]
name = "paced"
executor = "constant-rate"
rate = 300
max_inflight = 6
[[phases.workloads.ops]]
name = "ins"
sql = "INSERT INTO selfwatch_rows VALUES ($1, $2)"
params = [{{ gen = "seq" }}, {{ gen = "now" }}]
"""


@contextmanager
def gil_hog(switch_interval_s: float) -> Iterator[None]:
    """A thread in this process that burns CPU holding the GIL for `switch_interval_s` at a time.

    The event loop's thread then waits up to that long each time it wants to run again: the
    client, not the server, becomes the bottleneck.
    """
    stop = threading.Event()

    def burn() -> None:
        n = 0
        while not stop.is_set():
            n += 1

    previous = sys.getswitchinterval()
    thread = threading.Thread(target=burn, daemon=True)
    sys.setswitchinterval(switch_interval_s)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        sys.setswitchinterval(previous)
        thread.join(10)


def client_rows(root: Path) -> list[dict[str, str]]:
    with (root / "client_health.csv").open() as fh:
        return list(csv.DictReader(fh))


def test_a_cpu_hog_in_the_client_fails_client_ok_and_says_so(tmp_path: Path, pg_cluster: list[LocalNode]) -> None:
    """With a GIL hog beside the event loop, client.ok fails as "client saturated" in every output."""
    with gil_hog(0.25):
        run = run_scenario(
            tmp_path, SCENARIO.format(duration="5s"), per_node_target(tmp_path, pg_cluster), "--workers", "1"
        )
    assert run.code == 1
    gate = run.gates()["client.ok"]
    assert gate["passed"] is False
    assert gate["reason"].startswith("client saturated, results not valid:"), gate["reason"]
    assert "coordinator loop lag p99" in gate["reason"], gate["reason"]
    client = run.summary["client"]
    assert client["saturated"] is True and client["ok"] is False
    assert client["strained_windows"] >= 3
    assert client["processes"]["coordinator"]["lag_p99_ms_worst"] > 150
    assert 0 < client["late_drops"] <= run.op("paced.ins")["dropped"]  # the stalled dispatcher's drops
    strained = [r for r in client_rows(run.root) if r["strained"]]
    assert len({r["window"] for r in strained}) == client["strained_windows"]
    assert "client.ok=0" in (run.root / "summary.txt").read_text().splitlines()
    markdown = (run.root / "summary.md").read_text()
    assert "**client saturated, results not valid**" in markdown and "### Client" in markdown
    junit = (run.root / "junit.xml").read_text()
    assert 'name="client.ok"' in junit and "client saturated, results not valid" in junit
    report = (run.root / "report.html").read_text()
    assert 'id="client"' in report and "client saturated, results not valid" in report


def test_a_healthy_run_with_workers_passes_client_ok(tmp_path: Path, pg_cluster: list[LocalNode]) -> None:
    """Without a hog, client.ok passes; each worker's health reaches the coordinator per window."""
    run = run_scenario(
        tmp_path, SCENARIO.format(duration="3s"), per_node_target(tmp_path, pg_cluster), "--workers", "2"
    )
    assert run.code == 0, run.gates()
    gate = run.gates()["client.ok"]
    assert gate["passed"] is True and gate["reason"].startswith("client kept up"), gate
    client = run.summary["client"]
    assert set(client["processes"]) == {"coordinator", "worker 0", "worker 1"}
    for name in ("worker 0", "worker 1"):
        figures = client["processes"][name]
        assert figures["windows"] >= 2 and figures["cpu_s"] > 0
    rows = client_rows(run.root)
    coordinator = {r["drives_load"] for r in rows if r["process"] == "coordinator"}
    workers = {r["drives_load"] for r in rows if r["process"] != "coordinator"}
    assert (coordinator, workers) == ({"0"}, {"1"})
    assert "client.ok=1" in (run.root / "summary.txt").read_text().splitlines()


SLOW_SERVER = """
name = "slowserver"
[[phases]]
name = "main"
duration = "3s"
[[phases.workloads]]
name = "paced"
executor = "constant-rate"
rate = 300
max_inflight = 3
[[phases.workloads.ops]]
name = "nap"
sql = "SELECT pg_sleep(0.05)"
"""


def test_drops_of_a_slow_server_are_not_the_clients(tmp_path: Path, pg_cluster: list[LocalNode]) -> None:
    """Every connection busy on the server: most arrivals are dropped, almost none counted late, client.ok passes."""
    run = run_scenario(tmp_path, SLOW_SERVER, per_node_target(tmp_path, pg_cluster), "--workers", "1")
    dropped = run.op("paced.nap")["dropped"]
    assert dropped > 300  # about 900 arrivals, at most 60/s served
    client = run.summary["client"]
    assert client["late_drops"] <= dropped * 0.2, (client["late_drops"], dropped)
    assert run.gates()["client.ok"]["passed"] is True, run.gates()["client.ok"]
