"""The canary's batch plan: which batch runs where, and which chaos fires around it."""

from __future__ import annotations

from dataclasses import dataclass

from holoload.core.model.scenario import BatchGroup, ChaosAction, Scenario


@dataclass(frozen=True, slots=True)
class PlannedBatch:
    """One batch: 1-based index over the whole run, its group, and the node (0-based) it runs on."""

    index: int
    group: BatchGroup
    node: int
    chaos_during: tuple[ChaosAction, ...]
    chaos_after: tuple[ChaosAction, ...]

    @property
    def snapshot_prefix(self) -> str:
        return f"batch_{self.index:02d}_{self.group.label}"


def plan_batches(scenario: Scenario, node_count: int) -> list[PlannedBatch]:
    """Expand batch groups in order, spreading batches round-robin over the nodes.

    Args:
        scenario: the validated scenario.
        node_count: how many endpoints the target has (>= 1).
    """
    if node_count < 1:
        raise ValueError("a target needs at least one node")
    actions = scenario.enabled_chaos()
    plan: list[PlannedBatch] = []
    for group in scenario.batches:
        for _ in range(group.count):
            index = len(plan) + 1
            plan.append(
                PlannedBatch(
                    index=index,
                    group=group,
                    node=(index - 1) % node_count,
                    chaos_during=tuple(a for a in actions if a.during_batch == index),
                    chaos_after=tuple(a for a in actions if a.after_batch == index),
                )
            )
    return plan


def rows_after(plan: list[PlannedBatch], index: int) -> int:
    """Rows of the batch following `index` (1-based), or 1 when it is the last."""
    return plan[index].group.rows if index < len(plan) else 1
