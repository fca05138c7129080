"""Helpers shared by both test tiers: repository paths, fixture files, a free loopback port.

The submodules hold the rest, each imported by more than one test module:
``runs`` (holoload runs in a subprocess or in-process, and their results directories),
``engine`` (in-process engine runs against the session's PostgreSQL), ``html`` (report.html read
as XML), ``browser`` (headless Chromium and a PNG decoder), ``topology`` (hand-made holoctl tables).
"""

from __future__ import annotations

import socket
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
REPO = TESTS.parent
FIXTURES = TESTS / "fixtures" / "holofusion"
SHARED_FIXTURES = REPO.parent / "shared" / "fixtures" / "holofusion"
FAKES = TESTS / "fakes"


def fixture_text(name: str) -> str:
    """A HoloFusion fixture file's text, decoded as UTF-8 whatever the platform's default."""
    return (FIXTURES / name).read_bytes().decode("utf-8")


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
