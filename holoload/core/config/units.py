"""Parse and format the durations and sizes that scenario files and gates are written in."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from decimal import Decimal, InvalidOperation

__all__ = ["format_duration", "parse_duration", "parse_size"]

# Wrong types raise ValueError, not TypeError (hence the TRY004 waivers): pydantic
# BeforeValidators turn ValueError into a located validation error, TypeError escapes.

# Seconds per duration unit, largest first: compound durations ("1h30m") must list
# their units in this order, each at most once.
_DURATION_UNITS: dict[str, Decimal] = {
    "h": Decimal(3600),
    "m": Decimal(60),
    "s": Decimal(1),
    "ms": Decimal("0.001"),
    "us": Decimal("0.000001"),
    "µs": Decimal("0.000001"),
}
_UNIT_RANK: dict[str, int] = {"h": 0, "m": 1, "s": 2, "ms": 3, "us": 4, "µs": 4}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|µs)")
_DURATION_EXPECTED = "a duration such as '500ms', '20s', '5m' or '2h'"

# Size suffixes: decimal (k, M, G, T; K accepted for k) and binary (Ki, Mi, Gi, Ti),
# each optionally followed by "B". Lowercase "m" is not accepted: it reads as "milli".
_SIZE_MULTIPLIERS: dict[str, int] = {
    "": 1,
    "k": 10**3,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}
_SIZE_PATTERN = re.compile(r"(\d+(?:_\d+)*(?:\.\d+)?)\s*(Ki|Mi|Gi|Ti|k|K|M|G|T|)B?")
_SIZE_EXPECTED = "a count such as 20000, '20_000', '20k', '1.5M', '2G' or '64KiB'"


def parse_duration(value: object) -> float:
    """Parse a duration written with explicit units into seconds.

    Args:
        value: a string such as "500ms", "20s", "5m", "2h", "1.5s", "250us" or a
            compound "1h30m" (units largest first, each once); a ``timedelta`` is
            accepted too. Bare numbers are rejected because their unit is ambiguous.

    Returns:
        The duration in seconds, never negative.

    Raises:
        ValueError: the value is not a non-negative duration with units; the message
            says what was expected and what was given.
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
        if seconds < 0:
            raise ValueError(f"expected a non-negative duration, got {value!r}")
        return seconds
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"expected {_DURATION_EXPECTED}, got {value!r}")  # noqa: TRY004
    if isinstance(value, (int, float)):
        raise ValueError(  # noqa: TRY004
            f"expected {_DURATION_EXPECTED}, got the bare number {value!r}; add a unit (us, ms, s, m or h)"
        )
    text = value.strip()
    if text.startswith("-"):
        raise ValueError(f"expected a non-negative duration, got {value!r}")
    total = _parse_duration_parts(text)
    if total is None:
        if _is_plain_number(text):
            raise ValueError(f"expected {_DURATION_EXPECTED}, got {value!r}; add a unit (us, ms, s, m or h)")
        raise ValueError(f"expected {_DURATION_EXPECTED}, got {value!r}")
    return float(total)


def _parse_duration_parts(text: str) -> Decimal | None:
    """Sum the ``<number><unit>`` parts of ``text``, or None if it is not a duration."""
    position = 0
    total = Decimal(0)
    last_rank = -1
    while position < len(text):
        match = _DURATION_PART.match(text, position)
        if match is None:
            return None
        number, unit = match.groups()
        rank = _UNIT_RANK[unit]
        if rank <= last_rank:
            return None  # "5s1m" or "5s5s": almost certainly a typo, not a sum
        last_rank = rank
        total += Decimal(number) * _DURATION_UNITS[unit]
        position = match.end()
    return total if position > 0 else None


def _is_plain_number(text: str) -> bool:
    """True when ``text`` is a number without any unit."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse_size(value: object) -> int:
    """Parse a row or byte count, with optional decimal or binary suffix.

    Args:
        value: an int >= 0 (or an integral float), or a string such as "20000",
            "20_000", "20k" (20,000), "1.5M" (1,500,000), "2G", "64KiB" (65,536) or
            "1MiB". A trailing "B" is optional.

    Returns:
        The count as a non-negative integer.

    Raises:
        ValueError: the value is negative, not a number with a known suffix, or does
            not come out as a whole number (such as "1.5" or "0.0001k").
    """
    if isinstance(value, bool):
        raise ValueError(f"expected {_SIZE_EXPECTED}, got {value!r}")  # noqa: TRY004
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"expected a non-negative count, got {value!r}")
        return value
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise ValueError(f"expected a whole number for a count, got {value!r}")
        if value < 0:
            raise ValueError(f"expected a non-negative count, got {value!r}")
        return int(value)
    if not isinstance(value, str):
        raise ValueError(f"expected {_SIZE_EXPECTED}, got {value!r}")  # noqa: TRY004
    text = value.strip()
    if text.startswith("-"):
        raise ValueError(f"expected a non-negative count, got {value!r}")
    match = _SIZE_PATTERN.fullmatch(text)
    if match is None:
        raise ValueError(f"expected {_SIZE_EXPECTED}, got {value!r}")
    number, suffix = match.groups()
    try:
        amount = Decimal(number.replace("_", "")) * _SIZE_MULTIPLIERS[suffix]
    except InvalidOperation:  # pragma: no cover - the pattern only admits valid numbers
        raise ValueError(f"expected {_SIZE_EXPECTED}, got {value!r}") from None
    if amount != amount.to_integral_value():
        raise ValueError(f"expected a whole number for a count, got {value!r} (= {amount})")
    return int(amount)


def format_duration(seconds: float) -> str:
    """Format seconds in a short human form that ``parse_duration`` reads back.

    Below one minute the value keeps three significant figures in the largest fitting
    unit ("850us", "812ms", "1.25s", "8s", "21.4s"); from one minute on it is rounded
    to whole seconds and shown as hours/minutes/seconds ("5m", "5m30s", "1h30m").
    Values of 1us and more round-trip through ``parse_duration`` within 1%.

    Args:
        seconds: the duration; negative values get a leading "-".

    Returns:
        The formatted duration, such as "1.25s".

    Raises:
        ValueError: ``seconds`` is NaN or infinite.
    """
    if not math.isfinite(seconds):
        raise ValueError(f"expected a finite number of seconds, got {seconds!r}")
    if seconds < 0:
        return "-" + format_duration(-seconds)
    if seconds == 0:
        return "0s"
    for unit, scale in (("us", 1e6), ("ms", 1e3), ("s", 1.0)):
        scaled = _three_figures(seconds * scale)
        # Promote once rounding reaches the next unit: 999.6ms is "1s", not "1e+03ms".
        limit = 60.0 if unit == "s" else 1000.0
        if scaled < limit:
            if unit == "us" and scaled < 1:
                return f"{round(seconds * scale, 3):g}us"
            return f"{scaled:g}{unit}"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(hours, "h"), (minutes, "m"), (secs, "s")]
    return "".join(f"{amount}{unit}" for amount, unit in parts if amount)


def _three_figures(value: float) -> float:
    """Round a positive value to three significant figures."""
    return float(f"{value:.3g}")


_RATE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(k|M|)\s*/\s*(s|min|m|h)\s*")
_RATE_SCALES = {"": 1.0, "k": 1e3, "M": 1e6}
_PER = {"s": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0}


def parse_rate(value: object) -> object:
    """Operations per second from a number or a rate as gates write it: "300/s", "1.5k/s", "600/min".

    Anything else is returned unchanged for the field's own type check to reject.
    """
    if isinstance(value, str):
        m = _RATE.fullmatch(value)
        if m:
            return float(m[1]) * _RATE_SCALES[m[2]] / _PER[m[3]]
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"expected a rate such as 300/s, 1.5k/s or 600/min, got {value!r}") from None
    return value
