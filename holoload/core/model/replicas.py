"""Endpoint roles applied to a scenario: workloads that name no endpoints stay off standbys."""

from __future__ import annotations

from collections.abc import Sequence

from holoload.core.model.scenario import Scenario


def route_to_writable(scenario: Scenario, names: Sequence[str], writable: Sequence[bool]) -> Scenario:
    """The scenario with `endpoints` filled in for workloads that give none, when some endpoint is a standby.

    A workload without `endpoints` spreads over every endpoint; a standby refuses writes, so on a
    replicated target such a workload goes to the writable endpoints only (weight 1 each). A
    workload that names endpoints (e.g. reads on `standby`) is left as it is.

    Args:
        scenario: a validated scenario.
        names: endpoint names by index.
        writable: per endpoint, False for a standby.

    Returns:
        The same scenario when every endpoint is writable, otherwise an updated copy.
    """
    if all(writable) or not any(writable):
        return scenario
    default = {name: 1.0 for name, ok in zip(names, writable, strict=True) if ok}
    phases = []
    for phase in scenario.phases:
        workloads = [w if w.endpoints else w.model_copy(update={"endpoints": dict(default)}) for w in phase.workloads]
        phases.append(phase.model_copy(update={"workloads": workloads}))
    return scenario.model_copy(update={"phases": phases})
