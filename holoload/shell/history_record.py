"""Putting runs into the history: where it is, what a run's context was, recording, `--baseline auto`.

Recording never changes a verdict: a history that cannot be written is a problem listed with
the run (`run.problems` in summary.json) and printed, and the run's exit code stays what the
gates decided.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from holoload.adapters.history.store import open_store
from holoload.adapters.pg.connect import redact
from holoload.core.errors import HololoadError, InputError
from holoload.core.history.model import (
    DEFAULT_ENVIRONMENT,
    RunContext,
    RunEntry,
    canary_histograms,
    entry_from_summary,
)
from holoload.core.result import RunSummary
from holoload.core.stats import hlog
from holoload.core.stats.histogram import LatencyHistogram
from holoload.shell.rebuild import read_events, read_hlog

__all__ = [
    "CONTEXT_FILE",
    "ENV_HISTORY",
    "capture_context",
    "environment_label",
    "history_location",
    "record_results_dir",
    "record_run",
    "resolve_auto_baseline",
]

ENV_HISTORY = "HOLOLOAD_HISTORY"
ENV_LABEL = "HOLOLOAD_ENV"
CONTEXT_FILE = "context.json"
HISTORY_FILE = "history.sqlite"

#: (commit variable, branch variables in order of preference) of common CI systems.
_CI_VARIABLES = (
    ("GITHUB_SHA", ("GITHUB_HEAD_REF", "GITHUB_REF_NAME")),  # a pull request's head branch first
    ("CI_COMMIT_SHA", ("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "CI_COMMIT_REF_NAME")),  # GitLab
    ("BUILDKITE_COMMIT", ("BUILDKITE_BRANCH",)),
    ("CIRCLE_SHA1", ("CIRCLE_BRANCH",)),
    ("GIT_COMMIT", ("GIT_BRANCH", "BRANCH_NAME")),  # Jenkins
)


def environment_label(env: Mapping[str, str]) -> str:
    """The environment a run about to start will be recorded under: $HOLOLOAD_ENV, else "default"."""
    return env.get(ENV_LABEL, "").strip() or DEFAULT_ENVIRONMENT


def history_location(flag: str | None, env: Mapping[str, str], beside: Path) -> str | None:
    """`--history`, else $HOLOLOAD_HISTORY, else `<beside>/history.sqlite`; None when it says `none`."""
    value = (flag or env.get(ENV_HISTORY, "") or str(beside / HISTORY_FILE)).strip()
    return None if value.lower() in ("none", "off") else value


def _git(directory: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(
            ["git", "-C", str(directory), *args], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    out = proc.stdout.strip()
    return out if proc.returncode == 0 and out else None


def git_facts(env: Mapping[str, str], directory: Path) -> tuple[str | None, str | None]:
    """(commit, branch): from CI variables when set, else `git rev-parse` in `directory`."""
    for commit_var, branch_vars in _CI_VARIABLES:
        if env.get(commit_var):
            branch = next((env[v] for v in branch_vars if env.get(v)), None)
            return env[commit_var], branch
    commit = _git(directory, "rev-parse", "HEAD")
    branch = _git(directory, "rev-parse", "--abbrev-ref", "HEAD") if commit else None
    return commit, None if branch == "HEAD" else branch  # detached HEAD: no branch


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip() or None
    except OSError:
        pass
    return platform.processor() or platform.machine() or None


def capture_context(root: Path, scenario_file: str, env: Mapping[str, str]) -> RunContext:
    """The run's git, host and environment facts, taken as it starts, kept in `root/context.json`
    (so `holoload report` of a killed run and `history import` record them too). Best effort:
    a fact that cannot be read is left empty, a file that cannot be written is skipped."""
    commit, branch = git_facts(env, Path(scenario_file).resolve().parent)
    try:
        load1: float | None = os.getloadavg()[0]
    except OSError:
        load1 = None
    context = RunContext(
        git_commit=commit,
        git_branch=branch,
        environment=env.get(ENV_LABEL, "").strip() or None,
        host_name=socket.gethostname(),
        host_cpus=os.cpu_count(),
        host_model=_cpu_model(),
        host_load1=load1,
    )
    try:
        (root / CONTEXT_FILE).write_text(json.dumps(context.to_dict(), indent=2) + "\n")
    except OSError:
        pass
    return context


def read_context(root: Path) -> RunContext:
    try:
        data = json.loads((root / CONTEXT_FILE).read_text())
    except (OSError, ValueError):
        return RunContext()
    return RunContext.from_dict(data) if isinstance(data, dict) else RunContext()


def results_histograms(root: Path, summary: RunSummary | Mapping[str, Any]) -> dict[tuple[str, str], str]:
    """Each op's whole-phase HDR histogram, encoded: merged from latency.hlog (sustained load;
    every endpoint and window of the op in the phase), or rebuilt from the batches (a canary)."""
    result = RunSummary.from_json(summary)
    if result.phases:
        by_tag = read_hlog(root)
        out: dict[tuple[str, str], str] = {}
        for phase, body in result.phases.items():
            for op in body.ops:
                workload, _, name = op.partition(".")
                prefix = hlog.tag(phase, workload, name, "")
                merged = LatencyHistogram()
                for tag, histogram in by_tag.items():
                    if tag.startswith(prefix):
                        merged.merge(histogram)
                if merged.count:
                    out[(phase, op)] = merged.encode().decode("ascii")
        return out
    batches: Iterable[Mapping[str, Any]] = result.batches
    if "batches" not in result.keys:
        batches = [e for e in read_events(root) if e.get("kind") == "batch_finished"]
    return canary_histograms(batches)


def entry_for(root: Path, summary: RunSummary | Mapping[str, Any], *, source: str, env: Mapping[str, str]) -> RunEntry:
    """The history record of the run in `root` whose summary is `summary`.

    Raises:
        ValueError: the summary has no run id.
    """
    result = RunSummary.from_json(summary)
    entry = entry_from_summary(
        result,
        context=read_context(root),
        histograms=results_histograms(root, result),
        source=source,
        environment_fallback=env.get(ENV_LABEL, "").strip() or None,
    )
    return replace(entry, results_dir=str(root.resolve()))


def record_run(
    root: Path, summary: RunSummary | Mapping[str, Any], location: str | None, *, source: str, env: Mapping[str, str]
) -> list[str]:
    """Record a run; returns the problems (empty when it was recorded or history is off)."""
    if location is None:
        return []
    try:
        entry = entry_for(root, summary, source=source, env=env)
        with open_store(location) as store:
            store.record(entry)
    except (HololoadError, ValueError, OSError) as exc:
        return [f"run history not recorded ({redact(location)}): {exc}"]  # no password in summaries
    return []


def record_results_dir(
    root: Path,
    summary: RunSummary | Mapping[str, Any],
    history_flag: str | None,
    *,
    source: str,
    env: Mapping[str, str],
) -> list[str]:
    """`record_run` with the history beside the results directory unless `--history`/env say otherwise."""
    return record_run(root, summary, history_location(history_flag, env, root.parent), source=source, env=env)


def resolve_auto_baseline(location: str | None, scenario: str, target: str, environment: str) -> Path | None:
    """`--baseline auto`: the results directory of the last passing run of the same scenario, target
    and environment whose summary.json is still there; None when the history has none.

    Raises:
        InputError: history is switched off (`--history none`) or cannot be read.
    """
    if location is None:
        raise InputError("--baseline auto needs the run history, but --history/HOLOLOAD_HISTORY is 'none'")
    if not location.startswith(("postgresql://", "postgres://")) and not Path(location).exists():
        return None
    try:
        with open_store(location) as store:
            runs = store.runs(scenario=scenario, environment=environment, target=target)
    except HololoadError as exc:
        raise InputError(f"--baseline auto: cannot read the run history: {exc}") from exc
    for run in reversed(runs):
        if run.verdict == "PASS" and run.results_dir and (Path(run.results_dir) / "summary.json").is_file():
            return Path(run.results_dir)
    return None
