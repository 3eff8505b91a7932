"""benchmarks/inspect_trace.py still runs: a tiny store, a few calls of each measurement.

The figures themselves are not checked (the machine is shared); the script's own checks
are: the planted conversation is traced whole by each kind of id, the states with and
without a snapshot agree, the command prints every event. A second run takes the store
from the cache.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(cache: Path) -> str:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "inspect_trace.py"),
            "--events=3000",
            "--repeat=3",
            "--cli-repeat=1",
            f"--cache-dir={cache}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_inspect_benchmark_runs_at_a_tiny_size(tmp_path: Path) -> None:
    first = run(tmp_path)
    assert "built in" in first
    for label in (
        "trace <correlation id>",
        "trace <event id>",
        "trace <command id> (causation)",
        "state(at=) at version",
        "Inspector.events",
        "esgen inspect events --json",
    ):
        assert label in first, first
    names = {path.name for path in tmp_path.iterdir()}
    assert {name.rpartition(".")[2] for name in names if name.startswith("inspect-3000-")} >= {
        "sqlite",
        "json",
    }, names
    assert not [name for name in names if "building" in name], names  # renamed when done
    assert "from the cache" in run(tmp_path)
