"""HoloFusion `/metrics` over HTTP: fetch the text (core/server/metrics.py parses it)."""

from __future__ import annotations

import aiohttp

from holoload.core.errors import HololoadError


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
