"""report.html shows summary.json's isolation result: verdict, counts, each anomaly's cycle and operations."""

from __future__ import annotations

from pathlib import Path

import orjson

from holoload.core.isolation import Txn, TxnType, check
from holoload.shell.html_report import render_report
from holoload.shell.isolation_html import isolation_section

WRITE_SKEW = [
    Txn(0, 0, 0, 10, TxnType.OK, (("r", 1, ()), ("append", 2, 1))),
    Txn(1, 1, 1, 11, TxnType.OK, (("r", 2, ()), ("append", 1, 2))),
    Txn(2, 2, 20, 30, TxnType.OK, (("r", 1, (2,)), ("r", 2, (1,)))),
]


def test_report_has_an_isolation_section_with_the_cycle(tmp_path: Path) -> None:
    """A forbidden anomaly is marked fail, with its cycle, the reason of each step and the operations."""
    root = tmp_path / "run"
    root.mkdir()
    result = check(WRITE_SKEW, "serializable").to_json()
    (root / "summary.json").write_bytes(orjson.dumps({"verdict": "FAIL", "isolation": result}))
    page = render_report(root)
    assert '<section id="isolation">' in page
    assert "INVALID under serializable" in page
    assert '<tr class="fail"><td>G2-item</td><td class="num">1</td><td>forbidden</td></tr>' in page
    assert "-rw(key 1)-&gt;" in page and "T0 read key 1 empty, before T1 appended 2" in page
    assert "T1 (process 1, ok): r 2 []; append 1 2" in page


def test_allowed_anomalies_are_not_marked_failed() -> None:
    section = isolation_section(check(WRITE_SKEW, "snapshot-isolation").to_json())
    assert 'class="pass">VALID under snapshot-isolation' in section
    assert '<tr class="pass"><td>G2-item</td>' in section


def test_no_isolation_result_no_section(tmp_path: Path) -> None:
    root = tmp_path / "run"
    root.mkdir()
    (root / "summary.json").write_bytes(orjson.dumps({"verdict": "PASS"}))
    assert 'id="isolation"' not in render_report(root)
    assert isolation_section({"something": 1}) == "" and isolation_section(None) == ""
