"""Rewrite the expected catalog of every golden `esgen docs` case.

Run `python tests/docs/regenerate_goldens.py`, then review the diff like any other change.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))
sys.path.insert(0, str(Path(__file__).parent))

from harness_docs import docs_cases, regenerate


def main() -> None:
    for case in docs_cases():
        regenerate(case)
        print(f"docs   {case.name}")


if __name__ == "__main__":
    main()
