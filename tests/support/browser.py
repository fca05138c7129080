"""Headless Chromium for tests that render a report, and a pure-Python PNG decoder for its screenshots."""

from __future__ import annotations

import os
import shutil
import signal
import struct
import subprocess
import zlib
from itertools import accumulate
from pathlib import Path

import pytest


def find_browser() -> str:
    """The chromium binary; a skip when it is missing, a failure in CI (which must install it)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("chromium is not installed (CI must apt-get install chromium)")
    pytest.skip("chromium is not installed (apt-get install chromium)")


def run_browser(browser: str, args: list[str], home: Path, timeout_s: float = 90) -> bytes:
    """Run headless Chromium in its own process group with its own profile; nothing survives it."""
    profile = home / "profile"
    cmd = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        *args,
    ]
    env = {**os.environ, "HOME": str(home)}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"chromium took longer than {timeout_s}s: {' '.join(cmd)}")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # helpers (zygote, crashpad) left in the group
        except ProcessLookupError:
            pass
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    return out


def decode_png(data: bytes) -> tuple[int, int, int, list[bytes]]:
    """(width, height, bytes per pixel, rows) of an 8-bit non-interlaced RGB(A) PNG, in pure Python."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, ihdr, idat = 8, b"", []
    while pos + 8 <= len(data):
        (size,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + size]
        pos += 12 + size
        ihdr = body if kind == b"IHDR" else ihdr
        idat += [body] if kind == b"IDAT" else []
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", ihdr)
    assert depth == 8 and interlace == 0 and color in (2, 6), (depth, color, interlace)
    bpp = 3 if color == 2 else 4
    stride = width * bpp
    raw = zlib.decompress(b"".join(idat))
    low7, high = int.from_bytes(b"\x7f" * stride, "big"), int.from_bytes(b"\x80" * stride, "big")
    prior, rows = bytes(stride), []
    for y in range(height):
        kind, line = raw[y * (stride + 1)], raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]
        if kind == 0:
            row = bytes(line)
        elif kind == 1:  # Sub: a running sum per channel
            out = bytearray(line)
            for c in range(bpp):
                out[c::bpp] = bytes(v & 255 for v in accumulate(line[c::bpp]))
            row = bytes(out)
        elif kind == 2:  # Up: bytewise add, no carry between bytes
            a, b = int.from_bytes(line, "big"), int.from_bytes(prior, "big")
            row = (((a & low7) + (b & low7)) ^ ((a ^ b) & high)).to_bytes(stride, "big")
        else:  # Average or Paeth, byte by byte
            out = bytearray(line)
            for i in range(stride):
                left, up = (out[i - bpp] if i >= bpp else 0), prior[i]
                if kind == 3:
                    out[i] = (out[i] + ((left + up) >> 1)) & 255
                    continue
                corner = prior[i - bpp] if i >= bpp else 0
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                out[i] = (out[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
            row = bytes(out)
        rows.append(row)
        prior = row
    return width, height, bpp, rows
