"""Where a file stops being UTF-8 text, told as an editor counts lines and columns.

Standard library only: reading the configuration uses it, and that must not load the
generator.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["BadByte", "bad_byte"]


class BadByte(NamedTuple):
    """The first byte of a file that is not UTF-8, and where it is (both from 1)."""

    line: int
    column: int
    byte: int


def bad_byte(data: bytes, exc: UnicodeDecodeError) -> BadByte:
    """Where `data.decode("utf-8")`, which raised `exc`, found its first bad byte."""
    # Everything before it decoded, so its lines and characters are the editor's.
    before = data[: exc.start].decode("utf-8").split("\n")
    return BadByte(len(before), len(before[-1]) + 1, data[exc.start])
