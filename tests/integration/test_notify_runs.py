"""--notify on real runs against the session's PostgreSQL: the budget and the verdict reach the webhooks."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from holoload.adapters.local.cluster import LocalNode
from holoload.shell.cli import dispatch
from tests.fakes.webhook import WebhookReceiver, refused_url
from tests.support import REPO
from tests.support.runs import events, only_run_dir, write_target

SALES = (REPO / "scenarios" / "sales_facts.toml").read_text()


PROFILE = """
[profiles.pr]
"gates.p95_20k" = "p95(batch_20k) <= 12s"
"gates.split_seen" = ""
"""


def small_canary(tmp_path: Path) -> Path:
    path = tmp_path / "sales_facts.toml"
    path.write_text(SALES + PROFILE)
    return path


SMALL = ["--set", "batches.0.rows=200", "--set", "batches.1.rows=300", "--set", "table.name=notify_facts", "-q"]


def test_env_profile_gate_variable_and_notify_on_a_real_run(
    tmp_path: Path, pg_cluster: list[LocalNode], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--env pr + HOLOLOAD_GATE_FINAL_COUNT (made to fail): exit 1, budget in summary/junit; webhooks told.

    The 500 and refused endpoints are recorded as failed posts and change nothing.
    """
    monkeypatch.setenv("HOLOLOAD_GATE_FINAL_COUNT", "final_count > expected_final_count")
    receiver = WebhookReceiver()
    refused = refused_url()
    with receiver as base:
        code = dispatch(
            [
                str(small_canary(tmp_path)),
                "--target",
                write_target(tmp_path, pg_cluster),
                "--results-dir",
                str(tmp_path / "r"),
                "--env",
                "pr",
                "--set",
                "gates.p95_50k=p95(batch_50k) <= 40s",
                "--notify",
                f"{base}/ok",
                "--notify",
                f"{base}/fail",
                "--notify",
                refused,
                *SMALL,
            ]
        )
    assert code == 1
    out = capsys.readouterr().out
    assert "budget: profile pr (7 overrides: gates.p95_20k [profile], gates.split_seen [profile], " in out
    assert f"notify: posted to {base}/*** (HTTP 200)" in out and "notify: FAILED" in out
    run = only_run_dir(tmp_path / "r")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["verdict"] == "FAIL" and summary["exit_code"] == 1
    assert summary["env"] == "pr"
    assert [(o["key"], o["source"]) for o in summary["overrides"]] == [
        ("gates.p95_20k", "profile"),
        ("gates.split_seen", "profile"),
        ("gates.final_count", "env"),
        ("gates.p95_50k", "--set"),
        ("batches.0.rows", "--set"),
        ("batches.1.rows", "--set"),
        ("table.name", "--set"),
    ]
    gates = {g["name"]: g for g in summary["gates"]}
    assert "split_seen" not in gates and gates["p95_20k"]["expression"] == "p95(batch_20k) <= 12s"
    assert not gates["final_count"]["passed"]
    assert "env=pr" in (run / "summary.txt").read_text().splitlines()

    suite = ET.parse(run / "junit.xml").getroot()
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["env"] == "pr"
    assert props["override.gates.p95_20k"] == '"p95(batch_20k) <= 12s" (profile)'
    assert props["override.gates.final_count"] == '"final_count > expected_final_count" (env)'
    assert props["override.gates.p95_50k"] == '"p95(batch_50k) <= 40s" (--set)'
    assert "### Budget" in (run / "summary.md").read_text()

    (got,) = receiver.by_path("/ok")
    machine = got.body["holoload"]
    assert machine["verdict"] == "FAIL" and machine["exit_code"] == 1 and machine["env"] == "pr"
    assert [g["name"] for g in machine["failed_gates"]] == ["final_count"]
    assert set(machine["percentiles_ms"]) == {"batch_20k", "batch_50k"}
    assert machine["report"] == str(run / "report.html")
    assert len(receiver.by_path("/fail")) == 2
    notify = summary["notify"]
    assert [(n["ok"], n["status"], n["attempts"]) for n in notify] == [
        (True, 200, 1),
        (False, 500, 2),
        (False, None, 2),
    ]
    problems = [e for e in events(run) if e["kind"] == "problem" and e["what"] == "notify"]
    assert len(problems) == 2


def test_a_failed_post_never_turns_pass_into_fail(
    tmp_path: Path, pg_cluster: list[LocalNode], monkeypatch: pytest.MonkeyPatch
) -> None:
    """HOLOLOAD_NOTIFY pointing at a refused port: the run still PASSes with exit 0, env "default"."""
    monkeypatch.setenv("HOLOLOAD_NOTIFY", refused_url())
    monkeypatch.delenv("HOLOLOAD_ENV", raising=False)
    code = dispatch(
        [
            str(small_canary(tmp_path)),
            "--target",
            write_target(tmp_path, pg_cluster),
            "--results-dir",
            str(tmp_path / "r"),
            "--set",
            "table.name=notify_pass_facts",
            *SMALL[:4],
            "-q",
        ]
    )
    assert code == 0
    summary = json.loads((only_run_dir(tmp_path / "r") / "summary.json").read_text())
    assert summary["verdict"] == "PASS" and summary["exit_code"] == 0
    assert summary["env"] == "default"
    assert [(n["ok"], n["attempts"]) for n in summary["notify"]] == [(False, 2)]
