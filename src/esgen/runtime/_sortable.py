"""Text forms of decimals and times whose byte order is their Python order (SQLite).

SQLite has no exact decimal type and no time type: a read model keeps both as TEXT, in
forms that its default BINARY collation (UTF-8 bytes, so code points) orders as Python
orders the values, so `ORDER BY`, ranges and indexes work on them as stored.

A decimal is stored as `<sort key> <the text written>`, e.g. `25000002 100.00`:
- the sort key is "1" for every zero (0, -0, 0.000, 0E+5: all equal as Decimals);
  "2" + the adjusted exponent plus `EXPONENT_BIAS` in `EXPONENT_DIGITS` digits + the
  significant digits (no leading nor trailing zeros) for a positive value; for a
  negative one "0" + the nines' complement of both + "~", the terminator that makes a
  shorter magnitude (-1.2) sort after a longer one with the same start (-1.25);
- the text written follows a space, which sorts below every character of a key, so
  values equal as Decimals (1.0, 1.00) share a key and keep their own scale.
Keys compare as the values; the key with its space (`sort_prefix`) is what a query
compares and orders on, so equal values with different scales tie, as in Python.

A time is stored as fixed-width ISO 8601 in UTC (`2026-12-05T09:03:00.000000+00:00`), so
text order is time order whatever offset it was written with.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

__all__ = [
    "EXPONENT_BIAS",
    "EXPONENT_DIGITS",
    "EncodingRangeError",
    "decimal_sort_key",
    "decode_decimal",
    "encode_decimal",
    "sort_prefix",
    "utc_timestamp",
]

EXPONENT_DIGITS = 7
EXPONENT_BIAS = 5_000_000
"""Adjusted exponents from -5,000,000 to 4,999,999 are encodable: every finite result of
Decimal arithmetic in the default context (Emax 999,999) and far beyond."""

_EXPONENT_LIMIT = 10**EXPONENT_DIGITS
_NINES = str.maketrans("0123456789", "9876543210")


class EncodingRangeError(ValueError):
    """A decimal whose exponent is outside what the sort key can hold."""


def decimal_sort_key(value: Decimal) -> str:
    """The key of a finite Decimal: equal keys for equal values, ordered as the values."""
    sign, digits, _ = value.as_tuple()
    if not any(digits):
        return "1"
    adjusted = value.adjusted()
    biased = adjusted + EXPONENT_BIAS
    if not 0 <= biased < _EXPONENT_LIMIT:
        raise EncodingRangeError(
            f"its exponent ({adjusted:+d}) is outside the range a read model can order "
            f"({-EXPONENT_BIAS:+d} to {_EXPONENT_LIMIT - 1 - EXPONENT_BIAS:+d})"
        )
    significant = "".join(map(str, digits)).strip("0")
    if sign == 0:
        return f"2{biased:0{EXPONENT_DIGITS}d}{significant}"
    complement = _EXPONENT_LIMIT - 1 - biased
    return f"0{complement:0{EXPONENT_DIGITS}d}{significant.translate(_NINES)}~"


def encode_decimal(text: str) -> str:
    """The stored form of a decimal written as `text` (finite, as pydantic writes one).

    ValueError if `text` is no finite decimal; `EncodingRangeError` if its exponent is
    out of range."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not a decimal: {text!r}") from None
    if not value.is_finite():
        raise ValueError(f"not a finite decimal: {text!r}")
    if " " in text:  # Decimal() accepts surrounding spaces; the stored form may not hold one
        text = text.strip()
    return f"{decimal_sort_key(value)} {text}"


def decode_decimal(stored: str) -> str:
    """The text a stored decimal was written as."""
    return stored[stored.index(" ") + 1 :]


def sort_prefix(text: str) -> str:
    """What a condition compares a stored decimal's prefix (its key and the space after
    it) with, for the decimal written as `text`. A value beyond the encodable exponents
    (never stored) gets a bound that falls where it would: above every stored value
    ("3"), below every one ("/"), or just beside zero ("2", "1")."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not a decimal: {text!r}") from None
    if not value.is_finite():
        raise ValueError(f"not a finite decimal: {text!r}")
    try:
        return decimal_sort_key(value) + " "
    except EncodingRangeError:
        huge = value.adjusted() > 0
        if value > 0:
            return "3" if huge else "2"
        return "/" if huge else "1"


def utc_timestamp(value: str | datetime) -> str:
    """The stored form of an aware time (a datetime or its ISO text): fixed-width UTC.

    ValueError for a naive time (its instant is unknown) or text that is no ISO time."""
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"not an ISO 8601 time: {value!r}") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(
            f"{moment.isoformat()!r} has no UTC offset: a timestamp column stores instants"
        )
    try:
        return moment.astimezone(UTC).isoformat(timespec="microseconds")
    except OverflowError:
        raise ValueError(f"{moment.isoformat()!r} is outside the years 1 to 9999 in UTC") from None
