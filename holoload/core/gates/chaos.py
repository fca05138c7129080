"""Gates of chaos runs: `chaos(split).ok >= 3`, `recovery(node_restart) <= 30s`, read through a ChaosView.

`chaos(NAME).ok|.failed|.fired|.healed` counts the actions of the fault named NAME, or of every
fault whose action kind is NAME (`chaos(split)`). `recovery(NAME)` is the longest time from a heal
of NAME (such as the restart after a kill) to the first successful operation on the affected
endpoint. Both names are fault names or action kinds, never ops: `Gate.references()` lists them
in `GateRefs.faults` for the scenario validator to check.

Neither passes on missing evidence: `chaos(NAME).ok|failed|healed` of a fault that never fired,
and `recovery(NAME)` of a fault that never fired, never healed, or saw no success after a heal,
are no data with that reason (see `verdicts`); a recovery still waiting is known to be at least
the time waited, so `recovery(x) <= 30s` fails once that passed 30 s.

The acknowledged-write ledger reaches gates as plain scalars the engine provides: `lost`,
`duplicated`, `partial`, `unexpected`, `recovered`, `in_doubt_absent` and `acknowledged`
(as in `lost == 0`); nothing here is needed for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from holoload.core.gates.model import FIELD, GateFunction, Kind, Measurement, NoData

#: The fields of `chaos(NAME)`: actions that succeeded, failed, fired at all, and were healed.
CHAOS_FIELDS = frozenset({"ok", "failed", "fired", "healed"})


@runtime_checkable
class ChaosView(Protocol):
    """What chaos gates read of a run's chaos results (the engine implements it)."""

    def chaos_count(self, name: str, field: str) -> float | None:
        """How many actions of the fault `name`, or of all faults of action kind `name`, are `field`.

        Args:
            name: a fault name or an action kind such as "split".
            field: one of CHAOS_FIELDS.

        Returns:
            The count, or None when no fault has that name or kind.
        """
        ...

    def recovery_s(self, name: str) -> float | NoData | None:
        """Seconds from a heal of `name` to the first success on the affected endpoint.

        Args:
            name: a fault name or an action kind.

        Returns:
            The longest over the heals when every heal saw a success; NoData saying why when
            the fault never fired, never healed, or a heal saw no success yet (`at_least`: the
            time waited so far); None when no fault has that name or kind.
        """
        ...


def chaos_view(ctx: object) -> ChaosView | None:
    """The context's chaos view, or None when it has none."""
    chaos = getattr(ctx, "chaos", None)
    return chaos if isinstance(chaos, ChaosView) else None


def _chaos_count(ctx: object, name: str, keywords: Mapping[str, str]) -> Measurement:
    view = chaos_view(ctx)
    if view is None:
        return None
    field = keywords[FIELD]
    if field != "fired" and view.chaos_count(name, "fired") == 0:  # ok/failed/healed of nothing prove nothing
        return NoData(f"chaos fault '{name}' never fired")
    return view.chaos_count(name, field)


def _recovery(ctx: object, name: str, keywords: Mapping[str, str]) -> Measurement:
    view = chaos_view(ctx)
    return None if view is None else view.recovery_s(name)


CHAOS = GateFunction(
    "chaos",
    Kind.NUMBER,
    _chaos_count,
    missing_reason="no chaos fault or action kind '{op}' in this run",
    fields=CHAOS_FIELDS,
    names_fault=True,
    hint="chaos(fault).ok|failed|fired|healed",
)
RECOVERY = GateFunction(
    "recovery",
    Kind.DURATION,
    _recovery,
    missing_reason="no heal of chaos fault '{op}' to recover from",
    names_fault=True,
    hint="recovery(fault)",
)
