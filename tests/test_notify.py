"""--notify: a Slack-compatible summary POSTed to a real local aiohttp receiver; failures never change the verdict."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from holoload.adapters.cluster import LocalNode
from holoload.core.errors import InputError
from holoload.core.secrets import Secrets
from holoload.shell.artifacts import ArtifactWriter
from holoload.shell.cli import dispatch
from holoload.shell.notify import build_payload, masked_url, notify_run, notify_urls, post
from tests.conftest import REPO
from tests.fakes.webhook import WebhookReceiver, refused_url
from tests.test_canary_run import events, local_target, only_run_dir

SALES = (REPO / "scenarios" / "sales_facts.toml").read_text()


def no_sleep(seconds: float) -> None:
    """Retries without waiting (the delay itself is not what these tests check)."""


def canary_summary() -> dict[str, Any]:
    return {
        "holoload_version": "0.1.0",
        "verdict": "FAIL",
        "exit_code": 1,
        "env": "pr",
        "overrides": [],
        "scenario": {"name": "sales_facts"},
        "run": {"run_id": "sales_facts-20261202T1500Z-abc123", "results_dir": "results/x", "problems": []},
        "ops": {"batch_20k": {"latency_ms": {"p50": 300.0, "p95": 12_300.5, "p99": 12_400.0}}},
        "gates": [
            {
                "name": "p95_20k",
                "passed": False,
                "reason": "p95(batch_20k) = 12.3s > 8s",
                "expression": "p95(batch_20k) <= 8s",
            },
            {"name": "deltas_exact", "passed": True, "reason": "ok", "expression": "failed_batches == 0"},
        ],
    }


def test_payload_is_slack_shaped_with_a_machine_readable_part() -> None:
    """text + blocks for Slack; `holoload` holds verdict, exit code, failed gates, percentiles, report."""
    payload = build_payload(canary_summary(), "results/x/report.html")
    assert payload["text"].startswith("holoload sales_facts: FAIL (exit 1), budget pr; failed: p95_20k")
    assert "&gt; 8s" in payload["text"]  # Slack mrkdwn control characters escaped
    assert payload["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "holoload sales_facts: FAIL"},
    }
    assert all(b["type"] in ("header", "section") for b in payload["blocks"])
    machine = payload["holoload"]
    assert machine["verdict"] == "FAIL" and machine["exit_code"] == 1 and machine["scenario"] == "sales_facts"
    assert machine["failed_gates"] == [
        {"name": "p95_20k", "reason": "p95(batch_20k) = 12.3s > 8s", "expression": "p95(batch_20k) <= 8s"}
    ]
    assert machine["percentiles_ms"] == {"batch_20k": {"p50": 300.0, "p95": 12_300.5, "p99": 12_400.0}}
    assert machine["report"] == "results/x/report.html" and machine["env"] == "pr"


def test_sustained_load_percentiles_are_keyed_by_phase_and_op() -> None:
    """phases.<phase>.ops.<workload.op>.latency_ms -> percentiles_ms["phase.workload.op"]."""
    summary = {"verdict": "PASS", "phases": {"warm": {"ops": {"w.read": {"latency_ms": {"p50": 1, "p95": 2}}}}}}
    assert build_payload(summary, None)["holoload"]["percentiles_ms"] == {
        "warm.w.read": {"p50": 1.0, "p95": 2.0, "p99": None}
    }


def test_post_delivers_the_json_to_a_real_server() -> None:
    """One POST, JSON content type, the payload as sent; ok with HTTP 200 after 1 attempt."""
    receiver = WebhookReceiver()
    with receiver as base:
        result = post(f"{base}/ok", {"text": "hi", "blocks": []}, sleep=no_sleep)
    assert result.ok and result.status == 200 and result.attempts == 1 and result.error is None
    (got,) = receiver.by_path("/ok")
    assert got.content_type == "application/json" and got.body == {"text": "hi", "blocks": []}
    assert result.url == f"{base}/***"  # the webhook's path is its credential: never shown


def test_http_500_is_retried_once_then_reported() -> None:
    """A 500 gets one retry (two requests reach the server), then a failed result naming the status."""
    receiver = WebhookReceiver()
    with receiver as base:
        result = post(f"{base}/fail", {"text": "x"}, sleep=no_sleep)
    assert len(receiver.by_path("/fail")) == 2
    assert not result.ok and result.status == 500 and result.attempts == 2
    assert result.error == "HTTP 500: boom"


def test_http_400_is_not_retried() -> None:
    """The endpoint refused the payload: sending it again would not help."""
    receiver = WebhookReceiver()
    with receiver as base:
        result = post(f"{base}/bad", {"text": "x"}, sleep=no_sleep)
    assert len(receiver.by_path("/bad")) == 1
    assert not result.ok and result.status == 400 and result.attempts == 1 and "invalid_payload" in (result.error or "")


def test_connection_refused_is_retried_once_and_reported() -> None:
    """Nobody listening: two attempts, no status, the error says why, the URL path stays hidden."""
    url = refused_url()
    result = post(url, {"text": "x"}, sleep=no_sleep)
    assert not result.ok and result.attempts == 2 and result.status is None
    assert "refused" in (result.error or "").lower()
    assert "/hook" not in (result.error or "") and result.url.endswith("/***")


def test_a_slow_endpoint_times_out() -> None:
    """An endpoint slower than the timeout fails the post (bounded: 2 x 0.3 s)."""
    receiver = WebhookReceiver(slow_s=2.0)
    with receiver as base:
        result = post(f"{base}/slow", {"text": "x"}, timeout_s=0.3, sleep=no_sleep)
    assert not result.ok and result.attempts == 2 and "timed out" in (result.error or "")


def test_notify_urls_flags_then_environment_and_bad_urls_exit_2() -> None:
    """--notify wins over HOLOLOAD_NOTIFY (space separated); a non-http URL is an input error (exit 2)."""
    env = {"HOLOLOAD_NOTIFY": "http://127.0.0.1:1/a https://hooks.example.com/x"}
    assert notify_urls([], env) == ["http://127.0.0.1:1/a", "https://hooks.example.com/x"]
    assert notify_urls(["http://127.0.0.1:2/b"], env) == ["http://127.0.0.1:2/b"]
    with pytest.raises(InputError, match="--notify: expected an http"):
        notify_urls(["ftp://example.com/secret-path"], {})
    with pytest.raises(InputError, match="HOLOLOAD_NOTIFY"):
        notify_urls([], {"HOLOLOAD_NOTIFY": "hooks.example.com/x"})
    assert (
        masked_url("https://user:pw@hooks.example.com:8443/services/T/B/X?token=t")
        == "https://hooks.example.com:8443/***"
    )


def test_notify_run_records_outcomes_and_masks_secrets(tmp_path: Path) -> None:
    """summary.json gains `notify`; a failure is a problem event; secrets in the summary stay masked."""
    writer = ArtifactWriter(tmp_path).open()
    summary = canary_summary()
    summary["run"]["problems"] = ["node1 said password=hunter22 went away"]
    writer.write_json("summary.json", summary)
    receiver = WebhookReceiver()
    lines: list[str] = []
    logged: list[dict[str, Any]] = []
    with receiver as base:
        results = notify_run(
            [f"{base}/ok", f"{base}/fail"],
            writer,
            Secrets(["hunter22"]),
            say=lines.append,
            log=lambda event, **fields: logged.append({"event": event, **fields}),
        )
    writer.close()
    assert [r.ok for r in results] == [True, False]
    (got,) = receiver.by_path("/ok")
    assert "hunter22" not in json.dumps(got.body) and "***" in json.dumps(got.body["holoload"]["problems"])
    recorded = json.loads((tmp_path / "summary.json").read_text())["notify"]
    assert [(n["ok"], n["status"], n["attempts"]) for n in recorded] == [(True, 200, 1), (False, 500, 2)]
    assert recorded[0]["url"] == f"{base}/***"
    assert recorded[1]["error"] == "HTTP 500: boom"
    assert [e["event"] for e in logged] == ["notify", "notify"]
    problems = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [(p["kind"], p["what"]) for p in problems] == [("problem", "notify")]
    assert lines[0] == f"notify: posted to {base}/*** (HTTP 200)" and lines[1].startswith("notify: FAILED")


def test_an_unreadable_summary_still_notifies_with_verdict_unknown(tmp_path: Path) -> None:
    """summary.json that is not an object: the post says UNKNOWN and why; the file is left as it was."""
    writer = ArtifactWriter(tmp_path).open()
    (tmp_path / "summary.json").write_text("[1, 2]")
    receiver = WebhookReceiver()
    with receiver as base:
        (result,) = notify_run([f"{base}/ok"], writer, Secrets(), say=lambda line: None, log=lambda event, **f: None)
    writer.close()
    assert result.ok
    (got,) = receiver.by_path("/ok")
    assert got.body["holoload"]["verdict"] == "UNKNOWN"
    assert "expected a JSON object" in got.body["holoload"]["problems"][0]
    assert (tmp_path / "summary.json").read_text() == "[1, 2]"


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


@pytest.mark.cluster
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
                local_target(tmp_path, pg_cluster),
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


@pytest.mark.cluster
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
            local_target(tmp_path, pg_cluster),
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
