"""Rewrite every golden case's expected output from the current generator (`make goldens`).

Review the resulting diff like any other change: it is what users will see.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from harness import cases, regenerate


def main() -> None:
    for case in cases():
        regenerate(case)
        print(f"{'stderr' if case.fails else 'files':6} {case.name}")


if __name__ == "__main__":
    main()
