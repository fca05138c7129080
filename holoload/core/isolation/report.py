"""A transactional workload's isolation report: summary.json's `isolation.<workload>`, its verdict and lines.

Built from the counts the writers kept (acknowledged, failed, in doubt, attempts) and the checker's
result (list-append `CheckResult`, or the bank's `BankResult`), or from the reason there is none. The
verdict is one of `valid`, `invalid`, `unknown` (the cycle search ran out of time) and `no evidence`
(no history, no committed transaction, no checker result): only `valid` passes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from holoload.core.isolation.bank import BankResult
from holoload.core.isolation.result import UNKNOWN, CheckResult

__all__ = [
    "INVALID",
    "NO_EVIDENCE",
    "UNKNOWN_VERDICT",
    "VALID",
    "anomaly_count",
    "isolation_lines",
    "make_report",
    "report_reason",
]

VALID, INVALID, UNKNOWN_VERDICT, NO_EVIDENCE = "valid", "invalid", "unknown", "no evidence"
_EXAMPLES = 3  # anomalies (or violations) kept per class in summary.json


def make_report(
    *,
    workload: str,
    kind: str,
    isolation: str,
    model: str,
    counts: Mapping[str, Any],
    result: CheckResult | BankResult | None,
    why_none: str = "",
    history: str | None = None,
    check_s: float | None = None,
) -> dict[str, Any]:
    """summary.json's `isolation.<workload>`.

    Args:
        workload, kind, isolation, model: what ran and what it is checked against (bank: model unused).
        counts: `txns` (acknowledged, failed, in_doubt, aborted), `attempts` (attempts -> transactions),
            `errors` (SQLSTATE -> transactions not acknowledged).
        result: the checker's result, None when there is none.
        why_none: why there is no result (it makes the verdict "no evidence").
        history: the history artifact's file name (list-append).
        check_s: how long the check took.

    Returns:
        A JSON-able dict with `verdict` and `reason` first.
    """
    txns = dict(counts.get("txns") or {})
    report: dict[str, Any] = {"verdict": NO_EVIDENCE, "reason": "", "workload": workload, "kind": kind}
    report["isolation"] = isolation
    if kind == "list_append":
        report["model"] = model
    report["txns"] = txns
    report["attempts"] = {str(k): v for k, v in sorted((counts.get("attempts") or {}).items(), key=_attempt_key)}
    report["errors"] = dict(counts.get("errors") or {})
    if history is not None:
        report["history"] = history
    if check_s is not None:
        report["check_s"] = round(check_s, 3)
    if result is None:
        report["reason"] = f"no evidence: {why_none or 'no checker result'}"
        return report
    if isinstance(result, CheckResult):
        data = result.to_json(_EXAMPLES)
        report.update(
            {
                "anomaly_counts": data["anomaly_counts"],
                "forbidden_found": data["forbidden_found"],
                "forbidden_count": data["forbidden_count"],
                "incomplete": data["incomplete"],
                "stats": data["stats"],
                "anomalies": data["anomalies"],
                "valid": data["valid"],
                "model": data["model"],
            }
        )
    else:
        data = result.to_json(_EXAMPLES)
        report.update(
            {
                "anomaly_counts": data["violation_counts"],
                "forbidden_found": sorted(k for k, v in data["violation_counts"].items() if v),
                "forbidden_count": data["violation_count"],
                "stats": data["stats"],
                "violations": data["violations"],
                "valid": data["valid"],
            }
        )
    report["verdict"], report["reason"] = _verdict(report, result)
    return report


def _attempt_key(item: tuple[Any, Any]) -> int:
    try:
        return int(item[0])
    except (TypeError, ValueError):
        return 0


def _verdict(report: Mapping[str, Any], result: CheckResult | BankResult) -> tuple[str, str]:
    acked = int((report.get("txns") or {}).get("acknowledged", 0))
    if isinstance(result, CheckResult) and result.valid == UNKNOWN:
        classes = ", ".join(result.incomplete) or "the forbidden classes"
        found = f"; {result.forbidden_count} forbidden anomalies found before that" if result.forbidden_count else ""
        return UNKNOWN_VERDICT, f"unknown: search ran out of time before ruling out {classes}{found}"
    if result.valid is True:
        if acked == 0:
            return NO_EVIDENCE, "no evidence: no transaction was acknowledged, so nothing was checked"
        what = f"under {result.model}" if isinstance(result, CheckResult) else "bank invariants"
        return VALID, f"valid {what}: {acked} acknowledged transactions, no forbidden anomaly"
    return INVALID, report_reason(report)


def report_reason(report: Mapping[str, Any]) -> str:
    """One line naming each forbidden anomaly (count) and the first one's cycle or description."""
    counts = report.get("anomaly_counts") or {}
    forbidden = [k for k in report.get("forbidden_found") or [] if counts.get(k)]
    if not forbidden:
        return str(report.get("reason") or "invalid")
    where = f"under {report['model']}" if report.get("kind") == "list_append" else "bank invariants"
    parts = ", ".join(f"{k}: {counts[k]}" for k in forbidden)
    first = _first_example(report, forbidden[0])
    return f"{parts} (forbidden {where})" + (f"; first {forbidden[0]}: {first}" if first else "")


def _first_example(report: Mapping[str, Any], kind: str) -> str:
    found = (report.get("anomalies") or report.get("violations") or {}).get(kind) or []
    if not found or not isinstance(found[0], dict):
        return ""
    first = found[0]
    return str(first.get("cycle") or first.get("description") or "")


def anomaly_count(report: Mapping[str, Any], anomaly: str | None = None) -> int:
    """Forbidden anomalies in all, or the count of one class (allowed or not)."""
    if anomaly is None:
        return int(report.get("forbidden_count") or 0)
    return int((report.get("anomaly_counts") or {}).get(anomaly, 0))


def isolation_lines(isolation: Mapping[str, Any]) -> list[str]:
    """Plain lines per workload (summary.md, terminal): verdict, transactions, attempts, anomaly counts."""
    lines: list[str] = []
    for name, report in isolation.items():
        if not isinstance(report, Mapping):
            continue
        txns = report.get("txns") or {}
        lines.append(f"{name} ({report.get('kind', '?')}, {report.get('isolation', '?')}): {report.get('reason', '')}")
        lines.append(
            "  transactions: "
            + ", ".join(f"{k} {txns.get(k, 0)}" for k in ("acknowledged", "failed", "in_doubt", "aborted"))
            + "; attempts "
            + (", ".join(f"{k}: {v}" for k, v in (report.get("attempts") or {}).items()) or "none")
        )
        counts = {k: v for k, v in (report.get("anomaly_counts") or {}).items() if v}
        if counts:
            lines.append("  anomalies: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return lines
