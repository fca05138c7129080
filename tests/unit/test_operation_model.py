"""The operation model: params it accepts (uniform_float) and keys it refuses with a reason (fetch)."""

from __future__ import annotations

import pytest

from holoload.core.errors import ScenarioError
from holoload.core.model.scenario import parse_scenario
from holoload.core.model.workload import UniformFloatParam


def _scenario(op: str) -> str:
    return f"""
name = "ops"
[[phases]]
name = "main"
duration = "1s"
[[phases.workloads]]
name = "w"
executor = "constant-concurrency"
concurrency = 1
[[phases.workloads.ops]]
name = "op"
{op}
"""


def test_a_uniform_float_param_is_accepted_with_its_bounds() -> None:
    """`{ gen = "uniform_float", min, max }` (built and documented) validates into its own model."""
    op = 'sql = "SELECT $1::float8"\nparams = [{ gen = "uniform_float", min = -0.5, max = 2 }]'
    scenario = parse_scenario(_scenario(op), "ops.toml")
    param = scenario.phases[0].workloads[0].ops[0].params[0]
    assert isinstance(param, UniformFloatParam) and (param.min, param.max) == (-0.5, 2.0)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ('[{ gen = "uniform_float", min = 2.0, max = 1.0 }]', "min (2.0) must not exceed max (1.0)"),
        ('[{ gen = "uniform_float", min = 0.0, max = inf }]', "finite number"),
        ('[{ gen = "uniform_float", min = 0.0 }]', "max"),
    ],
)
def test_a_bad_uniform_float_param_is_refused_naming_the_op(params: str, expected: str) -> None:
    """Bounds out of order, not finite or missing are errors at the op's params."""
    with pytest.raises(ScenarioError) as info:
        parse_scenario(_scenario(f'sql = "SELECT $1"\nparams = {params}'), "ops.toml")
    assert "phases[0].workloads[0].ops[0].params[0]" in str(info.value)
    assert expected in str(info.value)


@pytest.mark.parametrize("value", ["true", "false"])
def test_fetch_is_refused_saying_that_rows_are_always_read(value: str) -> None:
    """`fetch` never changed anything: a file that sets it is told so instead of being silently ignored."""
    with pytest.raises(ScenarioError) as info:
        parse_scenario(_scenario(f'sql = "SELECT 1"\nfetch = {value}'), "ops.toml")
    text = str(info.value)
    assert "phases[0].workloads[0].ops[0]" in text
    assert "result rows are read" in text and "remove `fetch`" in text
