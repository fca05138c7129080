"""`--base-port` on a run (and `base_port` in the API): 1024..65535, and only for the local cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

import holoload
from holoload.shell.cli import dispatch
from holoload.shell.session import check_base_port
from tests.support import REPO

SALES = str(REPO / "scenarios" / "sales_facts.toml")


@pytest.mark.parametrize("port", [1024, 55432, 65535, None])
def test_ports_in_range_without_a_target_are_accepted(port: int | None) -> None:
    """The whole unprivileged range; None keeps the local cluster's default."""
    check_base_port(port, target_given=False)


@pytest.mark.parametrize("port", [0, 80, 1023, 65536, True, "55432"])
def test_ports_out_of_range_are_refused_naming_the_option(port: object) -> None:
    """A privileged, too large or non-integer port: InputError naming the option and the range."""
    with pytest.raises(holoload.InputError, match=r"--base-port: expected a port in 1024\.\.65535, got"):
        check_base_port(port, target_given=False, name="--base-port")  # type: ignore[arg-type]


def test_a_base_port_with_a_target_is_refused() -> None:
    """A target's nodes name their own ports: the option would do nothing, so it is an error."""
    with pytest.raises(holoload.InputError, match="applies to the local cluster only"):
        check_base_port(56000, target_given=True)


def test_the_run_command_refuses_a_bad_base_port_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 2 with the reason; no results directory is created."""
    results = tmp_path / "r"
    assert dispatch([SALES, "--base-port", "80", "--results-dir", str(results)]) == 2
    assert "--base-port: expected a port in 1024..65535, got 80" in capsys.readouterr().err
    target = tmp_path / "t.toml"
    target.write_text('name = "t"\n[[nodes]]\ndsn = "postgresql://postgres@127.0.0.1:5432/postgres"\n')
    assert dispatch([SALES, "--target", str(target), "--base-port", "56000", "--results-dir", str(results)]) == 2
    assert "--base-port applies to the local cluster only" in capsys.readouterr().err
    assert not results.exists()


def test_the_api_refuses_a_base_port_with_a_target(tmp_path: Path) -> None:
    """`holoload.run(..., base_port=)`: the same rule, raised before anything starts."""
    target = {"name": "t", "nodes": [{"dsn": "postgresql://postgres@127.0.0.1:5432/postgres"}]}
    with pytest.raises(holoload.InputError, match="base_port applies to the local cluster only"):
        holoload.run(SALES, target, base_port=56000, results_dir=tmp_path)
    with pytest.raises(holoload.InputError, match="base_port: expected a port in 1024..65535, got 22"):
        holoload.run(SALES, base_port=22, results_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_run_help_lists_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    """`holoload run --help` shows --base-port."""
    with pytest.raises(SystemExit):
        dispatch(["run", "--help"])
    assert "--base-port PORT" in capsys.readouterr().out
