"""Tests for holoload.core.outcome: SQLSTATE codes to error classes."""

from __future__ import annotations

import json

import pytest

from holoload.core.outcome import ErrorClass, classify_sqlstate


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("40001", ErrorClass.RETRYABLE),
        ("40P01", ErrorClass.RETRYABLE),
        ("53300", ErrorClass.RETRYABLE),
        ("57014", ErrorClass.TIMEOUT),
        ("54000", ErrorClass.GUARDRAIL),
        ("54001", ErrorClass.GUARDRAIL),
        ("08006", ErrorClass.CONNECTION),
        ("08001", ErrorClass.CONNECTION),
        ("57P01", ErrorClass.CONNECTION),
        ("57P02", ErrorClass.CONNECTION),
        ("57P03", ErrorClass.CONNECTION),
        ("23505", ErrorClass.CONSTRAINT),
        ("23503", ErrorClass.CONSTRAINT),
        ("42P01", ErrorClass.OTHER),
        ("40002", ErrorClass.OTHER),
        ("53100", ErrorClass.OTHER),
        ("57000", ErrorClass.OTHER),
        ("XX000", ErrorClass.OTHER),
    ],
)
def test_classify_sqlstate_maps_codes_to_classes(code: str, expected: ErrorClass) -> None:
    """Exact codes win over their class; classes 08, 23 and 54 map as a whole."""
    assert classify_sqlstate(code) is expected


def test_classify_sqlstate_without_code_is_connection() -> None:
    """No SQLSTATE means the server never answered: a connection problem."""
    assert classify_sqlstate(None) is ErrorClass.CONNECTION


def test_classify_sqlstate_ignores_case() -> None:
    """Codes are compared case-insensitively."""
    assert classify_sqlstate("40p01") is ErrorClass.RETRYABLE


@pytest.mark.parametrize("code", ["", "4000", "400011", "08 01", "0800é"])
def test_classify_sqlstate_malformed_code_is_other(code: str) -> None:
    """A code that is not five ASCII letters/digits is OTHER, even if its prefix matches."""
    assert classify_sqlstate(code) is ErrorClass.OTHER


def test_error_class_values_are_lowercase_strings() -> None:
    """Values serialize as the lowercase names used in reports."""
    assert [c.value for c in ErrorClass] == [
        "retryable",
        "timeout",
        "guardrail",
        "connection",
        "constraint",
        "other",
    ]
    assert json.dumps(ErrorClass.TIMEOUT) == '"timeout"'
