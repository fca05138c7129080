"""The unit tier's guard: no PostgreSQL server program (initdb, pg_ctl, postgres, pg_config) may run.

tests/unit/conftest.py loads this file into the test process and puts its directory first on
PYTHONPATH, so every Python child the tests start (``python -m holoload ...``, worker processes)
imports it at start-up as ``sitecustomize`` and is guarded too. Finding binaries runs
``postgres --version`` and starting a cluster runs ``initdb``: both pass through here, whether
through subprocess.Popen (in the test process also uvloop's subprocess_exec).

In the test process a refused program raises ``PostgresRefused`` (a BaseException, so no
``except Exception`` swallows it) and is remembered for the conftest's after-test check; a child
prints why on stderr and exits with EXIT_CODE at once. Inert unless ENV is set.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

ENV = "HOLOLOAD_TEST_NO_POSTGRES"
EXIT_CODE = 97
PROGRAMS = frozenset({"initdb", "pg_ctl", "postgres", "postmaster", "pg_config", "pg_ctlcluster"})

#: Programs refused in this process since the conftest last cleared it.
REFUSED: list[str] = []


class PostgresRefused(BaseException):
    """A unit test tried to run a PostgreSQL server program."""


def server_program(command: Any, *, shell: bool = False) -> str | None:
    """The PostgreSQL program a command would run, or None (argv list, or a string for a shell)."""
    if isinstance(command, (str, bytes, os.PathLike)):
        text = os.fsdecode(command)
        first = text.split()[0] if shell and text.split() else text
    else:
        argv = list(command)
        first = os.fsdecode(argv[0]) if argv else ""
    name = os.path.basename(first)
    name = name[:-4] if name.lower().endswith(".exe") else name
    return name if name in PROGRAMS else None


def _refuse(program: str, in_child: bool) -> None:
    message = f"{program}: the unit tier runs no PostgreSQL program; a test that needs one belongs in tests/integration"
    if in_child:
        sys.stderr.write(f"holoload tests ({ENV}): {message}\n")
        sys.stderr.flush()
        os._exit(EXIT_CODE)
    REFUSED.append(program)
    raise PostgresRefused(message)


def install(setattr_: Callable[[object, str, Any], None] = setattr, *, in_child: bool = False) -> None:
    """Wrap subprocess.Popen and the event loops' subprocess_exec/_shell to refuse server programs."""

    def check(command: Any, *, shell: bool = False, executable: Any = None) -> None:
        program = server_program(executable) if executable is not None else None
        program = program or server_program(command, shell=shell)
        if program is not None:
            _refuse(program, in_child)

    popen_init = subprocess.Popen.__init__

    def guarded_popen_init(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
        check(args, shell=bool(kwargs.get("shell")), executable=kwargs.get("executable"))
        popen_init(self, args, *rest, **kwargs)

    setattr_(subprocess.Popen, "__init__", guarded_popen_init)

    # A child stops at Popen: initdb and `postgres --version` go through it; importing uvloop
    # there would only slow every child's start-up (timeouts of fake CLIs are short).
    loops: list[type] = []
    if not in_child:
        try:
            import uvloop

            loops.append(uvloop.Loop)
        except ImportError:
            pass
    for loop in loops:
        exec_ = loop.subprocess_exec
        shell_ = loop.subprocess_shell

        async def guarded_exec(self: Any, factory: Any, program: Any, *args: Any, _exec: Any = exec_, **kw: Any) -> Any:
            check([program])
            return await _exec(self, factory, program, *args, **kw)

        async def guarded_shell(self: Any, factory: Any, cmd: Any, *args: Any, _shell: Any = shell_, **kw: Any) -> Any:
            check(cmd, shell=True)
            return await _shell(self, factory, cmd, *args, **kw)

        setattr_(loop, "subprocess_exec", guarded_exec)
        setattr_(loop, "subprocess_shell", guarded_shell)


if os.environ.get(ENV) and __name__ == "sitecustomize":
    install(in_child=True)
