"""Byte-identical output across runs, hash seeds and working directories."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from harness import CASES, tree


def _generate(schemas: Path, out: Path, cwd: Path, seed: str) -> None:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    args = ["generate", str(schemas), "--out", str(out / "src"), "--tests", str(out / "tests")]
    subprocess.run(
        [sys.executable, "-m", "esgen.cli", *args],
        cwd=cwd,
        env=env,
        check=True,
        capture_output=True,
    )


def test_output_is_identical_across_hash_seeds_and_working_directories(tmp_path: Path) -> None:
    outputs = []
    for index, (seed, cwd) in enumerate([("0", tmp_path), ("1", CASES), ("12345", Path("/"))]):
        out = tmp_path / f"out{index}"
        for case in ("all_types", "multi_file", "basic"):
            _generate(CASES / case / "schemas", out, cwd, seed)
        outputs.append(tree(out))
    assert outputs[0] == outputs[1] == outputs[2]
    headers = {text.splitlines()[0] for text in outputs[0].values()}
    assert all("/tmp" not in h and str(CASES) not in h for h in headers), headers
