"""In-process runs against the session's PostgreSQL: targets, a finished run's files, a side thread.

``run_scenario`` runs a scenario like the CLI (``dispatch``) in this process; ``Sidecar`` acts on the
database from its own event loop meanwhile (kill a backend, wait for a statement).
"""

from __future__ import annotations

import asyncio
import csv
import json
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg

from holoload.adapters.local.cluster import LocalNode
from holoload.shell.cli import dispatch

Row = dict[str, str]


def per_node_target(tmp_path: Path, nodes: list[LocalNode]) -> str:
    """The three session nodes, each its own database."""
    lines = ['name = "session"', 'data = "per_node"']
    for node in nodes:
        lines += ["[[nodes]]", f'dsn = "{node.dsn}"']
    path = tmp_path / "per-node.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def shared_target(tmp_path: Path, node: LocalNode, endpoints: int = 3) -> str:
    """`endpoints` endpoints that all reach the same node (one shared table)."""
    lines = ['name = "shared"', 'data = "shared"']
    for i in range(endpoints):
        lines += ["[[nodes]]", f'name = "ep{i + 1}"', f'dsn = "{node.dsn}"']
    path = tmp_path / "shared.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


class Run:
    """One finished run: exit code, wall time and its results directory."""

    def __init__(self, code: int, seconds: float, root: Path) -> None:
        self.code = code
        self.seconds = seconds
        self.root = root

    @property
    def summary(self) -> dict[str, Any]:
        return json.loads((self.root / "summary.json").read_text())  # type: ignore[no-any-return]

    def op(self, name: str, phase: str = "main") -> dict[str, Any]:
        return self.summary["phases"][phase]["ops"][name]  # type: ignore[no-any-return]

    def windows(self, endpoint: str = "*", phase: str | None = None) -> list[Row]:
        with (self.root / "timeseries.csv").open() as fh:
            rows = list(csv.DictReader(fh))
        return [r for r in rows if r["endpoint"] == endpoint and (phase is None or r["phase"] == phase)]

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in (self.root / "events.jsonl").read_text().splitlines()]

    def gates(self) -> dict[str, dict[str, Any]]:
        return {g["name"]: g for g in self.summary["gates"]}


def run_scenario(tmp_path: Path, scenario: str, target: str, *extra: str) -> Run:
    """Write the scenario, run it in-process like the CLI, return the run."""
    name = scenario.split('name = "', 1)[1].split('"', 1)[0]
    path = tmp_path / f"{name}.toml"
    path.write_text(scenario)
    results = tmp_path / "results"
    started = time.monotonic()
    code = dispatch([str(path), "--target", target, "--results-dir", str(results), "-q", *extra])
    seconds = time.monotonic() - started
    (root,) = [p for p in results.iterdir() if p.is_dir()]
    return Run(code, seconds, root)


def query(dsn: str, sql: str) -> Any:
    """One value from a fresh connection (test-side check)."""

    async def one() -> Any:
        conn = await asyncpg.connect(dsn)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    return asyncio.run(one())


class Sidecar(threading.Thread):
    """Runs `action(stop)` on its own event loop while dispatch() owns the main thread."""

    def __init__(self, action: Callable[[threading.Event], Awaitable[Any]]) -> None:
        super().__init__(daemon=True)
        self.action = action
        self.stop = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = asyncio.run(self.action(self.stop))  # type: ignore[arg-type]
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread by finish()
            self.error = exc

    def __enter__(self) -> Sidecar:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.join(30)

    def finish(self) -> Any:
        self.stop.set()
        self.join(30)
        assert not self.is_alive(), "sidecar did not stop"
        if self.error is not None:
            raise self.error
        return self.result


async def wait_for_holoload_query(conns: list[asyncpg.Connection], like: str, stop: threading.Event) -> None:
    """Wait until every node has a holoload backend that has run a statement LIKE `like`."""
    sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'holoload' AND query LIKE $1"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not stop.is_set():
        counts = [await c.fetchval(sql, like) for c in conns]
        if all(counts):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"no holoload backend ran {like!r} on every node")


def problems(run: Run) -> list[str]:
    """The run's recorded problems (an internal error names itself here)."""
    return [f"{e['what']}: {e['detail']}" for e in run.events() if e["kind"] == "problem"]
