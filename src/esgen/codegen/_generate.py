"""The generator as one function per stage, and `plan_generation` chaining them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from esgen._formatter import Formatter
from esgen.codegen._build import build_ir
from esgen.codegen._ir import Root
from esgen.codegen._obligations import find_obligations
from esgen.codegen._render import render
from esgen.codegen._write import Plan, Written, generated_roots, make_plan
from esgen.schema import (
    JsonSchemaType,
    SchemaError,
    find_schema_files,
    load_schema_dir,
    upcast_diagnostics,
)

__all__ = ["plan_generation"]


def plan_generation(
    schema_dir: Path,
    out_dir: Path,
    formatter: Formatter,
    tests_dir: Path | None = None,
    written: Mapping[Path, Sequence[Written]] | None = None,
    *,
    remote_refs: bool = False,
) -> Plan:
    """load -> validate -> IR -> render -> format -> plan; writes nothing.

    Package code goes to `out_dir`, test modules to `tests_dir` (default: a `tests`
    folder beside `out_dir`). `written` is the run cache's record of what esgen wrote
    before (see `make_plan`). `remote_refs`: fetch http(s) `$ref`s of JSON Schemas (the
    project's json_schema_remote_refs). Raises SchemaError with every diagnostic when the
    schema is invalid.
    """
    schema = load_schema_dir(schema_dir, remote_refs=remote_refs)
    # The steps `esgen compat` would refuse (ES201-ES204): generating a derived upcaster
    # for them would lose stored values, or scaffold one the schema never asked for.
    if problems := upcast_diagnostics(schema):
        raise SchemaError(problems)
    folders: dict[Root, Path] = {"out": out_dir, "tests": tests_dir or out_dir.parent / "tests"}
    modules = build_ir(schema)
    rendered = {folders[root] / path: f for (root, path), f in render(modules).items()}
    roots = [
        *(folders[root] / c.name for c in schema.contexts for root in folders),
        *(r for folder in folders.values() for r in generated_roots(folder)),
    ]
    # Headers name schema files as <schema folder>/<file>: see `source_name`.
    plan = make_plan(
        rendered,
        out_dir,
        formatter,
        roots,
        schema_dir.resolve().name,
        written,
        folders=tuple(folders.values()),
    )
    inputs = tuple(
        path
        for c in schema.contexts
        for t in (*c.types, *(t for s in c.subscriptions for t in s.contract.types))
        if isinstance(t, JsonSchemaType)
        for path in (t.schema_path, *t.referenced)
    )
    # The upstreams' schemas (or locks) shape the contracts generated from them: a change
    # there must not leave the run cache's answer standing.
    inputs += tuple(
        path
        for c in schema.contexts
        for s in c.subscriptions
        for path in (find_schema_files(s.source) if s.source.is_dir() else [s.source])
    )
    contents = {c.path: c.new for c in plan.changes if c.owner == "user" and c.new is not None}
    obligations = tuple(find_obligations(modules, folders, contents))
    return replace(plan, inputs=inputs, remote=schema.remote_documents, obligations=obligations)
