"""Run-wide bookkeeping the writers feed: acknowledged-write ledgers and recovery pulses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from holoload.core.ledger.book import Ledger
from holoload.core.model.workload import LedgerSpec
from holoload.core.stats.window import NS_PER_S


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One ledger: the table and id column it covers, and the endpoint owning the data (None: shared)."""

    table: str
    id_column: str
    endpoint: int | None
    ledger: Ledger


class LedgerBook:
    """Ledgers per (table, id column) and, when each node holds its own data, per endpoint.

    Args:
        shared: every endpoint sees the same data (one ledger per table, checked through every
            endpoint); otherwise writes through endpoint i live on node i only.
        factory: makes each ledger (a worker process uses a `journal.JournalLedger`).
    """

    def __init__(self, *, shared: bool, factory: Callable[[], Ledger] = Ledger) -> None:
        self.shared = shared
        self._factory = factory
        self._ledgers: dict[tuple[str, str, int | None], LedgerEntry] = {}

    def ledger(self, spec: LedgerSpec, endpoint: int) -> Ledger:
        """The ledger recording writes of `spec` through `endpoint`."""
        return self.at(spec.table, spec.id_column, None if self.shared else endpoint)

    def at(self, table: str, id_column: str, endpoint: int | None) -> Ledger:
        """The ledger of a table's id column, of one endpoint or (None) shared by all."""
        key = (table, id_column, endpoint)
        entry = self._ledgers.get(key)
        if entry is None:
            entry = self._ledgers[key] = LedgerEntry(table, id_column, endpoint, self._factory())
        return entry.ledger

    def entries(self) -> list[LedgerEntry]:
        return list(self._ledgers.values())

    def last_acked(self, table: str) -> int | None:
        """The highest acknowledged id written to `table` (any endpoint), or None."""
        tops = [e.ledger.acknowledged.last() for e in self._ledgers.values() if e.table == table]
        found = [t for t in tops if t is not None]
        return max(found) if found else None

    def recent_acked(self, table: str, span: int) -> tuple[int, int] | None:
        """[lo, hi) covering the last `span` acknowledged ids of `table`, or None."""
        top = self.last_acked(table)
        if top is None:
            return None
        return max(0, top - span + 1), top + 1

    def totals(self) -> dict[str, int]:
        """Ids per state over every ledger."""
        out: dict[str, int] = {}
        for entry in self._ledgers.values():
            for name, value in entry.ledger.summary().items():
                out[name] = out.get(name, 0) + value
        return out


class Recovery:
    """One heal: from when it began to the first success through the healed endpoint."""

    __slots__ = ("node", "started_ns", "done_ns")

    def __init__(self, node: str, started_ns: int) -> None:
        self.node = node
        self.started_ns = started_ns
        self.done_ns: int | None = None

    def seconds(self, now_ns: int) -> float:
        """Seconds to recover; while still waiting, the time so far."""
        end = self.done_ns if self.done_ns is not None else now_ns
        return (end - self.started_ns) / NS_PER_S


class Pulse:
    """Per endpoint: the heal still waiting for its first successful operation, if any.

    Writers check `armed` after every success (one attribute read on the hot path).
    """

    __slots__ = ("armed", "_current")

    def __init__(self) -> None:
        self.armed = False
        self._current: Recovery | None = None

    def arm(self, node: str, now_ns: int) -> Recovery:
        """Start timing a recovery; an older one still waiting is superseded (it keeps its time so far)."""
        self._current = Recovery(node, now_ns)
        self.armed = True
        return self._current

    def hit(self, done_ns: int) -> None:
        current = self._current
        if current is not None and done_ns >= current.started_ns:
            current.done_ns = done_ns
            self._current, self.armed = None, False
