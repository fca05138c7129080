"""Run HoloFusion's `holoctl` CLI (topology, state, split) as a bounded subprocess."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping

from holoload.adapters.workers.process import CommandResult, run_command
from holoload.core.errors import SetupError
from holoload.core.topology.splitkey import from_hex

HOLOCTL_ENV = "HOLOCTL_BIN"
DEFAULT_BINARY = "holoctl"


def resolve_holoctl(configured: str | None, env: Mapping[str, str]) -> str:
    """Find the holoctl executable: `HOLOCTL_BIN` from `env`, else `configured`, else "holoctl".

    Args:
        configured: binary named by the target file (a name on PATH or a path), if any.
        env: environment to read HOLOCTL_BIN and PATH from (pass `os.environ` in the CLI).

    Returns:
        Absolute path of the executable.

    Raises:
        SetupError: no executable found; the message says where it looked.
    """
    from_env = env.get(HOLOCTL_ENV)
    if from_env:
        candidate, source = from_env, f"{HOLOCTL_ENV}={from_env}"
    elif configured:
        candidate, source = configured, f"configured holoctl {configured!r}"
    else:
        candidate, source = DEFAULT_BINARY, "default name 'holoctl'"
    search_path = env.get("PATH")
    found = shutil.which(candidate, path=search_path)
    if found is None:
        if os.sep in candidate or (os.altsep and os.altsep in candidate):
            where = f"{candidate} is not an executable file"
        else:
            dirs = (search_path if search_path is not None else os.environ.get("PATH", "")) or ""
            where = f"not on PATH ({dirs or 'empty'})"
        raise SetupError(f"holoctl not found ({source}): {where}; set {HOLOCTL_ENV} to the holoctl executable")
    return os.path.abspath(found)


class Holoctl:
    """Thin async client for `holoctl --target HOST:PORT <command>`.

    Each call spawns one process (argv list, never a shell) in its own session, reads its
    output, and kills the whole process group if it outlives `timeout_s` or the caller is
    cancelled. Only a binary that cannot be started raises; exit codes are returned.

    Args:
        binary: path or name of the holoctl executable (see `resolve_holoctl`).
        target: gRPC address of a node, "host:port".
        timeout_s: bound on each invocation.
        env: full environment for the child; default: inherit this process's.
    """

    def __init__(
        self,
        binary: str,
        target: str,
        *,
        timeout_s: float = 30.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self.binary = binary
        self.target = target
        self.timeout_s = timeout_s
        self._env = None if env is None else dict(env)

    async def topology(self) -> CommandResult:
        """`holoctl topology`: the ASCII topology table."""
        return await self._run("topology")

    async def state(self) -> CommandResult:
        """`holoctl state`: the cluster state JSON."""
        return await self._run("state")

    async def split(self, split_key_hex: str) -> CommandResult:
        """`holoctl split --hex --split-key <hex>`: split the range owning the key.

        Raises:
            ValueError: `split_key_hex` is not even-length hex without a "0x" prefix.
        """
        from_hex(split_key_hex)  # fail here rather than as an opaque holoctl error
        return await self._run("split", "--hex", "--split-key", split_key_hex)

    async def _run(self, *command: str) -> CommandResult:
        argv = (self.binary, "--target", self.target, *command)
        try:
            return await run_command(argv, timeout_s=self.timeout_s, env=self._env, label=f"holoctl {command[0]}")
        except OSError as exc:
            raise SetupError(
                f"cannot run holoctl {self.binary!r}: {exc}; set {HOLOCTL_ENV} to the holoctl executable"
            ) from exc
