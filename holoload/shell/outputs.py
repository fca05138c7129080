"""The reports written from a finished summary: report.html, junit.xml and summary.md."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from holoload.core.result import RunSummary
from holoload.shell.ci_outputs import write_ci_outputs
from holoload.shell.html_report import write_report


def write_reports(root: Path, summary: RunSummary | Mapping[str, Any]) -> list[str]:
    """Write every report derived from `summary` (already in root/summary.json); returns what failed."""
    return write_ci_outputs(root, summary) + write_report(root)
