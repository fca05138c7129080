"""Exception tree for holoload; each leaf carries the process exit code it maps to.

    HololoadError                 (exit 1, generic)
    +-- InputError                (exit 2) bad scenario/target file, bad --set, bad usage
    |   +-- ScenarioError         a validation failure with file + key path + expectation
    +-- SetupError                (exit 3) target unreachable, cluster cannot start
    |   +-- PostgresNotFound      no PostgreSQL binaries anywhere

Adapters raise these (translating library errors); only the CLI turns them into exit codes.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Documented process exit codes (docs/exit-codes in README)."""

    PASS = 0
    FAIL = 1
    BAD_INPUT = 2
    SETUP = 3
    INTERRUPTED = 130
    TERMINATED = 143


class HololoadError(Exception):
    """Base of every error holoload raises on purpose."""

    exit_code: ExitCode = ExitCode.FAIL


class InputError(HololoadError):
    """The user gave something holoload cannot use; nothing was started."""

    exit_code = ExitCode.BAD_INPUT


class ScenarioError(InputError):
    """A scenario or target file failed validation.

    Args:
        file: the file the problem is in (or "--set" for an override).
        problems: one (key_path, expectation) pair per problem found.
    """

    def __init__(self, file: str, problems: list[tuple[str, str]]) -> None:
        self.file = file
        self.problems = problems
        lines = [f"{file}: {path or '<top level>'}: {what}" for path, what in problems]
        super().__init__("\n".join(lines))


class SetupError(HololoadError):
    """The target could not be reached or prepared; no load was generated."""

    exit_code = ExitCode.SETUP


class PostgresNotFound(SetupError):
    """No PostgreSQL server binaries could be found for the embedded cluster."""


class WorkerLost(HololoadError):
    """A worker process (or Ray actor) died or stopped answering; `detail` says how."""

    def __init__(self, worker: int, detail: str) -> None:
        self.worker = worker
        self.detail = detail
        super().__init__(f"worker {worker} lost: {detail}")


def label_of(exc: BaseException) -> str:
    """What kind of failure `exc` is, in words for people (never a Python class name)."""
    if isinstance(exc, SetupError):
        return "setup failed"
    if isinstance(exc, InputError):
        return "invalid input"
    if isinstance(exc, WorkerLost):
        return "worker lost"
    if isinstance(exc, HololoadError):
        return "run failed"
    return "internal error"


def reason_of(exc: BaseException) -> str:
    """Why the run stopped, for `run.problems` and the reports.

    e.g. "setup failed: cannot connect to node1 at 127.0.0.1:55432 (connection refused)".
    Only a bug (not a HololoadError) keeps its class name: it is what a bug report needs.
    """
    detail = str(exc).strip()
    if isinstance(exc, WorkerLost):
        return detail  # "worker 2 lost: ..." reads as it is
    if not isinstance(exc, HololoadError):
        detail = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    label = label_of(exc)
    return f"{label}: {detail}" if detail else label
