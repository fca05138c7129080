"""The reports written from a finished summary: junit.xml, summary.md (and report.html)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from holoload.shell.ci_outputs import write_ci_outputs


def write_reports(root: Path, summary: dict[str, Any]) -> list[str]:
    """Write every report derived from `summary` into `root`; returns what could not be written."""
    return write_ci_outputs(root, summary)
