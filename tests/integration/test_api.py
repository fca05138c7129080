"""The Python API: `holoload.run` / `run_async` against real PostgreSQL, quietly, without touching signals."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import holoload
from holoload.adapters.local.cluster import LocalNode
from tests.support import REPO


def scenario(table: str, *, duration: str = "2s", gate: str = "errors(op) == 0") -> dict[str, Any]:
    """A short sustained-load scenario as a dict (what TOML would give)."""
    return {
        "name": table,
        "window": "500ms",
        "setup": {"sql": [f"DROP TABLE IF EXISTS {table}", f"CREATE TABLE {table} (id BIGINT PRIMARY KEY)"]},
        "table": {"name": table},
        "run": {"workers": 1},
        "phases": [
            {
                "name": "main",
                "duration": duration,
                "workloads": [
                    {
                        "name": "w",
                        "executor": "constant-rate",
                        "rate": 50,
                        "max_inflight": 4,
                        "ops": [
                            {
                                "name": "op",
                                "sql": f"INSERT INTO {table} (id) VALUES ($1)",
                                "params": [{"gen": "seq", "start": 1}],
                            }
                        ],
                    }
                ],
            }
        ],
        "gates": {"clean": gate},
    }


#: The local cluster of `test_base_port_places_the_local_cluster` (away from the other tests' ports).
BASE_API = 56460


def target(nodes: list[LocalNode]) -> dict[str, Any]:
    return {
        "name": "session",
        "data": "per_node",
        "table_layout": "range_partitioned",
        "nodes": [{"dsn": n.dsn} for n in nodes],
        "topology": {"source": "partitions"},
        "split": {"method": "partition"},
    }


def handlers() -> dict[int, Any]:
    return {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}


def test_run_returns_the_typed_result_prints_nothing_and_leaves_signals_alone(
    pg_cluster: list[LocalNode], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A run from Python: a PASS result equal to its summary.json; no output, no signal handler changed."""
    windows: list[holoload.WindowClosed] = []
    before = handlers()
    result = holoload.run(
        scenario("api_plain"),
        target(pg_cluster),
        results_dir=tmp_path,
        history="none",
        sinks=[lambda e: windows.append(e) if isinstance(e, holoload.WindowClosed) else None],
    )
    assert handlers() == before
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    assert result.verdict is holoload.RunVerdict.PASS and result.exit_code == 0
    gates = {g.name: g for g in result.gates}
    assert gates["clean"].state is holoload.GateState.PASS and gates["clean"].observed == 0
    figures = result.phases["main"].ops["w.op"]
    assert figures.ok > 0 and figures.error_count == 0 and figures.percentile_ms("p99") is not None
    assert windows, "the sink saw no window"
    written = json.loads((Path(str(result.results_dir)) / "summary.json").read_text())
    assert result.to_json() == written
    assert holoload.RunSummary.from_json(result.results_dir).verdict is holoload.RunVerdict.PASS


def test_a_failing_gate_fails_the_run_and_no_enforce_exits_zero(pg_cluster: list[LocalNode], tmp_path: Path) -> None:
    """Gates decide the verdict; `enforce=False` keeps FAIL but exit code 0 (the one place that decides)."""
    failing = scenario("api_fail", duration="1s", gate="count(op) == 0")
    result = holoload.run(failing, target(pg_cluster), results_dir=tmp_path, history="none")
    assert (result.verdict, result.exit_code) == (holoload.RunVerdict.FAIL, 1)
    assert [g.name for g in result.failed_gates] == ["clean"] and result.failed_gates[0].reason
    result = holoload.run(failing, target(pg_cluster), results_dir=tmp_path, history="none", enforce=False)
    assert (result.verdict, result.exit_code) == (holoload.RunVerdict.FAIL, 0)


async def _inside_a_loop(nodes: list[LocalNode], tmp_path: Path) -> tuple[holoload.RunSummary, list[str]]:
    control = holoload.RunControl()
    phases: list[str] = []

    class StopAfterFirstWindow:
        def emit(self, event: holoload.Event) -> None:
            phases.append(event.kind)
            if isinstance(event, holoload.WindowClosed) and not control.requested:
                control.request_stop("enough")

    result = await holoload.run_async(
        scenario("api_async", duration="30s"),
        target(nodes),
        results_dir=tmp_path,
        history="none",
        sinks=[StopAfterFirstWindow()],
        control=control,
    )
    return result, phases


def test_run_async_runs_inside_a_running_loop_and_a_stop_request_ends_it_interrupted(
    pg_cluster: list[LocalNode], tmp_path: Path
) -> None:
    """`run_async` in the caller's loop; `RunControl.request_stop` drains and ends INTERRUPTED, exit 130."""
    before = handlers()
    result, kinds = asyncio.run(_inside_a_loop(pg_cluster, tmp_path))
    assert handlers() == before
    assert (result.verdict, result.exit_code) == (holoload.RunVerdict.INTERRUPTED, 130)
    assert result.phases["main"].seconds is not None and result.phases["main"].seconds < 25
    assert "window" in kinds and "problem" in kinds  # the stop request is a `problem` event


def test_a_bad_scenario_raises_the_exported_error_with_file_and_key_path(tmp_path: Path) -> None:
    """Input errors raise before anything starts: ScenarioError (an InputError) naming file and key path."""
    bad = scenario("api_bad")
    bad["phases"][0]["workloads"][0]["rate"] = "fast"
    with pytest.raises(holoload.ScenarioError) as caught:
        holoload.run(bad, results_dir=tmp_path)
    assert "<scenario dict>: phases[0].workloads[0].rate" in str(caught.value)
    assert isinstance(caught.value, holoload.InputError) and caught.value.exit_code == 2
    path = tmp_path / "typo.toml"
    path.write_text('name = "t"\n[[phases]]\nname = "main"\nduration = "1s"\nworkload = []\n')
    with pytest.raises(
        holoload.ScenarioError, match=r"typo\.toml: phases\[0\]\.workload: unknown key 'workload' \(did you mean"
    ):
        holoload.load_scenario(str(path))
    with pytest.raises(holoload.ScenarioError, match="file not found"):
        holoload.load_scenario(tmp_path / "missing.toml")
    assert not list(tmp_path.glob("api_bad_*")), "a results directory was created for bad input"


def test_load_scenario_reads_a_path_toml_text_and_a_dict_alike() -> None:
    """The three forms of a scenario give the same validated model."""
    path = REPO / "scenarios" / "sales_facts.toml"
    from_path = holoload.load_scenario(path)
    assert holoload.load_scenario(str(path)) == from_path
    assert holoload.load_scenario(path.read_text()) == from_path
    import tomllib

    assert holoload.load_scenario(tomllib.loads(path.read_text())) == from_path


def test_the_package_exports_its_api_lazily_and_is_typed() -> None:
    """`__all__` names resolve; `import holoload` alone imports no engine; py.typed ships."""
    for name in holoload.__all__:
        assert getattr(holoload, name) is not None
    code = "import sys, holoload; print(sorted(m for m in sys.modules if m.startswith('holoload.')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert loaded.stdout.strip() == "[]"
    assert (REPO / "holoload" / "py.typed").is_file()
    assert 'holoload = ["py.typed"]' in (REPO / "pyproject.toml").read_text()


def test_an_unreachable_target_is_an_error_result_not_an_exception(tmp_path: Path) -> None:
    """Once the run started, failures are in the result (ERROR, the CLI's exit code 3) with the artifacts."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    unreachable = {"name": "nowhere", "nodes": [{"dsn": f"postgresql://postgres@127.0.0.1:{port}/postgres"}]}
    result = holoload.run(
        scenario("api_nowhere"), unreachable, results_dir=tmp_path, history="none", overrides=["run.connect_timeout=2s"]
    )
    assert (result.verdict, result.exit_code) == (holoload.RunVerdict.ERROR, 3)
    assert result.run.problems[0] == f"setup failed: cannot connect to node1 at 127.0.0.1:{port} (connection refused)"
    assert (Path(str(result.results_dir)) / "report.html").is_file()


def test_cancelling_run_async_writes_what_was_measured_and_cancels(pg_cluster: list[LocalNode], tmp_path: Path) -> None:
    """The caller's cancellation: summary.json says INTERRUPTED, then CancelledError goes on."""

    async def cancel_after_a_window() -> None:
        task: asyncio.Task[holoload.RunSummary] | None = None

        def on_event(event: holoload.Event) -> None:
            if isinstance(event, holoload.WindowClosed) and task is not None:
                task.cancel()

        task = asyncio.create_task(
            holoload.run_async(
                scenario("api_cancel", duration="30s"),
                target(pg_cluster),
                results_dir=tmp_path,
                history="none",
                sinks=[on_event],
            )
        )
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_after_a_window())
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    result = holoload.RunSummary.from_json(run_dir)
    assert (result.verdict, result.exit_code) == (holoload.RunVerdict.INTERRUPTED, 130)
    assert (run_dir / "report.html").is_file()


def test_base_port_places_the_local_cluster(tmp_path: Path) -> None:
    """`base_port=` (the CLI's --base-port): the run's own cluster listens from that port on."""
    result = holoload.run(scenario("api_base_port"), nodes=1, base_port=BASE_API, results_dir=tmp_path, history="none")
    assert result.verdict is holoload.RunVerdict.PASS, result.run.problems
    (port,) = [int(dsn.split("@127.0.0.1:", 1)[1].split("/", 1)[0]) for dsn in result.run.pg_url.split(",")]
    assert BASE_API <= port < BASE_API + 10  # the first free port from BASE_API (busy ones are skipped)
