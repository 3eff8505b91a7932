"""Shared test set-up: the run cache out of the user's home folder, and Hypothesis for CI."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

# In CI (ESGEN_CI, set by .ci/run) every run draws the same examples, so a merge is never
# refused by an example no one has seen locally; `ESGEN_CI=1 make test` reproduces it.
# Local runs stay random and keep finding new cases.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("ESGEN_CI"):
    settings.load_profile("ci")


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
