"""Runs the official AsyncAPI parser (`@asyncapi/parser`, pinned in package-lock.json) on a
document through parse.js, and returns what it found.

`make test` installs the parser (`npm ci` into tests/asyncapi/node_modules). Without node,
npm or that folder the tests skip, except in CI (ESGEN_CI or CI set), where they fail:
the documents must be checked by the tools their readers use.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).parent
SCRIPT = HERE / "parse.js"
PARSER = HERE / "node_modules" / "@asyncapi" / "parser"
IN_CI = bool(os.environ.get("CI") or os.environ.get("ESGEN_CI"))


@dataclass(frozen=True)
class Diagnostic:
    severity: str  # error, warning, information, hint
    code: str
    message: str
    path: str
    line: int | None

    def __str__(self) -> str:
        return (
            f"line {self.line}: {self.severity}[{self.code}] at {self.path or '/'}: {self.message}"
        )


@dataclass(frozen=True)
class Parsed:
    valid: bool
    version: str | None
    diagnostics: tuple[Diagnostic, ...]

    def of(self, severity: str) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == severity]


def require_parser() -> str:
    """The node executable, once the parser is installed; skips (fails in CI) otherwise."""
    node = shutil.which("node")
    if node is None or not PARSER.is_dir():
        why = (
            "node is not installed"
            if node is None
            else f"{PARSER} is missing: run `npm ci --prefix tests/asyncapi` (make test does)"
        )
        if IN_CI:
            pytest.fail(f"the AsyncAPI parser cannot run in CI: {why}", pytrace=False)
        pytest.skip(f"the AsyncAPI parser cannot run: {why}")
    return node


def parse(document: Path) -> Parsed:
    node = require_parser()
    done = subprocess.run(
        [node, str(SCRIPT), str(document)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # 0: parsed; 1: parsed with errors; anything else: the script itself failed.
    assert done.returncode in (0, 1), f"parse.js failed ({done.returncode}):\n{done.stderr}"
    report = json.loads(done.stdout)
    return Parsed(
        valid=report["valid"],
        version=report["version"],
        diagnostics=tuple(Diagnostic(**d) for d in report["diagnostics"]),
    )
