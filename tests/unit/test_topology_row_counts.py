"""`topology.row_counts`: partition rows from the server's statistics by default, `count(*)` on request."""

from __future__ import annotations

import pytest

from holoload.core.errors import ScenarioError
from holoload.core.model.target import local_target, parse_target

TARGET = (
    'name = "t"\n[[nodes]]\ndsn = "postgresql://postgres@127.0.0.1:5432/postgres"\n[topology]\nsource = "partitions"\n'
)


def test_row_counts_default_to_the_estimate() -> None:
    """A target file without the key, and the embedded cluster's target, poll without reading tables."""
    assert parse_target(TARGET, "t.toml").topology.row_counts == "estimate"
    assert local_target(["postgresql://postgres@127.0.0.1:5432/postgres"]).topology.row_counts == "estimate"


def test_exact_row_counts_are_kept_on_request() -> None:
    """`row_counts = "exact"` keeps count(*) per partition."""
    assert parse_target(TARGET + 'row_counts = "exact"\n', "t.toml").topology.row_counts == "exact"


def test_an_unknown_row_counts_value_names_its_key() -> None:
    """A typo is an input error at topology.row_counts listing the two choices."""
    with pytest.raises(ScenarioError) as caught:
        parse_target(TARGET + 'row_counts = "fast"\n', "t.toml")
    ((where, what),) = caught.value.problems
    assert where == "topology.row_counts" and "'estimate'" in what and "'exact'" in what
