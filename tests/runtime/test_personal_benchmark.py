"""benchmarks/personal_data.py still runs: a few customers, one repetition.

The figures are not checked (the machine is shared); what is checked is that every line is
printed and that the personal side really seals (a runtime that stored the fields as they
are would make the ratios meaningless, and the script says so)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_personal_data_benchmark_runs_and_seals() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "personal_data.py"),
            "--repeat=1",
            "--customers=20",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    for line in (
        "save (Repository.save, one per customer)",
        "load, key cache cold (a new store)",
        "load, key cache warm",
        "floor, cold (plain load + cryptography)",
        "floor, warm (plain load + cryptography)",
        "20 customers x 10 events",
        "events sealed on the personal side: 100%\n",
    ):
        assert line in done.stdout, (line, done.stdout)
