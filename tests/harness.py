"""Golden-directory cases: `tests/cases/<case>/schemas` in, expected files or stderr out.

Used by the tests and by `make goldens`, which rewrites the expected output from the
current generator. Every case runs from its own folder, so paths in messages are short
and the same on every machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from esgen.cli import main

CASES = Path(__file__).parent / "cases"
PYRIGHT = Path(sys.executable).parent / "pyright"
# What users get when they turn pyright's strict mode on, plus the explicit-override check
# the examples and templates ask for.
PYRIGHT_STRICT = {"typeCheckingMode": "strict", "reportImplicitOverride": True}
EXAMPLES = Path(__file__).parent.parent / "examples"


@dataclass(frozen=True)
class Case:
    name: str
    root: Path

    @property
    def expected(self) -> Path:
        return self.root / "expected"

    @property
    def expected_stderr(self) -> Path:
        return self.root / "expected_stderr.txt"

    @property
    def fails(self) -> bool:
        return self.expected_stderr.exists()


def cases() -> list[Case]:
    return [Case(p.name, p) for p in sorted(CASES.iterdir()) if (p / "schemas").is_dir()]


@contextmanager
def chdir(path: Path) -> Iterator[None]:
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def run_case(case: Case, out: Path) -> tuple[int, str]:
    """Generate a case into `out` (`src/` and `tests/`); returns the exit code and stderr."""
    with chdir(case.root):
        args = ["generate", "schemas", "--out", str(out / "src"), "--tests", str(out / "tests")]
        result = CliRunner().invoke(main, args)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stderr


def tree(root: Path) -> dict[str, str]:
    """Every file under `root` but caches (dot folders, bytecode); `.gitattributes` is
    output too."""
    if not root.exists():
        return {}
    return {
        p.relative_to(root).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(root.rglob("*"))
        if p.is_file()
        and not any(
            part.startswith((".", "__pycache__")) for part in p.relative_to(root).parts[:-1]
        )
        and (p.name == ".gitattributes" or not p.name.startswith("."))
    }


def regenerate(case: Case) -> None:
    shutil.rmtree(case.expected, ignore_errors=True)
    case.expected_stderr.unlink(missing_ok=True)
    code, stderr = run_case(case, case.expected)
    if code != 0:
        shutil.rmtree(case.expected, ignore_errors=True)
        case.expected_stderr.write_text(stderr, encoding="utf-8")


@dataclass(frozen=True)
class PyrightRun:
    files: int  # how many files pyright read: a check of nothing is no check
    errors: int
    report: str  # each diagnostic as file:line:col: severity: message


def run_pyright(
    paths: Sequence[Path], work: Path, extra_paths: Sequence[Path] = (), *, own: bool = False
) -> PyrightRun:
    """pyright in strict mode on `paths`, on this interpreter's packages. With `own`, the
    settings are the project's (`work`'s pyproject.toml); otherwise strict mode with the
    explicit-override check, from a configuration written in `work`."""
    args = [str(PYRIGHT), "--pythonpath", sys.executable, "--outputjson"]
    if own:
        args += [str(p) for p in paths]
    else:
        # pyright reads include paths relative to its configuration file.
        settings = {
            **PYRIGHT_STRICT,
            "include": [os.path.relpath(p, work) for p in paths],
            "extraPaths": [os.path.relpath(p, work) for p in extra_paths],
            "pythonVersion": "3.11",
        }
        (work / "pyrightconfig.json").write_text(json.dumps(settings), encoding="utf-8")
        args += ["--project", str(work / "pyrightconfig.json")]
    result = subprocess.run(args, cwd=work, capture_output=True, text=True, check=False)
    try:
        output = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"pyright failed: {result.stdout}{result.stderr}") from None
    lines = [
        f"{d['file']}:{d['range']['start']['line'] + 1}:{d['range']['start']['character'] + 1}: "
        f"{d['severity']}: {d['message']}"
        for d in output["generalDiagnostics"]
    ]
    summary = output["summary"]
    return PyrightRun(summary["filesAnalyzed"], summary["errorCount"], "\n".join(lines))
