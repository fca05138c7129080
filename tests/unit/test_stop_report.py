"""An interrupted run says so in `run.problems`: by what, how far into the load, what the stop cancelled."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from holoload.core.model.scenario import parse_scenario
from holoload.engine.canary import CanaryEngine
from holoload.engine.phase_end import LoadStop
from holoload.engine.run_state import RunState, stop_report
from holoload.shell.session import RunOptions, RunSession

NS = 1_000_000_000


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"at_s": 12.34, "cut_short": 4, "drain_s": 10.0, "at_once": None},
         "interrupted by SIGINT at 12.3s into the load; 4 operations in flight were cancelled after the 10s "
         "drain (counted as timeouts, their writes in doubt)"),
        ({"at_s": 3.0, "cut_short": 1, "drain_s": 2.5, "at_once": None},
         "interrupted by SIGINT at 3.0s into the load; 1 operation in flight was cancelled after the 2.5s "
         "drain (counted as timeouts, their writes in doubt)"),
        ({"at_s": 3.0, "cut_short": 0, "drain_s": 10.0, "at_once": None},
         "interrupted by SIGINT at 3.0s into the load; every operation in flight finished"),
        ({"at_s": 7.5, "cut_short": 2, "drain_s": 10.0, "at_once": "a second SIGINT"},
         "interrupted by SIGINT at 7.5s into the load; stopped at once: a second SIGINT; 2 operations in flight "
         "were cancelled (counted as timeouts, their writes in doubt)"),
        ({"at_s": None, "cut_short": None, "drain_s": 0.0, "at_once": None},
         "interrupted by SIGINT before the load started"),
    ],
)  # fmt: skip
def test_stop_report_says_when_and_what_was_cut(kwargs: dict[str, object], text: str) -> None:
    """One line per shape of stop; counts agree in number."""
    assert stop_report("interrupted by SIGINT", **kwargs) == text  # type: ignore[arg-type]


def test_run_state_measures_the_stop_from_the_first_phase() -> None:
    """Seconds into the load: from the first phase's start to the stop request (the first one counts)."""
    state = RunState(stop=LoadStop())
    assert state.stopped_at_s() is None
    state.load_started_ns = 5 * NS
    assert state.stopped_at_s() is None  # no stop asked
    state.stop.request(17 * NS + NS // 4)
    state.stop.request(30 * NS)
    assert state.stopped_at_s() == 12.25


def test_the_canary_reports_the_batches_that_ran() -> None:
    """A canary stop: seconds into the batches and how many of them ran."""
    now = [100.0]
    engine = CanaryEngine(SimpleNamespace(), SimpleNamespace(), SimpleNamespace(), perf=lambda: now[0])  # type: ignore[arg-type]
    assert (
        engine.stop_report("interrupted by SIGTERM", at_once=None)
        == "interrupted by SIGTERM before the batches started"
    )
    engine.batches_planned, engine._ingest_started, engine.batches_run = 8, 100.0, 3
    now[0] = 104.2
    engine.request_stop()
    now[0] = 110.0  # the report is written later: the stop's time counts
    assert engine.stop_report("interrupted by SIGTERM", at_once=None) == (
        "interrupted by SIGTERM at 4.2s into the batches; 3 of 8 batches ran (the batch under way finished)"
    )


SCENARIO = """
name = "stopped"
[[phases]]
name = "main"
duration = "5s"
[[phases.workloads]]
name = "w"
executor = "constant-concurrency"
concurrency = 1
[[phases.workloads.ops]]
name = "op"
sql = "SELECT 1"
"""


@pytest.mark.parametrize(
    ("signal_name", "cancelled", "line"),
    [
        ("SIGINT", False, "interrupted by SIGINT before the load started"),
        (None, False, "stopped by the caller (RunControl.request_stop) before the load started"),
        (None, True, "cancelled by the caller before the load started; stopped at once: the caller cancelled "
         "the run's task"),
    ],
)  # fmt: skip
def test_an_interrupted_session_lists_the_stop_in_run_problems(
    tmp_path: Path, signal_name: str | None, cancelled: bool, line: str
) -> None:
    """summary.json's run.problems is never empty after an interrupt (here before any load)."""
    options = RunOptions(parse_scenario(SCENARIO, "s.toml"), None, results_base=str(tmp_path), history="none")
    with RunSession(options) as session:
        session.interrupted(signal_name, before_load=True, cancelled=cancelled)
        result = session.finish(notify=False)
    assert result.verdict.value == "INTERRUPTED"
    assert list(result.run.problems) == [line]
    assert json.loads((session.root / "summary.json").read_text())["run"]["problems"] == [line]
