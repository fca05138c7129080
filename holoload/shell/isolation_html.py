"""report.html's isolation section: a CheckResult's JSON form (summary.json ``isolation``) as HTML."""

from __future__ import annotations

from html import escape
from typing import Any

__all__ = ["isolation_section"]


def _e(value: Any) -> str:
    return escape(str(value))


def isolation_section(data: Any) -> str:
    """The section, or "" when ``data`` is not a check result.

    Args:
        data: ``CheckResult.to_json()`` as read back from summary.json (anything else renders nothing).

    Returns:
        An HTML ``<section id="isolation">``: the verdict, counts per class (forbidden ones marked ``fail``),
        and each example anomaly with its cycle, the reason of every step, and the transactions' operations.
    """
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
