"""Escaping schema text for Markdown and Mermaid (HTML is escaped by Jinja's autoescape).

Descriptions, defaults and patterns are free text written by whoever edits a schema; in
the catalog they must read as the text they are, never as markup: no tags, links,
emphasis, headings, table cells or Mermaid syntax may come out of them.
"""

from __future__ import annotations

import re

__all__ = ["html_comment", "md_cell_code", "md_code", "md_text", "mermaid_label"]

# Characters that mean something to CommonMark or GitHub's extensions wherever they stand
# (emphasis, code, links and images, table cells, strikethrough, math); a backslash makes
# any ASCII punctuation literal. `<`, `>` and `&` become entities instead, which every
# renderer (and raw HTML blocks) reads as text. Parentheses need nothing: without an
# unescaped `]` before them they cannot form a link.
_MD_SPECIAL = frozenset("\\`*_[]|~$")
_MD_ENTITIES = {"<": "&lt;", ">": "&gt;", "&": "&amp;"}
# At the start of a line these open a heading, a list or a heading underline.
_LINE_START = re.compile(r"^(?:[-+=#]|\d+[.)])")


def md_text(text: str) -> str:
    """Inline Markdown that shows exactly `text`, on one line (safe in a table cell too)."""
    text = " ".join(text.split())
    out = []
    for char in text:
        if char in _MD_ENTITIES:
            out.append(_MD_ENTITIES[char])
        elif char in _MD_SPECIAL:
            out.append("\\" + char)
        else:
            out.append(char)
    escaped = "".join(out)
    match = _LINE_START.match(escaped)
    if match:
        end = match.end()
        escaped = escaped[: end - 1] + "\\" + escaped[end - 1 :]
    return escaped


def md_code(text: str) -> str:
    """A code span showing `text` verbatim, outside a table."""
    text = _one_line(text)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    # A space on each side keeps a leading or trailing backtick out of the fence;
    # CommonMark strips exactly one space from each side again.
    if text.startswith(("`", " ")) or text.endswith(("`", " ")) or not text:
        text = f" {text} "
    return f"{fence}{text}{fence}"


def md_cell_code(text: str) -> str:
    """A code span inside a table cell, where GitHub's tables need every pipe escaped."""
    return md_code(text).replace("|", "\\|")


def _one_line(text: str) -> str:
    # Line breaks and other controls would end a table row or a code span.
    return "".join(
        char if char.isprintable() else repr(char)[1:-1] for char in text.replace("\t", " ")
    )


def mermaid_label(text: str) -> str:
    """A quoted Mermaid node label showing `text`; anything but letters, digits and a few
    safe marks becomes a `#code;` entity, which Mermaid turns back into that character."""
    safe = []
    for char in text:
        if char.isascii() and (char.isalnum() or char in " _.-"):
            safe.append(char)
        else:
            safe.append(f"#{ord(char)};")
    return '"' + "".join(safe) + '"'


def html_comment(text: str) -> str:
    """Text safe inside an HTML comment: no `--`, no `>`, one line."""
    text = _one_line(text).replace(">", "&gt;").replace("<", "&lt;")
    while "--" in text:
        text = text.replace("--", "- -")
    return text
