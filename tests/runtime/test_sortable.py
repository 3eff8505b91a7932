"""The SQLite forms of decimals and times: their text order and equality are the values'."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from esgen.runtime._sortable import (
    EXPONENT_BIAS,
    EncodingRangeError,
    decode_decimal,
    encode_decimal,
    sort_prefix,
    utc_timestamp,
)


def _prefix(stored: str) -> str:
    """What SQLite compares: substr(col, 1, instr(col, ' '))."""
    return stored[: stored.index(" ") + 1]


def _cmp(a: object, b: object) -> int:
    return (a > b) - (a < b)  # type: ignore[operator]


# Every form: signs, zeros and -0, scales of one value (1.0, 1.00, 1E+1), integers and
# fractions, exponents far beyond the default context's.
decimals = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False),
    st.decimals(allow_nan=False, allow_infinity=False, places=2),
    st.builds(
        lambda sign, digits, exponent: Decimal((sign, digits, exponent)),
        st.integers(0, 1),
        st.lists(st.integers(0, 9), min_size=1, max_size=30).map(tuple),
        st.integers(-EXPONENT_BIAS + 40, EXPONENT_BIAS - 40),
    ),
    st.sampled_from(
        [Decimal(t) for t in ("0", "-0", "0.00", "0E+7", "1", "1.0", "1.00", "10E-1", "-1.0")]
    ),
)
# Text as pydantic writes a Decimal in JSON mode.
texts = decimals.map(str)


@given(texts, texts)
@example("1.0", "1.00")
@example("-0", "0.000")
@example("-1.2", "-1.25")
@example("-1", "-1.0000001")
@example("100.00", "20.00")
@example("3.00", "-400.00")
@example("9.99E+999999", "1E+1000000")
def test_order_and_equality_are_the_decimals(a: str, b: str) -> None:
    stored_a, stored_b = encode_decimal(a), encode_decimal(b)
    assert _cmp(_prefix(stored_a), _prefix(stored_b)) == _cmp(Decimal(a), Decimal(b))
    # The bound a query compares with is the stored prefix itself.
    assert sort_prefix(b) == _prefix(stored_b)
    # Whole stored texts order as the values too, unless they are equal (then: by text).
    if Decimal(a) != Decimal(b):
        assert _cmp(stored_a, stored_b) == _cmp(Decimal(a), Decimal(b))


@given(texts)
@example("100.00")
@example("-0")
@example("1E+5")
@example("-0.000000E-12")
def test_the_exact_text_comes_back(text: str) -> None:
    decoded = decode_decimal(encode_decimal(text))
    assert decoded == text
    assert Decimal(decoded).as_tuple() == Decimal(text).as_tuple()


@given(st.integers(-(10**30), 10**30), st.integers(-30, 30))
def test_integers_and_fractions_sort_as_numbers(n: int, shift: int) -> None:
    value = Decimal(n).scaleb(shift)
    assert _cmp(sort_prefix(str(value)), sort_prefix("0")) == _cmp(value, 0)


def test_exponents_beyond_the_range_are_refused_and_compare_where_they_would_fall() -> None:
    for text in ("1E+5000000", "-1E+5000000", "1E-5000001", "-1E-5000001"):
        with pytest.raises(EncodingRangeError, match="exponent"):
            encode_decimal(text)
    largest = _prefix(encode_decimal("9.9E+4999999"))
    smallest = _prefix(encode_decimal("-9.9E+4999999"))
    tiny = _prefix(encode_decimal("1E-5000000"))
    negative_tiny = _prefix(encode_decimal("-1E-5000000"))
    assert sort_prefix("1E+5000000") > largest
    assert sort_prefix("-1E+5000000") < smallest
    assert "1 " > sort_prefix("-1E-5000001") > negative_tiny
    assert "1 " < sort_prefix("1E-5000001") < tiny


def test_no_number_is_no_decimal() -> None:
    for text in ("abc", "NaN", "-Infinity", ""):
        with pytest.raises(ValueError, match="decimal"):
            encode_decimal(text)


@given(
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))])),
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-9))])),
)
def test_times_order_as_instants_whatever_their_offset(a: datetime, b: datetime) -> None:
    try:
        stored_a, stored_b = utc_timestamp(a), utc_timestamp(b)
    except ValueError:
        return  # beyond year 1..9999 once in UTC
    assert len(stored_a) == len(stored_b) == 32
    assert _cmp(stored_a, stored_b) == _cmp(a, b)
    assert datetime.fromisoformat(stored_a) == a
    assert utc_timestamp(a.isoformat()) == stored_a


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="no UTC offset"):
        utc_timestamp("2026-12-05T09:03:00")
    assert utc_timestamp("2026-12-05T10:03:00+01:00") == "2026-12-05T09:03:00.000000+00:00"
    assert utc_timestamp("2026-12-05T09:03:00Z") == "2026-12-05T09:03:00.000000+00:00"
