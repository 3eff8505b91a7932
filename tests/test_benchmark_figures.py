"""The README's performance section is what `make bench` printed, for every benchmark.

The figures themselves are not checked (the machine is shared); what is checked is that the
section holds one block per script in benchmarks/, each headed by the machine it ran on, so
a benchmark added without running `make bench` (or figures typed by hand) shows here; and
that rewriting the section keeps the rest of the README and the blocks not run again.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run_all() -> ModuleType:
    spec = importlib.util.spec_from_file_location("run_all", ROOT / "benchmarks" / "run_all.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_all"] = module
    spec.loader.exec_module(module)
    return module


run_all = _run_all()


def test_the_readme_holds_every_benchmarks_output_with_its_machine() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = run_all.earlier_blocks(readme)
    assert sorted(blocks) == sorted(script.name for script in run_all.benchmarks())
    for name, text in blocks.items():
        header = text.split("\n")[3]
        assert re.match(
            r"# \d+ cores \(.+\), Python [\d.]+, .*; commit \w+, \d{4}-\d\d-\d\d$", header
        ), (
            name,
            header,
        )


def test_rewriting_keeps_the_rest_and_the_blocks_not_run_again() -> None:
    script = ROOT / "benchmarks" / "evolve.py"
    other = ROOT / "benchmarks" / "runtime_sqlite.py"
    first = run_all.section(
        {
            "evolve.py": run_all.block(script, "2 cores (X), Python 3.11.7, L; commit a, d", "old"),
            "runtime_sqlite.py": run_all.block(
                other, "2 cores (X), Python 3.11.7, L; commit a, d", "kept"
            ),
        }
    )
    readme = f"# Title\n\nbefore\n\n{first}\n\nafter\n"
    blocks = run_all.earlier_blocks(readme)
    blocks["evolve.py"] = run_all.block(script, "4 cores (Y), Python 3.12.1, L; commit b, d", "new")
    rewritten = run_all.replace_section(readme, run_all.section(blocks))
    assert rewritten.startswith("# Title\n\nbefore\n\n") and rewritten.endswith("\n\nafter\n")
    again = run_all.earlier_blocks(rewritten)
    assert "new" in again["evolve.py"] and "old" not in again["evolve.py"]
    assert "kept" in again["runtime_sqlite.py"]


def test_a_readme_without_its_markers_is_refused() -> None:
    with pytest.raises(SystemExit, match="must hold"):
        run_all.replace_section("# Title\n", run_all.section({}))
