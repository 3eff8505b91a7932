"""The intermediate representation: generated modules with every name and type computed.

Templates read only these objects. Each module kind names its template, so there is one
template per kind of output file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import ClassVar

from esgen.schema import Location

__all__ = [
    "ClassVarIR",
    "EnumIR",
    "FieldIR",
    "JsonSchemaModuleIR",
    "ModelIR",
    "ModelsModuleIR",
    "ModuleIR",
    "PackageInitIR",
    "ReExportIR",
    "RegistryEntryIR",
    "RegistryModuleIR",
]


@dataclass(frozen=True, slots=True)
class FieldIR:
    name: str
    annotation: str
    default: str | None  # a Python expression, or None when the field is required


@dataclass(frozen=True, slots=True)
class ClassVarIR:
    name: str
    annotation: str
    value: str


@dataclass(frozen=True, slots=True)
class ModelIR:
    kind: ClassVar[str] = "model"
    name: str
    base: str
    docstring: str | None
    classvars: tuple[ClassVarIR, ...]
    fields: tuple[FieldIR, ...]


@dataclass(frozen=True, slots=True)
class EnumIR:
    kind: ClassVar[str] = "enum"
    name: str
    docstring: str | None
    members: tuple[tuple[str, str], ...]  # (member name, value literal)


@dataclass(frozen=True, slots=True)
class ReExportIR:
    module: str  # relative, e.g. ".events"
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RegistryEntryIR:
    event_type: str  # a string literal
    version: int
    class_name: str


@dataclass(frozen=True, kw_only=True)
class ModuleIR:
    """One generated file, relative to the output directory."""

    template: ClassVar[str]
    path: PurePosixPath
    sources: tuple[str, ...]  # schema files it comes from, for the header
    docstring: str  # a string literal
    imports: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ModelsModuleIR(ModuleIR):
    template: ClassVar[str] = "models.py.jinja"
    classes: tuple[EnumIR | ModelIR, ...]
    exports: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class PackageInitIR(ModuleIR):
    template: ClassVar[str] = "package_init.py.jinja"
    reexports: tuple[ReExportIR, ...] = ()
    exports: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class RegistryModuleIR(ModuleIR):
    template: ClassVar[str] = "registry.py.jinja"
    entries: tuple[RegistryEntryIR, ...]


@dataclass(frozen=True, kw_only=True)
class JsonSchemaModuleIR(ModuleIR):
    """Models for a type described by a JSON Schema, produced by datamodel-code-generator."""

    template: ClassVar[str] = ""  # not a Jinja template: see _jsonschema.py
    class_name: str
    schema_text: str
    location: Location  # of the `json_schema:` key, for errors
