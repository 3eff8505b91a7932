"""Text from a store or a schema, made safe to print: one line, nothing a terminal obeys.

Event types, stream ids, actors and payloads are written by applications and, in a store
under attack, by anyone: a newline in an actor name would forge a line of an audit table,
an escape sequence would rewrite the terminal. Standard library only.
"""

from __future__ import annotations

__all__ = ["printable"]


def printable(text: str) -> str:
    """`text` with every character that is not printable (control and format characters,
    line and paragraph separators, lone surrogates) spelled out as Python writes it
    (`\\n`, `\\x1b`, `\\u202e`); a printable text is returned as it is."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
