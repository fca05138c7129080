"""`--notify URL`: after a run's artifacts are written, POST a short Slack-compatible JSON summary.

The payload is built from the summary.json on disk (so it says what the artifacts say), with
the run's secrets masked. A post gets a 5 s timeout and one retry (connection errors, timeouts,
HTTP 429 and 5xx); its outcome goes into summary.json (`notify`), events.jsonl and run.log.
Nothing here can change the verdict or the exit code: every failure is recorded and swallowed.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from ipaddress import ip_address
from typing import Any
from urllib.parse import urlsplit

from holoload import __version__
from holoload.core.config.secrets import MASK, Secrets
from holoload.core.errors import InputError
from holoload.core.events import RunProblem
from holoload.core.result import RunSummary
from holoload.shell.artifacts import ArtifactWriter

ENV_VAR = "HOLOLOAD_NOTIFY"
TIMEOUT_S = 5.0
RETRY_DELAY_S = 0.5
MAX_GATES = 10
MAX_OPS = 12
MAX_PROBLEMS = 5
PERCENTILES = ("p50", "p95", "p99")


@dataclass(frozen=True, slots=True)
class NotifyResult:
    """The outcome of posting to one webhook (`url` is the masked form)."""

    url: str
    ok: bool
    attempts: int
    status: int | None = None
    error: str | None = None
    elapsed_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "ok": self.ok,
            "attempts": self.attempts,
            "status": self.status,
            "error": self.error,
            "elapsed_s": round(self.elapsed_s, 3),
        }


def masked_url(url: str) -> str:
    """`https://hooks.example.com/***`: scheme and host only, since a webhook's path is its credential."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if _port(url) else ""
    tail = f"/{MASK}" if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{host}{port}{tail}"


def _port(url: str) -> int | None:
    try:
        return urlsplit(url).port
    except ValueError:
        return None


def notify_urls(flags: Sequence[str], environ: Mapping[str, str]) -> list[str]:
    """The webhooks of a run: every `--notify`, else `HOLOLOAD_NOTIFY` (URLs separated by spaces).

    Raises:
        InputError: a URL that is not http(s)://host/... (exit 2, before any load).
    """
    source = "--notify"
    urls = [u.strip() for u in flags if u.strip()]
    if not flags:
        source = ENV_VAR
        urls = environ.get(ENV_VAR, "").split()
    for url in urls:
        parts = urlsplit(url)
        if _bad_port(url) or parts.scheme not in ("http", "https") or not parts.hostname:
            raise InputError(
                f"{source}: expected an http:// or https:// webhook URL, got {masked_url(url)!r} "
                "(e.g. --notify https://hooks.slack.com/services/...)"
            )
    return urls


def _bad_port(url: str) -> bool:
    try:
        port = urlsplit(url).port
    except ValueError:
        return True
    return port == 0


# ---------------------------------------------------------------- the payload


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _slack(text: Any) -> str:
    """Text for Slack mrkdwn: &, < and > are control characters there."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _ms(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return round(float(value), 3)


def key_percentiles(summary: RunSummary | Mapping[str, Any]) -> dict[str, dict[str, float | None]]:
    """p50/p95/p99 in ms per op: `batch_20k` for a canary, `phase.workload.op` for sustained load."""
    result = RunSummary.from_json(summary)
    out: dict[str, dict[str, float | None]] = {}
    sources = [(f"{phase}.{op}", fig.latency_ms) for phase, op, fig in result.op_figures()]
    sources += [(op, fig.latency_ms) for op, fig in (result.ops or {}).items()]
    for name, latency in sources:
        if isinstance(latency, Mapping) and latency:
            out[name] = {p: _ms(latency.get(p)) for p in PERCENTILES}
    return out


def failed_gates(summary: RunSummary | Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every gate that did not pass, with its reason and expression."""
    return [
        {"name": g.get("name"), "reason": g.get("reason"), "expression": g.get("expression")}
        for g in RunSummary.from_json(summary).gates
        if g.passed is not True
    ]


def build_payload(summary: RunSummary | Mapping[str, Any], report: str | None) -> dict[str, Any]:
    """A Slack-compatible message (`text` + `blocks`) with a machine-readable `holoload` object.

    Args:
        summary: the run's summary, as written.
        report: the path of report.html, or None when there is none.
    """
    result = RunSummary.from_json(summary)
    run = result.run
    scenario = result.scenario_name
    verdict = result.status
    exit_code = result.exit_code if "exit_code" in result.keys else run.exit_code
    env = result.env if isinstance(result.env, str) else None
    failed = failed_gates(result)
    percentiles = key_percentiles(result)
    problems = list(run.problems)
    machine = {
        "verdict": verdict,
        "exit_code": exit_code,
        "scenario": scenario,
        "run_id": run.run_id,
        "env": env,
        "failed_gates": failed,
        "percentiles_ms": percentiles,
        "report": report,
        "results_dir": run.results_dir,
        "problems": problems[:MAX_PROBLEMS],
        "holoload_version": __version__,
    }
    title = f"holoload {scenario}: {verdict}"
    text = f"{title} (exit {exit_code})"
    if env and env != "default":
        text += f", budget {env}"
    if failed:
        text += "; failed: " + ", ".join(f"{g['name']} ({g['reason']})" for g in failed[:MAX_GATES])
    if report or run.results_dir:
        text += f"; report: {report or run.results_dir}"
    return {"text": _slack(text), "blocks": _blocks(title, machine, failed, percentiles, problems), "holoload": machine}


def _blocks(
    title: str,
    machine: Mapping[str, Any],
    failed: list[dict[str, Any]],
    percentiles: Mapping[str, Mapping[str, float | None]],
    problems: list[str],
) -> list[dict[str, Any]]:
    facts = [f"*exit {machine['exit_code']}*"]
    if machine["env"]:
        facts.append(f"budget `{_slack(machine['env'])}`")
    if machine["run_id"]:
        facts.append(f"run `{_slack(machine['run_id'])}`")
    where = machine["report"] or machine["results_dir"]
    lines = [" · ".join(facts)] + ([f"report: `{_slack(where)}`"] if where else [])
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        _section("\n".join(lines)),
    ]
    if failed:
        items = [f"• *{_slack(g['name'])}*: {_slack(g['reason'])}" for g in failed[:MAX_GATES]]
        if len(failed) > MAX_GATES:
            items.append(f"… and {len(failed) - MAX_GATES} more")
        blocks.append(_section("*Failed gates*\n" + "\n".join(items)))
    if percentiles:
        width = max(len(op) for op in list(percentiles)[:MAX_OPS])
        rows = [f"{'op':<{width}}  " + "  ".join(f"{p:>9}" for p in PERCENTILES)]
        for op, values in list(percentiles.items())[:MAX_OPS]:
            rows.append(f"{op:<{width}}  " + "  ".join(_cell(values.get(p)) for p in PERCENTILES))
        blocks.append(_section("*Latency (ms)*\n```" + _slack("\n".join(rows)) + "```"))
    if problems:
        shown = "\n".join(f"• {_slack(p)}" for p in problems[:MAX_PROBLEMS])
        blocks.append(_section("*Problems*\n" + shown))
    return blocks


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}


def _cell(value: float | None) -> str:
    return f"{'-':>9}" if value is None else f"{value:>9.4g}"


# ---------------------------------------------------------------- posting


def _opener(url: str) -> urllib.request.OpenerDirector:
    """Loopback URLs never go through an HTTP proxy; others honour the usual proxy variables."""
    host = urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ip_address(host).is_loopback
    except ValueError:
        loopback = False
    return urllib.request.build_opener(urllib.request.ProxyHandler({})) if loopback else urllib.request.build_opener()


def post(
    url: str,
    payload: Mapping[str, Any],
    *,
    timeout_s: float = TIMEOUT_S,
    retries: int = 1,
    retry_delay_s: float = RETRY_DELAY_S,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> NotifyResult:
    """POST `payload` as JSON to `url`; one retry on connection errors, timeouts, 429 and 5xx.

    Never raises: every failure (including Ctrl-C during the post) becomes a NotifyResult.
    Error texts never quote the URL's path or query.
    """
    body = json.dumps(payload).encode()
    hidden = Secrets([url, urlsplit(url).path, urlsplit(url).query])
    started = clock()
    attempts = 0
    status: int | None = None
    error: str | None = None
    while attempts <= retries:
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": f"holoload/{__version__}"},
        )
        try:
            if attempts:
                sleep(retry_delay_s)
            attempts += 1
            with _opener(url).open(request, timeout=timeout_s) as response:
                status = int(response.status)
                response.read(65536)
            return NotifyResult(masked_url(url), True, attempts, status, None, clock() - started)
        except urllib.error.HTTPError as exc:
            status = exc.code
            detail = exc.read(300).decode("utf-8", "replace").strip() if exc.fp is not None else ""
            error = f"HTTP {exc.code}" + (f": {' '.join(detail.split())}" if detail else "")
            if exc.code != 429 and exc.code < 500:
                break  # the endpoint refused this payload: sending it again would not help
        except KeyboardInterrupt:
            error = "interrupted (Ctrl-C/SIGTERM) while posting; not retried"
            break
        except (urllib.error.URLError, OSError, ValueError) as exc:
            status = None
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            error = f"{type(reason).__name__}: {reason}" if isinstance(reason, BaseException) else str(reason)
    return NotifyResult(masked_url(url), False, attempts, status, hidden.scrub(error or "failed"), clock() - started)


def notify_run(
    urls: Iterable[str],
    writer: ArtifactWriter,
    secrets: Secrets,
    *,
    say: Callable[[str], None],
    log: Callable[..., None],
) -> list[NotifyResult]:
    """Post the run's summary to every webhook, then record the outcomes.

    Each outcome goes to run.log (`notify`) and summary.json (`notify`, rewritten after the
    posts); a failed post is also a `problem` event in events.jsonl. Nothing raises.

    Args:
        urls: the webhook URLs (already checked by `notify_urls`).
        writer: the run's artifact writer (its directory holds summary.json).
        secrets: the run's secrets, masked in the payload too.
        say: prints one terminal line per webhook.
        log: writes one run.log entry, `log(event, **fields)`.

    Returns:
        One result per URL (none when the posting itself was interrupted or broke).
    """
    urls = list(urls)
    if not urls:
        return []
    try:
        return _notify(urls, writer, secrets, say, log)
    except KeyboardInterrupt:
        say("notify: interrupted; the verdict stands")
        log("problem", what="notify", detail="interrupted while notifying")
    except Exception as exc:  # noqa: BLE001 - a bug here must not turn into a different exit code
        detail = secrets.scrub(f"{type(exc).__name__}: {exc}")
        say(f"notify: failed ({detail}); the verdict stands")
        log("problem", what="notify", detail=detail)
    return []


def _notify(
    urls: list[str], writer: ArtifactWriter, secrets: Secrets, say: Callable[[str], None], log: Callable[..., None]
) -> list[NotifyResult]:
    summary_path = writer.root / "summary.json"
    try:
        summary = RunSummary.from_json(summary_path)
    except (OSError, ValueError) as exc:
        summary = RunSummary.from_json(
            {"verdict": "UNKNOWN", "run": {"results_dir": str(writer.root), "problems": [f"no summary: {exc}"]}}
        )
    report = writer.root / "report.html"
    payload = secrets.scrub_obj(build_payload(summary, str(report) if report.exists() else None))
    results = [post(url, payload) for url in urls]
    for result in results:
        log("notify", **result.to_dict())
        if result.ok:
            say(f"notify: posted to {result.url} (HTTP {result.status})")
            continue
        detail = f"{result.url}: {result.error} after {result.attempts} attempt(s); the verdict stands"
        say(f"notify: FAILED {detail}")
        writer.emit(RunProblem(time.time(), "notify", detail))
    if "holoload_version" in summary.keys:  # a summary this run wrote: add the outcomes to it
        summary = replace(summary, keys=summary.with_keys("notify"), notify=tuple(r.to_dict() for r in results))
        try:
            writer.write_json(summary_path.name, summary.to_json())
        except OSError as exc:
            log("problem", what="notify", detail=f"could not record the outcome in {summary_path}: {exc}")
    return results
