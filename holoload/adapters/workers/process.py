"""Bounded subprocesses: argv (never a shell), own session, output collected, group killed on timeout."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import anyio
from anyio.abc import ByteReceiveStream, Process


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What one command printed and how it ended.

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
        """True when the command exited 0."""
        return self.returncode == 0


async def run_command(
    argv: Sequence[str], *, timeout_s: float, env: Mapping[str, str] | None = None, label: str | None = None
) -> CommandResult:
    """Run argv in its own session, collect its output, kill its group after `timeout_s`.

    Args:
        argv: program and arguments (no shell).
        timeout_s: bound on the process; on expiry returncode is -1 and stderr says so.
        env: full environment for the child; None inherits.
        label: how the command is named in the timeout message (default: the program).

    Returns:
        The result (exit codes are data).

    Raises:
        OSError: the program cannot be started.
    """
    started = time.monotonic()
    process = await anyio.open_process(
        list(argv), stdin=subprocess.DEVNULL, env=None if env is None else dict(env), start_new_session=True
    )
    stdout: list[bytes] = []
    stderr: list[bytes] = []
    deadline = anyio.move_on_after(timeout_s)
    try:
        with deadline:
            async with anyio.create_task_group() as tg:
                tg.start_soon(_drain, process.stdout, stdout)
                tg.start_soon(_drain, process.stderr, stderr)
                await process.wait()
    finally:
        with anyio.CancelScope(shield=True):
            if process.returncode is None or deadline.cancelled_caught:
                _kill_group(process)
            await process.aclose()
    err_text = b"".join(stderr).decode("utf-8", errors="replace")
    returncode = process.returncode if process.returncode is not None else -1
    if deadline.cancelled_caught:
        returncode = -1
        err_text = f"timeout: {label or argv[0]} did not finish within {timeout_s:g}s and was killed\n{err_text}"
    return CommandResult(
        argv=tuple(argv),
        returncode=returncode,
        stdout=b"".join(stdout).decode("utf-8", errors="replace"),
        stderr=err_text,
        elapsed_s=time.monotonic() - started,
    )


async def _drain(stream: ByteReceiveStream | None, chunks: list[bytes]) -> None:
    if stream is None:
        return
    async for chunk in stream:
        chunks.append(chunk)


def _kill_group(process: Process) -> None:
    """SIGKILL the process group the command leads (its own session); fall back to the process."""
    try:
        if hasattr(os, "killpg"):
            os.killpg(process.pid, signal.SIGKILL)
        else:  # pragma: no cover - Windows
            process.kill()
    except ProcessLookupError:
        pass
