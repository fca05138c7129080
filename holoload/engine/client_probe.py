"""holoload watching itself: a loop-lag probe per process, and the coordinator's per-window health records."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from holoload.core.model.scenario import Scenario
from holoload.core.stats.client_health import (
    COORDINATOR,
    GATE_KEY,
    PROBE_INTERVAL_S,
    ClientHealthBook,
    LagSamples,
    ProcessHealth,
    WindowHealth,
    worker_name,
)

NS_PER_S = 1_000_000_000


@dataclass
class LoopProbe:
    """Sleeps `interval_s` over and over and records each oversleep: how far its event loop lags.

    `take` returns the lag, CPU time and late drops since the previous `take`. Run `run` in the
    process's task group while it has load to drive; `take` works whether it runs or not.

    Args:
        late_drops: the process's open-loop arrivals dropped behind schedule so far (a total).
    """

    late_drops: Callable[[], int] = lambda: 0
    perf_ns: Callable[[], int] = time.perf_counter_ns
    cpu_s: Callable[[], float] = time.process_time
    interval_s: float = PROBE_INTERVAL_S
    drives_load: bool = True
    samples: LagSamples = field(init=False, default_factory=LagSamples)
    _wall_ns: int = field(init=False)
    _cpu: float = field(init=False)
    _drops: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self._wall_ns, self._cpu = self.perf_ns(), self.cpu_s()

    async def run(self) -> None:
        """Probe until cancelled."""
        interval_s = 0.0  # the first sample at once: even a run shorter than the interval is measured
        while True:
            before = self.perf_ns()
            await asyncio.sleep(interval_s)
            self.samples.record(self.perf_ns() - before - int(interval_s * NS_PER_S))
            interval_s = self.interval_s

    def take(self) -> ProcessHealth:
        """This process's health since the previous take."""
        now, cpu, drops = self.perf_ns(), self.cpu_s(), self.late_drops()
        count, p99_ms, max_ms = self.samples.take()
        wall_s = (now - self._wall_ns) / NS_PER_S
        health = ProcessHealth(p99_ms, max_ms, count, cpu - self._cpu, wall_s, drops - self._drops, self.drives_load)
        self._wall_ns, self._cpu, self._drops = now, cpu, drops
        return health


@dataclass
class ClientWatch:
    """The coordinator's side: its own probe, what the workers sent, one `WindowHealth` per window.

    Args:
        book: where every window's record is folded (the run's totals and verdict).
        probe: the coordinator's own loop-lag probe.
    """

    book: ClientHealthBook
    probe: LoopProbe
    window_s: float
    _workers: dict[int, ProcessHealth] = field(init=False, default_factory=dict)

    def worker(self, slot: int, health: ProcessHealth | None) -> None:
        """A worker's health since its previous flush (two flushes in one window are merged)."""
        if health is None:
            return
        earlier = self._workers.get(slot)
        self._workers[slot] = health if earlier is None else earlier.merged(health)

    def close(self, index: int, actual_s: float, tick_late_s: float | None) -> tuple[WindowHealth, tuple[str, ...]]:
        """The closed window's record and why it was strained (empty: the client kept up)."""
        workers = ((worker_name(slot), health) for slot, health in sorted(self._workers.items()))
        processes = ((COORDINATOR, self.probe.take()), *workers)
        self._workers = {}
        window = WindowHealth(index, self.window_s, actual_s, tick_late_s, processes)
        return window, self.book.add(window)

    def scalars(self) -> dict[str, float]:
        """Gate scalars: `client_saturated` (1 or 0, none before a window was judged), strained windows, late drops."""
        book = self.book
        out = {"client_strained_windows": float(book.strained), "client_late_drops": float(book.late_drops)}
        if book.saturated is not None:
            out["client_saturated"] = float(book.saturated)
        return out


def client_gate_enabled(scenario: Scenario) -> bool:
    """`client.ok` is a gate unless `run.client_gate = false` or the scenario names `gates.client_ok`
    (an empty string disables it; an expression replaces it)."""
    return scenario.run.client_gate and GATE_KEY not in scenario.gates


def client_watch(scenario: Scenario, late_drops: Callable[[], int], perf_ns: Callable[[], int]) -> ClientWatch:
    """The coordinator's ClientWatch for a scenario (its probe counts `late_drops` of the local runs)."""
    book = ClientHealthBook(enabled=client_gate_enabled(scenario))
    return ClientWatch(book, LoopProbe(late_drops, perf_ns=perf_ns), scenario.window)
