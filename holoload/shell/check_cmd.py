"""`holoload check HISTORY`: check a recorded list-append history against a consistency model.

Exit codes: 0 valid, 1 anomalies the model forbids, 2 bad input (unreadable or malformed history, unknown
model), 4 unknown (the cycle search ran out of --time-limit before it could rule a forbidden class out).
"""

from __future__ import annotations

import argparse
import gzip
import time
from pathlib import Path

import orjson
from rich.console import Console

from holoload.core.config.units import parse_duration
from holoload.core.errors import ExitCode, InputError
from holoload.core.isolation import MODELS, UNKNOWN, CheckResult, Deadline, Txn, check, parse_history, render_text

__all__ = ["EXIT_UNKNOWN", "add_check_parser", "check_command", "load_history"]

EXIT_UNKNOWN = 4
"""The verdict could not be reached within the time limit (never reported as valid)."""

_EPILOG = f"""\
exit codes: 0 valid under the model, 1 anomalies the model forbids, 2 bad input, {EXIT_UNKNOWN} unknown (the
cycle search ran out of --time-limit before ruling a forbidden anomaly out: raise the limit).
models: {", ".join(MODELS)}. docs: docs/isolation.md (method, models, history format, reading an anomaly)."""


def add_check_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``check`` on the CLI's subcommands."""
    parser = sub.add_parser(
        "check",
        help="check a list-append history (JSON lines) for isolation anomalies under a consistency model",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("history", metavar="HISTORY", help="a history file (.jsonl, or .jsonl.gz)")
    parser.add_argument(
        "--model", default="serializable", help=f"the model expected (default serializable): {', '.join(MODELS)}"
    )
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object (summary.json's form)")
    parser.add_argument(
        "--time-limit", default="30s", metavar="DURATION", help="time limit of the cycle search (default 30s)"
    )
    parser.add_argument("--examples", type=int, default=3, help="anomalies shown per class (default 3)")


def load_history(path: Path) -> list[Txn]:
    """Read and parse a history file (gzip when it ends in .gz).

    Raises:
        InputError: (exit 2) missing, unreadable or malformed, naming the file and line.
    """
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb") as lines:
            return parse_history(lines, str(path))  # streamed: the file is never held whole
    except FileNotFoundError:
        raise InputError(f"{path}: not found (expected a list-append history, JSON lines)") from None
    except (OSError, EOFError) as exc:
        raise InputError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None


def check_command(args: argparse.Namespace, console: Console) -> int:
    """Run ``holoload check``; print the verdict, counts and example anomalies (or JSON).

    Returns:
        0 valid, 1 forbidden anomalies, ``EXIT_UNKNOWN`` when the search ran out of time.

    Raises:
        InputError: (exit 2) bad file, model or time limit.
    """
    if args.model not in MODELS:
        raise InputError(f"--model {args.model!r}: expected one of {', '.join(MODELS)}")
    try:
        limit_s = parse_duration(args.time_limit)
    except ValueError as exc:
        raise InputError(f"--time-limit: {exc}") from None
    history = load_history(Path(args.history))
    result = check(history, args.model, Deadline(time.monotonic, limit_s))
    if args.json:
        console.print(orjson.dumps(result.to_json(args.examples)).decode(), markup=False, highlight=False)
    else:
        console.print("\n".join(render_text(result, args.examples)), markup=False, highlight=False, soft_wrap=True)
        if result.valid == UNKNOWN:
            console.print(
                f"UNKNOWN: not checked to the end within --time-limit {args.time_limit} (exit {EXIT_UNKNOWN})",
                markup=False,
                highlight=False,
            )
    return exit_code(result)


def exit_code(result: CheckResult) -> int:
    """0 valid, 1 invalid, ``EXIT_UNKNOWN`` unknown."""
    if result.valid == UNKNOWN:
        return EXIT_UNKNOWN
    return int(ExitCode.PASS if result.valid else ExitCode.FAIL)
