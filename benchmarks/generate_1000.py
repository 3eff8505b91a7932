"""Benchmark: generating 1,000 events, side by side with datamodel-code-generator.

Run: .venv/bin/python benchmarks/generate_1000.py [--repeat N]

Builds a synthetic schema set (100 aggregates x 10 events, 8 fields each) and the
equivalent JSON Schema (1,000 object definitions), then times in one run, each as the
command a user would type, in a fresh process:
  - esgen generate into an empty folder (cold), with black and with no formatter;
  - esgen generate again with nothing changed (no-op), and esgen generate --check;
  - datamodel-codegen on the JSON Schema, without a formatter;
  - importing what each wrote (datamodel-codegen's module; esgen's package, one
    aggregate's module, and the service, which loads every event).
Prints medians and ratios. Timing assertions do not belong in tests; this is for notes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

BIN = Path(sys.executable).parent
FIELD_TYPES = ["str", "int", "decimal", "uuid", "datetime", "bool", "list[str]", "Money | None"]
JSON_TYPES = {
    "str": {"type": "string"},
    "int": {"type": "integer"},
    "decimal": {"type": "number"},
    "uuid": {"type": "string", "format": "uuid"},
    "datetime": {"type": "string", "format": "date-time"},
    "bool": {"type": "boolean"},
    "list[str]": {"type": "array", "items": {"type": "string"}},
    "Money | None": {"anyOf": [{"$ref": "#/$defs/Money"}, {"type": "null"}]},
}


def write_schemas(root: Path) -> Path:
    schema_dir = root / "schemas"
    schema_dir.mkdir()
    defs: dict[str, object] = {
        "Money": {
            "type": "object",
            "properties": {"amount": {"type": "number"}, "currency": {"type": "string"}},
            "required": ["amount", "currency"],
        }
    }
    for a in range(100):
        events = {}
        for e in range(10):
            name = f"Thing{a}Happened{e}"
            fields = {f"field_{i}": FIELD_TYPES[(i + e) % len(FIELD_TYPES)] for i in range(8)}
            events[name] = {"versions": {1: {"fields": fields}}}
            defs[name] = {
                "type": "object",
                "properties": {f: JSON_TYPES[t] for f, t in fields.items()},
                "required": [f for f, t in fields.items() if "None" not in t],
            }
        doc = {
            "context": "synthetic",
            "aggregates": {f"Thing{a}": {"events": events}},
        }
        if a == 0:
            doc["types"] = {"Money": {"fields": {"amount": "decimal", "currency": "str"}}}
        (schema_dir / f"thing{a:03}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    json_schema = {"$defs": defs, "type": "object", "properties": {}}
    (root / "models.json").write_text(json.dumps(json_schema))
    return schema_dir


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    esgen = str(BIN / "esgen")
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_schemas(root)
        for _ in range(args.repeat):
            for label, formatter in (("cold, black", "black"), ("cold, no formatter", "none")):
                out = root / f"out-{formatter}"
                shutil.rmtree(out, ignore_errors=True)
                cmd = [esgen, "generate", "schemas", "--out", out.name, "--formatter", formatter]
                results.setdefault(f"esgen {label}", []).append(timed(cmd, root))
            cmd = [esgen, "generate", "schemas", "--out", "out-black"]
            results.setdefault("esgen no-op", []).append(timed(cmd, root))
            results.setdefault("esgen --check", []).append(timed([*cmd, "--check"], root))
            dcg = [
                *(str(BIN / "datamodel-codegen"), "--input", "models.json"),
                *("--input-file-type", "jsonschema", "--output", "dcg.py"),
                *("--output-model-type", "pydantic_v2.BaseModel", "--formatters", "builtin"),
            ]
            results.setdefault("datamodel-codegen, builtin formatter", []).append(timed(dcg, root))
            results.setdefault("import esgen.runtime", []).append(
                timed([sys.executable, "-c", "import esgen.runtime"], root)
            )
            # Importing what each tool wrote, in a fresh process: datamodel-codegen's module
            # builds its 1,000 models at once; esgen's package imports a name's module on
            # first use, so the figures are the package, one aggregate, and everything (the
            # service, which holds every aggregate and the registry of every event).
            results.setdefault("import datamodel-codegen's module", []).append(
                timed([sys.executable, "-c", "import dcg"], root)
            )
            for label, statement in (
                ("import generated package", "import synthetic"),
                ("import one aggregate's module", "import synthetic.aggregates.thing1"),
                ("import the service (every event)", "import synthetic.service"),
            ):
                imp = [sys.executable, "-c", statement]
                results.setdefault(label, []).append(timed(imp, root / "out-black"))
        files = len(list((root / "out-black").rglob("*.py")))
        lines = sum(p.read_text().count("\n") for p in (root / "out-black").rglob("*.py"))
    medians = {k: statistics.median(v) for k, v in results.items()}
    base = medians["datamodel-codegen, builtin formatter"]
    imported = medians["import datamodel-codegen's module"]
    print(
        f"1,000 events in 100 aggregates -> {files} files, {lines} lines; median of {args.repeat}"
    )
    for label, value in medians.items():
        # Imports beside importing datamodel-codegen's output; the rest beside running it.
        floor, name = (imported, "its output") if label.startswith("import") else (base, "")
        line = (
            f"  {label:40} {value * 1000:8.0f} ms   {value / floor:5.2f}x datamodel-codegen {name}"
        )
        print(line.rstrip())


if __name__ == "__main__":
    main()
