"""Transactional workloads in scenarios: their keys and checks, the isolation gates and reports."""

from __future__ import annotations

import pytest

from holoload.core.errors import ScenarioError
from holoload.core.gates.isolation import isolation_verdict
from holoload.core.gates.language import parse_gate
from holoload.core.gates.verdicts import evaluate
from holoload.core.isolation import HistoryBuilder, append, check, read
from holoload.core.isolation.bank import BankHistory, FinalState, check_bank
from holoload.core.isolation.generate import Transfer
from holoload.core.isolation.report import isolation_lines, make_report
from holoload.core.ledger.book import WriteOutcome
from holoload.core.model.scenario import parse_scenario

BASE = """
name = "t"
[[phases]]
name = "load"
duration = "5s"
[[phases.workloads]]
name = "la"
executor = "constant-rate"
rate = 50
"""

COUNTS = {"txns": {"acknowledged": 2, "failed": 1, "in_doubt": 1, "aborted": 0}, "attempts": {1: 3, 2: 1}}


def _problems(text: str) -> list[tuple[str, str]]:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "s.toml")
    return caught.value.problems


def test_a_list_append_workload_gets_its_op_and_the_levels_model() -> None:
    """kind = list_append needs no ops: it records as op `txn`; REPEATABLE READ is checked as snapshot isolation."""
    scenario = parse_scenario(BASE + 'kind = "list_append"\nisolation = "repeatable_read"\n', "s.toml")
    w = scenario.phases[0].workloads[0]
    assert [op.name for op in w.ops] == ["txn"]
    assert (w.is_txn, w.check_model, w.txn_table, w.ops_range) == (True, "snapshot-isolation", "la", (1, 4))
    assert "la.txn" in scenario.ops


def test_a_bank_workload_records_transfers_and_read_alls() -> None:
    """kind = bank has ops transfer and read_all; an explicit model wins over the level's."""
    scenario = parse_scenario(BASE + 'kind = "bank"\naccounts = 4\n', "s.toml")
    w = scenario.phases[0].workloads[0]
    assert [op.name for op in w.ops] == ["transfer", "read_all"]
    assert w.accounts == 4
    text = BASE + 'kind = "list_append"\nisolation = "repeatable_read"\nmodel = "serializable"\n'
    assert parse_scenario(text, "s.toml").phases[0].workloads[0].check_model == "serializable"


def test_keys_of_another_kind_are_errors_with_their_key_path() -> None:
    """A bank key on a list-append workload, a txn key on a statements workload, a bad range: each named."""
    problems = dict(_problems(BASE + 'kind = "list_append"\naccounts = 5\nops_per_txn = [3, 1]\n'))
    assert "does not apply" in problems["phases[0].workloads[0].accounts"]
    assert "1 <= min <= max" in problems["phases[0].workloads[0].ops_per_txn"]
    statements = BASE + 'keys = 3\nops = [{ name = "x", sql = "SELECT 1" }]\n'
    assert "add kind" in dict(_problems(statements))["phases[0].workloads[0].keys"]


def test_bad_values_name_the_key_and_what_is_allowed() -> None:
    """An unknown level or model fails validation before any load, naming the key."""
    problems = dict(_problems(BASE + 'kind = "bank"\nisolation = "snapshot"\n'))
    assert "repeatable_read" in problems["phases[0].workloads[0].isolation"]
    problems = dict(_problems(BASE + 'kind = "list_append"\nmodel = "linearizable"\n'))
    assert "strict-serializable" in problems["phases[0].workloads[0].model"]


def test_one_workload_name_cannot_change_kind_between_phases() -> None:
    """One history per workload name: a second phase giving it another kind is an error."""
    text = BASE + 'kind = "list_append"\n' + BASE.split('name = "t"')[1].replace('"load"', '"more"')
    text += 'kind = "bank"\n'
    assert "one history per workload name" in dict(_problems(text))["phases[1].workloads[0].kind"]


def test_isolation_gates_parse_and_check_against_workloads() -> None:
    """isolation(w, anomaly=G2-item).anomalies parses; an unknown workload is an error of the gate."""
    text = BASE + 'kind = "list_append"\n[gates]\nok = "isolation(la, anomaly=G2-item).anomalies == 0"\n'
    parse_scenario(text, "s.toml")
    problems = " | ".join(what for path, what in _problems(text.replace("isolation(la,", "isolation(nope,")))
    assert "unknown op 'nope'" in problems and "'nope' is no transactional workload" in problems
    problems = dict(_problems(text.replace("G2-item", "G2item")))
    assert "unknown anomaly 'G2item'" in problems["gates.ok"]
    parse_scenario(text.replace("G2-item", "wrong-total"), "s.toml")  # a bank violation kind is a name too
    statements = BASE + 'ops = [{ name = "x", sql = "SELECT 1" }]\n[gates]\nok = "isolation(la).anomalies == 0"\n'
    assert "'la' is no transactional workload" in dict(_problems(statements))["gates.ok"]


def _write_skew() -> HistoryBuilder:
    b = HistoryBuilder()
    t0 = b.invoke(0, 0, [read(1), read(2), append(1, 10)])
    t1 = b.invoke(1, 1, [read(1), read(2), append(2, 20)])
    b.complete(t0, "ok", 5, [read(1, []), read(2, []), append(1, 10)])
    b.complete(t1, "ok", 6, [read(1, []), read(2, []), append(2, 20)])
    t2 = b.invoke(2, 10, [read(1), read(2)])
    b.complete(t2, "ok", 12, [read(1, [10]), read(2, [20])])
    return b


def _report(result: object, **extra: object) -> dict[str, object]:
    fields: dict[str, object] = {"workload": "la", "kind": "list_append", "isolation": "repeatable_read"}
    fields |= {"model": "serializable", "counts": COUNTS, "result": result} | extra
    return make_report(**fields)  # type: ignore[arg-type]


class _Ctx:
    def __init__(self, reports: dict[str, dict[str, object]]) -> None:
        self.isolation = reports

    def histogram(self, op: str) -> None:
        return None

    def scalar(self, name: str) -> None:
        return None


def test_write_skew_fails_the_builtin_gate_naming_g2_item_and_its_cycle() -> None:
    """The report of a write-skew history: invalid, G2-item counted, the reason names the class and cycle."""
    report = _report(check(_write_skew().build(), "serializable"))
    assert report["verdict"] == "invalid"
    assert report["anomaly_counts"] == {"G2-item": 1}
    assert report["attempts"] == {"1": 3, "2": 1}
    verdict = isolation_verdict("la", report)
    assert not verdict.passed and verdict.name == "isolation.la"
    assert verdict.reason.startswith("G2-item: 1 (forbidden under serializable); first G2-item: T")
    assert "-rw(key" in verdict.reason
    ctx = _Ctx({"la": report})
    assert evaluate("g", parse_gate("isolation(la, anomaly=G2-item).anomalies == 1"), ctx).passed
    assert not evaluate("g", parse_gate("isolation(la).anomalies == 0"), ctx).passed
    assert evaluate("g", parse_gate("isolation(la).in_doubt == 1"), ctx).passed
    assert any("G2-item 1" in line for line in isolation_lines({"la": report}))


def test_a_search_out_of_time_is_unknown_and_never_passes() -> None:
    """A check whose cycle search ran out of time: the gate fails with 'unknown: search ran out of time'."""

    class Expired:
        def arm(self) -> None:
            pass

        def check(self) -> None:
            from holoload.core.isolation.cycles import SearchExpired

            raise SearchExpired

    report = _report(check(_write_skew().build(), "serializable", Expired()))  # type: ignore[arg-type]
    verdict = isolation_verdict("la", report)
    assert not verdict.passed
    assert verdict.reason.startswith("unknown: search ran out of time")
    gate = evaluate("g", parse_gate("isolation(la).anomalies == 0"), _Ctx({"la": report}))
    assert not gate.passed and "unknown" in gate.reason


def test_no_history_is_no_evidence_and_fails() -> None:
    """No report, a report without result, or nothing acknowledged: FAIL 'no evidence', never PASS."""
    assert isolation_verdict("la", None).reason.startswith("no evidence")
    assert not isolation_verdict("la", None).passed
    report = _report(None, why_none="2 worker process(es) lost")
    assert isolation_verdict("la", report).reason == "no evidence: 2 worker process(es) lost"
    empty = make_report(
        workload="la",
        kind="list_append",
        isolation="serializable",
        model="serializable",
        counts={},
        result=check([], "serializable"),
    )
    assert not isolation_verdict("la", empty).passed
    assert isolation_verdict("la", empty).reason.startswith("no evidence")
    assert not evaluate("g", parse_gate("isolation(la).anomalies == 0"), _Ctx({})).passed


def test_a_valid_history_passes_and_a_broken_bank_names_its_violation() -> None:
    """A serial history passes; a bank whose read does not sum up fails naming wrong-total."""
    b = HistoryBuilder()
    t = b.invoke(0, 0, [append(1, 1)])
    b.complete(t, "ok", 1)
    assert isolation_verdict("la", _report(check(b.build(), "serializable"))).passed
    history = BankHistory()
    history.transfer(Transfer(1, 0, 1, 5), WriteOutcome.ACKNOWLEDGED, process=0, invoke_ns=0, complete_ns=1)
    history.read(2, process=1, invoke_ns=2, complete_ns=3, balances={0: 95, 1: 100})
    result = check_bank(history, initial={0: 100, 1: 100}, final=FinalState({0: 95, 1: 105}, [1]))
    report = make_report(
        workload="bank", kind="bank", isolation="read_committed", model="", counts=COUNTS, result=result
    )
    verdict = isolation_verdict("bank", report)
    assert not verdict.passed and verdict.reason.startswith("wrong-total: 1 (forbidden bank invariants)")


def test_a_split_takes_a_table_and_only_a_split_does() -> None:
    """`table =` names the table a split action splits; on any other action it is an error naming the key."""
    chaos = '[[chaos]]\nname = "s"\naction = "split"\nduring = "load"\nat = "1s"\nkey = 3\ntable = "la"\n'
    scenario = parse_scenario(BASE + 'kind = "list_append"\n' + chaos, "s.toml")
    assert scenario.chaos[0].table == "la"
    bad = chaos.replace('action = "split"', 'action = "sql"\nsql = "SELECT 1"')
    assert any("applies to action 'split' only" in what for _, what in _problems(BASE + 'kind = "bank"\n' + bad))


def test_workers_records_merge_onto_one_clock_and_renumber_in_invoke_order() -> None:
    """Two workers' histories: times shifted by each one's clock offset, ids renumbered by invoke time, counts
    added; bank records per data slot."""
    from holoload.engine.isolation_run import merge_records

    a, b = HistoryBuilder(), HistoryBuilder()
    t = a.invoke(0, 100, [append(1, 1)])
    a.complete(t, "ok", 150)
    t = b.invoke(1, 10, [read(1)])
    b.complete(t, "ok", 20, [read(1, [1])])
    bank = BankHistory()
    bank.transfer(Transfer(2, 0, 1, 3), WriteOutcome.IN_DOUBT, process=1, invoke_ns=5, complete_ns=None)

    def records(builder: HistoryBuilder, banks: dict[int, BankHistory]) -> dict[str, dict[str, object]]:
        return {
            "la": {
                "kind": "list_append",
                "txns": builder.build(),
                "banks": {slot: (h.transfers, h.reads) for slot, h in banks.items()},
                "outcomes": {"acknowledged": 1},
                "attempts": {1: 1},
                "errors": {},
                "aborted": 0,
            }
        }

    merged = merge_records([(records(a, {}), 0), (records(b, {2: bank}), 1000)])["la"]
    assert [(t.id, t.process, t.invoke_ns, t.complete_ns) for t in merged.txns] == [
        (0, 0, 100, 150),
        (1, 1, 1010, 1020),
    ]
    assert merged.outcomes == {"acknowledged": 2} and merged.attempts == {1: 2}
    (moved,) = merged.banks[2].transfers
    assert (moved.invoke_ns, moved.complete_ns, moved.outcome) == (1005, None, WriteOutcome.IN_DOUBT)
    assert check(merged.txns, "strict-serializable").valid is True


def test_a_process_book_hands_out_numbers_values_and_keys_unique_over_the_fleet() -> None:
    """Process numbers, appended values and transfer ids never repeat between workers or data nodes; each node's
    list-append keys are its own range."""
    from holoload.core.model.workload import Workload
    from holoload.engine.txn_loop import KEY_SPAN, TxnBook

    la = Workload(name="la", executor="constant-rate", rate=1, kind="list_append", read_share=0.0)
    books = [TxnBook(shared=False, endpoints=3, part=(i, 2)) for i in range(2)]
    assert sorted(b.new_process() for b in books for _ in range(3)) == list(range(6))
    values: list[int] = []
    for book in books:
        for endpoint in range(3):
            gen = book.list_generator(la, endpoint)
            assert min(gen.active_keys) == endpoint * KEY_SPAN
            values += [op[2] for _ in range(50) for op in gen.next_txn() if op[0] == "append"]
    assert len(values) == len(set(values)) > 300
    shared = TxnBook(shared=True, endpoints=3)
    assert shared.list_generator(la, 2) is shared.list_generator(la, 0)


def test_the_reports_render_in_summary_md_junit_and_report_html() -> None:
    """summary.md gets `### Isolation` with the first cycle, junit the cycle under the failing gate, report.html
    a section per workload."""
    from holoload.shell.ci_outputs import junit_xml, summary_markdown
    from holoload.shell.isolation_html import isolation_section

    report = _report(check(_write_skew().build(), "serializable"))
    verdict = isolation_verdict("la", report)
    summary = {
        "run": {"run_id": "r", "started_at": "2026-12-03T00:00:00Z"},
        "verdict": "FAIL",
        "scenario": {"name": "t"},
        "phases": {},
        "gates": [verdict.to_dict()],
        "isolation": {"la": report},
    }
    md = summary_markdown(summary)
    assert "### Isolation" in md and "G2-item 1" in md and "first G2-item of la:" in md
    assert "-rw(key" in md.split("first G2-item of la:")[1]
    junit = junit_xml(summary)
    assert 'name="isolation.la"' in junit and "first G2-item: T" in junit
    html = isolation_section({"la": report})
    assert 'id="isolation-la"' in html and "G2-item" in html and "repeatable_read" in html
