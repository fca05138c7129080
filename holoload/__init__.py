"""holoload: load generation, SLO gates and chaos for PostgreSQL-wire clusters.

The Python API (docs/api.md)::

    import holoload

    result = holoload.run("scenarios/sales_facts.toml")  # a throwaway local cluster
    print(result.verdict, result.exit_code, result.results_dir)

Names are imported on first use, so `import holoload` stays cheap (worker processes import it).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from holoload.api import ScenarioSource, Sink, TargetSource, load_scenario, load_target, run, run_async
    from holoload.core.errors import (
        ExitCode,
        HololoadError,
        InputError,
        PostgresNotFound,
        ScenarioError,
        SetupError,
        WorkerLost,
    )
    from holoload.core.events import Event, EventSink, RunProblem, WindowClosed
    from holoload.core.model.scenario import Scenario
    from holoload.core.model.target import Target
    from holoload.core.result import (
        BatchOpFigures,
        ChaosFault,
        CheckSummary,
        ClientHealth,
        GateOutcome,
        GateState,
        OpFigures,
        PhaseResult,
        RunInfo,
        RunSummary,
        RunVerdict,
    )
    from holoload.shell.session import RunControl

_EXPORTS = {
    "holoload.api": (
        "ScenarioSource",
        "Sink",
        "TargetSource",
        "load_scenario",
        "load_target",
        "run",
        "run_async",
    ),
    "holoload.core.errors": (
        "ExitCode",
        "HololoadError",
        "InputError",
        "PostgresNotFound",
        "ScenarioError",
        "SetupError",
        "WorkerLost",
    ),
    "holoload.core.events": ("Event", "EventSink", "RunProblem", "WindowClosed"),
    "holoload.core.result": (
        "BatchOpFigures",
        "ChaosFault",
        "CheckSummary",
        "ClientHealth",
        "GateOutcome",
        "GateState",
        "OpFigures",
        "PhaseResult",
        "RunInfo",
        "RunSummary",
        "RunVerdict",
    ),
    "holoload.core.model.scenario": ("Scenario",),
    "holoload.core.model.target": ("Target",),
    "holoload.shell.session": ("RunControl",),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "__version__",
    "BatchOpFigures",
    "ChaosFault",
    "CheckSummary",
    "ClientHealth",
    "Event",
    "EventSink",
    "ExitCode",
    "GateOutcome",
    "GateState",
    "HololoadError",
    "InputError",
    "OpFigures",
    "PhaseResult",
    "PostgresNotFound",
    "RunControl",
    "RunInfo",
    "RunProblem",
    "RunSummary",
    "RunVerdict",
    "Scenario",
    "ScenarioError",
    "ScenarioSource",
    "SetupError",
    "Sink",
    "Target",
    "TargetSource",
    "WindowClosed",
    "WorkerLost",
    "load_scenario",
    "load_target",
    "run",
    "run_async",
]


def __getattr__(name: str) -> Any:
    """Import an exported name on first use (PEP 562)."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'holoload' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
