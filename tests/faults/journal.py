"""Side files the fault workers keep next to the store: what a process knows for certain.

A line is written with one `os.write` after the fact it records, so a process killed with
SIGKILL leaves whole lines only (at worst without the last one); readers still drop a
trailing partial line, in case a write was cut short anyway.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["Journal", "read_lines"]


class Journal:
    """An append-only text file; `write(..., sync=True)` returns once the lines are on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, lines: Iterable[str], *, sync: bool = False) -> None:
        text = "".join(f"{line}\n" for line in lines)
        if text:
            os.write(self._fd, text.encode())
            if sync:
                os.fsync(self._fd)

    def close(self) -> None:
        os.close(self._fd)


def read_lines(path: Path) -> list[str]:
    """The complete lines of a journal (none if it does not exist)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    lines = text.split("\n")
    return lines[:-1]  # the last piece is "" after a complete line, else a torn one
