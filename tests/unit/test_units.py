"""Tests for holoload.core.config.units: durations and sizes in, short durations out."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from holoload.core.config.units import format_duration, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("20s", 20.0),
        ("5m", 300.0),
        ("2h", 7200.0),
        ("1.5s", 1.5),
        ("250us", 0.00025),
        ("1h30m", 5400.0),
        ("1m30s", 90.0),
        ("0s", 0.0),
        (" 8s ", 8.0),
    ],
)
def test_parse_duration_reads_units(text: str, seconds: float) -> None:
    """Each supported unit and compound converts to the right number of seconds."""
    assert parse_duration(text) == pytest.approx(seconds)


def test_parse_duration_accepts_timedelta() -> None:
    """A timedelta is unambiguous, so it is accepted as is."""
    assert parse_duration(timedelta(milliseconds=1500)) == 1.5


@pytest.mark.parametrize("value", [5, 2.5, "5", "2.5", True])
def test_parse_duration_rejects_numbers_without_unit(value: object) -> None:
    """A bare number is ambiguous (seconds? milliseconds?) and must carry a unit."""
    with pytest.raises(ValueError, match="expected a duration such as '500ms'"):
        parse_duration(value)


@pytest.mark.parametrize("value", ["fast", "", "8sec", "5s5s", "5s1m", "1.s", None, [1]])
def test_parse_duration_rejects_garbage_with_expectation(value: object) -> None:
    """Unknown units, repeated or out-of-order parts and non-strings say what was expected."""
    with pytest.raises(ValueError, match=r"expected a duration such as '500ms', '20s', '5m' or '2h'"):
        parse_duration(value)


def test_parse_duration_message_shows_the_given_value() -> None:
    """The error quotes what the user wrote."""
    with pytest.raises(ValueError, match=r"got 'fast'$"):
        parse_duration("fast")


@pytest.mark.parametrize("value", ["-5s", timedelta(seconds=-1)])
def test_parse_duration_rejects_negative(value: object) -> None:
    """A negative duration is refused."""
    with pytest.raises(ValueError, match="non-negative duration"):
        parse_duration(value)


@pytest.mark.parametrize(
    ("value", "count"),
    [
        (0, 0),
        (20_000, 20_000),
        ("20000", 20_000),
        ("20_000", 20_000),
        ("20k", 20_000),
        ("20K", 20_000),
        ("1.5M", 1_500_000),
        ("2G", 2_000_000_000),
        ("64KiB", 65_536),
        ("1MiB", 1_048_576),
        ("10MB", 10_000_000),
        (2000.0, 2000),
    ],
)
def test_parse_size_reads_counts_and_suffixes(value: object, count: int) -> None:
    """Plain, underscored, decimal and binary suffixed counts convert exactly."""
    result = parse_size(value)
    assert result == count
    assert type(result) is int


@pytest.mark.parametrize("value", ["1.5", "0.0001k", 2.5])
def test_parse_size_rejects_fractional_results(value: object) -> None:
    """A count that does not come out whole is refused."""
    with pytest.raises(ValueError, match="whole number"):
        parse_size(value)


@pytest.mark.parametrize("value", [-1, "-20k", -3.0])
def test_parse_size_rejects_negative(value: object) -> None:
    """Counts cannot be negative."""
    with pytest.raises(ValueError, match="non-negative count"):
        parse_size(value)


@pytest.mark.parametrize("value", ["lots", "20m", "20 kb", "k", "", True, None])
def test_parse_size_rejects_garbage_with_expectation(value: object) -> None:
    """Unknown suffixes (including lowercase m, which reads as milli) say what was expected."""
    with pytest.raises(ValueError, match=r"expected a count such as 20000"):
        parse_size(value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0s"),
        (850e-6, "850us"),
        (0.812, "812ms"),
        (0.0125, "12.5ms"),
        (1.25, "1.25s"),
        (8.0, "8s"),
        (21.4, "21.4s"),
        (0.9996, "1s"),
        (59.97, "1m"),
        (300.0, "5m"),
        (330.0, "5m30s"),
        (5400.0, "1h30m"),
        (3605.0, "1h5s"),
        (-1.5, "-1.5s"),
    ],
)
def test_format_duration_picks_short_human_form(seconds: float, text: str) -> None:
    """Durations get the largest fitting unit and three significant figures."""
    assert format_duration(seconds) == text


def test_format_duration_rejects_non_finite() -> None:
    """NaN and infinity have no duration form."""
    with pytest.raises(ValueError, match="finite"):
        format_duration(float("inf"))


@given(st.floats(min_value=1e-6, max_value=1e6, allow_nan=False))
def test_format_duration_round_trips_within_one_percent(seconds: float) -> None:
    """Formatting then parsing returns the value within 1%."""
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, rel=0.01)
