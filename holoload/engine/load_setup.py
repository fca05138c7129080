"""Before a load run's phases: fault proxies in front of the nodes `net` faults target, the setup SQL."""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlsplit

import anyio

from holoload.adapters.faults.netproxy import FaultProxy
from holoload.adapters.holofusion.surfaces import DB_ERRORS, TargetSurfaces
from holoload.adapters.pg.connect import describe_error
from holoload.core.errors import SetupError
from holoload.core.events import EventSink, PhaseChanged
from holoload.core.model.scenario import Scenario
from holoload.engine.chaos import FaultRunner


async def start_fault_proxies(
    chaos: FaultRunner | None, surfaces: TargetSurfaces, seed: int | None, proxies: dict[int, FaultProxy]
) -> None:
    """A TCP fault proxy in front of each node a `net` action targets, into `proxies` (by node index)."""
    if chaos is None:
        return
    for i in sorted(chaos.net_nodes()):
        parts = urlsplit(surfaces.target.nodes[i].dsn)
        proxy = FaultProxy(parts.hostname or "127.0.0.1", parts.port or 5432, seed=seed, name=surfaces.names[i])
        await proxy.start()
        proxies[i] = proxy


def work_dsns(surfaces: TargetSurfaces, proxies: dict[int, FaultProxy]) -> list[str]:
    """Where writers connect, by node: through its fault proxy when one is in front."""
    dsns = []
    for i, node in enumerate(surfaces.target.nodes):
        proxy = proxies.get(i)
        dsns.append(node.dsn if proxy is None else proxy.dsn_through(node.dsn))
    return dsns


async def run_setup_sql(
    scenario: Scenario, surfaces: TargetSurfaces, sink: EventSink, clock: Callable[[], float] = time.time
) -> None:
    """Create the table when asked, then run `[setup] sql` on every data node.

    Raises:
        SetupError: a statement failed (exit 2).
    """
    sink.emit(PhaseChanged(clock(), "setup", f"{len(scenario.setup.sql)} statements"))
    if scenario.table.create:
        await surfaces.prepare_table(scenario.table.name)
    for i in surfaces.data_nodes():
        for sql in scenario.setup.sql:
            try:
                with anyio.fail_after(scenario.run.statement_timeout + 5):
                    async with surfaces.work(i) as conn:  # cut short: cancelled, rolled back
                        await conn.execute(sql)
            except DB_ERRORS as exc:
                raise SetupError(
                    f"setup statement failed on {surfaces.names[i]}: {describe_error(exc)}\n  {sql.strip()[:200]}"
                ) from exc
