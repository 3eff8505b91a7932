"""esgen as the reader runs it from examples/bank, in a subprocess: what the inspect tests
share."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence

from harness import EXAMPLES

BANK = EXAMPLES / "bank"


def run_esgen(args: Sequence[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "esgen.cli", *args],
        cwd=BANK,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def inspect(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """`esgen inspect ARGS...`."""
    return run_esgen(["inspect", *args], stdin)
