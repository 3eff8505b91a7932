"""Rewrite `expected.json` of the compatibility cases named (all when none are)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).parent.parent)]

from compat.cases import compat_cases, regenerate  # noqa: E402  (after the path is set)

if __name__ == "__main__":
    wanted = set(sys.argv[1:])
    for case in compat_cases():
        if not wanted or case.name in wanted:
            regenerate(case)
            print(f"rewrote {case.expected_file}")
