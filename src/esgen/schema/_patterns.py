"""Regular expressions from schemas, compiled and matched the way the generated code will.

Generated models declare `Field(pattern=...)`, which pydantic-core runs on the Rust `regex`
crate: linear in the text, never backtracking. esgen checks patterns and matches defaults
through that same engine, so no schema can hang generation (`^(a+)+$` against `aaa...a!`)
and a default esgen accepts is one the generated model accepts.

The Rust engine has no look-arounds or backreferences, and pydantic (2.11 to 2.14 alike)
refuses a pattern with either when the model is built, so esgen refuses them too instead
of generating a module that cannot be imported. A pattern must also compile in Python's
`re`: the generated property tests draw matching text with hypothesis' `from_regex`.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated

from pydantic import Field, TypeAdapter, ValidationError
from pydantic_core import SchemaError

__all__ = ["matches", "pattern_problem"]


def pattern_problem(pattern: str) -> str | None:
    """Why `pattern` cannot be used (a message for an E302), or None when it can."""
    try:
        re.compile(pattern)
    except re.error as exc:
        return f"invalid pattern: {exc}"
    except (OverflowError, RecursionError, MemoryError):  # nesting or repeats beyond sre's limits
        return "invalid pattern: it is too large or too deeply nested"
    try:
        _adapter(pattern)
    except SchemaError as exc:
        engine = "pydantic's regex engine, which generated models use"
        return f"invalid pattern for {engine}: {_rust_reason(exc)}"
    return None


def matches(pattern: str, value: str) -> bool:
    """Whether pydantic accepts `value` for a str field with this pattern: a match anywhere
    in the text, as generated models check it. `pattern` must have passed `pattern_problem`."""
    try:
        _adapter(pattern).validate_python(value)
    except ValidationError:
        return False
    return True


@lru_cache(maxsize=256)
def _adapter(pattern: str) -> TypeAdapter[str]:
    # Declared as generated fields declare it, so pydantic picks the same engine.
    return TypeAdapter(Annotated[str, Field(pattern=pattern)])


def _rust_reason(exc: SchemaError) -> str:
    """The regex crate's own one-line reason, from the multi-line message pydantic wraps it in
    (`regex parse error:`, the pattern, a caret line, `error: ...`)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    reason = next((line for line in reversed(lines) if line.startswith("error: ")), lines[-1])
    return reason.removeprefix("error: ").removeprefix("SchemaError: ").rstrip(".")
