"""Seeded transaction generators of the list-append and bank workloads (pure: no I/O, no clock)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from holoload.core.isolation.history import MicroOp, append, read

__all__ = [
    "BankGenerator",
    "BankSpec",
    "ListAppendGenerator",
    "ListAppendSpec",
    "ReadAll",
    "Transfer",
]


@dataclass(frozen=True, slots=True)
class ListAppendSpec:
    """Shape of list-append transactions.

    Args:
        keys: keys in use at a time; small, so transactions collide (Elle uses a handful).
        min_ops, max_ops: micro-ops per transaction (uniform).
        read_share: chance that a micro-op is a read (else an append).
        writes_per_key: appends a key receives before it is retired for a fresh one (None: never), which
            keeps lists, and so reads and the checker's work, short.
    """

    keys: int = 6
    min_ops: int = 1
    max_ops: int = 4
    read_share: float = 0.5
    writes_per_key: int | None = 64

    def __post_init__(self) -> None:
        if self.keys < 1:
            raise ValueError(f"keys must be >= 1, got {self.keys}")
        if not 1 <= self.min_ops <= self.max_ops:
            raise ValueError(f"expected 1 <= min_ops <= max_ops, got {self.min_ops}, {self.max_ops}")
        if not 0.0 <= self.read_share <= 1.0:
            raise ValueError(f"read_share must be in [0, 1], got {self.read_share}")
        if self.writes_per_key is not None and self.writes_per_key < 1:
            raise ValueError(f"writes_per_key must be >= 1 or None, got {self.writes_per_key}")


class ListAppendGenerator:
    """Transactions of a few appends and reads over a small rotating key space.

    Appended values are unique per generator: ``value_start``, then every ``value_step``-th integer, so
    the generators of a fleet's workers (start = worker index, step = worker count) never collide.
    Reads carry None until the transaction has run. Keys are numbered from ``key_start`` upwards, each
    generator's active keys shared by every process it serves; a retired key is never used again.

    Args:
        spec: the shape of the transactions.
        rng: the seeded source of every choice.
        value_start, value_step: the unique values handed out.
        key_start: the first key.
    """

    def __init__(
        self,
        spec: ListAppendSpec,
        rng: random.Random,
        *,
        value_start: int = 1,
        value_step: int = 1,
        key_start: int = 0,
    ) -> None:
        if value_step < 1:
            raise ValueError(f"value_step must be >= 1, got {value_step}")
        self.spec = spec
        self._rng = rng
        self._next_value = value_start
        self._value_step = value_step
        self._active = list(range(key_start, key_start + spec.keys))
        self._next_key = key_start + spec.keys
        self._writes: dict[int, int] = {}

    @property
    def active_keys(self) -> tuple[int, ...]:
        """The keys transactions are drawn from now."""
        return tuple(self._active)

    def next_txn(self) -> tuple[MicroOp, ...]:
        """The next transaction's micro-ops (reads unresolved)."""
        spec, rng = self.spec, self._rng
        ops: list[MicroOp] = []
        for _ in range(rng.randint(spec.min_ops, spec.max_ops)):
            slot = rng.randrange(len(self._active))
            key = self._active[slot]
            if rng.random() < spec.read_share:
                ops.append(read(key))
                continue
            ops.append(append(key, self._next_value))
            self._next_value += self._value_step
            if spec.writes_per_key is not None:
                count = self._writes.get(key, 0) + 1
                if count >= spec.writes_per_key:
                    self._writes.pop(key, None)
                    self._active[slot] = self._next_key  # retire the key: later ops use a fresh one
                    self._next_key += 1
                else:
                    self._writes[key] = count
        return tuple(ops)


@dataclass(frozen=True, slots=True)
class Transfer:
    """Move ``amount`` from account ``src`` to account ``dst`` (distinct); ``id`` is unique, the log row's key."""

    id: int
    src: int
    dst: int
    amount: int


@dataclass(frozen=True, slots=True)
class ReadAll:
    """Read every account's balance in one transaction; ``id`` numbers the reads."""

    id: int


@dataclass(frozen=True, slots=True)
class BankSpec:
    """Shape of the bank workload.

    Args:
        accounts: how many accounts (ids 0 .. accounts-1); at least 2.
        initial_balance: each account's balance at the start (the total is accounts x this).
        max_amount: transfers move 1 .. max_amount.
        read_every: every n-th operation of a generator is a read-all (0: never).
    """

    accounts: int = 8
    initial_balance: int = 100
    max_amount: int = 5
    read_every: int = 5

    def __post_init__(self) -> None:
        if self.accounts < 2:
            raise ValueError(f"a bank needs at least 2 accounts, got {self.accounts}")
        if self.initial_balance < 0 or self.max_amount < 1 or self.read_every < 0:
            raise ValueError("expected initial_balance >= 0, max_amount >= 1, read_every >= 0")

    @property
    def total(self) -> int:
        """The sum every read-all must see."""
        return self.accounts * self.initial_balance

    def initial(self) -> dict[int, int]:
        """Each account's starting balance."""
        return dict.fromkeys(range(self.accounts), self.initial_balance)


class BankGenerator:
    """Transfers of a random amount between two random distinct accounts, and a periodic read-all.

    Transfer and read ids are unique per generator: ``id_start``, then every ``id_step``-th integer
    (give a fleet's workers distinct starts and the worker count as step).

    Args:
        spec: the bank's shape.
        rng: the seeded source of every choice.
        id_start, id_step: the ids handed out.
    """

    def __init__(self, spec: BankSpec, rng: random.Random, *, id_start: int = 1, id_step: int = 1) -> None:
        if id_step < 1:
            raise ValueError(f"id_step must be >= 1, got {id_step}")
        self.spec = spec
        self._rng = rng
        self._next_id = id_start
        self._step = id_step
        self._count = 0

    def next_op(self) -> Transfer | ReadAll:
        """The next operation: a read-all every ``read_every``-th time, else a transfer."""
        spec, rng = self.spec, self._rng
        self._count += 1
        op_id = self._next_id
        self._next_id += self._step
        if spec.read_every and self._count % spec.read_every == 0:
            return ReadAll(op_id)
        src = rng.randrange(spec.accounts)
        dst = rng.randrange(spec.accounts - 1)
        dst += dst >= src  # uniform over the other accounts
        return Transfer(op_id, src, dst, rng.randint(1, spec.max_amount))
