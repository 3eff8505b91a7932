"""Shared test set-up: keep esgen's run cache out of the user's home folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_run_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    cache = tmp_path_factory.mktemp("esgen-cache")
    previous = os.environ.get("ESGEN_CACHE_DIR")
    os.environ["ESGEN_CACHE_DIR"] = str(cache)
    yield cache
    if previous is None:
        os.environ.pop("ESGEN_CACHE_DIR", None)
    else:
        os.environ["ESGEN_CACHE_DIR"] = previous
