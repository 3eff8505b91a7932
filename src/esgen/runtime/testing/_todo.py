"""The failing placeholder in scaffolded tests, until someone writes the real scenario."""

from __future__ import annotations

from typing import NoReturn

import pytest

__all__ = ["todo"]


def todo(what: str) -> NoReturn:
    """Fail with a message saying what to write: scaffolds never pass vacuously."""
    pytest.fail(f"not written yet: {what}", pytrace=False)
