"""--serve-metrics: holoload's live stats in Prometheus format while it runs."""

from __future__ import annotations

import socket
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from holoload.adapters.local.cluster import LocalNode
from holoload.core.events import RunProblem
from holoload.shell.cli import dispatch
from holoload.shell.prom_exporter import MetricsExporter, parse_listen
from tests.support import free_port
from tests.support.runs import holoload_process, scenario_file, wait_for, write_target


def scrape(port: int) -> dict[str, list[tuple[dict[str, str], float]]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
        text = response.read().decode()
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def test_live_stats_are_served_while_the_run_goes(tmp_path: Path, pg_cluster: list[LocalNode]) -> None:
    port = free_port()
    results = tmp_path / "r"
    target = write_target(tmp_path, pg_cluster)
    args = [scenario_file(tmp_path, "6s"), "--target", target, "--results-dir", str(results), "-q"]
    seen: dict[str, list[tuple[dict[str, str], float]]] = {}

    def has_ops() -> bool:
        nonlocal seen
        try:
            seen = scrape(port)
        except OSError:
            return False
        return any(v > 0 for labels, v in seen.get("holoload_ops_total", []) if labels["phase"] == "main")

    with holoload_process(tmp_path, [*args, "--serve-metrics", f"127.0.0.1:{port}"]) as proc:
        wait_for(has_ops, 60, "holoload_ops_total > 0 in phase main", proc)
        proc.wait(timeout=60)
    assert proc.returncode == 0
    ops = {(lab["op"], lab["endpoint"]) for lab, v in seen["holoload_ops_total"] if v > 0}
    assert ("read", "*") in ops and ("ins", "node1") in ops
    quantiles = {lab["quantile"] for lab, _v in seen["holoload_latency_seconds"]}
    assert {"0.5", "0.95", "0.99"} <= quantiles
    assert [lab["scenario"] for lab, _v in seen["holoload_run_info"]] == ["rebuild"]
    time.sleep(0.2)
    with pytest.raises(OSError):  # the server stops with the run
        scrape(port)


def test_a_taken_port_or_bad_address_exits_2_before_any_load(tmp_path: Path, pg_cluster: list[LocalNode]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        args = [scenario_file(tmp_path, "1s"), "--target", write_target(tmp_path, pg_cluster), "-q"]
        assert dispatch([*args, "--results-dir", str(tmp_path / "r"), "--serve-metrics", f"127.0.0.1:{port}"]) == 2
    assert not list((tmp_path / "r").glob("*/timeseries.csv"))
    assert parse_listen(":9464") == ("127.0.0.1", 9464)
    assert dispatch([*args, "--serve-metrics", "nope"]) == 2


def test_recorded_problems_such_as_a_lost_worker_are_counted_by_kind() -> None:
    exporter = MetricsExporter("127.0.0.1", 0)
    try:
        exporter.emit(RunProblem(0.0, "worker_lost", "worker 1 (pid 7) lost: killed by SIGKILL"))
        exporter.emit(RunProblem(0.0, "worker_lost", "worker 0 (pid 8) lost: exited with code 1"))
        exporter.emit(RunProblem(0.0, "aborted", "a worker was lost"))
        seen = scrape(exporter.port)
    finally:
        exporter.close()
    counts = {lab["what"]: v for lab, v in seen["holoload_problems_total"]}
    assert counts == {"worker_lost": 2.0, "aborted": 1.0}
