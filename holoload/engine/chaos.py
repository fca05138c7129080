"""Fires chaos actions on schedule during sustained load, heals every fault, and keeps the record.

Each time-triggered action runs in its own task inside a *frame*: the whole load, or one
phase (`during`). Ending a frame cancels its schedule, never a step under way: every step is
shielded and bounded by its action's timeout. A fault is marked active before it fires, so
`heal_frame` / `heal_all` undo whatever the end of a frame left active. Every step is a ChaosStarted /
ChaosFinished pair on the run's timeline. After `stop` (a graceful stop: no new work) no action
fires; the schedules end and heals still run.

A split or SQL step runs within its action's timeout on a connection of its own; cut short, its
statement is cancelled, its transaction rolled back and its connection discarded before the step
ends (`TargetSurfaces.session`), so the next step starts clean and no lock outlives a step.
"""

from __future__ import annotations

import random
import time
import zlib
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from holoload.adapters.faults.netproxy import FaultProxy, NetFaults
from holoload.adapters.holofusion.surfaces import DB_ERRORS, TargetSurfaces
from holoload.adapters.local.node_control import NodeAction, NodeControl
from holoload.adapters.local.replication_control import LINK_PREFIX, ReplicationControl
from holoload.adapters.pg.connect import DISCARD_TIMEOUT_S, describe_error, quote_ident
from holoload.adapters.workers.process import run_command
from holoload.core.errors import HololoadError, InputError
from holoload.core.events import ChaosFinished, ChaosStarted, EventSink
from holoload.core.gates.language import NoData
from holoload.core.model.chaos import (
    NODE_ACTIONS,
    ROLE_ACTIONS,
    ChaosAction,
    NetFault,
    firings,
    resolve_node,
    split_key,
)
from holoload.core.model.scenario import fill_template
from holoload.core.stats.outage import Episode, OutageBook
from holoload.core.stats.window import NS_PER_S
from holoload.engine.ledgers import LedgerBook, Pulse, Recovery

#: How many recent acknowledged ids `random_recent` picks a split key from.
RECENT_SPAN = 10_000
_OUTPUT_LIMIT = 4000
_RECOVERING = NODE_ACTIONS | {"net"}  # actions after which a node's writes must come back


Counter = Callable[[str], int]  # workload name -> operations run so far


@dataclass
class FaultRecord:
    """What one action did so far."""

    action: ChaosAction
    node: int | None
    fired: int = 0
    ok: int = 0
    failed: int = 0
    healed: int = 0
    heal_failed: int = 0
    skipped: int = 0
    active: bool = False
    busy: int = 0
    recoveries: list[Recovery] = field(default_factory=list)
    episode: Episode | None = None
    last_split_at: int | None = None  # the key of its last split that succeeded everywhere

    def to_dict(self, now_ns: int) -> dict[str, Any]:
        return {
            "name": self.action.name,
            "action": self.action.action,
            "trigger": self.action.trigger,
            "fired": self.fired,
            "ok": self.ok,
            "failed": self.failed,
            "healed": self.healed,
            "heal_failed": self.heal_failed,
            "skipped": self.skipped,
            # null: no success after that heal (never the time so far, which reads like a recovery)
            "recovery_s": [None if r.done_ns is None else round(r.seconds(now_ns), 3) for r in self.recoveries],
        }


class FaultRunner:
    """Runs a scenario's `[[chaos]]` actions against one target.

    Args:
        actions: the enabled actions (sustained-load triggers).
        surfaces: the opened target (split, SQL, node names).
        sink: where chaos events go.
        book: ledgers, for split keys such as `last_acked + 1`.
        pulses: per endpoint, for recovery times after heals.
        node_control: kills, stops, pauses nodes (None: node actions are refused up front).
        proxies: TCP fault proxies by endpoint index (for `net`).
        table: the scenario's table (split, `{table}` in SQL).
        seed: the run's seed for jitter and random keys.
    """

    def __init__(
        self,
        actions: Sequence[ChaosAction],
        *,
        surfaces: TargetSurfaces,
        sink: EventSink,
        book: LedgerBook,
        pulses: Sequence[Pulse],
        node_control: NodeControl | None,
        proxies: Mapping[int, FaultProxy],
        table: str,
        seed: int,
        clock: Callable[[], float] = time.time,
        perf_ns: Callable[[], int] = time.perf_counter_ns,
        outages: OutageBook | None = None,
    ) -> None:
        self.outages = outages
        self.surfaces = surfaces
        self.sink = sink
        self.book = book
        self.pulses = pulses
        self.node_control = node_control
        self.proxies = proxies
        self.table = table
        self.seed = seed
        self.clock = clock
        self.perf_ns = perf_ns
        names = list(surfaces.names)
        self.records = [FaultRecord(a, None if a.node is None else resolve_node(a.node, names)) for a in actions]
        self._touched: set[str] = set()
        self._load_ended_ns: int | None = None  # from then on no writer runs: waiting recoveries stop counting
        self._stopped = False
        self._schedules: set[anyio.CancelScope] = set()

    # ------------------------------------------------------------------ validation

    def problems(self) -> list[tuple[str, str]]:
        """What cannot work on this target: (key path, problem); checked before any load starts."""
        out: list[tuple[str, str]] = []
        names = ", ".join(self.surfaces.names)
        for i, rec in enumerate(self.records):
            a, where = rec.action, f"chaos[{i}]"
            if a.node is not None and rec.node is None and not _link(a):
                out.append((f"{where}.node", f"no node {a.node!r} in the target (nodes: {names})"))
            if a.action in NODE_ACTIONS and self.node_control is None:
                out.append(
                    (
                        f"{where}.action",
                        f"'{a.action}' needs the embedded local cluster or [control] commands in the target",
                    )
                )
            if a.action in ROLE_ACTIONS and not isinstance(self.node_control, ReplicationControl):
                out.append(
                    (f"{where}.action", f"'{a.action}' needs a replicated embedded cluster ([cluster] replication)")
                )
            if _link(a) and not (isinstance(self.node_control, ReplicationControl) and a.action == "net"):
                out.append((f"{where}.node", "link:nodeN takes net faults only, on a replicated cluster"))
            if a.action == "split" and self.surfaces.target.split.method == "none":
                out.append((f"{where}.action", f"target '{self.surfaces.target.name}' has no split method"))
            if a.action == "split" and split_key(a.key).auto:
                out.append((f"{where}.key", "'auto' is for canaries; use an integer, last_acked + N or random_recent"))
        return out

    def net_nodes(self) -> set[int]:
        """Endpoints that need a fault proxy in front of them."""
        return {r.node for r in self.records if r.action.action == "net" and r.node is not None}

    # ------------------------------------------------------------------ scheduling

    @property
    def stopped(self) -> bool:
        return self._stopped

    def stop(self) -> None:
        """A graceful stop: no action fires from now on, and the schedules end at once.

        A step under way finishes (it is shielded and bounded by its timeout); faults left
        active are healed by `heal_frame` / `heal_all` as usual.
        """
        self._stopped = True
        for scope in list(self._schedules):
            scope.cancel()

    async def run_frame(self, phase: str | None, horizon_s: float | None) -> None:
        """Fire the time-triggered actions of one frame (None: the whole load) until cancelled or stopped."""
        recs = [r for r in self.records if r.action.during == phase and r.action.after_iterations is None]
        await self._schedule(recs, lambda rec: self._drive(rec, horizon_s))

    async def watch_iterations(self, completed: Counter) -> None:
        """Fire `after_iterations` actions once their workload has run that many ops (until stopped)."""
        recs = [r for r in self.records if r.action.after_iterations is not None]
        await self._schedule(recs, lambda rec: self._after_iterations(rec, completed))

    async def _schedule(
        self,
        recs: list[FaultRecord],
        drive: Callable[[FaultRecord], Coroutine[Any, Any, None]],
    ) -> None:
        """One task per action in a scope that `stop` cancels (its steps are shielded: never cut half way)."""
        if self._stopped or not recs:
            return
        with anyio.CancelScope() as scope:
            self._schedules.add(scope)
            try:
                async with anyio.create_task_group() as tg:
                    for rec in recs:
                        tg.start_soon(drive, rec)
            finally:
                self._schedules.discard(scope)

    async def _after_iterations(self, rec: FaultRecord, completed: Counter) -> None:
        a = rec.action
        assert a.workload is not None and a.after_iterations is not None
        while completed(a.workload) < a.after_iterations:
            await anyio.sleep(0.02)
        await self._episode(rec, 1, a.duration)

    async def _drive(self, rec: FaultRecord, horizon_s: float | None) -> None:
        rng = random.Random(zlib.crc32(f"{self.seed}|{rec.action.name}".encode()))
        start = self.perf_ns()
        plan = list(firings(rec.action, horizon_s, rng))
        for n, firing in enumerate(plan):
            delay = start + int(firing.offset_s * NS_PER_S) - self.perf_ns()
            if delay > 0:
                await anyio.sleep(delay / NS_PER_S)
            elif n + 1 < len(plan) and start + int(plan[n + 1].offset_s * NS_PER_S) <= self.perf_ns():
                rec.skipped += 1  # an overrunning episode: missed slots fold into one firing, never a burst
                continue
            await self._episode(rec, firing.index, firing.heal_after_s)

    async def _episode(self, rec: FaultRecord, index: int, heal_after_s: float | None) -> None:
        if self._stopped:
            return  # a stop said "no new work": not fired, and not a skip either
        if self._nothing_to_split(rec):
            rec.skipped += 1  # no id acknowledged since its last split: the range is split there already
            return
        trigger = rec.action.trigger + (f" (#{index})" if rec.action.every else "")
        await self._step(rec, "fire", trigger)
        if heal_after_s is not None and rec.active:
            await anyio.sleep(heal_after_s)
            await self.heal(rec, f"{heal_after_s:g}s after firing")

    # ------------------------------------------------------------------ healing

    async def heal(self, rec: FaultRecord, why: str) -> None:
        """Undo an active fault (shielded: a heal is never abandoned half way)."""
        if not rec.active or rec.action.heal is None:
            return
        with anyio.CancelScope(shield=True):
            await self._step(rec, "heal", why)

    async def heal_frame(self, phase: str) -> None:
        """Heal the faults of a `during` phase that ended."""
        for rec in self.records:
            if rec.action.during == phase:
                await self.heal(rec, f"phase {phase} ended")

    async def heal_all(self) -> None:
        """Heal every fault still active, then ask node control to bring back anything left down."""
        if self._load_ended_ns is None:
            self._load_ended_ns = self.perf_ns()
        with anyio.CancelScope(shield=True):
            for rec in self.records:
                await self.heal(rec, "run ending: heal before verification")
            for proxy in self.proxies.values():
                proxy.heal()
            heals_nodes = NODE_ACTIONS | ROLE_ACTIONS | {"net"}
            if self.node_control is not None and any(r.action.action in heals_nodes for r in self.records):
                with anyio.move_on_after(120):
                    await self.node_control.heal_all(timeout_s=60)

    # ------------------------------------------------------------------ steps

    async def _step(self, rec: FaultRecord, step: str, trigger: str) -> None:
        a = rec.action
        node = self.surfaces.names[rec.node] if rec.node is not None else (str(a.node) if _link(a) else "")
        verb = a.action if step == "fire" else (a.heal or "")
        self.sink.emit(ChaosStarted(self.clock(), a.name, a.action, trigger, step, node))
        self._touch(a)
        rec.busy += 1
        if step == "fire":
            rec.fired += 1
            rec.active = a.heal is not None
        started = self.perf_ns()
        if step == "fire" and self.outages is not None:
            self._end_episode(rec, started)  # an earlier firing left active (a failed heal)
            rec.episode = self.outages.started(a.name, a.action, started)
        if step == "heal" or a.action in ("start", "restart", "resume"):
            self._arm_recovery(rec, node, started)
        try:
            # Shielded: the end of a frame stops the schedule, never a step half way. Each step
            # bounds itself by the action's timeout and cleans up after itself when it runs out
            # (splits and SQL: up to DISCARD_TIMEOUT_S more); this outer bound is a backstop.
            with anyio.CancelScope(shield=True), anyio.fail_after(a.timeout + DISCARD_TIMEOUT_S + 5):
                ok, detail, output = await self._do(rec, verb)
        except TimeoutError:
            ok, detail, output = False, f"{verb} timed out after {a.timeout:g}s", ""
        except DB_ERRORS as exc:
            ok, detail, output = False, str(describe_error(exc)), ""
        except (HololoadError, ValueError, OSError) as exc:
            ok, detail, output = False, str(exc), ""
        finally:
            rec.busy -= 1
            self._touch(a)
        if step == "fire":
            rec.ok += ok
            rec.failed += not ok
        else:
            rec.healed += ok
            rec.heal_failed += not ok
            rec.active = not ok and a.action != "net"
        if a.action in ROLE_ACTIONS:  # from the end of the role change to the first success through a writer
            self._arm_writable(rec, self.perf_ns())
        if step == "heal" or not rec.active:  # the episode ends with its heal, or with an instant action
            self._end_episode(rec, self.perf_ns())
        elapsed = (self.perf_ns() - started) / NS_PER_S
        self.sink.emit(
            ChaosFinished(self.clock(), a.name, a.action, ok, elapsed, detail, output[-_OUTPUT_LIMIT:], step, node)
        )

    def _arm_recovery(self, rec: FaultRecord, node: str, now_ns: int) -> None:
        if rec.node is not None and rec.action.action in _RECOVERING and rec.node < len(self.pulses):
            rec.recoveries.append(self.pulses[rec.node].arm(node, now_ns))

    def _end_episode(self, rec: FaultRecord, now_ns: int) -> None:
        if rec.episode is not None and self.outages is not None:
            self.outages.ended(rec.episode, now_ns)
        rec.episode = None

    def _arm_writable(self, rec: FaultRecord, now_ns: int) -> None:
        writable = self.surfaces.target.writable()
        for i, pulse in enumerate(self.pulses):
            if i < len(writable) and writable[i]:
                rec.recoveries.append(pulse.arm(self.surfaces.names[i], now_ns))

    async def _do(self, rec: FaultRecord, verb: str) -> tuple[bool, str, str]:
        a = rec.action
        if verb in ROLE_ACTIONS:
            assert isinstance(self.node_control, ReplicationControl)
            ok, detail = await self.node_control.change_primary(verb, timeout_s=a.timeout)
            return ok, detail, ""
        if a.action == "net" and _link(a):
            return await self._link_net(rec, verb == "net")
        if verb == "split":
            return await self._split(rec)
        if verb == "sql":
            assert a.sql is not None
            node = rec.node or 0
            sql = fill_template(a.sql, table=quote_ident(self.table))
            status = await self.surfaces.run_sql(node, sql, timeout_s=a.timeout)
            return True, f"{self.surfaces.names[node]}: {status}", status
        if verb == "command":
            assert a.command is not None
            argv = ["/bin/sh", "-c", a.command] if isinstance(a.command, str) else list(a.command)
            result = await run_command(argv, timeout_s=a.timeout, env=a.env or None)
            detail = f"{argv[0]} exited {result.returncode} after {result.elapsed_s:.2f}s"
            return result.ok, detail, result.stdout + result.stderr
        if verb in ("net", "heal") and a.action == "net":
            return self._net(rec, verb == "net")
        assert self.node_control is not None and rec.node is not None
        name = self.surfaces.names[rec.node]
        done = await self.node_control.act(NodeAction(verb), name, timeout_s=a.timeout)
        return done.ok, done.detail, ""

    def _nothing_to_split(self, rec: FaultRecord) -> bool:
        """A `last_acked + N` split whose key has not moved since its last successful split."""
        a = rec.action
        if a.action != "split" or rec.last_split_at is None:
            return False
        after = split_key(a.key).after_last_acked
        last = self.book.last_acked(a.table or self.table)
        return after is not None and last is not None and last + after == rec.last_split_at

    async def _split(self, rec: FaultRecord) -> tuple[bool, str, str]:
        a = rec.action
        table = a.table or self.table
        key = split_key(a.key)
        value: int
        if key.literal is not None:
            value = key.literal
        elif key.after_last_acked is not None:
            last = self.book.last_acked(table)
            if last is None:
                return False, f"no acknowledged ids in {table} yet: no key for last_acked", ""
            value = last + key.after_last_acked
        else:
            span = self.book.recent_acked(table, RECENT_SPAN)
            if span is None:
                return False, f"no acknowledged ids in {table} yet: no key for random_recent", ""
            value = random.Random(zlib.crc32(f"{self.seed}|{a.name}|{span}".encode())).randrange(*span)
        outcome = await self.surfaces.split(table, value, a.table_id, 0, timeout_s=a.timeout)
        if outcome.ok:
            rec.last_split_at = value
        return outcome.ok, outcome.detail, outcome.output

    async def _link_net(self, rec: FaultRecord, on: bool) -> tuple[bool, str, str]:
        assert isinstance(self.node_control, ReplicationControl) and rec.action.net is not None
        spec = rec.action.net
        faults = _net_faults(spec) if on else NetFaults()
        ok, detail = await self.node_control.link_faults(str(rec.action.node), faults, reset=on and spec.reset)
        return ok, detail, ""

    def _net(self, rec: FaultRecord, on: bool) -> tuple[bool, str, str]:
        assert rec.node is not None and rec.action.net is not None
        proxy = self.proxies.get(rec.node)
        if proxy is None:
            return False, "no proxy in front of this node", ""
        if not on:
            proxy.heal()
            return True, "network faults removed", ""
        spec = rec.action.net
        proxy.set_faults(_net_faults(spec))
        parts = [f"{k}={v}" for k, v in spec.model_dump(exclude_defaults=True).items()]
        if spec.reset:
            parts.append(f"{proxy.reset_connections()} connections reset")
        return True, "proxy: " + ", ".join(parts), ""

    # ------------------------------------------------------------------ what gates and windows read

    def _touch(self, a: ChaosAction) -> None:
        self._touched.update((a.name, a.action))

    def window_tags(self) -> set[str]:
        """Names and kinds of actions active at any time since the previous call."""
        tags = set(self._touched)
        self._touched.clear()
        for rec in self.records:
            if rec.active or rec.busy:
                tags.update((rec.action.name, rec.action.action))
        return tags

    def _matching(self, name: str) -> list[FaultRecord]:
        return [r for r in self.records if name in (r.action.name, r.action.action)]

    def chaos_count(self, name: str, field: str) -> float | None:
        """`chaos(name).field` for gates: summed over the action named `name`, or all of that kind."""
        recs = self._matching(name)
        if not recs:
            return None
        return float(sum(getattr(r, field) for r in recs))

    def recovery_s(self, name: str) -> float | NoData | None:
        """`recovery(name)`: the longest recovery after its heals, or NoData saying what was never seen.

        A heal still waiting for its first success is no data, never "the time so far"; while
        writers still run, the time waited is a lower bound (`NoData.at_least`).
        """
        recs = self._matching(name)
        if not recs:
            return None
        if not any(r.fired for r in recs):
            return NoData(f"chaos fault '{name}' never fired")
        recoveries = [rv for r in recs for rv in r.recoveries]
        if not recoveries:
            if not any(r.action.action in _RECOVERING for r in recs):
                return NoData(f"chaos fault '{name}' has no heal to recover from")
            return NoData(f"chaos fault '{name}' never healed")
        now = self.perf_ns()
        waiting = [rv for rv in recoveries if rv.done_ns is None]
        if not waiting:
            return max(rv.seconds(now) for rv in recoveries)
        until = now if self._load_ended_ns is None else min(now, self._load_ended_ns)
        rv = min(waiting, key=lambda w: w.started_ns)
        waited = max(0.0, (until - rv.started_ns) / NS_PER_S)
        healed_by = "a heal" if rv.started_ns <= until else "the heal at the end of the load"
        why = f"no successful operation on {rv.node} after {healed_by} of '{name}' (waited {waited:.1f}s)"
        return NoData(why, at_least=waited if waited > 0 else None)

    def outage_s(self, name: str, which: str) -> float | None:
        """`outage(name).min|p50|max`: over the episodes of the fault (or kind) `name`."""
        return None if self.outages is None else self.outages.stat_s(name, which, self.perf_ns())

    def summary(self) -> list[dict[str, Any]]:
        now = self.perf_ns()
        out = [r.to_dict(now) for r in self.records]
        if self.outages is not None:
            for rec, row in zip(self.records, out, strict=True):
                row["outages"] = self.outages.summary(now, rec.action.name)
        return out


def _link(a: ChaosAction) -> bool:
    """Whether the action's node names a replication link (`link:node2`)."""
    return isinstance(a.node, str) and a.node.startswith(LINK_PREFIX)


def _net_faults(spec: NetFault) -> NetFaults:
    return NetFaults(
        latency_s=spec.latency,
        jitter_s=spec.jitter,
        bandwidth_bps=None if spec.bandwidth is None else float(spec.bandwidth),
        blackhole=spec.blackhole,
        refuse=spec.refuse,
    )


def check_problems(runner: FaultRunner, file: str) -> None:
    """Raise InputError (exit 2, before any load) when the chaos cannot run on this target."""
    problems = runner.problems()
    if problems:
        lines = "\n".join(f"  {where}: {what}" for where, what in problems)
        raise InputError(f"{file}: chaos cannot run on this target:\n{lines}")
