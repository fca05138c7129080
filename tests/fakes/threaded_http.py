"""Runs the fake HoloFusion HTTP surface on its own thread and loop, for tests that call the CLI."""

from __future__ import annotations

import asyncio
import threading
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from types import TracebackType

from tests.fakes.holofusion_http import serve


class ThreadedFakeHoloFusion:
    """`with ThreadedFakeHoloFusion(fixtures, state) as base_url:` serves until the block ends."""

    def __init__(self, fixtures_dir: Path, state_dir: Path) -> None:
        self._fixtures = fixtures_dir
        self._state = state_dir
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-holofusion", daemon=True)
        self._server: AbstractAsyncContextManager[str] | None = None

    def __enter__(self) -> str:
        self._thread.start()
        self._server = serve(self._fixtures, self._state)
        return asyncio.run_coroutine_threadsafe(self._server.__aenter__(), self._loop).result(10)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        asyncio.run_coroutine_threadsafe(self._server.__aexit__(None, None, None), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
