"""Chaos actions: the `[[chaos]]` model, which actions heal which, and the pure firing schedule.

An action fires on one trigger and, when it is a fault with a heal, is healed after `duration`
(or at the end of its phase, or before the final verification at the latest):

============  ===========================================  =========================
action        what                                         healed by
============  ===========================================  =========================
split         split the range holding `key`                (instant)
sql           run `sql` on a node                          (instant)
command       run an argv (no shell unless `shell = true`) (instant)
kill          SIGKILL a node (all its processes)           start
stop          fast shutdown of a node                      start
pause         SIGSTOP a node (it hangs)                    resume
net           faults on the node's TCP proxy               removing them
start         start a stopped or killed node               (instant)
restart       stop (fast) and start a node                 (instant)
resume        SIGCONT a paused node                        (instant)
failover      replicated cluster: kill -9 the primary,     (instant: the old primary
              promote the most advanced standby            rejoins as a standby)
switchover    replicated cluster: stop the primary         (instant)
              cleanly, promote a standby
============  ===========================================  =========================

On a replicated cluster a `net` action's `node` may name a replication link, `link:node2`: the
WAL stream to standby node2 goes through a fault proxy (blackhole it to make the standby fall behind).

Triggers: canary scenarios fire `after_batch` / `during_batch`; sustained-load scenarios fire
`at` an offset, `every` interval (seeded `jitter`, at most `count` times), or once a workload
has run `after_iterations`. `during = "phase"` makes offsets count from that phase's start and
heals at its end (without `at`/`every` the action fires as the phase starts).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from holoload.core.config.units import parse_size
from holoload.core.model.types import Identifier, PositiveSeconds, Seconds, Strict

ActionKind = Literal[
    "split", "sql", "command", "kill", "stop", "pause", "net", "start", "restart", "resume", "failover", "switchover"
]
NODE_ACTIONS = frozenset({"kill", "stop", "pause", "start", "restart", "resume"})
#: Role changes of a replicated cluster: they act on the cluster, not on a named node.
ROLE_ACTIONS = frozenset({"failover", "switchover"})
CANARY_ACTIONS = frozenset({"split", "sql"})
#: A fault and the action that undoes it.
HEALS: dict[str, str] = {"kill": "start", "stop": "start", "pause": "resume", "net": "heal"}
#: Most firings one `every` action may plan (a typo such as every = "1ms" must not plan millions).
MAX_FIRINGS = 10_000

_KEY_EXPR = re.compile(r"last_acked\s*\+\s*(\d+)|last_acked|random_recent|auto")


def _bandwidth(value: object) -> int | None:
    if value is None:
        return None
    text = str(value).strip()
    if text.endswith("/s"):
        text = text[:-2]
    return parse_size(text)


class NetFault(Strict):
    """Faults on a node's TCP proxy while the action is active."""

    latency: Seconds = Field(default=0.0, ge=0, description="added one-way delay per chunk")
    jitter: Seconds = Field(default=0.0, ge=0, description="uniform +- jitter on the latency")
    bandwidth: Annotated[int | None, Field(ge=1)] = Field(
        default=None, description="bytes/s per direction per connection, e.g. 256KiB/s"
    )
    reset: bool = Field(default=False, description="reset every open connection when the fault starts")
    blackhole: bool = Field(default=False, description="accept, never answer")
    refuse: bool = Field(default=False, description="close new connections at once")

    @field_validator("bandwidth", mode="before")
    @classmethod
    def _size(cls, value: object) -> int | None:
        return _bandwidth(value)

    @model_validator(mode="after")
    def _does_something(self) -> NetFault:
        if not (self.latency or self.jitter or self.bandwidth or self.reset or self.blackhole or self.refuse):
            raise ValueError("a net fault needs at least one of latency, jitter, bandwidth, reset, blackhole, refuse")
        return self


class ChaosAction(Strict):
    """One `[[chaos]]` entry: what to do, where, and when."""

    name: Identifier
    action: ActionKind
    enabled: bool = True
    # canary triggers
    after_batch: int | None = Field(default=None, ge=1, description="canary: fire after this 1-based batch")
    during_batch: int | None = Field(
        default=None, ge=1, description="canary: fire while this 1-based batch runs (after its before-count)"
    )
    # sustained-load triggers
    at: Seconds | None = Field(
        default=None, ge=0, description="fire this long after the load (or `during` phase) starts"
    )
    every: PositiveSeconds | None = Field(default=None, description="fire repeatedly at this interval")
    jitter: Seconds = Field(default=0.0, ge=0, description="every: uniform +- jitter per interval (seeded)")
    start: Seconds | None = Field(default=None, ge=0, description="every: first firing (default: one interval in)")
    count: int | None = Field(default=None, ge=1, le=MAX_FIRINGS, description="every: at most this many firings")
    during: Identifier | None = Field(default=None, description="phase whose start the offsets count from")
    after_iterations: int | None = Field(default=None, ge=1, description="fire once `workload` ran this many ops")
    workload: Identifier | None = Field(default=None, description="after_iterations: the workload counted")
    duration: PositiveSeconds | None = Field(default=None, description="faults: heal this long after firing")
    # where
    node: str | int | None = Field(default=None, description="node name or 1-based index (node actions, net, sql)")
    # split
    key: Annotated[int, Field(ge=-(2**63), le=2**63 - 1)] | str = Field(
        default="auto",
        description="split key: an integer, auto (canary: max + half the next batch), last_acked + N, random_recent",
    )
    table_id: int = Field(default=100, ge=0, le=2**64 - 1, description="HoloFusion table id for the split key")
    table: Identifier | None = Field(
        default=None, description="split: the table whose range splits (default: the scenario's [table])"
    )
    # sql / command / net
    sql: str | None = Field(default=None, description="statement for action = 'sql'; {table} filled in")
    command: list[str] | str | None = Field(default=None, description="command: argv, or a string with shell = true")
    shell: bool = Field(default=False, description="command: run the string through /bin/sh")
    env: dict[str, str] = Field(default={}, description="command: extra environment")
    net: NetFault | None = None
    timeout: PositiveSeconds = 60.0
    seed: int | None = Field(default=None, description="jitter and random_recent; default: the run's seed")

    @field_validator("key")
    @classmethod
    def _key(cls, value: int | str) -> int | str:
        if isinstance(value, str) and not _KEY_EXPR.fullmatch(value.strip()):
            raise ValueError("expected an integer, 'auto', 'last_acked + N' or 'random_recent'")
        return value.strip() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> ChaosAction:
        canary = self.after_batch is not None or self.during_batch is not None
        load = any(v is not None for v in (self.at, self.every, self.during, self.after_iterations))
        if canary and load:
            raise ValueError("after_batch/during_batch (canary) do not combine with at/every/during/after_iterations")
        if not canary and not load:
            raise ValueError("give a trigger: after_batch, during_batch (canary); at, every, during, after_iterations")
        if self.after_batch is not None and self.during_batch is not None:
            raise ValueError("give exactly one of after_batch or during_batch")
        if sum(v is not None for v in (self.at, self.every, self.after_iterations)) > 1:
            raise ValueError("give at most one of at, every and after_iterations")
        if (self.after_iterations is None) != (self.workload is None):
            raise ValueError("after_iterations and workload go together")
        if self.every is None and (self.jitter or self.start is not None or self.count is not None):
            raise ValueError("jitter, start and count only apply with every")
        if self.every is not None and self.jitter >= self.every:
            raise ValueError(f"jitter ({self.jitter:g}s) must be less than every ({self.every:g}s)")
        if self.duration is not None and self.action not in HEALS:
            raise ValueError(f"duration applies to faults that heal ({', '.join(sorted(HEALS))}), not {self.action}")
        if self.every is not None and self.duration is not None and self.duration >= self.every - self.jitter:
            raise ValueError("duration must end before the next firing (duration < every - jitter)")
        self._check_action_fields()
        return self

    def _check_action_fields(self) -> None:
        needs_node = self.action in NODE_ACTIONS or self.action == "net"
        if needs_node and self.node is None:
            raise ValueError(f"action '{self.action}' needs node (a name or 1-based index)")
        if self.action in ROLE_ACTIONS and self.node is not None:
            raise ValueError(f"action '{self.action}' acts on the whole replicated cluster: drop node")
        if self.table is not None and self.action != "split":
            raise ValueError(f"table applies to action 'split' only, not {self.action}")
        if self.action == "sql" and not self.sql:
            raise ValueError("action 'sql' needs a sql statement")
        if self.action == "command":
            if not self.command:
                raise ValueError("action 'command' needs command (an argv list)")
            if self.shell != isinstance(self.command, str):
                raise ValueError("command is an argv list; a single string needs shell = true")
        elif self.command is not None or self.shell or self.env:
            raise ValueError("command, shell and env only apply to action 'command'")
        if (self.action == "net") != (self.net is not None):
            raise ValueError("action 'net' needs a [chaos.net] table, and only it takes one")

    @property
    def is_canary(self) -> bool:
        return self.after_batch is not None or self.during_batch is not None

    @property
    def batch_index(self) -> int:
        return self.after_batch if self.after_batch is not None else self.during_batch or 0

    @property
    def heal(self) -> str | None:
        """The action undoing this fault, or None for instant actions."""
        return HEALS.get(self.action)

    @property
    def trigger(self) -> str:
        """How it fires, for events and reports."""
        if self.after_batch is not None:
            return f"after batch {self.after_batch}"
        if self.during_batch is not None:
            return f"during batch {self.during_batch}"
        frame = f" of phase {self.during}" if self.during else ""
        if self.at is not None:
            return f"at {self.at:g}s{frame}"
        if self.every is not None:
            jitter = f" +- {self.jitter:g}s" if self.jitter else ""
            return f"every {self.every:g}s{jitter}{frame}"
        if self.after_iterations is not None:
            return f"after {self.after_iterations} iterations of {self.workload}"
        return f"during phase {self.during}"


@dataclass(frozen=True, slots=True)
class SplitKey:
    """A parsed split key: a literal, or an expression over the acknowledged ids."""

    literal: int | None = None
    after_last_acked: int | None = None  # last_acked + N
    random_recent: bool = False
    auto: bool = False


def split_key(value: int | str) -> SplitKey:
    """Parse a validated `key` value."""
    if isinstance(value, int):
        return SplitKey(literal=value)
    match = _KEY_EXPR.fullmatch(value)
    assert match is not None  # validated by ChaosAction
    if value == "auto":
        return SplitKey(auto=True)
    if value == "random_recent":
        return SplitKey(random_recent=True)
    return SplitKey(after_last_acked=int(match[1] or 0))


@dataclass(frozen=True, slots=True)
class Firing:
    """One planned firing: `offset_s` from its frame's start, healed `heal_after_s` later (None: not)."""

    offset_s: float
    index: int
    heal_after_s: float | None


def firings(action: ChaosAction, horizon_s: float | None, rng: random.Random) -> Iterator[Firing]:
    """The firings of a time-triggered action within its frame (pure, seeded).

    Args:
        action: an action triggered by `at`, `every` or only `during`.
        horizon_s: how long the frame lasts (the phase, or all phases); None: unknown.
        rng: jitter source (seeded per action for reproducible runs).

    Yields:
        Firings in time order; at most `count`, at most MAX_FIRINGS, none at or past the horizon.
    """
    if action.every is None:
        offset = action.at if action.at is not None else 0.0
        if horizon_s is None or offset < horizon_s:
            yield Firing(offset, 1, action.duration)
        return
    offset = action.start if action.start is not None else action.every
    limit = min(action.count or MAX_FIRINGS, MAX_FIRINGS)
    for index in range(1, limit + 1):
        if horizon_s is not None and offset >= horizon_s:
            return
        yield Firing(offset, index, action.duration)
        step = action.every + (rng.uniform(-action.jitter, action.jitter) if action.jitter else 0.0)
        offset += step


def resolve_node(node: str | int, names: list[str]) -> int | None:
    """Index of `node` (a name or 1-based number) among `names`, or None."""
    if isinstance(node, int):
        return node - 1 if 1 <= node <= len(names) else None
    if node in names:
        return names.index(node)
    if node.isdigit():
        return resolve_node(int(node), names)
    return None
