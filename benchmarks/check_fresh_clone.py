"""Benchmark: `esgen generate --check` on a fresh clone, as CI runs it.

Run: .venv/bin/python benchmarks/check_fresh_clone.py [--repeat N]

A copy of examples/bank, checked in a fresh process each time, with an empty cache folder
(XDG_CACHE_HOME), so esgen has no record of an earlier run, as on a CI machine; beside
it, the same check with the record a run leaves (a developer's machine), and the floor
of any command: starting Python and importing esgen's command line. Bytecode is written
and used as pip installs leave it (PYTHONDONTWRITEBYTECODE unset), so what is measured
is esgen's work, not compiling it. Prints medians.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ESGEN = [sys.executable, "-m", "esgen"]


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory() as tmp:
        bank = Path(tmp) / "bank"
        shutil.copytree(
            ROOT / "examples" / "bank", bank, ignore=shutil.ignore_patterns("__pycache__", "*.db*")
        )
        warm_cache = Path(tmp) / "warm-cache"
        warm_env = {**env, "XDG_CACHE_HOME": str(warm_cache)}
        subprocess.run(
            [*ESGEN, "generate"], cwd=bank, env=warm_env, check=True, capture_output=True
        )
        fresh, warm, floor = [], [], []
        for index in range(args.repeat + 1):  # the first round writes bytecode: not counted
            fresh_env = {**env, "XDG_CACHE_HOME": str(Path(tmp) / f"cache-{index}")}
            times = (
                timed([*ESGEN, "generate", "--check"], bank, fresh_env),
                timed([*ESGEN, "generate", "--check"], bank, warm_env),
                timed([sys.executable, "-c", "import esgen.cli"], bank, env),
            )
            if index:
                for series, value in zip((fresh, warm, floor), times, strict=True):
                    series.append(value)
    print(f"esgen generate --check on examples/bank, median of {args.repeat} fresh processes")
    rows = [
        ("fresh clone (no record of a run)", statistics.median(fresh), "target <= 0.3 s"),
        ("with the record of the last run", statistics.median(warm), ""),
        ("floor: python -c 'import esgen.cli'", statistics.median(floor), ""),
    ]
    for label, value, target in rows:
        print(f"  {label:40s} {value * 1000:7.0f} ms  {target}")


if __name__ == "__main__":
    main()
