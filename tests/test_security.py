"""Schema text must never become executable code: it reaches generated modules as data only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from harness import CASES

EXPECTED = CASES / "hostile_text" / "expected" / "src"

PROBE = """
import json
from hostile import Happened, Weird
import hostile.types, hostile.events.thing

event = Happened()
print(json.dumps({
    "note": event.note,
    "path": event.path,
    "kind": event.kind.value,
    "tags": event.tags,
    "values": [w.value for w in Weird],
    "type_doc": Weird.__doc__,
    "event_doc": Happened.__doc__,
    "module_doc": __import__("hostile").__doc__,
}))
"""


def test_hostile_schema_text_is_carried_as_data_and_runs_nothing(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=tmp_path,
        env={"PYTHONPATH": str(EXPECTED), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert list(tmp_path.iterdir()) == [], "importing the generated code created files"
    assert not (EXPECTED / "PWNED").exists()
    data = json.loads(result.stdout)
    assert data["note"] == "__import__('os').system('touch PWNED')"
    assert data["path"] == "C:\\new\\table\\"
    assert data["kind"] == "line\nbreak"
    assert data["tags"] == {"'); import os; ('": "}"}
    assert data["values"] == [
        "it's",
        'say "hi"',
        "line\nbreak",
        "__import__('os').system('touch PWNED')",
        "\\",
    ]
    assert data["type_doc"] == '"""\nimport os\nos.system(\'touch PWNED\')\n"""'
    assert data["event_doc"] == 'Ends with a quote"'
    assert data["module_doc"] == (
        'Docstring with """ triple quotes, a \\ backslash and a trailing quote"'
    )


def test_no_schema_text_appears_outside_string_literals() -> None:
    """Every occurrence of the payload sits inside a string literal, by tokenizing."""
    import io
    import tokenize

    for path in EXPECTED.rglob("*.py"):
        tokens = tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
        for token in tokens:
            if token.type in (tokenize.NAME, tokenize.OP) and token.string in ("os", "system"):
                raise AssertionError(f"{path}:{token.start[0]}: code from schema text")
