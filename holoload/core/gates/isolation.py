"""Isolation gates: `isolation(w).anomalies == 0`, `isolation(w, anomaly=G2-item).anomalies`, and the built-in
`isolation.<workload>` verdict of every transactional workload.

Both read summary.json's `isolation.<workload>` reports (`core.isolation.report`) through the context's
`isolation` mapping, which the engine fills once the checker ran. Neither passes without evidence: no
report (the checker has not run, or the workload is not transactional) and a check that ran out of time
are no data, never a pass; `anomalies` of an unknown check is at least what was found before the limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from holoload.core.gates.model import FIELD, Gate, GateFunction, Kind, Measurement, NoData
from holoload.core.gates.verdicts import Verdict
from holoload.core.isolation.bank import ViolationKind
from holoload.core.isolation.models import ANOMALY_CLASSES
from holoload.core.isolation.report import NO_EVIDENCE, UNKNOWN_VERDICT, VALID, anomaly_count

__all__ = ["ANOMALY_NAMES", "ISOLATION", "ISOLATION_FIELDS", "anomaly_keyword_problems", "isolation_verdict"]

#: `isolation(w).<field>`: forbidden anomalies (or one class's with `anomaly=`), and transactions by outcome.
ISOLATION_FIELDS = frozenset({"anomalies", "acknowledged", "failed", "in_doubt", "aborted"})


#: What `anomaly=` may name: the list-append checker's classes and the bank checker's violation kinds.
ANOMALY_NAMES = tuple(c.value for c in ANOMALY_CLASSES) + tuple(k.value for k in ViolationKind)


def anomaly_keyword_problems(gate: Gate) -> list[str]:
    """`anomaly=` values no checker reports (a misspelt class would count 0 and pass `== 0` on no evidence)."""
    problems: list[str] = []
    for call in gate.calls():
        value = dict(call.keywords).get("anomaly")
        if call.function.name == "isolation" and value is not None:
            if value not in ANOMALY_NAMES:
                problems.append(f"{call.text}: unknown anomaly {value!r} (known: {', '.join(ANOMALY_NAMES)})")
            elif call.field != "anomalies":
                problems.append(f"{call.text}: anomaly= applies to .anomalies only")
    return problems


def _reports(ctx: object) -> Mapping[str, Any] | None:
    found = getattr(ctx, "isolation", None)
    return found if isinstance(found, Mapping) else None


def _isolation(ctx: object, workload: str, keywords: Mapping[str, str]) -> Measurement:
    reports = _reports(ctx)
    report = None if reports is None else reports.get(workload)
    if not isinstance(report, Mapping):
        return NoData(f"no isolation check of workload '{workload}' (not transactional, or not checked yet)")
    field = keywords[FIELD]
    if field != "anomalies":
        return float((report.get("txns") or {}).get(field, 0))
    verdict = report.get("verdict")
    found = anomaly_count(report, keywords.get("anomaly"))
    if verdict == NO_EVIDENCE:
        return NoData(str(report.get("reason") or "no evidence"))
    if verdict == UNKNOWN_VERDICT:
        return NoData(str(report.get("reason") or "unknown: search ran out of time"), at_least=float(found))
    return float(found)


ISOLATION = GateFunction(
    "isolation",
    Kind.NUMBER,
    _isolation,
    keywords=frozenset({"anomaly"}),
    missing_reason="no isolation check of workload '{op}'",
    fields=ISOLATION_FIELDS,
    hint="isolation(workload).anomalies|acknowledged|failed|in_doubt|aborted",
)


def isolation_verdict(workload: str, report: Mapping[str, Any] | None) -> Verdict:
    """The built-in gate `isolation.<workload>`: PASS only when the check ran to the end and found nothing forbidden.

    Args:
        workload: the transactional workload's name.
        report: its report, None when the checker never produced one.

    Returns:
        The verdict; every FAIL's reason names its cause (the anomaly and its cycle, "unknown: search ran
        out of time...", or "no evidence: ...").
    """
    name = f"isolation.{workload}"
    if report is None:
        return Verdict(name, _expression(None), False, None, 0.0, "no data", "0", "no evidence: no history was checked")
    expression = _expression(report)
    verdict = report.get("verdict")
    reason = str(report.get("reason") or verdict or "no evidence")
    if verdict == VALID:
        return Verdict(name, expression, True, 0.0, 0.0, "0", "0", reason)
    if verdict in (NO_EVIDENCE, UNKNOWN_VERDICT):
        return Verdict(name, expression, False, None, 0.0, str(verdict), "0", reason)
    count = float(anomaly_count(report))
    return Verdict(name, expression, False, count, 0.0, str(int(count)), "0", reason)


def _expression(report: Mapping[str, Any] | None) -> str:
    if report is None:
        return "no anomaly the model forbids"
    if report.get("kind") == "bank":
        return "bank invariants hold (conservation, no overdraft, every acknowledged transfer once)"
    return f"no anomaly {report.get('model', 'the model')} forbids (list-append history checked)"
