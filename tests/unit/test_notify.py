"""--notify: a Slack-compatible summary POSTed to a real local aiohttp receiver; failures never change the verdict."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from holoload.core.config.secrets import Secrets
from holoload.core.errors import InputError
from holoload.shell.artifacts import ArtifactWriter
from holoload.shell.notify import build_payload, masked_url, notify_run, notify_urls, post
from tests.fakes.webhook import WebhookReceiver, refused_url


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
    receiver = WebhookReceiver(slow_s=0.8)
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
