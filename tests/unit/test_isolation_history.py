"""The history artifact (JSON lines), the recorder's builder, and `holoload check HISTORY`."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from holoload.core.isolation import HistoryBuilder, HistoryError, Txn, TxnType, append, check, dump_history, read
from holoload.core.isolation.history import parse_history
from holoload.shell.check_cmd import EXIT_UNKNOWN
from holoload.shell.cli import dispatch

WRITE_SKEW = [
    Txn(0, 0, 0, 10, TxnType.OK, (("r", 1, ()), ("append", 2, 1))),
    Txn(1, 1, 1, 11, TxnType.OK, (("r", 2, ()), ("append", 1, 2))),
    Txn(2, 2, 20, 30, TxnType.OK, (("r", 1, (2,)), ("r", 2, (1,)))),
    Txn(3, 0, 40, None, TxnType.INFO, (("append", 3, 9), ("r", 3, None))),
    Txn(4, 1, 50, 60, TxnType.FAIL, (("append", 3, 10),)),
]


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_dump_and_parse_round_trip() -> None:
    """Every field, read results and in-doubt completions survive the artifact format."""
    lines = list(dump_history(WRITE_SKEW))
    header = json.loads(lines[0])
    assert header["format"] == "holoload-history" and header["version"] == 1
    assert parse_history(lines) == WRITE_SKEW
    assert parse_history([line.encode() for line in lines]) == WRITE_SKEW


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('[0, 0, 1, 2, "ok"]', "expected [id, process"),
        ('[5, 0, 1, 2, "ok", []]', "id 5; expected 0"),
        ('[0, 0, 1, 2, "done", []]', "type 'done'"),
        ('[0, 0, 1, null, "ok", []]', "needs its complete_ns"),
        ('[0, 0, 5, 4, "ok", []]', "is before invoke_ns"),
        ('[0, 0, 1, 2, "ok", [["w", 1, 2]]]', "unknown function 'w'"),
        ('[0, 0, 1, 2, "ok", [["r", 1, ["a"]]]]', "list of integers or null"),
        ('[0, 0, 1, 2, "ok", [["append", "k", 2]]]', "key must be an integer"),
        ("{oops", "not valid JSON"),
    ],
)
def test_malformed_lines_name_the_file_and_line(line: str, expected: str) -> None:
    """Each problem is an input error with file:line and what was expected."""
    header = next(iter(dump_history([])))
    with pytest.raises(HistoryError, match=re.escape(expected)) as info:
        parse_history([header, line], "h.jsonl")
    assert "h.jsonl:2" in str(info.value)


def test_a_file_without_header_or_of_another_version_is_refused() -> None:
    with pytest.raises(HistoryError, match="not a holoload history"):
        parse_history(['[0, 0, 1, 2, "ok", []]'], "h.jsonl")
    with pytest.raises(HistoryError, match="version 7"):
        parse_history(['{"format": "holoload-history", "version": 7}'], "h.jsonl")
    with pytest.raises(HistoryError, match="empty"):
        parse_history([], "h.jsonl")


def test_a_value_appended_twice_to_a_key_is_bad_input() -> None:
    """Unique appended values are what version orders rest on."""
    twice = [WRITE_SKEW[0], Txn(1, 1, 1, 11, TxnType.OK, (("append", 2, 1),))]
    with pytest.raises(HistoryError, match="appended values must be unique"):
        parse_history(dump_history(twice))
    with pytest.raises(HistoryError, match="unique"):
        check(twice)


def test_builder_records_invoke_and_completion_and_leaves_open_ones_in_doubt() -> None:
    """A transaction never completed (say, the connection was lost at COMMIT) is info, never fail."""
    b = HistoryBuilder()
    t0 = b.invoke(process=0, invoke_ns=100, ops=[append(1, 5), read(2)])
    t1 = b.invoke(process=1, invoke_ns=110, ops=[append(2, 6)])
    b.complete(t0, "ok", 150, [append(1, 5), read(2, [6])])
    history = b.build()
    assert history[t0] == Txn(0, 0, 100, 150, TxnType.OK, (("append", 1, 5), ("r", 2, (6,))))
    assert history[t1].type is TxnType.INFO and history[t1].complete_ns is None
    assert check(history, "strict-serializable").valid is True


def test_an_ambiguous_commit_is_in_doubt_never_failed() -> None:
    """Connection lost at COMMIT (no SQLSTATE) or a cancel racing it: info; a rolled-back COMMIT or any
    error before COMMIT: fail."""
    b = HistoryBuilder()
    cases = [
        (None, True, TxnType.INFO),  # connection lost after COMMIT left
        ("57014", True, TxnType.INFO),  # query_canceled can race the commit
        ("57P01", True, TxnType.INFO),  # admin shutdown
        ("40001", True, TxnType.FAIL),  # serialization failure: rolled back
        ("23505", True, TxnType.FAIL),
        (None, False, TxnType.FAIL),  # connection lost before COMMIT: never committed
    ]
    for i, (sqlstate, sent, expected) in enumerate(cases):
        t = b.invoke(i, 10 * i, [append(1, i)])
        assert b.error(t, sqlstate, commit_sent=sent, complete_ns=10 * i + 5) is expected
        assert b.build()[t].type is expected


def test_builder_refuses_completing_twice_or_changing_the_ops() -> None:
    b = HistoryBuilder()
    t = b.invoke(0, 0, [read(1)])
    with pytest.raises(HistoryError, match="differ"):
        b.complete(t, "ok", 1, [read(2, [])])
    b.complete(t, TxnType.FAIL, 1)
    with pytest.raises(HistoryError, match="not open"):
        b.complete(t, "ok", 2)


def test_check_command_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """0 valid, 1 forbidden anomalies, 2 bad input; the text names the class and the cycle."""
    history = write(tmp_path / "h.jsonl", list(dump_history(WRITE_SKEW)))
    assert dispatch(["check", str(history), "--model", "snapshot-isolation"]) == 0
    assert "VALID under snapshot-isolation" in capsys.readouterr().out
    assert dispatch(["check", str(history)]) == 1
    out = capsys.readouterr().out
    assert "INVALID under serializable" in out and "G2-item: 1 (forbidden)" in out
    assert "T0 -rw(key 1)-> T1 -rw(key 2)-> T0" in out or "T1 -rw(key 2)-> T0 -rw(key 1)-> T1" in out
    assert dispatch(["check", str(tmp_path / "missing.jsonl")]) == 2
    assert dispatch(["check", str(history), "--model", "serialisable"]) == 2
    assert "expected one of" in capsys.readouterr().err
    assert dispatch(["check", str(history), "--time-limit", "30"]) == 2


def test_check_command_json_and_gzip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints summary.json's form; a .gz history is read too."""
    path = tmp_path / "h.jsonl.gz"
    path.write_bytes(gzip.compress("\n".join(dump_history(WRITE_SKEW)).encode()))
    assert dispatch(["check", str(path), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["valid"] is False and data["anomaly_counts"] == {"G2-item": 1}
    assert data["stats"]["info"] == 1 and data["stats"]["fail"] == 1


def test_check_command_unknown_has_its_own_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A zero time limit cannot settle anything: exit 4 and an UNKNOWN line, never 0."""
    history = write(tmp_path / "h.jsonl", list(dump_history(WRITE_SKEW)))
    assert dispatch(["check", str(history), "--time-limit", "0s"]) == EXIT_UNKNOWN
    out = capsys.readouterr().out
    assert out.startswith("UNKNOWN under serializable") and "time limit" in out
