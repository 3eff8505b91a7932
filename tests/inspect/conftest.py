"""The trace page's browser test drives Chromium with tests/docs/headless.py, which these
tests import by name, as tests/docs does, from a folder put on the import path here."""

from __future__ import annotations

import sys
from pathlib import Path

_DOCS = str(Path(__file__).resolve().parent.parent / "docs")
if _DOCS not in sys.path:
    sys.path.append(_DOCS)
