"""HoloFusion `/metrics` over HTTP: fetch the text and parse its `name=value` lines."""

from __future__ import annotations

import re

import aiohttp

from holoload.core.errors import HololoadError

MetricValue = int | float | str

_INT_RE = re.compile(r"[+-]?\d+", re.ASCII)
_FLOAT_RE = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?", re.ASCII)
# What Rust's f64 Display prints for non-finite values.
_SPECIAL_FLOATS = {"NaN", "inf", "-inf", "+inf"}


class MetricsFetchError(HololoadError):
    """A `/metrics` (or other text endpoint) request failed.

    Args:
        url: the URL requested.
        cause: the underlying error (connection, timeout, HTTP status, decoding).
    """

    def __init__(self, url: str, cause: BaseException) -> None:
        self.url = url
        self.cause = cause
        detail = str(cause) or type(cause).__name__
        super().__init__(f"GET {url} failed: {detail}")


def parse_metrics_text(text: str) -> dict[str, MetricValue]:
    """Parse HoloFusion `name=value` lines.

    Integers stay int, decimals/exponents (and NaN/inf) become float, anything else is kept as
    a str, including the empty string (`ingest_job_0_last_error=`). The value is everything
    after the first `=`; surrounding whitespace is trimmed. Blank lines are skipped; a
    repeated name keeps its last value.

    Raises:
        ValueError: a non-blank line has no `=` or an empty name (the message gives its number).
    """
    metrics: dict[str, MetricValue] = {}
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, raw = line.partition("=")
        name = name.strip()
        if not sep:
            raise ValueError(f"metrics line {line_no}: expected name=value, got {line[:80]!r}")
        if not name:
            raise ValueError(f"metrics line {line_no}: empty metric name in {line[:80]!r}")
        metrics[name] = _value(raw.strip())
    return metrics


def _value(raw: str) -> MetricValue:
    if _INT_RE.fullmatch(raw):
        return int(raw)
    if _FLOAT_RE.fullmatch(raw) or raw in _SPECIAL_FLOATS:
        return float(raw)
    return raw


async def fetch_text(session: aiohttp.ClientSession, url: str, *, timeout_s: float = 5.0) -> str:
    """GET `url` and return its body as UTF-8 text.

    Args:
        session: caller-owned session (reused across samples).
        url: e.g. "http://10.0.0.5:18081/metrics".
        timeout_s: bound on the whole request, body included.

    Returns:
        The body, decoded as UTF-8.

    Raises:
        MetricsFetchError: connection failure, timeout, non-2xx status or undecodable body.
    """
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
            response.raise_for_status()
            body = await response.read()
        return body.decode("utf-8")
    except (aiohttp.ClientError, TimeoutError, UnicodeDecodeError, ValueError) as exc:
        raise MetricsFetchError(url, exc) from exc
