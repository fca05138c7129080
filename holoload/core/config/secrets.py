"""Secrets that must never reach a log, artifact, report or message, and the scrubber that hides them.

Collected from what a run is given: passwords in DSNs (`user:pw@`, `?password=`), userinfo and
token-like query values in URLs, environment variables whose names say they are secret
(PGPASSWORD, *_TOKEN, *PASSWORD*, *SECRET*, *API_KEY*), and chaos `env` values under such
names. `scrub` replaces every occurrence of each literal with `***`, so a secret stays hidden
wherever it ends up quoted (an error message, a command's output, a URL in a failure).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

MASK = "***"
SECRET_NAME = re.compile(r"(?i)pass(word|wd)?|token|secret|api[_-]?key|auth|credential|private[_-]?key")
MIN_LENGTH = 3  # shorter values would mask ordinary text everywhere


def url_secrets(url: str) -> list[str]:
    """The password in a URL's userinfo and the values of its secret-looking query parameters."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return []
    found = [password] if password else []
    found += [value for key, value in parse_qsl(parts.query) if SECRET_NAME.search(key)]
    return found


def env_secrets(env: Mapping[str, str]) -> list[str]:
    """Values of environment variables whose names say they are secret."""
    return [value for name, value in env.items() if SECRET_NAME.search(name)]


class Secrets:
    """A set of literal secrets and the scrubber for them (longest first, so no part survives)."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        unique = {v for v in values if v and len(v) >= MIN_LENGTH and v != MASK}
        self._values = sorted(unique, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(v) for v in self._values)) if self._values else None

    @classmethod
    def collect(cls, *, urls: Iterable[str] = (), env: Mapping[str, str] | None = None) -> Secrets:
        """Secrets from DSNs and URLs and from the environment."""
        values = [s for url in urls for s in url_secrets(url)]
        values += env_secrets(env or {})
        return cls(values)

    def __bool__(self) -> bool:
        return self._pattern is not None

    def scrub(self, text: str) -> str:
        """`text` with every secret replaced by ***."""
        return text if self._pattern is None else self._pattern.sub(MASK, text)

    def scrub_obj(self, value: Any) -> Any:
        """A copy of JSON-like data (dicts, lists, tuples, strings) with every secret hidden."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, Mapping):
            return {k: self.scrub_obj(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.scrub_obj(v) for v in value)
        return value
