"""--ray: the worker engines as actors of a local Ray instance give the artifacts a local run gives."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from holoload.adapters.local.cluster import LocalNode
from tests.support.runs import only_run_dir, run_cli, summary_json, write_scenario, write_target


def header(path: Path) -> list[str]:
    with path.open() as fh:
        return next(csv.reader(fh))


def test_a_local_ray_run_writes_what_a_local_run_writes(tmp_path: Path, pg_cluster: list[LocalNode]) -> None:
    pytest.importorskip("ray", reason="pip install -e '.[test]' installs Ray")
    target = write_target(tmp_path, pg_cluster)
    scenario = write_scenario(tmp_path, "2s")
    runs = {}
    for mode, extra in (("local", []), ("ray", ["--ray", "local"])):
        results = tmp_path / mode
        done = run_cli([scenario, "--target", target, "--results-dir", str(results), "--workers", "2", *extra], 240)
        assert done.returncode == 0, done.stdout + done.stderr
        runs[mode] = only_run_dir(results)

    local, ray = runs["local"], runs["ray"]
    assert sorted(p.name for p in ray.iterdir()) == sorted(p.name for p in local.iterdir())
    for name in ("timeseries.csv", "metrics.csv"):
        assert header(ray / name) == header(local / name)
    s_local, s_ray = summary_json(local), summary_json(ray)
    assert s_ray.keys() == s_local.keys()
    assert s_ray["workers"] == {"count": 2, "mode": "ray", "lost": [], "restarts": 0}
    assert s_ray["phases"]["main"]["ops"].keys() == s_local["phases"]["main"]["ops"].keys()
    assert [g["name"] for g in s_ray["gates"]] == [g["name"] for g in s_local["gates"]]
    assert all(g["passed"] for g in s_ray["gates"])
    read = s_ray["phases"]["main"]["ops"]["paced.read"]
    assert read["ok"] + read["dropped"] + read["error_count"] == 400  # the global schedule, split over actors
    inserted = s_ray["phases"]["main"]["ops"]["ingest.insert"]
    assert inserted["ok"] == s_ray["check"]["ledger"]["acknowledged"] > 0
    assert s_ray["check"]["counts"]["lost"] == 0
