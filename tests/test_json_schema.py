"""The JSON Schema of the language: exported from the validating models, kept in sync."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from harness import CASES, EXAMPLES

from esgen.schema import language_json_schema
from esgen.schema._yaml import load_yaml

ROOT = Path(__file__).parent.parent
COMMITTED = ROOT / "schemas" / "esgen.schema.json"


def test_committed_json_schema_is_current() -> None:
    assert COMMITTED.read_text() == language_json_schema(), (
        "run `esgen json-schema --out schemas/esgen.schema.json`"
    )


def _as_json(value: Any) -> Any:
    """What an editor's YAML plugin hands the JSON Schema validator."""
    if isinstance(value, dict):
        return {str(k): _as_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_json(v) for v in value]
    if isinstance(value, Decimal):
        return float(value)
    return value


def _valid_yaml_files() -> list[Path]:
    files = sorted(EXAMPLES.glob("*/schemas/**/*.yaml"))
    for case in sorted(CASES.iterdir()):
        # Failing cases break the language on purpose.
        if not (case / "expected_stderr.txt").exists():
            files.extend(sorted((case / "schemas").rglob("*.yaml")))
    return files


@pytest.mark.parametrize("path", _valid_yaml_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_example_and_case_validates_against_the_json_schema(path: Path) -> None:
    loaded, problems = load_yaml(path, path.read_text())
    assert loaded is not None and not problems
    schema = json.loads(COMMITTED.read_text())
    jsonschema.validate(_as_json(loaded.data), schema)


def test_the_json_schema_rejects_what_the_loader_rejects() -> None:
    schema = json.loads(COMMITTED.read_text())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"context": "x", "aggregatez": {}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        bad = {"context": "x", "aggregates": {"A": {"events": {"E": {"versions": {"v1": {}}}}}}}
        jsonschema.validate(bad, schema)
