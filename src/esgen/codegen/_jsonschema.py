"""Types described by a JSON Schema file, made into pydantic models by datamodel-code-generator."""

from __future__ import annotations

import hashlib
import json

from esgen.codegen._ir import JsonSchemaModuleIR
from esgen.schema import Diagnostic, SchemaError

__all__ = ["json_schema_key", "render_json_schema"]

# The settings esgen passes to datamodel-code-generator; part of the key, so that a
# change of them regenerates the file.
_OPTIONS = "pydantic_v2;py311;extra=forbid;base=esgen.runtime.ValueObject;annotated"


def json_schema_key(module: JsonSchemaModuleIR, header: str) -> str:
    """What the module is made from: the files esgen reads and the settings it passes.

    Never the installed library's version: a release of the library must not make every
    project's `generate --check` fail. A file the run cache says was generated from the
    same key is kept as it is, like black's output (see `make_plan`).
    """
    h = hashlib.sha256()
    for part in (header, module.docstring, module.class_name, module.schema_text, _OPTIONS):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def render_json_schema(module: JsonSchemaModuleIR) -> str:
    # Imported here: it is slow to import and most schemas never need it.
    import datamodel_code_generator as dcg
    from datamodel_code_generator.enums import DataModelType, InputFileType
    from datamodel_code_generator.format import PythonVersion

    try:
        output = dcg.generate(
            json.loads(module.schema_text),
            input_file_type=InputFileType.JsonSchema,
            output_model_type=DataModelType.PydanticV2BaseModel,
            class_name=module.class_name,
            disable_timestamp=True,
            formatters=[],
            use_standard_collections=True,
            use_union_operator=True,
            target_python_version=PythonVersion.PY_311,
            extra_fields="forbid",
            base_class="esgen.runtime.ValueObject",
            use_annotated=True,
            use_field_description=True,
            # The validator refuses every $ref out of the document (E306); this says so
            # to the library too, whose default still fetches URLs.
            allow_remote_refs=False,
        )
    except Exception as exc:  # the library raises many kinds; all mean "bad schema"
        msg = f"datamodel-code-generator could not turn this JSON Schema into models: {exc}"
        raise SchemaError([Diagnostic(module.location, "E304", msg)]) from exc
    if not isinstance(output, str):  # pragma: no cover - only with an output path
        raise TypeError("datamodel-code-generator returned files, not source")
    # Drop its own header comment: ours names the schema and says DO NOT EDIT.
    lines = output.splitlines()
    while lines and (lines[0].startswith("#") or not lines[0].strip()):
        lines.pop(0)
    body = "\n".join(lines)
    return f"{module.docstring}\n\n{body}\n"
