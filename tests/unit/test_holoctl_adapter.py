"""Tests for holoload.adapters.holofusion.holoctl against tests/fakes/fake_holoctl.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from holoload.adapters.holofusion.holoctl import CommandResult, Holoctl, resolve_holoctl
from holoload.core.errors import ExitCode, SetupError
from holoload.core.topology.splitkey import row_v1_split_key, to_hex
from holoload.core.topology.table import parse_table
from tests.support import FAKES, fixture_text

FAKE = FAKES / "fake_holoctl.py"
TARGET = "127.0.0.1:15051"
SPLIT_HEX = "2000000000000000640200800000000000c350"


@pytest.fixture
def anyio_backend() -> str:
    """Run async tests on asyncio only."""
    return "asyncio"


def _env(state_dir: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "FAKE_HOLOCTL_STATE_DIR": str(state_dir), **extra}


@pytest.fixture
def holoctl(tmp_path: Path) -> Holoctl:
    """A Holoctl client driving the fake CLI with its state in tmp_path."""
    return Holoctl(str(FAKE), TARGET, timeout_s=20.0, env=_env(tmp_path))


def _script(path: Path, body: str) -> Path:
    path.write_text(body, encoding="utf-8")
    path.chmod(0o755)
    return path


@pytest.mark.anyio
async def test_topology_before_split_is_the_fixture_byte_for_byte(holoctl: Holoctl) -> None:
    """topology() returns holoctl's table exactly, with the argv it ran."""
    result = await holoctl.topology()
    assert result.returncode == 0
    assert result.stdout == fixture_text("holoctl_topology_before_split.txt")
    assert result.argv == (str(FAKE), "--target", TARGET, "topology")
    assert result.elapsed_s > 0
    assert parse_table(result.stdout).shard_count == 1


@pytest.mark.anyio
async def test_split_is_recorded_and_switches_topology_and_state(holoctl: Holoctl, tmp_path: Path) -> None:
    """split() passes --hex --split-key; afterwards topology/state print the after-split samples."""
    assert (await holoctl.state()).stdout == fixture_text("holoctl_state_before_split.json")
    key = to_hex(row_v1_split_key(100, 50000))
    result = await holoctl.split(key)
    assert result.ok, result.stderr
    assert result.argv == (
        str(FAKE),
        "--target",
        TARGET,
        "split",
        "--hex",
        "--split-key",
        SPLIT_HEX,
    )
    calls = [json.loads(line) for line in (tmp_path / "split_calls.jsonl").read_text().splitlines()]
    assert [(c["target"], c["split_key_hex"]) for c in calls] == [(TARGET, SPLIT_HEX)]
    assert calls[0]["argv"][1:] == list(result.argv[1:])
    assert (await holoctl.topology()).stdout == fixture_text("holoctl_topology_after_split.txt")
    assert (await holoctl.state()).stdout == fixture_text("holoctl_state_after_split.json")


@pytest.mark.anyio
async def test_failing_split_returns_exit_code_one_and_changes_nothing(tmp_path: Path) -> None:
    """With FAKE_HOLOCTL_FAIL_SPLIT=1 the split exits 1 with an error; the topology stays."""
    client = Holoctl(str(FAKE), TARGET, env=_env(tmp_path, FAKE_HOLOCTL_FAIL_SPLIT="1"))
    result = await client.split(SPLIT_HEX)
    assert isinstance(result, CommandResult)
    assert result.returncode == 1
    assert not result.ok
    assert "Error" in result.stderr
    assert not (tmp_path / "split_calls.jsonl").exists()
    assert (await client.topology()).stdout == fixture_text("holoctl_topology_before_split.txt")


@pytest.mark.anyio
async def test_split_rejects_a_malformed_hex_key_without_running(holoctl: Holoctl, tmp_path: Path) -> None:
    """A 0x prefix or odd-length key is a ValueError before any process starts."""
    for bad in ("0x" + SPLIT_HEX, SPLIT_HEX[:-1]):
        with pytest.raises(ValueError):
            await holoctl.split(bad)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.anyio
async def test_missing_binary_raises_setup_error(tmp_path: Path) -> None:
    """Running a binary that does not exist is a SetupError (exit 3) naming HOLOCTL_BIN."""
    client = Holoctl(str(tmp_path / "no-such-holoctl"), TARGET)
    with pytest.raises(SetupError, match="HOLOCTL_BIN") as caught:
        await client.topology()
    assert caught.value.exit_code == ExitCode.SETUP


@pytest.mark.timeout(20)
@pytest.mark.anyio
async def test_timeout_kills_a_hung_holoctl(tmp_path: Path) -> None:
    """A command sleeping 30s is killed after timeout_s: returncode -1, 'timeout' in stderr."""
    script = _script(
        tmp_path / "hung-holoctl",
        f"#!{sys.executable}\nimport sys, time\nsys.stderr.write('working\\n'); sys.stderr.flush()\ntime.sleep(30)\n",
    )
    started = time.monotonic()
    result = await Holoctl(str(script), TARGET, timeout_s=0.5).topology()
    assert time.monotonic() - started < 5
    assert result.returncode == -1
    assert "timeout" in result.stderr
    assert "working" in result.stderr


@pytest.mark.timeout(20)
@pytest.mark.anyio
async def test_timeout_also_kills_children_holding_the_pipes(tmp_path: Path) -> None:
    """A shell wrapper whose child keeps stdout open is still bounded by timeout_s."""
    script = _script(tmp_path / "wrapper-holoctl", "#!/bin/sh\nsleep 30\necho done\n")
    started = time.monotonic()
    result = await Holoctl(str(script), TARGET, timeout_s=0.5).state()
    assert time.monotonic() - started < 5
    assert result.returncode == -1


def test_resolve_prefers_holoctl_bin_over_configured(tmp_path: Path) -> None:
    """HOLOCTL_BIN wins over the configured binary; the result is an absolute path."""
    env = {"HOLOCTL_BIN": str(FAKE), "PATH": ""}
    assert resolve_holoctl("/somewhere/else/holoctl", env) == str(FAKE.resolve())


def test_resolve_uses_configured_name_on_path_then_default(tmp_path: Path) -> None:
    """Without HOLOCTL_BIN the configured name, else 'holoctl', is looked up on PATH."""
    _script(tmp_path / "my-holoctl", "#!/bin/sh\n")
    _script(tmp_path / "holoctl", "#!/bin/sh\n")
    env = {"PATH": str(tmp_path)}
    assert resolve_holoctl("my-holoctl", env) == str(tmp_path / "my-holoctl")
    assert resolve_holoctl(None, env) == str(tmp_path / "holoctl")


def test_resolve_missing_binary_says_where_it_looked(tmp_path: Path) -> None:
    """A binary found nowhere raises SetupError naming the candidate, PATH and HOLOCTL_BIN."""
    with pytest.raises(SetupError, match=rf"not on PATH \({tmp_path}\).*set HOLOCTL_BIN"):
        resolve_holoctl(None, {"PATH": str(tmp_path)})
    with pytest.raises(SetupError, match=r"HOLOCTL_BIN=/nope/holoctl.*not an executable file"):
        resolve_holoctl("holoctl", {"HOLOCTL_BIN": "/nope/holoctl", "PATH": str(tmp_path)})


def test_fake_holoctl_bad_usage_exits_2_with_usage(tmp_path: Path) -> None:
    """The fake behaves like a real CLI on bad usage: exit 2 and a usage message on stderr."""
    for args in ([], ["frobnicate"], ["split", "--hex"], ["--target"]):
        proc = subprocess.run([str(FAKE), *args], env=_env(tmp_path), capture_output=True, text=True, check=False)
        assert proc.returncode == 2, args
        assert "Usage: holoctl" in proc.stderr
        assert proc.stdout == ""
