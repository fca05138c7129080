"""HoloFusion `/metrics` over HTTP: fetch the text and parse its `name=value` lines."""

from __future__ import annotations

import aiohttp

from holoload.core.errors import HololoadError
from holoload.core.metrics import parse_holofusion

MetricValue = int | float | str


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
    """HoloFusion `name=value` lines as a dict (a repeated name keeps its last value).

    The parsing rules are `holoload.core.metrics.parse_holofusion`'s.

    Raises:
        ValueError: a non-blank line has no `=` or an empty name (the message gives its number).
    """
    return {s.name: s.value for s in parse_holofusion(text)}


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
