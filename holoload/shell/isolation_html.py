"""report.html's isolation section: summary.json ``isolation`` (a report per transactional workload) as HTML."""

from __future__ import annotations

from html import escape
from typing import Any

__all__ = ["isolation_section"]


def _e(value: Any) -> str:
    return escape(str(value))


def isolation_section(data: Any) -> str:
    """The section, or "" when ``data`` holds no check.

    Args:
        data: summary.json ``isolation``: workload -> report (``core.isolation.report``), or one
            ``CheckResult.to_json()`` (anything else renders nothing).

    Returns:
        An HTML ``<section id="isolation">``: the verdict, counts per class (forbidden ones marked ``fail``),
        and each example anomaly with its cycle, the reason of every step, and the transactions' operations.
    """
    if isinstance(data, dict) and data and "valid" not in data:
        parts = [_workload(name, report) for name, report in data.items() if isinstance(report, dict)]
        if not parts:
            return ""
        return '<section id="isolation"><h2>Isolation check</h2>\n' + "\n".join(parts) + "\n</section>"
    if not isinstance(data, dict) or "valid" not in data:
        return ""
    valid = data.get("valid")
    verdict = "UNKNOWN" if valid == "unknown" else "VALID" if valid is True else "INVALID"
    forbidden = set(data.get("forbidden_found") or [])
    body = [
        f'<p class="{"pass" if valid is True else "fail"}">{verdict} under {_e(data.get("model", "?"))}.'
        f" {_e(data.get('reason', ''))}</p>"
    ]
    counts = data.get("anomaly_counts") or {}
    if isinstance(counts, dict) and counts:
        rows = "".join(
            f'<tr class="{"fail" if name in forbidden else "pass"}"><td>{_e(name)}</td><td class="num">{_e(n)}</td>'
            f"<td>{'forbidden' if name in forbidden else 'allowed'}</td></tr>"
            for name, n in counts.items()
        )
        body.append(
            '<table id="isolation-counts"><thead><tr><th>anomaly</th><th>count</th><th>model</th></tr></thead>'
            f"<tbody>{rows}</tbody></table>"
        )
    anomalies = data.get("anomalies") or {}
    for name, found in anomalies.items() if isinstance(anomalies, dict) else ():
        for anomaly in found if isinstance(found, list) else ():
            if not isinstance(anomaly, dict):
                continue
            items = [f"<p><b>{_e(name)}</b>: {_e(anomaly.get('description', ''))}</p>"]
            if anomaly.get("cycle"):
                items.append(f"<p><code>{_e(anomaly['cycle'])}</code></p>")
                steps = "".join(
                    f"<li>{_e(s.get('why', ''))}</li>" for s in anomaly.get("steps") or [] if isinstance(s, dict)
                )
                items.append(f"<ul>{steps}</ul>")
            ops = anomaly.get("ops") or {}
            if isinstance(ops, dict) and ops:
                items.append("<pre>" + _e("\n".join(str(v) for v in ops.values())) + "</pre>")
            body.append('<div class="anomaly">' + "".join(items) + "</div>")
    return '<section id="isolation"><h2>Isolation check</h2>\n' + "\n".join(body) + "\n</section>"


def _workload(name: str, report: dict[str, Any]) -> str:
    """One transactional workload: verdict and reason, transactions and attempts, anomalies or violations."""
    verdict = str(report.get("verdict", "no evidence"))
    txns: dict[str, Any] = report["txns"] if isinstance(report.get("txns"), dict) else {}
    attempts: dict[str, Any] = report["attempts"] if isinstance(report.get("attempts"), dict) else {}
    level = f"{report.get('kind', '?')} at {report.get('isolation', '?')}"
    if report.get("model"):
        level += f", checked as {report['model']}"
    body = [
        f'<h3 id="isolation-{_e(name)}">{_e(name)} ({_e(level)})</h3>',
        f'<p class="{"pass" if verdict == "valid" else "fail"}">{_e(report.get("reason", verdict))}</p>',
        '<table class="isolation-txns"><thead><tr><th>acknowledged</th><th>failed</th><th>in doubt</th>'
        "<th>aborted</th><th>attempts</th></tr></thead><tbody><tr>"
        + "".join(
            f'<td class="num">{_e(txns.get(k, 0))}</td>' for k in ("acknowledged", "failed", "in_doubt", "aborted")
        )
        + f"<td>{_e(', '.join(f'{k}: {v}' for k, v in attempts.items()))}</td></tr></tbody></table>",
    ]
    checked = {
        k: v for k, v in report.items() if k in ("valid", "model", "anomaly_counts", "forbidden_found", "anomalies")
    }
    if "valid" in checked and report.get("kind") == "list_append":
        inner = isolation_section(checked | {"reason": ""})
        body.append(inner.split("\n", 1)[1].rsplit("\n", 1)[0] if inner else "")
    for kind, found in (report.get("violations") or {}).items():
        for violation in found if isinstance(found, list) else ():
            if isinstance(violation, dict):
                lines = [str(violation.get("description", ""))]
                lines += [
                    f"{r.get('id')}: total {r.get('total')}"
                    for r in violation.get("reads") or []
                    if isinstance(r, dict)
                ]
                body.append(f'<div class="anomaly"><p><b>{_e(kind)}</b></p><pre>{_e(chr(10).join(lines))}</pre></div>')
    return "\n".join(body)
