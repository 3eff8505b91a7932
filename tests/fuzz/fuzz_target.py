"""One schema folder through `esgen generate`, in-process, judged as the fuzzer judges it.

The target is the CLI command itself (load -> validate -> IR -> render -> format -> plan
-> write), so an exception its error path does not turn into an exit code is caught here
as the traceback a user would see.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from esgen.cli import main

__all__ = ["SLOW_SECONDS", "Outcome", "import_check", "judge", "prepare", "run_in_subprocess"]

# Any run longer than this is a hang (the bound), once confirmed apart from the batch.
SLOW_SECONDS = 10.0
# A diagnostic that points at the input: `schemas/s0.yaml:3:5: error[E303]: ...`.
LOCATED = re.compile(r"^schemas/[^\n:]+:\d+:\d+: error\[[A-Z]+\d+\]", re.MULTILINE)
ARGS = ["generate", "schemas", "--out", "src", "--tests", "tests", "--no-cache"]


@dataclass(frozen=True)
class Outcome:
    """`ok`, `located` (exit 1 with a located diagnostic), `error` (exit 1 or 2 without
    one: a message about the run itself), or `failure` with a signature to group it by."""

    kind: str
    exit_code: int | None
    seconds: float
    signature: str = ""
    detail: str = ""


def prepare(project: Path, files: dict[str, bytes]) -> None:
    shutil.rmtree(project, ignore_errors=True)
    (project / "schemas").mkdir(parents=True)
    for name, data in files.items():
        (project / "schemas" / name).write_bytes(data)


def _written(project: Path) -> list[str]:
    return sorted(
        str(p.relative_to(project))
        for folder in ("src", "tests")
        if (project / folder).exists()
        for p in (project / folder).rglob("*")
    )


def _frame_signature(exc: BaseException) -> str:
    """The exception type and the innermost esgen frame: one bug, one signature."""
    where = "?"
    for frame in traceback.extract_tb(exc.__traceback__):
        if "/esgen/" in frame.filename.replace(os.sep, "/"):
            where = f"{Path(frame.filename).name}:{frame.name}"
    return f"traceback:{type(exc).__name__}@{where}"


def judge(project: Path) -> Outcome:
    """Run `esgen generate` in `project` (already prepared) and judge what it did."""
    old = Path.cwd()
    os.chdir(project)
    start = time.perf_counter()
    try:
        # The run cache inside the case: no case sees what an earlier one recorded.
        runner = CliRunner(env={"ESGEN_CACHE_DIR": str(project / ".cache")})
        result = runner.invoke(main, ARGS, catch_exceptions=True)
    finally:
        os.chdir(old)
    seconds = time.perf_counter() - start
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        text = "".join(traceback.format_exception(exc))
        return Outcome("failure", None, seconds, _frame_signature(exc), text)
    code = result.exit_code
    if seconds > SLOW_SECONDS:
        return Outcome("failure", code, seconds, "slow", f"{seconds:.1f} s in-process")
    if code not in (0, 1, 2):
        return Outcome("failure", code, seconds, f"exit:{code}", result.output)
    if "Traceback (most recent call last)" in result.output:
        return Outcome("failure", code, seconds, "printed-traceback", result.output)
    if code != 0:
        if written := _written(project):
            return Outcome("failure", code, seconds, "wrote-on-error", "\n".join(written[:20]))
        kind = "located" if LOCATED.search(result.stderr) else "error"
        return Outcome(kind, code, seconds, detail=result.stderr[-2000:])
    for path in sorted((project / "src").rglob("*.py")) + sorted((project / "tests").rglob("*.py")):
        try:
            compile(path.read_bytes(), str(path), "exec")
        except (SyntaxError, ValueError) as err:
            rel = path.relative_to(project)
            return Outcome(
                "failure", code, seconds, f"compile:{type(err).__name__}", f"{rel}: {err}"
            )
    return Outcome("ok", code, seconds)


def import_check(project: Path, timeout: float = 120.0) -> Outcome | None:
    """Import every generated package (and its service module) in a fresh interpreter;
    None when all import. A subprocess, so that one case's modules cannot leak into the
    next and a module that hangs on import is stopped."""
    packages = sorted(p.name for p in (project / "src").iterdir() if (p / "__init__.py").exists())
    modules = [m for p in packages for m in (p, f"{p}.service") if _exists(project / "src", m)]
    code = "import importlib, sys\nfor m in sys.argv[1:]: importlib.import_module(m)\n"
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, *modules],
            cwd=project / "src",
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Outcome("failure", None, timeout, "import-hang", ", ".join(modules))
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1:] or ["?"]
        return Outcome("failure", None, 0.0, f"import:{last[0].split(':')[0]}", done.stderr[-3000:])
    return None


def _exists(src: Path, module: str) -> bool:
    parts = module.split(".")
    return (src.joinpath(*parts) / "__init__.py").exists() or src.joinpath(*parts).with_suffix(
        ".py"
    ).exists()


def run_in_subprocess(project: Path, timeout: float) -> tuple[int | None, float]:
    """`esgen generate` in a fresh interpreter: (exit code or None on timeout, seconds).
    Confirms a slow run apart from the batch, where a hang in C code can be stopped."""
    start = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "esgen", *ARGS],
            cwd=project,
            env={**os.environ, "ESGEN_CACHE_DIR": str(project / ".cache")},
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None, time.perf_counter() - start
    return done.returncode, time.perf_counter() - start
