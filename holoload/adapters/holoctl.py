"""Run HoloFusion's `holoctl` CLI (topology, state, split) as a bounded subprocess."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass

import anyio
from anyio.abc import ByteReceiveStream, Process

from holoload.core.errors import SetupError
from holoload.core.splitkey import from_hex

HOLOCTL_ENV = "HOLOCTL_BIN"
DEFAULT_BINARY = "holoctl"


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What one holoctl invocation printed and how it ended.

    Args:
        argv: the exact argument vector run (no shell).
        returncode: process exit status; -1 when holoload killed it on timeout (negative
            signal numbers when something else killed it).
        stdout / stderr: decoded output (UTF-8, undecodable bytes replaced).
        elapsed_s: wall time from spawn to exit.
    """

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    elapsed_s: float

    @property
    def ok(self) -> bool:
        """True when holoctl exited 0."""
        return self.returncode == 0


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
        started = time.monotonic()
        try:
            process = await anyio.open_process(
                list(argv),
                stdin=subprocess.DEVNULL,
                env=self._env,
                start_new_session=True,  # so a timeout can kill holoctl's children too
            )
        except OSError as exc:
            raise SetupError(
                f"cannot run holoctl {self.binary!r}: {exc}; set {HOLOCTL_ENV} to the holoctl executable"
            ) from exc

        stdout: list[bytes] = []
        stderr: list[bytes] = []
        deadline = anyio.move_on_after(self.timeout_s)
        try:
            with deadline:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(_drain, process.stdout, stdout)
                    tg.start_soon(_drain, process.stderr, stderr)
                    await process.wait()
        finally:
            with anyio.CancelScope(shield=True):
                # On timeout also kill an exited holoctl's children that still hold the pipes.
                if process.returncode is None or deadline.cancelled_caught:
                    _kill_group(process)
                await process.aclose()
        timed_out = deadline.cancelled_caught
        elapsed_s = time.monotonic() - started

        err_text = b"".join(stderr).decode("utf-8", errors="replace")
        returncode = process.returncode if process.returncode is not None else -1
        if timed_out:
            returncode = -1
            err_text = (
                f"timeout: holoctl {command[0]} did not finish within {self.timeout_s:g}s and was killed\n{err_text}"
            )
        return CommandResult(
            argv=argv,
            returncode=returncode,
            stdout=b"".join(stdout).decode("utf-8", errors="replace"),
            stderr=err_text,
            elapsed_s=elapsed_s,
        )


async def _drain(stream: ByteReceiveStream | None, chunks: list[bytes]) -> None:
    if stream is None:
        return
    async for chunk in stream:
        chunks.append(chunk)


def _kill_group(process: Process) -> None:
    """SIGKILL the process group holoctl leads (its own session); fall back to the process."""
    try:
        if hasattr(os, "killpg"):
            os.killpg(process.pid, signal.SIGKILL)
        else:  # pragma: no cover - Windows
            process.kill()
    except ProcessLookupError:
        pass
