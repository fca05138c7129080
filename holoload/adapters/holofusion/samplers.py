"""Periodic HTTP samplers of a node's `/metrics` and health surfaces; failures are outcomes, never raised."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import anyio

from holoload.adapters.holofusion.metrics_http import MetricsFetchError, fetch_text
from holoload.core.errors import SetupError

#: `on_sample(node, ts_s, text_or_None, error_or_None)`: exactly one of text and error is set.
OnSample = Callable[[str, float, str | None, str | None], None]
#: What one GET may raise besides our own errors; each becomes an error outcome.
HTTP_ERRORS = (aiohttp.ClientError, OSError, TimeoutError, UnicodeDecodeError, ValueError)
_DETAIL_MAX_CHARS = 200


async def _next_tick(interval_s: float, started: float, tick: int) -> int:
    """Sleep until the tick after `tick` on a fixed schedule (ticks missed by a slow poll are skipped).

    Returns:
        The index of the tick slept to.
    """
    elapsed_ticks = int((anyio.current_time() - started) / interval_s)
    tick = max(tick + 1, elapsed_ticks + 1)
    await anyio.sleep_until(started + tick * interval_s)
    return tick


class _Poller:
    """A periodic poll of one node: `poll_once` every `interval_s` on a fixed schedule."""

    interval_s: float

    def __init__(self, node: str, interval_s: float, timeout_s: float, clock: Callable[[], float]) -> None:
        if interval_s <= 0 or timeout_s <= 0:
            raise ValueError("interval_s and timeout_s must be positive")
        self.node = node
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self._clock = clock
        self.successes = 0
        self.failures = 0

    async def poll_once(self) -> object:
        raise NotImplementedError

    async def run(self) -> None:
        """Poll at once, then every `interval_s`, until cancelled."""
        started = anyio.current_time()
        tick = 0
        while True:
            await self.poll_once()
            tick = await _next_tick(self.interval_s, started, tick)


class MetricsSampler(_Poller):
    """Polls one node's `/metrics` every `interval_s` and hands each body (or error) on.

    Args:
        node: the node's name, passed back to `on_sample`.
        url: e.g. "http://10.0.0.5:18081/metrics".
        interval_s: time between poll starts (fixed schedule; a slow poll skips ticks).
        timeout_s: bound on one poll, body included.
        session: caller-owned aiohttp session.
        on_sample: called after every poll; it should not raise (an exception from it is a
            bug of the consumer and propagates).
        clock: wall clock for the `ts` given to `on_sample` (the poll's start).
    """

    def __init__(
        self,
        node: str,
        url: str,
        *,
        interval_s: float = 1.0,
        timeout_s: float = 2.0,
        session: aiohttp.ClientSession,
        on_sample: OnSample,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(node, interval_s, timeout_s, clock)
        self.url = url
        self._session = session
        self._on_sample = on_sample
        self.last_error: str | None = None

    async def poll_once(self) -> bool:
        """GET the URL once (bounded by `timeout_s`) and report the outcome to `on_sample`.

        Returns:
            True if a body was read, False if the poll failed (the error went to `on_sample`).
        """
        ts = self._clock()
        text: str | None = None
        error: str | None = None
        try:
            with anyio.fail_after(self.timeout_s):
                # aiohttp's own bound is only a backstop, so a timeout always reads the same.
                text = await fetch_text(self._session, self.url, timeout_s=self.timeout_s + 1.0)
        except MetricsFetchError as exc:
            error = str(exc)
        except TimeoutError:
            error = f"GET {self.url} failed: timed out after {self.timeout_s:g}s"
        except HTTP_ERRORS as exc:
            error = f"GET {self.url} failed: {exc or type(exc).__name__}"
        if text is None:
            self.failures += 1
            self.last_error = error
        else:
            self.successes += 1
        self._on_sample(self.node, ts, text, error)
        return text is not None


@dataclass(frozen=True, slots=True)
class HealthObservation:
    """One poll of a node's `/live`, `/ready` and `/state`.

    `live`/`ready` are None when the endpoint gave no usable answer (no response, or a
    3xx/4xx status); a 5xx is False. `state` comes from `/state` (JSON `{"state": ...}` or a
    plain text body). `detail` is the state's detail, else a not-ready body. `error` joins the
    transport errors and unusable statuses, None when every endpoint answered.
    """

    node: str
    ts: float
    live: bool | None
    ready: bool | None
    state: str | None
    detail: str | None
    error: str | None

    def describe(self) -> str:
        """A short human-readable status, e.g. `ready=False state=Bootstrapping (catching up)`."""
        parts = [f"live={self.live}", f"ready={self.ready}", f"state={self.state}"]
        if self.detail:
            parts.append(f"({self.detail})")
        if self.error:
            parts.append(f"error: {self.error}")
        return " ".join(parts)


@dataclass(slots=True)
class _Response:
    status: int | None = None
    body: str = ""
    error: str | None = None


class HealthSampler(_Poller):
    """Polls one node's `/live`, `/ready` and `/state` concurrently every `interval_s`.

    Args:
        node: the node's name.
        base_url: e.g. "http://10.0.0.5:18081" (no trailing path).
        interval_s: time between poll starts.
        timeout_s: bound on one poll (the three requests run concurrently).
        session: caller-owned aiohttp session.
        on_observation: called after every poll; like `on_sample`, it should not raise.
        clock: wall clock for the observation's `ts` (the poll's start).
    """

    def __init__(
        self,
        node: str,
        base_url: str,
        *,
        interval_s: float = 1.0,
        timeout_s: float = 2.0,
        session: aiohttp.ClientSession,
        on_observation: Callable[[HealthObservation], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(node, interval_s, timeout_s, clock)
        self.base_url = base_url.rstrip("/")
        self._session = session
        self._on_observation = on_observation
        self.last: HealthObservation | None = None

    async def poll_once(self) -> HealthObservation:
        """GET `/live`, `/ready` and `/state` once, bounded by `timeout_s`.

        Returns:
            The observation (also passed to `on_observation`).
        """
        ts = self._clock()
        responses = {path: _Response() for path in ("live", "ready", "state")}
        with anyio.move_on_after(self.timeout_s) as scope:
            async with anyio.create_task_group() as tg:
                for path, response in responses.items():
                    tg.start_soon(self._get, f"{self.base_url}/{path}", response)
        if scope.cancelled_caught:
            for response in responses.values():
                if response.status is None and response.error is None:
                    response.error = f"timed out after {self.timeout_s:g}s"
        observation = _observation(self.node, ts, responses)
        if observation.error is None:
            self.successes += 1
        else:
            self.failures += 1
        self.last = observation
        if self._on_observation is not None:
            self._on_observation(observation)
        return observation

    async def _get(self, url: str, response: _Response) -> None:
        try:
            timeout = aiohttp.ClientTimeout(total=self.timeout_s)
            async with self._session.get(url, timeout=timeout) as http:
                response.body = (await http.read()).decode("utf-8")
                response.status = http.status
        except HTTP_ERRORS as exc:
            response.error = str(exc) or type(exc).__name__


def _flag(response: _Response) -> bool | None:
    if response.status is None or 300 <= response.status < 500:
        return None
    return response.status < 300


def _observation(node: str, ts: float, responses: dict[str, _Response]) -> HealthObservation:
    state: str | None = None
    detail: str | None = None
    state_response = responses["state"]
    if state_response.status is not None and (state_response.status < 300 or state_response.status >= 500):
        state, detail = parse_state(state_response.body)
    ready_response = responses["ready"]
    ready = _flag(ready_response)
    if detail is None and ready is False and ready_response.body.strip():
        detail = ready_response.body.strip()[:_DETAIL_MAX_CHARS]
    errors = []
    for path, response in responses.items():
        if response.error is not None:
            errors.append(f"/{path}: {response.error}")
        elif response.status is not None and 300 <= response.status < 500:
            errors.append(f"/{path}: HTTP {response.status}")
    return HealthObservation(
        node=node,
        ts=ts,
        live=_flag(responses["live"]),
        ready=ready,
        state=state,
        detail=detail,
        error="; ".join(errors) or None,
    )


def parse_state(body: str) -> tuple[str | None, str | None]:
    """Read a `/state` body: JSON `{"state": "Ready", "detail": ...}`, a JSON string, or plain text.

    Args:
        body: the response body.

    Returns:
        (state, detail); a non-string detail is rendered as compact JSON, and an empty body
        gives (None, None).
    """
    text = body.strip()
    if not text:
        return None, None
    try:
        document = json.loads(text)
    except ValueError:
        return text.splitlines()[0][:_DETAIL_MAX_CHARS], None
    if isinstance(document, str):
        return document, None
    if not isinstance(document, dict) or "state" not in document:
        return None, text[:_DETAIL_MAX_CHARS]
    state = document["state"]
    detail = document.get("detail")
    if detail is not None and not isinstance(detail, str):
        detail = json.dumps(detail, separators=(",", ":"), sort_keys=True)
    return (state if isinstance(state, str) else json.dumps(state)), (detail[:_DETAIL_MAX_CHARS] if detail else None)


async def wait_ready(
    nodes: list[tuple[str, str]],
    *,
    timeout_s: float,
    session: aiohttp.ClientSession,
    interval_s: float = 0.5,
) -> None:
    """Wait until every node's `/ready` answers 2xx, polling the others every `interval_s`.

    Args:
        nodes: (node name, base URL such as "http://10.0.0.5:18081") pairs.
        timeout_s: bound on the whole wait.
        session: caller-owned aiohttp session.
        interval_s: time between polls of a node not ready yet.

    Raises:
        SetupError: `timeout_s` passed; the message names each node not ready and its last status.
    """
    samplers = {
        node: HealthSampler(node, url, interval_s=interval_s, timeout_s=min(timeout_s, 2.0), session=session)
        for node, url in nodes
    }
    pending = set(samplers)

    async def until_ready(sampler: HealthSampler) -> None:
        started = anyio.current_time()
        tick = 0
        while (await sampler.poll_once()).ready is not True:
            tick = await _next_tick(interval_s, started, tick)
        pending.discard(sampler.node)

    with anyio.move_on_after(timeout_s):
        async with anyio.create_task_group() as tg:
            for sampler in samplers.values():
                tg.start_soon(until_ready, sampler)
    if pending:
        statuses = []
        for node in sorted(pending):
            last = samplers[node].last
            statuses.append(f"{node}: {last.describe() if last else 'no answer yet'}")
        raise SetupError(f"nodes not ready after {timeout_s:g}s: " + "; ".join(statuses))
