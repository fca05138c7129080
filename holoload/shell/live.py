"""Live progress on the terminal: one line per batch, chaos action and phase; renders events only."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.status import Status

from holoload.core.config.units import format_duration
from holoload.core.events import (
    BaselineTaken,
    BatchFinished,
    BatchStarted,
    ChaosFinished,
    ChaosStarted,
    CheckFinished,
    Event,
    FinalCount,
    PhaseChanged,
    RunProblem,
)
from holoload.core.gates.verdicts import Verdict

_STATUS_STYLE = {"ok": "green", "delta_mismatch": "bold red", "error": "bold red"}


def check_line(event: CheckFinished) -> str:
    """One line per checker read-back: the verdict, then every finding's count."""
    if event.error:
        failed = "[bold red]NOT CHECKED[/bold red]"
        return f"[bold]\\[check][/bold] {event.table} via {event.node}: {failed} {escape(event.error)}"
    mark = "[green]ok[/green]" if event.ok else "[bold red]FAILED[/bold red]"
    counts = ", ".join(
        f"{name} {finding['count']:,}" for name, finding in event.report.items() if isinstance(finding, dict)
    )
    return (
        f"[bold]\\[check][/bold] {event.table} via {event.node}: {mark} "
        f"({event.queries} queries, {format_duration(event.elapsed_s)}) {counts}"
    )


class LiveDisplay:
    """Prints progress as events arrive; on a terminal, a spinner shows the batch in flight.

    Args:
        console: where to print (stderr-safe rich Console).
        quiet: print only the final verdict.
    """

    def __init__(self, console: Console, *, quiet: bool = False) -> None:
        self.console = console
        self.quiet = quiet
        self._status: Status | None = None

    def emit(self, event: Event) -> None:
        if self.quiet:
            return
        line = self._line(event)
        if isinstance(event, (BatchFinished, ChaosFinished)):
            self._stop_spinner()
        if line:
            self.console.print(line, highlight=False)
        if isinstance(event, BatchStarted):
            self._spin(f"batch {event.index}/{event.total} {event.op} on {event.node}: inserting {event.rows:,} rows")
        elif isinstance(event, ChaosStarted):
            self._spin(escape(f"chaos {event.name} ({event.action}) {event.trigger}"))

    def _line(self, event: Event) -> str | None:
        if isinstance(event, PhaseChanged):
            return f"[bold]\\[{escape(event.phase)}][/bold] {escape(event.detail)}"
        if isinstance(event, BaselineTaken):
            return f"baseline: {event.baseline_count:,} rows"
        if isinstance(event, BatchFinished):
            style = _STATUS_STYLE.get(event.status, "red")
            delta = "-" if event.row_delta is None else f"{event.row_delta:,}"
            text = (
                f"\\[{event.index}/{event.total}] {event.op:<12} {event.node:<8} {event.rows:>9,} rows "
                f"{format_duration(event.elapsed_s):>8}  delta {delta:>9}  [{style}]{event.status}[/{style}]"
            )
            if event.error:
                text += f"  {escape(event.error)}"
            elif event.status == "delta_mismatch":
                text += f"  (expected {event.rows:,})"
            return text
        if isinstance(event, ChaosFinished):
            mark = "[green]ok[/green]" if event.ok else "[bold red]FAILED[/bold red]"
            what = event.action if event.step == "fire" else f"{event.action} heal"
            where = f" {event.node}" if event.node else ""
            return (
                f"[bold]\\[chaos][/bold] {event.name} ({what}{where}) {mark} in "
                f"{format_duration(event.elapsed_s)}: {escape(event.detail)}"
            )
        if isinstance(event, CheckFinished):
            return check_line(event)
        if isinstance(event, FinalCount):
            return f"final count: {event.final_count:,} rows"
        if isinstance(event, RunProblem):
            return f"[yellow]problem[/yellow] {escape(event.what)}: {escape(event.detail)}"
        return None

    def _spin(self, text: str) -> None:
        if not self.console.is_terminal:
            return
        self._stop_spinner()
        self._status = self.console.status(text)
        self._status.start()

    def _stop_spinner(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def close(self) -> None:
        self._stop_spinner()

    def verdicts(self, verdicts: list[Verdict], status: str, enforce: bool, exit_code: int, results: str) -> None:
        """The gate table and the final verdict line (printed even when quiet)."""
        self._stop_spinner()
        if verdicts:
            self.console.print("[bold]gates[/bold]", highlight=False)
        width = max([16, *(len(v.name) + 1 for v in verdicts)])
        for v in verdicts:
            mark = {"pass": "[green]PASS[/green]", "fail": "[bold red]FAIL[/bold red]"}.get(
                v.state, "[yellow]NO DATA[/yellow]"
            )
            self.console.print(f"  {mark} {escape(v.name):<{width}} {escape(v.reason)}", highlight=False)
        style = {"PASS": "bold green", "FAIL": "bold red"}.get(status, "bold yellow")
        note = "" if enforce else " (--no-enforce: exit 0 whatever the gates say)"
        self.console.print(f"[{style}]{status}[/{style}] exit {exit_code}{note}  results: {results}", highlight=False)
