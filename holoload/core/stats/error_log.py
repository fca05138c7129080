"""ErrorLog: the first few distinct error messages per (workload, op, endpoint), counted, with first and last time.

Error classes (by SQLSTATE) decide retries and gates; the messages are kept only so people can
read what went wrong (`relation "acounts" does not exist`), never for decisions. Memory is
bounded: at most `limit` distinct (SQLSTATE, message) pairs per key, each message cut to
MAX_MESSAGE characters; errors with any other message are counted per key as `more`.

A worker process notes into its own log and ships `drain()` each window (counts since the last
drain); the coordinator `absorb`s them with the worker's clock offset, as if it had noted them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from holoload.core.events import ErrorMessages, ErrorSeen

#: Distinct messages kept per (workload, op, endpoint).
MAX_DISTINCT = 5
#: Longest message kept, in characters.
MAX_MESSAGE = 500

Key = tuple[str, str, str]  # workload, op, endpoint


@dataclass(slots=True)
class ErrorSample:
    """One distinct error message of one key: how often it came, first and last (monotonic ns).

    `sqlstate` None: no server answer (a connection that broke, a client-side timeout).
    """

    workload: str
    op: str
    endpoint: str
    sqlstate: str | None
    error_class: str
    message: str
    count: int
    first_ns: int
    last_ns: int

    @property
    def key(self) -> Key:
        return (self.workload, self.op, self.endpoint)

    def to_dict(self, origin_ns: int) -> dict[str, object]:
        """JSON-ready, with times as seconds since `origin_ns` (the run's start)."""
        return {
            "workload": self.workload,
            "op": self.op,
            "endpoint": self.endpoint,
            "sqlstate": self.sqlstate,
            "class": self.error_class,
            "message": self.message,
            "count": self.count,
            "first_s": round((self.first_ns - origin_ns) / 1e9, 3),
            "last_s": round((self.last_ns - origin_ns) / 1e9, 3),
        }


@dataclass(slots=True)
class MoreErrors:
    """Errors of a key whose message was not among its first distinct ones (only counted)."""

    workload: str
    op: str
    endpoint: str
    count: int


class ErrorLog:
    """Bounded per-key error messages; see the module docstring.

    Args:
        limit: distinct messages kept per key.
    """

    def __init__(self, limit: int = MAX_DISTINCT) -> None:
        self.limit = limit
        self._by_key: dict[Key, dict[tuple[str | None, str], ErrorSample]] = {}
        self._more: dict[Key, int] = {}
        self._new: list[ErrorSample] = []

    def note(
        self,
        key: Key,
        sqlstate: str | None,
        error_class: str,
        message: str,
        at_ns: int,
        *,
        count: int = 1,
        last_ns: int | None = None,
    ) -> None:
        """Count one error (or `count` of them, first at `at_ns`, last at `last_ns`) of a key."""
        text = message[:MAX_MESSAGE]
        samples = self._by_key.setdefault(key, {})
        sample = samples.get((sqlstate, text))
        last = at_ns if last_ns is None else last_ns
        if sample is not None:
            sample.count += count
            sample.first_ns = min(sample.first_ns, at_ns)
            sample.last_ns = max(sample.last_ns, last)
            return
        if len(samples) >= self.limit:
            self._more[key] = self._more.get(key, 0) + count
            return
        sample = ErrorSample(*key, sqlstate, error_class, text, count, at_ns, last)
        samples[(sqlstate, text)] = sample
        self._new.append(sample)

    def absorb(self, samples: Iterable[ErrorSample], more: Iterable[MoreErrors], offset_ns: int) -> None:
        """Merge what another process's log drained, its times shifted by `offset_ns`."""
        for s in samples:
            self.note(
                s.key,
                s.sqlstate,
                s.error_class,
                s.message,
                s.first_ns + offset_ns,
                count=s.count,
                last_ns=s.last_ns + offset_ns,
            )
        for m in more:
            key = (m.workload, m.op, m.endpoint)
            self._more[key] = self._more.get(key, 0) + m.count

    def drain(self) -> tuple[list[ErrorSample], list[MoreErrors]]:
        """Everything noted since the last drain, then forget it (a worker's per-window hand-over)."""
        samples = [s for per_key in self._by_key.values() for s in per_key.values()]
        more = [MoreErrors(*key, n) for key, n in self._more.items()]
        self._by_key.clear()
        self._more.clear()
        self._new.clear()
        return samples, more

    def take_new(self) -> list[ErrorSample]:
        """Messages seen for the first time since the last call (for a live event per message)."""
        new, self._new = self._new, []
        return new

    def samples(self) -> list[ErrorSample]:
        """Every kept message, by key then first time."""
        out = [s for per_key in self._by_key.values() for s in per_key.values()]
        return sorted(out, key=lambda s: (s.key, s.first_ns))

    def more(self) -> dict[Key, int]:
        """Per key, errors whose message was not kept."""
        return dict(self._more)

    def __bool__(self) -> bool:
        return bool(self._by_key)


def error_report(log: ErrorLog, origin_ns: int) -> dict[str, Any]:
    """summary.json's `error_messages`: kept messages (times in seconds since `origin_ns`) and uncounted rest."""
    more = [{"workload": w, "op": o, "endpoint": e, "count": n} for (w, o, e), n in sorted(log.more().items())]
    return {"messages": [s.to_dict(origin_ns) for s in log.samples()], "more": more}


def seen_events(log: ErrorLog, origin_ns: int, ts: float) -> list[ErrorSeen]:
    """One ErrorSeen per message met for the first time since the previous call."""
    return [
        ErrorSeen(
            ts, s.workload, s.op, s.endpoint, s.sqlstate, s.error_class, s.message, (s.first_ns - origin_ns) / 1e9
        )
        for s in log.take_new()
    ]


def messages_event(log: ErrorLog, origin_ns: int, ts: float) -> ErrorMessages:
    """The whole table as one event, for events.jsonl when the load ends."""
    report = error_report(log, origin_ns)
    return ErrorMessages(ts, tuple(report["messages"]), tuple(report["more"]))
