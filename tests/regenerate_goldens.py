"""Rewrite every golden case's expected output from the current generator (`make goldens`),
and the code templates' compiled archive.

Review the resulting diff like any other change: it is what users will see.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from harness import cases, regenerate


def main() -> None:
    # The templates compiled ahead of time first: generating reads them when current.
    from esgen._resources import data_dir
    from esgen.codegen._compiled import write_archive
    from esgen.codegen._render import source_environment

    write_archive(source_environment(), data_dir("templates"))
    print("archive templates/_compiled.zip")
    for case in cases():
        regenerate(case)
        print(f"{'stderr' if case.fails else 'files':6} {case.name}")


if __name__ == "__main__":
    main()
