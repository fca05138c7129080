"""Transactional workloads in scenarios, on the session's real servers: list-append and bank runs under a split
and in worker processes pass at SERIALIZABLE; REPEATABLE READ checked as serializable fails naming G2-item."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

from holoload.adapters.local.cluster import LocalNode
from holoload.core.isolation import check, parse_history
from tests.support import REPO
from tests.support.engine import per_node_target, run_scenario
from tests.support.runs import write_target

SERIALIZABLE = """
name = "txn_ok"
window = "1s"
[table]
name = "la_t"
[run]
workers = 2
[[phases]]
name = "main"
duration = "4s"
[[phases.workloads]]
name = "la"
kind = "list_append"
table = "la_t"
executor = "constant-rate"
rate = 120
max_inflight = 12
keys = 5
lock_first = true
session_sql = ["SET deadlock_timeout = '20ms'"]
[[phases.workloads]]
name = "bank"
kind = "bank"
executor = "constant-concurrency"
concurrency = 2
accounts = 6
lock_first = true
[[chaos]]
name = "split_la"
action = "split"
table = "la_t"
during = "main"
at = "1.5s"
key = 3
[gates]
la = "isolation(la).anomalies == 0"
la_committed = "isolation(la).acknowledged >= 100"
bank = "isolation(bank).anomalies == 0"
p99 = "p99(la.txn) <= 2s"
split = "chaos(split_la).ok >= 1"
"""

# One endpoint, eight writers on five keys: enough contention for snapshot isolation's write skew to show.
WEAK = """
name = "txn_weak"
window = "1s"
[run]
workers = 1
[[phases]]
name = "main"
duration = "4s"
[[phases.workloads]]
name = "la"
kind = "list_append"
isolation = "repeatable_read"
model = "serializable"
executor = "constant-concurrency"
concurrency = 8
endpoints = { node1 = 1 }
keys = 5
ops_per_txn = [2, 4]
writes_per_key = 40
session_sql = ["SET deadlock_timeout = '20ms'"]
[[phases.workloads]]
name = "bank"
kind = "bank"
isolation = "read_committed"
transfer = "read_then_write"
executor = "constant-concurrency"
concurrency = 8
endpoints = { node2 = 1 }
accounts = 4
[gates]
no_write_skew = "isolation(la, anomaly=G2-item).anomalies == 0"
"""


def test_list_append_and_bank_pass_at_serializable_under_a_split_in_worker_processes(
    tmp_path: Path, pg_cluster: list[LocalNode]
) -> None:
    """Both workloads at SERIALIZABLE over two worker processes, the list-append table split mid-run: PASS, the
    histories gathered from both workers, the artifacts written (history readable by `holoload check`)."""
    run = run_scenario(tmp_path, SERIALIZABLE, write_target(tmp_path, pg_cluster))
    gates = run.gates()
    assert run.code == 0, {n: g["reason"] for n, g in gates.items() if not g["passed"]}
    assert gates["isolation.la"]["passed"] and gates["isolation.bank"]["passed"]
    assert gates["isolation.la"]["reason"].startswith("valid under serializable")
    report = run.summary["isolation"]["la"]
    assert report["verdict"] == "valid" and report["history"] == "history-la.jsonl.gz"
    assert report["txns"]["acknowledged"] >= 100 and sum(report["attempts"].values()) >= 100
    with gzip.open(run.root / "history-la.jsonl.gz", "rb") as lines:
        history = parse_history(lines)
    assert len({t.process for t in history}) >= 12  # every writer of both workers is a process of one history
    assert check(history, "serializable").valid is True
    done = subprocess.run(
        [sys.executable, "-m", "holoload", "check", str(run.root / "history-la.jsonl.gz")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    bank = run.summary["isolation"]["bank"]
    assert bank["verdict"] == "valid" and bank["txns"]["acknowledged"] > 0
    assert "### Isolation" in (run.root / "summary.md").read_text()
    assert 'id="isolation-la"' in (run.root / "report.html").read_text()
    assert "la.txn" in run.summary["phases"]["main"]["ops"]


def test_repeatable_read_checked_as_serializable_fails_naming_g2_item(
    tmp_path: Path, pg_cluster: list[LocalNode]
) -> None:
    """REPEATABLE READ is snapshot isolation: checked as serializable it FAILs naming G2-item (write skew) and
    nothing SI forbids; a read-then-write bank at READ COMMITTED breaks conservation, named too."""
    run = run_scenario(tmp_path, WEAK, write_target(tmp_path, pg_cluster))
    gates = run.gates()
    assert run.code == 1
    report = run.summary["isolation"]["la"]
    assert report["verdict"] == "invalid"
    assert report["forbidden_found"] == ["G2-item"], report["anomaly_counts"]
    assert report["anomaly_counts"]["G2-item"] >= 1
    first = report["anomalies"]["G2-item"][0]
    assert first["cycle"].count("-rw(") >= 2 and len(first["ops"]) >= 2
    assert gates["isolation.la"]["reason"].startswith("G2-item: ")
    assert "(forbidden under serializable); first G2-item: T" in gates["isolation.la"]["reason"]
    assert not gates["no_write_skew"]["passed"]
    bank = gates["isolation.bank"]
    assert not bank["passed"] and "forbidden bank invariants" in bank["reason"]
    junit = (run.root / "junit.xml").read_text()
    assert 'name="isolation.la"' in junit and "G2-item" in junit
    assert "G2-item" in (run.root / "summary.md").read_text()


# A deferred trigger makes every other transfer's COMMIT last 0.5 s, past the 0.2 s attempt bound: its COMMIT is sent
# and not answered in time, so it is in doubt (never failed, never retried); the bank checker accepts it either way.
IN_DOUBT = """
name = "txn_doubt"
window = "1s"
[run]
workers = 1
[setup]
sql = [
  "CREATE OR REPLACE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.id / 3 % 2 = 0 THEN PERFORM pg_sleep(0.5); END IF; RETURN NULL; END $$",
  "CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON bank_log DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit()",
  "CREATE OR REPLACE FUNCTION slow_key() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.k % 2 = 0 THEN PERFORM pg_sleep(0.5); END IF; RETURN NULL; END $$",
  "CREATE CONSTRAINT TRIGGER slow_key AFTER INSERT OR UPDATE ON la DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_key()",
]
[[phases]]
name = "main"
duration = "2s"
[[phases.workloads]]
name = "bank"
kind = "bank"
executor = "constant-concurrency"
concurrency = 1
endpoints = { node1 = 1 }
read_every = 0
txn_timeout = "200ms"
[[phases.workloads]]
name = "la"
kind = "list_append"
executor = "constant-concurrency"
concurrency = 1
endpoints = { node2 = 1 }
keys = 4
txn_timeout = "200ms"
"""


def test_a_commit_without_a_reliable_answer_is_in_doubt_not_failed(tmp_path: Path, pg_cluster: list[LocalNode]) -> None:
    """Transactions whose COMMIT outlives the attempt bound, in both workloads: in doubt, each tried once, none
    failed; both checks still run to the end (an in-doubt transaction may or may not have applied)."""
    run = run_scenario(tmp_path, IN_DOUBT, per_node_target(tmp_path, pg_cluster))
    report = run.summary["isolation"]["bank"]
    txns = report["txns"]
    assert txns["in_doubt"] >= 2 and txns["acknowledged"] >= 2 and txns["failed"] == 0, report
    assert report["attempts"] == {"1": txns["in_doubt"] + txns["acknowledged"]}  # in doubt: never run again
    assert report["errors"] == {"timeout": txns["in_doubt"]}
    assert report["verdict"] == "valid", report["reason"]
    stats = report["stats"]
    assert stats["in_doubt"] == txns["in_doubt"] == stats["in_doubt_applied"] + stats["in_doubt_not_applied"]
    la = run.summary["isolation"]["la"]
    assert la["txns"]["in_doubt"] >= 1 and la["txns"]["failed"] == 0 and la["txns"]["acknowledged"] >= 1, la
    assert la["verdict"] == "valid", la["reason"]
    assert la["stats"]["info"] == la["txns"]["in_doubt"]  # in the history as `info`: may or may not have applied
