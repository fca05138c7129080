"""The soak scenario: it validates, and compressed to seconds it passes on its own local cluster with a complete check."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from holoload.core.errors import ScenarioError
from holoload.shell.files import load_scenario
from tests.support import REPO

SOAK = REPO / "scenarios" / "soak.toml"
# The shipped soak, compressed: 2 s warm-up, an 8 s soak phase, a split every 2 s from 1 s in.
SHORT = [
    "phases.0.duration=2s",
    "phases.1.duration=8s",
    "chaos.0.every=2s",
    "chaos.0.start=1s",
    "chaos.0.jitter=0s",
]
RUN_TIMEOUT_S = 120


def test_the_soak_scenario_validates_with_its_documented_shape() -> None:
    """Warm-up then a 4 h soak of closed-loop OLTP and open-loop ledgered ingest, split churn, per-window gates."""
    s = load_scenario(SOAK)
    assert [(p.name, p.measured, p.duration) for p in s.phases] == [("warmup", False, 10.0), ("soak", True, 4 * 3600.0)]
    oltp, ingest = s.phases[1].workloads
    assert (oltp.executor, ingest.executor, ingest.rate) == ("constant-concurrency", "constant-rate", 2)
    (batch,) = ingest.ops
    assert batch.rows == 500 and batch.ledger is not None and batch.ledger.id_column == "order_id"
    (split,) = s.chaos
    assert (split.action, split.during, split.every, split.key) == ("split", "soak", 60.0, "last_acked + 1")
    assert s.table.create and s.table.name == batch.ledger.table
    assert any("window=1m" in str(g) for g in s.phases[1].gates.values())
    assert {"lost", "duplicated", "splits", "split_failures"} <= set(s.active_gates())
    assert s.active_gates()["split_failures"] == "chaos(split).failed == 0"


def test_the_cli_validates_it_and_the_header_overrides_hold() -> None:
    """`holoload validate` passes; phases.1.duration shortens the soak; there is no top-level duration key."""
    done = subprocess.run(
        [sys.executable, "-m", "holoload", "validate", str(SOAK)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert load_scenario(SOAK, ["phases.1.duration=5m"]).phases[1].duration == 300.0
    with pytest.raises(ScenarioError, match="unknown key 'duration'"):
        load_scenario(SOAK, ["duration=5m"])


@pytest.fixture(scope="module")
def short_soak(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    results = tmp_path_factory.mktemp("soak")
    cmd = [sys.executable, "-m", "holoload", str(SOAK), "--results-dir", str(results)]
    for item in SHORT:
        cmd += ["--set", item]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)
    (run_dir,) = [p for p in results.iterdir() if p.is_dir()]  # not history.sqlite
    summary = json.loads((Path(run_dir) / "summary.json").read_text())
    return {"proc": proc, "summary": summary}


def test_a_short_soak_passes_with_a_complete_check(short_soak: dict[str, Any]) -> None:
    """Seconds of the soak on the embedded cluster: PASS, every acknowledged row read back, none lost."""
    proc = short_soak["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = short_soak["summary"]
    assert summary["verdict"] == "PASS"
    check = summary["check"]
    assert check["complete"]
    assert check["counts"]["lost"] == 0 and check["counts"]["duplicated"] == 0
    assert check["ledger"]["acknowledged"] >= 500  # the ingest really wrote whole batches
    ops = summary["phases"]["soak"]["ops"]
    assert ops["oltp.point_read"]["ok"] > 0 and ops["oltp.update"]["ok"] > 0 and ops["ingest.batch"]["ok"] > 0
    (split,) = summary["chaos"]
    assert split["ok"] >= 1 and split["failed"] == 0, split
