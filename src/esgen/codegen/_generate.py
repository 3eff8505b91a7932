"""The generator as one function per stage, and `plan_generation` chaining them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path, PurePosixPath

from esgen._formatter import Formatter
from esgen.codegen._build import build_ir
from esgen.codegen._render import render
from esgen.codegen._write import Plan, generated_roots, make_plan
from esgen.schema import JsonSchemaType, SchemaSet, load_schema_dir

__all__ = ["plan_generation"]


def plan_generation(schema_dir: Path, out_dir: Path, formatter: Formatter) -> Plan:
    """load -> validate -> IR -> render -> format -> plan; writes nothing.

    Raises SchemaError with every diagnostic when the schema is invalid.
    """
    schema = load_schema_dir(schema_dir)
    rendered = render(build_ir(schema))
    roots = [*_context_roots(schema), *generated_roots(out_dir)]
    plan = make_plan(rendered, out_dir, formatter, roots)
    inputs = tuple(
        t.schema_path for c in schema.contexts for t in c.types if isinstance(t, JsonSchemaType)
    )
    return replace(plan, inputs=inputs)


def _context_roots(schema: SchemaSet) -> list[PurePosixPath]:
    return [PurePosixPath(c.name) for c in schema.contexts]
