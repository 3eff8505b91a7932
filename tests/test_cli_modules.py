"""The command line's own modules: no import circle, and command modules that load nothing
but click and the shared options at import, so that `esgen --version` stays fast."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import esgen.cli

CLI = Path(esgen.cli.__file__).parent
# What every module may import at module level: the standard library and click. The base
# modules may import each other; a command module may import them, and nothing else of
# esgen (it imports what it needs inside its commands).
BASE = {"esgen.cli._common", "esgen.cli._options"}
OUTSIDE = {"click", "esgen._version"}  # esgen._version: a string, for --version


def module_level_imports(path: Path) -> set[str]:
    """The modules `path` imports when it is imported: not inside functions, nor under
    `if TYPE_CHECKING:`."""
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
            elif isinstance(node, ast.If):
                if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)

    visit(ast.parse(path.read_text()).body)
    return found


def cli_modules() -> dict[str, set[str]]:
    graph = {}
    for path in sorted(CLI.glob("*.py")):
        name = "esgen.cli" if path.stem == "__init__" else f"esgen.cli.{path.stem}"
        graph[name] = module_level_imports(path)
    return graph


def is_stdlib(module: str) -> bool:
    return module.split(".")[0] in sys.stdlib_module_names or module == "__future__"


def test_the_cli_modules_import_no_circle() -> None:
    graph = cli_modules()
    edges = {name: {m for m in imports if m in graph} for name, imports in graph.items()}
    # Every submodule imports the package first: that is Python's doing, not a circle,
    # as long as no submodule imports the package's own names back.
    for name, targets in edges.items():
        if name not in ("esgen.cli", "esgen.cli.__main__"):
            assert "esgen.cli" not in targets, f"{name} imports esgen.cli, which imports it"
    done: set[str] = set()

    def walk(name: str, path: list[str]) -> None:
        if name in path:
            raise AssertionError("import circle: " + " -> ".join([*path, name]))
        if name in done:
            return
        for target in sorted(edges[name] - {"esgen.cli"}):
            walk(target, [*path, name])
        done.add(name)

    for name in edges:
        walk(name, [])
    assert {"esgen.cli._store", "esgen.cli._feedback", "esgen.cli._failures"} <= set(graph)


def test_command_modules_import_only_click_and_the_shared_modules() -> None:
    graph = cli_modules()
    for name, imports in graph.items():
        if name in ("esgen.cli", "esgen.cli.__main__"):
            continue  # the group: it imports every command module
        allowed = OUTSIDE | (BASE - {name})
        loaded = {m for m in imports if not is_stdlib(m)} - allowed
        assert not loaded, f"{name} imports {sorted(loaded)} at module level"
    assert graph["esgen.cli"] - {"__future__", "click", "esgen._version"} <= set(graph)


def test_importing_the_command_line_loads_none_of_what_the_commands_use() -> None:
    probe = (
        "import sys, esgen.cli; "
        "print(' '.join(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('esgen', 'pydantic', 'yaml', 'jinja2'))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    # The package itself: its version and the root of its errors, both a few lines.
    expected = {"esgen", "esgen._version", "esgen._errors"}
    assert {m for m in loaded if not m.startswith("esgen.cli")} == expected
