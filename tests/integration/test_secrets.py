"""Secrets never reach the results directory: DSN passwords, URL tokens, secret env, chaos env."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from holoload.adapters.local.cluster import LocalNode
from holoload.core.config.secrets import Secrets, env_secrets, url_secrets
from holoload.shell.cli import dispatch
from tests.support.runs import only_run_dir

DSN_PASSWORD = "dsn-pw-Zq81"
URL_TOKEN = "tok-Xy77qq"
ENV_TOKEN = "env-tok-Lm55"
CHAOS_SECRET = "chaos-sec-Pp31"


def test_secrets_are_collected_and_scrubbed() -> None:
    assert url_secrets("postgresql://u:pw1@h:5/db?password=pw2&sslmode=require") == ["pw1", "pw2"]
    assert url_secrets("http://h:1/metrics?token=abc&x=1") == ["abc"]
    assert env_secrets({"PGPASSWORD": "p", "MY_API_KEY": "k", "HOME": "/root"}) == ["p", "k"]
    s = Secrets(["abcdef", "abc", "x"])  # too short values are not masked
    assert s.scrub("abcdefg abc x") == "***g *** x"
    assert s.scrub_obj({"a": ["abc", ("abcdef",)], "n": 1}) == {"a": ["***", ("***",)], "n": 1}
    assert not Secrets()


def test_no_secret_appears_anywhere_in_the_results(
    tmp_path: Path, pg_cluster: list[LocalNode], monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = ['name = "secret"', 'data = "per_node"']
    for i, node in enumerate(pg_cluster):
        dsn = node.dsn.replace("postgres@", f"postgres:{DSN_PASSWORD}@")  # trust auth ignores it
        lines += ["[[nodes]]", f'dsn = "{dsn}"']
        if i == 0:  # a metrics URL that fails: its error quotes the URL
            lines.append(f'metrics_url = "http://127.0.0.1:9/metrics?token={URL_TOKEN}"')
    target = tmp_path / "t.toml"
    target.write_text("\n".join(lines) + "\n")
    scenario = tmp_path / "s.toml"
    echo = "import os, sys; print('secret is', os.environ['CHAOS_SECRET'], sys.argv[1])"
    scenario.write_text(
        f"""
name = "secret"
window = "500ms"
[[phases]]
name = "main"
duration = "2s"
[[phases.workloads]]
name = "w"
executor = "constant-concurrency"
concurrency = 1
[[phases.workloads.ops]]
name = "q"
sql = "SELECT 1"
[[chaos]]
name = "leaky"
action = "command"
at = "200ms"
command = [{sys.executable!r}, "-c", "{echo}", "{DSN_PASSWORD}"]
env = {{ CHAOS_SECRET = "{CHAOS_SECRET}" }}
[gates]
ok = "count(q) >= 1"
"""
    )
    monkeypatch.setenv("SERVICE_TOKEN", ENV_TOKEN)
    results = tmp_path / "r"
    code = dispatch([str(scenario), "--target", str(target), "--results-dir", str(results), "-q"])
    assert code == 0
    run = only_run_dir(results)
    files = [p for p in run.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"events.jsonl", "run.log", "summary.json", "report.html", "junit.xml"}
    text = {p.name: p.read_text(errors="replace") for p in files}
    assert "secret is ***" in text["events.jsonl"]  # the command's output was kept, masked
    for secret in (DSN_PASSWORD, URL_TOKEN, ENV_TOKEN, CHAOS_SECRET):
        leaks = [name for name, body in text.items() if secret in body]
        assert not leaks, (secret, leaks)
    assert os.environ["SERVICE_TOKEN"] == ENV_TOKEN
