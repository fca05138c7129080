"""Field types shared by the scenario and target models: durations, sizes, names, strictness."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from holoload.core.config.units import parse_duration, parse_rate, parse_size

Seconds = Annotated[float, BeforeValidator(parse_duration)]
Rows = Annotated[int, BeforeValidator(parse_size), Field(ge=1, le=100_000_000)]
PositiveSeconds = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]
PerSecond = Annotated[float, BeforeValidator(parse_rate)]  # 300, "300/s", "1.5k/s", "600/min"


def _pattern(regex: str, what: str) -> AfterValidator:
    compiled = re.compile(regex)

    def check(value: str) -> str:
        if not compiled.fullmatch(value) or len(value) > 63:
            raise ValueError(f"expected {what}")
        return value

    return AfterValidator(check)


Identifier = Annotated[
    str, _pattern(r"[A-Za-z_][A-Za-z0-9_]*", "a name of letters, digits and _ not starting with a digit")
]
Label = Annotated[str, _pattern(r"[A-Za-z0-9_]+", "a label of letters, digits and _ (e.g. 20k)")]


class Strict(BaseModel):
    """Base for every scenario/target section: unknown keys are errors (typos!)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
