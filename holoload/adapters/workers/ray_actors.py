"""Worker engines as Ray actors (`--ray ADDRESS`, extra `holoload[ray]`).

Ray places the actors across its cluster (spread over nodes, one CPU each) and carries the
calls; holoload adds no protocol of its own. Each actor is the same worker engine a local
worker process runs, so windows, ledgers and losses are handled exactly as for processes.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from holoload.adapters.workers.local import WorkerFailed
from holoload.core.errors import SetupError, WorkerLost

LOCAL = "local"


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise SetupError("--ray needs Ray: pip install 'holoload[ray]'") from exc
    return ray


class RayCluster:
    """A connection to a Ray cluster (or, for address 'local', a Ray instance started here).

    Args:
        address: a Ray address ('auto', 'ray://host:10001', 'host:6379') or 'local'.
        engine_class: the worker engine class each actor runs.
    """

    def __init__(self, address: str, engine_class: type) -> None:
        self.address = address
        self.engine_class = engine_class
        self._actor_class: Any = None
        self._started = False

    def connect(self) -> None:
        ray = _ray()
        if not ray.is_initialized():
            try:
                local = {"_node_ip_address": "127.0.0.1"} if self.address == LOCAL else {}  # stay on loopback
                ray.init(
                    address=None if self.address == LOCAL else self.address,
                    include_dashboard=False,
                    log_to_driver=False,
                    configure_logging=False,
                    **local,
                )
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise SetupError(f"--ray {self.address}: cannot connect to Ray: {exc}") from exc
            self._started = True
        self._actor_class = ray.remote(num_cpus=1, max_restarts=0)(self.engine_class)

    def launcher(self, slot: int, spec: object) -> RayWorker:
        if self._actor_class is None:
            self.connect()
        return RayWorker(slot, spec, self._actor_class)

    def close(self) -> None:
        if self._started:
            _ray().shutdown()
            self._started = False


class RayWorker:
    """One worker engine as a Ray actor; `call` maps Ray's failures onto holoload's."""

    def __init__(self, slot: int, spec: object, actor_class: Any) -> None:
        self.slot = slot
        self.spec = spec
        self.actor_class = actor_class
        self.actor: Any = None

    async def start(self) -> None:
        self.actor = self.actor_class.options(scheduling_strategy="SPREAD").remote(self.spec)

    async def call(self, method: str, *args: object, timeout_s: float | None = None) -> Any:
        ray = _ray()
        if self.actor is None:
            raise WorkerLost(self.slot, "not started")
        ref = getattr(self.actor, method).remote(*args)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(ref.future()), timeout_s)
        except TimeoutError as exc:
            self.kill()
            raise WorkerLost(self.slot, f"no answer to {method} within {timeout_s:g}s; killed the actor") from exc
        except ray.exceptions.RayActorError as exc:
            raise WorkerLost(self.slot, f"Ray actor died: {str(exc).splitlines()[0]}") from exc
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, SetupError):
                raise SetupError(str(cause)) from exc
            raise WorkerFailed(f"worker {self.slot}: {method} failed: {cause or exc}") from exc

    def kill(self) -> None:
        if self.actor is not None:
            with contextlib.suppress(Exception):
                _ray().kill(self.actor, no_restart=True)

    async def close(self, timeout_s: float = 10.0) -> None:
        self.kill()
        self.actor = None
