"""The target's `topology.source` names reach the topology source of the same name (holoctl: the table)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import get_args

import pytest

from holoload.adapters.holofusion.holoctl import Holoctl
from holoload.adapters.holofusion.surfaces import TargetSurfaces
from holoload.adapters.holofusion.topology_sources import SOURCE_KINDS, HoloctlStateSource, HoloctlTableSource
from holoload.core.model.target import Node, Target, TopologySource
from tests.support import FAKES, FIXTURES

FAKE = FAKES / "fake_holoctl.py"


def test_source_kinds_are_the_target_files_names() -> None:
    """make_source takes exactly the target file's source names (all but "none"), so no caller translates."""
    names = get_args(TopologySource.model_fields["source"].annotation)
    assert set(SOURCE_KINDS) == set(names) - {"none"}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("source", "cls", "raw_files"),
    [
        ("holoctl", HoloctlTableSource, ["holoctl_topology_before_split.txt"]),
        ("holoctl_state", HoloctlStateSource, ["holoctl_state_before_split.json", "holoctl_topology_before_split.txt"]),
    ],
)
async def test_holoctl_sources_read_what_the_target_file_documents(
    tmp_path: Path, source: str, cls: type, raw_files: list[str]
) -> None:
    """holoctl: `holoctl topology` alone (the table kept byte for byte); holoctl_state: state JSON, then the table."""
    env = {**os.environ, "FAKE_HOLOCTL_STATE_DIR": str(tmp_path)}
    topology = TopologySource(source=source, holoctl=str(FAKE))  # type: ignore[arg-type]
    target = Target(name="t", nodes=[Node(name="node1", dsn="postgresql://127.0.0.1:1/unused")], topology=topology)
    surfaces = TargetSurfaces(target, connect_timeout_s=1, statement_timeout_s=1, control_timeout_s=20, env=env)
    # Entering the surfaces would connect to the nodes; holoctl sources need only the client it makes.
    surfaces._holoctl = Holoctl(str(FAKE), topology.holoctl_target, timeout_s=20.0, env=env)
    assert isinstance(surfaces._topology_source("t"), cls)
    reading = await surfaces.topology_reading("t")
    assert reading is not None and reading.error is None
    assert reading.raw == "".join((FIXTURES / name).read_text(encoding="utf-8") for name in raw_files)
