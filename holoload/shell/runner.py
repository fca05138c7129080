"""`holoload run`: a RunSession under the terminal's signals, live display and event loop (uvloop).

Everything about the run itself is in `shell/session.py`, shared with the Python API
(`holoload.run`); this module adds what only a command line wants: SIGINT/SIGTERM as stop
requests, the rich console, the verdict table, and `anyio.run` with uvloop.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import anyio
import anyio.abc
from rich.console import Console

from holoload.core.errors import HololoadError
from holoload.shell.session import Fanout, RunControl, RunOptions, RunSession, secrets_of

__all__ = ["Fanout", "RunOptions", "run", "secrets_of"]


def run(options: RunOptions, console: Console) -> int:
    """Run a scenario end to end; every outcome, even a crash of the target, leaves artifacts.

    Returns:
        The exit code (the result's).

    Raises:
        InputError: the results directory cannot be created (nothing was started).
    """
    session = RunSession(options, console=console, say=partial(_say, console), warn=lambda t: print(t, file=sys.stderr))
    with _sigterm_interrupts() as received, session:
        name, label = options.scenario.name, options.target_label
        _say(console, f"holoload · scenario [bold]{name}[/bold] · target {label} · results {session.root}", markup=True)
        _say(console, f"budget: {session.secrets.scrub(options.applied.describe())}")
        try:
            session.start_target()
            anyio.run(_drive, session, backend="asyncio", backend_options=_loop_options())
        except HololoadError as exc:
            session.failed(exc)
        except KeyboardInterrupt:  # Ctrl-C/SIGTERM outside the engine (e.g. while the cluster starts)
            session.interrupted(received[0] if received else "SIGINT", before_load=True)
        except Exception as exc:  # noqa: BLE001 - a bug: keep what was measured; the traceback goes to run.log
            session.crashed(exc)
        result = session.finish(notify=False)
        assert result.exit_code is not None
        if session.job.display is not None:
            try:
                session.job.display.verdicts(
                    session.verdicts, result.verdict.value, options.enforce, result.exit_code, str(session.root)
                )
            except (Exception, SystemExit):  # noqa: BLE001 - the terminal is gone; the summaries hold the verdict
                pass
        session.notify()
        return result.exit_code


async def _drive(session: RunSession) -> None:
    """The session's engine under a signal watcher: the first SIGINT/SIGTERM stops gracefully, a second at once."""
    control = RunControl()

    async def watch_signals(*, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            task_status.started()
            async for signum in signals:
                name = signal.Signals(signum).name
                control.request_stop(name, signal_name=name)

    failure: HololoadError | None = None
    async with anyio.create_task_group() as tg:
        await tg.start(watch_signals)
        try:
            await session.drive(control)
        except HololoadError as exc:  # raised out of the task group, it would come wrapped
            failure = exc
        tg.cancel_scope.cancel()
    if failure is not None:
        raise failure


@contextmanager
def _sigterm_interrupts() -> Iterator[list[str]]:
    """SIGTERM outside the engine behaves like Ctrl-C, so cleanup and summaries still happen.

    Yields the names of the signals that raised KeyboardInterrupt this way (for the exit code).
    """
    received: list[str] = []

    def interrupt(signum: int, frame: object) -> None:
        received.append("SIGTERM")
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield received
        return
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)


def _say(console: Console, text: str, *, markup: bool = False) -> None:
    try:
        console.print(text, highlight=False, markup=markup)
    except (Exception, SystemExit):  # noqa: BLE001 - output is best effort
        pass


def _loop_options() -> dict[str, Any]:
    try:
        import uvloop  # noqa: F401
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        return {}
    return {"use_uvloop": True}
