"""Live view of sustained load: a rich table on a terminal, one progress line per window otherwise."""

from __future__ import annotations

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from holoload.core.events import (
    ChaosFinished,
    ChaosStarted,
    CheckFinished,
    ErrorSeen,
    Event,
    GateChanged,
    PhaseChanged,
    RunProblem,
    WindowClosed,
    WindowRow,
)
from holoload.core.model.scenario import Scenario
from holoload.core.model.workload import gate_text
from holoload.shell.live import LiveDisplay

_GATE_STYLE = {"pass": "green", "fail": "bold red", "pending": "dim", "no data": "yellow"}


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}ms" if value < 10 else f"{value:.1f}ms" if value < 100 else f"{value:.0f}ms"


def client_row(event: WindowClosed) -> Text:
    """The live view's `client` row: each process's loop lag and CPU, the window's lateness; red when strained."""
    health = event.client
    if health is None:
        return Text("")
    parts = []
    for name, p in health.processes:
        share = p.cpu_share
        cpu = "" if share is None else f" cpu {share:.0%}"
        parts.append(f"{name} lag p99 {_ms(p.lag_p99_ms)}{cpu}")
    late = "" if health.tick_late_s is None else f", closed {health.tick_late_s * 1000:.0f}ms late"
    text = f"client: {', '.join(parts)}; window {health.actual_s:.2f}s{late}"
    if health.late_drops:
        text += f"; {health.late_drops} dropped behind schedule"
    if event.client_strain:
        return Text(f"{text}  STRAINED: {'; '.join(event.client_strain)}", style="bold red")
    return Text(text, style="dim")


class LoadDisplay(LiveDisplay):
    """Renders WindowClosed snapshots; phases, problems and the verdict as LiveDisplay does.

    Args:
        console: where to draw.
        scenario: for phase durations (progress and ETA).
        quiet: only the verdict.
    """

    def __init__(self, console: Console, scenario: Scenario, *, quiet: bool = False) -> None:
        super().__init__(console, quiet=quiet)
        self.durations = {p.name: p.duration for p in scenario.phases}
        self.total_s = sum(d or 0 for d in self.durations.values())
        self.gates: dict[str, tuple[str, str]] = {
            name: ("pending", text) for name, text in scenario.active_gates().items()
        }
        for phase in scenario.phases:
            for name, value in phase.gates.items():
                text = gate_text(value)
                if text.strip():
                    self.gates[f"{phase.name}.{name}"] = ("pending", text)
        self.phase = ""
        self.phase_started_s = 0.0
        self.last: WindowClosed | None = None
        self._live: Live | None = None

    def emit(self, event: Event) -> None:
        if self.quiet:
            return
        if isinstance(event, GateChanged):
            self.gates[event.name] = (event.state, event.reason)
            if not self.console.is_terminal:
                self.console.print(f"gate {event.name}: {event.state} ({event.reason})", highlight=False)
            return
        if isinstance(event, WindowClosed):
            if event.phase != self.phase:
                self.phase, self.phase_started_s = event.phase, event.elapsed_s - event.seconds
            self.last = event
            if self.console.is_terminal:
                self._refresh()
            else:
                self.console.print(self._window_line(event), highlight=False, markup=False)
            return
        if isinstance(event, ErrorSeen):  # once per distinct message; the summary counts them all
            code = event.sqlstate or "no SQLSTATE"
            line = (
                f"[bold red]\\[error][/bold red] {escape(event.workload)}.{escape(event.op)} @{escape(event.endpoint)} "
                f"{code} ({event.error_class}) first at {event.at_s:.1f}s: {escape(event.message)}"
            )
            (self._live.console if self._live is not None else self.console).print(line, highlight=False)
            return
        if isinstance(event, ChaosStarted):
            where = f" on {event.node}" if event.node else ""
            what = f"{escape(event.name)} {event.step} ({event.action}{where})"
            line = f"[bold]\\[chaos][/bold] {what} {escape(event.trigger)}"
            (self._live.console if self._live is not None else self.console).print(line, highlight=False)
            return
        if isinstance(event, (PhaseChanged, RunProblem, ChaosFinished, CheckFinished)) and self._live is not None:
            self._live.console.print(super()._line(event) or "", highlight=False)
            return
        super().emit(event)

    def _window_line(self, event: WindowClosed) -> str:
        parts = [f"[{event.phase} {event.elapsed_s:6.1f}s]"]
        for row in event.rows:
            if row.endpoint != "*":
                continue
            errors = sum(row.errors.values())
            parts.append(
                f"{row.workload}.{row.op} {row.ops_per_s:,.0f}/s p50 {_ms(row.p50_ms)} "
                f"p95 {_ms(row.p95_ms)} p99 {_ms(row.p99_ms)} err {errors} drop {row.dropped}"
            )
        if event.signals:
            parts.append("server " + ", ".join(f"{k} {v:,.0f}" for k, v in event.signals.items()))
        if event.client_strain:
            parts.append("client STRAINED (holoload is the bottleneck): " + "; ".join(event.client_strain))
        return " | ".join(parts)

    def _refresh(self) -> None:
        if self._live is None:
            self._live = Live(console=self.console, refresh_per_second=4, transient=False)
            self._live.start()
        self._live.update(self._render())

    def _render(self) -> Group:
        event = self.last
        assert event is not None
        header = Text(self._progress(event), style="bold")
        table = Table(box=None, pad_edge=False, header_style="bold")
        for col in ("op", "ops/s", "p50", "p95", "p99", "max", "total p95", "total p99", "errors", "dropped"):
            table.add_column(col, justify="left" if col == "op" else "right")
        for row in event.rows:
            if row.endpoint == "*":
                table.add_row(*self._cells(row))
        gates = Table(box=None, pad_edge=False, show_header=False)
        for name, (state, reason) in self.gates.items():
            style = _GATE_STYLE.get(state, "")
            gates.add_row(Text(state.upper(), style=style), Text(name), Text(reason))
        signals = "  ".join(f"{name} {value:,.0f}" for name, value in event.signals.items())
        server = Text(f"server: {signals}" if signals else "")
        return Group(header, table, server, client_row(event), gates)

    def _cells(self, row: WindowRow) -> list[str]:
        errors = ", ".join(f"{k} {v}" for k, v in sorted(row.errors.items())) or "0"
        return [
            f"{row.workload}.{row.op}",
            f"{row.ops_per_s:,.0f}",
            _ms(row.p50_ms),
            _ms(row.p95_ms),
            _ms(row.p99_ms),
            _ms(row.max_ms),
            _ms(row.total_p95_ms),
            _ms(row.total_p99_ms),
            errors,
            str(row.dropped),
        ]

    def _progress(self, event: WindowClosed) -> str:
        duration = self.durations.get(event.phase)
        in_phase = event.elapsed_s - self.phase_started_s
        text = f"phase {event.phase}  {in_phase:5.1f}s"
        if duration:
            done = min(1.0, in_phase / duration)
            bar = "#" * int(done * 30) + "." * (30 - int(done * 30))
            text += f" / {duration:g}s [{bar}] ETA {max(0.0, duration - in_phase):.0f}s"
        if self.total_s:
            text += f"   run {event.elapsed_s:.0f}s / ~{self.total_s:.0f}s"
        return text

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        super().close()
