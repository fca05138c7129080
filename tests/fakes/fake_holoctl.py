#!/usr/bin/env python3
"""Stand-in for HoloFusion's `holoctl` CLI, serving the byte-exact fixtures (tests only).

Usage: fake_holoctl.py [--target HOST:PORT] topology|state|split --hex --split-key HEX

Environment:
    FAKE_HOLOCTL_STATE_DIR  (required) directory holding split_calls.jsonl; once a split has
                            been recorded there, topology/state print the *_after_split files.
    FAKE_HOLOCTL_FIXTURES   fixture directory (default: ../fixtures/holofusion beside this file).
    FAKE_HOLOCTL_FAIL_SPLIT=1  split fails (exit 1) and is recorded in failed_split_calls.jsonl.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

USAGE = (
    "Usage: holoctl [--target <TARGET>] <COMMAND>\n\n"
    "Commands:\n  state\n  topology\n  split --hex --split-key <SPLIT_KEY>\n"
)
SPLIT_CALLS = "split_calls.jsonl"
FAILED_SPLIT_CALLS = "failed_split_calls.jsonl"
DEFAULT_TARGET = "127.0.0.1:15051"
_HEX_RE = re.compile(r"(?:[0-9a-fA-F]{2})*")


def _usage_error(message: str) -> int:
    sys.stderr.write(f"error: {message}\n\n{USAGE}\nFor more information, try '--help'.\n")
    return 2


def _append(path: Path, record: dict[str, object]) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def main(argv: list[str]) -> int:
    target = DEFAULT_TARGET
    args = list(argv)
    # Global options come before the subcommand, as with clap.
    while args and args[0].startswith("--"):
        option = args.pop(0)
        if option in ("--help", "-h"):
            sys.stdout.write(USAGE)
            return 0
        if option.startswith("--target="):
            target = option.split("=", 1)[1]
        elif option == "--target":
            if not args:
                return _usage_error("a value is required for '--target <TARGET>' but none was supplied")
            target = args.pop(0)
        else:
            return _usage_error(f"unexpected argument '{option}' found")
    if not args:
        return _usage_error("'holoctl' requires a subcommand but one was not provided")
    command, rest = args[0], args[1:]
    if command not in ("topology", "state", "split"):
        return _usage_error(f"unrecognized subcommand '{command}'")

    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        sys.stderr.write("Error: invalid socket address syntax\n")
        return 1

    state_dir_env = os.environ.get("FAKE_HOLOCTL_STATE_DIR")
    if not state_dir_env:
        sys.stderr.write("fake holoctl: FAKE_HOLOCTL_STATE_DIR must be set\n")
        return 2
    state_dir = Path(state_dir_env)
    fixtures = Path(
        os.environ.get("FAKE_HOLOCTL_FIXTURES") or Path(__file__).resolve().parent.parent / "fixtures" / "holofusion"
    )
    after = (state_dir / SPLIT_CALLS).exists()
    phase = "after_split" if after else "before_split"

    if command in ("topology", "state"):
        if rest:
            return _usage_error(f"unexpected argument '{rest[0]}' found")
        name = f"holoctl_topology_{phase}.txt" if command == "topology" else f"holoctl_state_{phase}.json"
        sys.stdout.buffer.write((fixtures / name).read_bytes())
        sys.stdout.buffer.flush()
        return 0

    hex_flag = False
    split_key: str | None = None
    while rest:
        option = rest.pop(0)
        if option == "--hex":
            hex_flag = True
        elif option.startswith("--split-key="):
            split_key = option.split("=", 1)[1]
        elif option == "--split-key":
            if not rest:
                return _usage_error("a value is required for '--split-key <SPLIT_KEY>' but none was supplied")
            split_key = rest.pop(0)
        else:
            return _usage_error(f"unexpected argument '{option}' found")
    if split_key is None:
        return _usage_error("the following required arguments were not provided:\n  --split-key <SPLIT_KEY>")
    if not hex_flag:
        sys.stderr.write("fake holoctl: only --hex split keys are supported\n")
        return 2
    if len(split_key) % 2 != 0:
        sys.stderr.write("Error: hex string must have even length\n")
        return 1
    if not _HEX_RE.fullmatch(split_key):
        sys.stderr.write("Error: invalid hex character\n")
        return 1

    record: dict[str, object] = {"target": target, "split_key_hex": split_key, "argv": sys.argv}
    if os.environ.get("FAKE_HOLOCTL_FAIL_SPLIT") == "1":
        _append(state_dir / FAILED_SPLIT_CALLS, record)
        sys.stderr.write('Error: status: Unavailable, message: "range split failed: injected by fake holoctl"\n')
        return 1
    _append(state_dir / SPLIT_CALLS, record)
    sys.stdout.write("ok left_shard_id=1 right_shard_id=2\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
