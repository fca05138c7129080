"""Error classes for failed operations, decided by SQLSTATE code and never by message text."""

from __future__ import annotations

import re
from enum import StrEnum

__all__ = ["ErrorClass", "ErrorRules", "classify_sqlstate"]


class ErrorClass(StrEnum):
    """What kind of failure an operation met; drives retries and reporting."""

    RETRYABLE = "retryable"
    """Serialization failure, deadlock or too many connections: try again."""
    TIMEOUT = "timeout"
    """The server cancelled the statement (statement_timeout, query_canceled)."""
    GUARDRAIL = "guardrail"
    """A program limit was hit (SQLSTATE class 54), e.g. a statement too complex."""
    CONNECTION = "connection"
    """The connection failed or the server went away, or no server answer at all."""
    CONSTRAINT = "constraint"
    """An integrity constraint was violated (SQLSTATE class 23)."""
    OTHER = "other"
    """Anything else, including malformed codes."""


# Exact codes first: they override the class rules below (57014 and 57P01 share
# class 57 but mean different things).
_BY_CODE: dict[str, ErrorClass] = {
    "40001": ErrorClass.RETRYABLE,  # serialization_failure
    "40P01": ErrorClass.RETRYABLE,  # deadlock_detected
    "53300": ErrorClass.RETRYABLE,  # too_many_connections
    "57014": ErrorClass.TIMEOUT,  # query_canceled (statement_timeout)
    "57P01": ErrorClass.CONNECTION,  # admin_shutdown
    "57P02": ErrorClass.CONNECTION,  # crash_shutdown
    "57P03": ErrorClass.CONNECTION,  # cannot_connect_now
}

# SQLSTATE classes are the first two characters of the code.
_BY_CLASS: dict[str, ErrorClass] = {
    "08": ErrorClass.CONNECTION,  # connection_exception
    "23": ErrorClass.CONSTRAINT,  # integrity_constraint_violation
    "54": ErrorClass.GUARDRAIL,  # program_limit_exceeded
}


def classify_sqlstate(code: str | None) -> ErrorClass:
    """Classify a failed operation by its five-character SQLSTATE code.

    Args:
        code: the SQLSTATE the server sent (case-insensitive), or None when no
            server answer arrived (refused, reset or timed-out connection).

    Returns:
        The error class: exact codes are checked first, then the two-character
        SQLSTATE class; unknown or malformed codes are ``ErrorClass.OTHER``.
    """
    if code is None:
        return ErrorClass.CONNECTION
    normalized = code.strip().upper()
    if len(normalized) != 5 or not normalized.isalnum() or not normalized.isascii():
        return ErrorClass.OTHER
    exact = _BY_CODE.get(normalized)
    if exact is not None:
        return exact
    return _BY_CLASS.get(normalized[:2], ErrorClass.OTHER)


class ErrorRules:
    """A target's message-pattern rules, for systems that report many faults under one code.

    HoloFusion reports storage faults as `XX000` with text; a rule such as
    (`XX000`, `leader not found|shard unavailable`, RETRYABLE) reclassifies them. Rules are
    tried in order; the first whose SQLSTATE (None: any) and pattern both match wins, otherwise
    the SQLSTATE decides. This is the one place message text is read, and only by explicit rules.
    """

    def __init__(self, rules: list[tuple[str | None, str, ErrorClass]] | None = None) -> None:
        self._rules = [(code.upper() if code else None, re.compile(pattern), cls) for code, pattern, cls in rules or []]

    def classify(self, code: str | None, message: str) -> ErrorClass:
        for rule_code, pattern, cls in self._rules:
            if (rule_code is None or rule_code == (code or "").upper()) and pattern.search(message):
                return cls
        return classify_sqlstate(code)

    def __bool__(self) -> bool:
        return bool(self._rules)
