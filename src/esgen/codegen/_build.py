"""Schema model -> IR: decide every module, class, name, annotation and import."""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import cache
from pathlib import Path, PurePosixPath

from esgen.codegen._build_read import read_side_modules
from esgen.codegen._build_upstream import upstream_modules
from esgen.codegen._build_write import registrations, upcaster_function, write_side_modules
from esgen.codegen._ir import (
    ClassVarIR,
    EnumIR,
    FieldIR,
    GitAttributesIR,
    JsonSchemaModuleIR,
    MethodIR,
    ModelIR,
    ModelsModuleIR,
    ModuleIR,
    PackageInitIR,
    ReExportIR,
    RegistryEntryIR,
    RegistryModuleIR,
    RenameIR,
    UnionIR,
)
from esgen.codegen._pyexpr import (
    Imports,
    annotation,
    constraint_args,
    docstring,
    enum_member_names,
    json_literal,
    literal,
    personal_annotation,
    string,
)
from esgen.schema import (
    Aggregate,
    Command,
    Constraints,
    Context,
    EnumType,
    Event,
    EventVersion,
    Field,
    JsonSchemaType,
    NullableType,
    SchemaSet,
    ValueType,
    VersionStep,
    analyse_step,
    default_names,
    erased_json,
    field_paths,
    named_types,
    pascal,
    python_name,
    snake,
    union_name,
)

__all__ = [
    "build_ir",
    "data_subject",
    "event_class_name",
    "source_name",
    "versions_latest_first",
]


def data_subject(field: str) -> ClassVarIR:
    """The class variable that tells the runtime which field names a model's subject."""
    return ClassVarIR("data_subject", "ClassVar[str]", string(python_name(field)))


def event_class_name(event: Event, version: EventVersion) -> str:
    """The latest version keeps the plain name; older ones are `NameV<k>`."""
    return event.name if version is event.latest else f"{event.name}V{version.version}"


def versions_latest_first(event: Event) -> list[EventVersion]:
    return [event.latest, *(v for v in reversed(event.versions) if v is not event.latest)]


@cache
def source_name(root: Path, path: Path, *, outside: bool = False) -> str:
    """How a schema file is named in generated headers: stable wherever esgen runs. A file
    outside `root` goes by its name alone, or with `outside` (an upstream's schema, which
    a subscription names by a relative path) by its path from the folder holding `root`."""
    try:
        relative = path.resolve().relative_to(root.resolve())
    except ValueError:
        if not outside:
            return path.name
        return Path(os.path.relpath(path.resolve(), root.resolve().parent)).as_posix()
    return (PurePosixPath(root.resolve().name) / relative.as_posix()).as_posix()


def build_ir(schema: SchemaSet) -> list[ModuleIR]:
    modules: list[ModuleIR] = []
    for context in schema.contexts:
        modules.extend(_ContextBuilder(context, schema.root).modules())
    return modules


class _ContextBuilder:
    def __init__(self, context: Context, root: Path, package: PurePosixPath | None = None) -> None:
        self.context = context
        self.root = root
        # Set for an upstream's contract: its files are named from this context's root.
        self.outside = False
        # Where its modules go: the context's package, or inside a subscriber's for an
        # upstream's contract (`statements/upstream/bank`).
        self.package = package or PurePosixPath(context.name)
        # An upstream's contract: its hand-written upcasters are not the subscriber's to
        # write (see _build_upstream).
        self.contract = package is not None
        self.types = {t.name: t for t in context.types}
        self.methods: dict[str, list[MethodIR]] = {}
        # Every version step of every event, analysed once for upcasters and tests.
        self.steps: dict[str, list[VersionStep]] = {
            event.name: [
                analyse_step(event.name, old, new, self.types.get)
                for old, new in zip(event.versions, event.versions[1:], strict=False)
            ]
            for event in context.events
        }
        # The context's names in the order the schema declares them, the order generated
        # modules list and import them in (see Imports): what two branches add in
        # different places of the YAML lands in different places of the code.
        # Types as written, not as generated (enums first, value types in the order their
        # defaults need): lists of them follow the YAML.
        self.declared = sorted(
            context.types, key=lambda t: (str(t.location.file), t.location.line, t.location.col)
        )
        names = [t.name for t in self.declared]
        for aggregate in context.aggregates:
            for event in aggregate.events:
                names += [event_class_name(event, v) for v in versions_latest_first(event)]
                names += [upcaster_function(step) for step in self.steps[event.name]]
            names += [c.name for c in aggregate.commands]
        self.order: dict[str, int] = {name: i for i, name in enumerate(dict.fromkeys(names))}

    def src(self, *paths: Path) -> tuple[str, ...]:
        return tuple(sorted({source_name(self.root, p, outside=self.outside) for p in paths}))

    def modules(self) -> list[ModuleIR]:
        ctx = self.context
        modules, exports = self.message_modules(("events", "commands"))
        if ctx.aggregates:  # the service reads through it, events or not
            modules.append(self.registry_module())
        modules.extend(upstream_modules(self))
        modules.extend(write_side_modules(self))
        modules.extend(read_side_modules(self))
        modules.append(
            GitAttributesIR(
                path=self.package / ".gitattributes", sources=self.src(*ctx.files), docstring=""
            )
        )
        doc = ctx.description or f"The {ctx.name} bounded context."
        modules.append(
            PackageInitIR(
                path=self.package / "__init__.py",
                sources=self.src(*ctx.files),
                docstring=docstring(doc, ""),
                reexports=tuple(exports),
                exports=tuple(n for r in exports for n in r.names),
            )
        )
        return modules

    def message_modules(self, kinds: tuple[str, ...]) -> tuple[list[ModuleIR], list[ReExportIR]]:
        """The types, and the events and/or commands of each aggregate with their
        packages; and what the package re-exports of them."""
        ctx = self.context
        modules: list[ModuleIR] = []
        exports: list[ReExportIR] = []
        types_module = self._types_module()
        if types_module is not None:
            modules.append(types_module)
            exports.append(ReExportIR(".types", types_module.exports, "types"))
        modules.extend(self._json_schema_modules())
        builders = {"events": self._events_module, "commands": self._commands_module}
        for kind, build in ((k, builders[k]) for k in kinds):
            per_aggregate = [m for a in ctx.aggregates if (m := build(a)) is not None]
            if not per_aggregate:
                continue
            modules.extend(per_aggregate)
            reexports = tuple(ReExportIR("." + m.path.stem, m.exports) for m in per_aggregate)
            # The context's union: of the aggregates' unions, one a line.
            union = UnionIR(
                pascal(ctx.name) + kind[:-1].title(),
                tuple(u.name for m in per_aggregate for u in m.unions),
                docstring(f"Every {kind[:-1]} of the {ctx.name} context.", ""),
            )
            modules.append(
                PackageInitIR(
                    path=self.package / kind / "__init__.py",
                    sources=self.src(*ctx.files),
                    docstring=docstring(f"The {kind} of the {ctx.name} context.", ""),
                    reexports=reexports,
                    exports=tuple(n for r in reexports for n in r.names),
                    unions=(union,),
                )
            )
            # From each aggregate's module, not the package: the import of each one is a
            # block of its own, so names added to two aggregates never meet in one.
            exports.extend(ReExportIR(f".{kind}{r.module}", r.names, kind) for r in reexports)
            exports.append(ReExportIR(f".{kind}", (union.name,), kind))
        return modules, exports

    # -- fields ---------------------------------------------------------------------

    def field(self, f: Field, imports: Imports, subject: str = "") -> FieldIR:
        """`subject`: whose personal data the model's personal fields are, for their
        descriptions (empty for a value type: the model holding it says)."""
        # Constraints of a nullable field go inside its annotation (on the non-null
        # part); otherwise they join the description in one `Field(...)`.
        nullable = isinstance(f.type, NullableType)
        # allow_nan is no `Field` argument but the annotation's floats (NanFloat).
        own = f.constraints if nullable else Constraints(allow_nan=f.constraints.allow_nan)
        ann = annotation(f.type, imports, own)
        # `evolve` types its keywords by the plain type; the validator holds the bounds.
        plain = annotation(f.type, imports) if nullable and f.constraints.items() else ""
        description = f.description
        if f.personal is not None:
            erased = erased_json(f.personal.erased)
            plain = plain or ann
            ann = personal_annotation(ann, erased, imports)
            whose = subject or "the subject of the event, state or row holding it"
            said = f"Personal data of {whose}; reads as {json_literal(erased)} once forgotten."
            description = f"{description.rstrip()}\n\n{said}" if description else said
        default = literal(f.type, f.default, self.types.get, imports) if f.has_default else None
        args = [] if nullable else constraint_args(f.constraints)
        attribute = python_name(f.name)
        if attribute != f.name:
            # Not `alias=`: type checkers would then make the keyword itself (`from`) the
            # constructor's parameter. The runtime's models validate by name and by alias,
            # and serialize by alias, so stored data keeps the schema's key.
            key = string(f.name)
            args += [f"validation_alias={key}", f"serialization_alias={key}"]
        if description:
            args.append(f"description={string(description)}")
        if args:
            imports.add("pydantic", "Field")
            if default is not None:
                args.insert(0, f"default={default}")
            default = f"Field({', '.join(args)})"
        return FieldIR(attribute, ann, default, plain)

    def fields(
        self, fields: Iterable[Field], imports: Imports, subject: str = ""
    ) -> tuple[FieldIR, ...]:
        listed = tuple(fields)
        scoped = imports.hidden_by(python_name(f.name) for f in listed)
        return tuple(self.field(f, scoped, subject) for f in listed)

    def holds_personal(self, fields: Iterable[Field]) -> bool:
        """Whether these fields hold personal data, in value types and collections too."""
        return any(True for f in fields for _ in field_paths(f, self.types.get))

    def aggregate_subject(self, aggregate: Aggregate) -> str:
        """Whose personal data an aggregate's events and state hold, by default."""
        return f"the {aggregate.name} (its id, {aggregate.id_field.name})"

    def evolvable(
        self,
        name: str,
        doc: str | None,
        fields: tuple[FieldIR, ...],
        imports: Imports,
        classvars: tuple[ClassVarIR, ...] = (),
    ) -> ModelIR:
        """A value type, state or row: user code steps it to its next value with a typed
        `evolve(**changes)`, generated where it has fields."""
        if fields:
            imports.add("typing", "TypedDict")
            imports.add("typing", "Unpack")
        if classvars:
            imports.add("typing", "ClassVar")
        return ModelIR(name, "ValueObject", doc, classvars, fields, evolve=bool(fields))

    def subject_of(self, subject: str, fields: Iterable[Field]) -> tuple[ClassVarIR, ...]:
        """`data_subject` for a row or saga state that holds personal data."""
        return (data_subject(subject),) if self.holds_personal(fields) else ()

    def uses(self, fields: Iterable[Field], imports: Imports, module_depth: int) -> None:
        """Import the context's types that these fields name."""
        prefix = "." * (module_depth + 1)
        for f in fields:
            names = set(named_types(f.type))
            if f.has_default:
                names |= default_names(f.type, f.default, self.types.get)
            for name in sorted(names):
                imports.add(f"{prefix}types", name)

    # -- modules --------------------------------------------------------------------

    def _types_module(self) -> ModelsModuleIR | None:
        ctx = self.context
        if not ctx.types:
            return None
        imports = Imports(self.order)
        imports.add("__future__", "annotations")
        classes: list[EnumIR | ModelIR] = []
        files: list[Path] = []
        enums = [t for t in ctx.types if isinstance(t, EnumType)]
        if enums:
            imports.add("enum", "StrEnum")
        for enum in enums:
            files.append(enum.location.file)
            names = enum_member_names(enum.values)
            doc = enum.description
            classes.append(
                EnumIR(
                    enum.name,
                    docstring(doc, "    ") if doc else None,
                    tuple(zip(names, (string(v) for v in enum.values), strict=True)),
                )
            )
        json_types = [t for t in ctx.types if isinstance(t, JsonSchemaType)]
        for json_type in json_types:
            files.append(json_type.location.file)
            imports.add(f"._json_types.{snake(json_type.name)}", json_type.name)
        values = [t for t in ctx.types if isinstance(t, ValueType)]
        if values:
            imports.add("esgen.runtime", "ValueObject")
        for value in values:
            files.append(value.location.file)
            doc = value.description
            classes.append(
                self.evolvable(
                    value.name,
                    docstring(doc, "    ") if doc else None,
                    self.fields(value.fields, imports),
                    imports,
                )
            )
        return ModelsModuleIR(
            path=self.package / "types.py",
            sources=self.src(*files),
            docstring=docstring(f"Value types and enums of the {ctx.name} context.", ""),
            imports=imports.lines(),
            classes=tuple(classes),
            exports=tuple(t.name for t in self.declared),
        )

    def _json_schema_modules(self) -> list[ModuleIR]:
        json_types = [t for t in self.context.types if isinstance(t, JsonSchemaType)]
        if not json_types:
            return []
        modules: list[ModuleIR] = [
            PackageInitIR(
                path=self.package / "_json_types" / "__init__.py",
                sources=self.src(*(t.location.file for t in json_types)),
                docstring=docstring(
                    "Models generated from JSON Schema files by datamodel-code-generator.", ""
                ),
            )
        ]
        for t in json_types:
            modules.append(
                JsonSchemaModuleIR(
                    path=self.package / "_json_types" / f"{snake(t.name)}.py",
                    sources=self.src(t.location.file, t.schema_path),
                    docstring=docstring(
                        t.description or f"The {t.name} type, from its JSON Schema.", ""
                    ),
                    class_name=t.name,
                    schema_text=t.schema_text,
                    location=t.location,
                )
            )
        return modules

    def _events_module(self, aggregate: Aggregate) -> ModelsModuleIR | None:
        if not aggregate.events:
            return None
        imports = Imports(self.order)
        imports.add("__future__", "annotations")
        imports.add("typing", "ClassVar")
        imports.add("typing", "TypeAlias")
        if len(aggregate.events) > 1:
            imports.add("typing", "Union")
        imports.add("esgen.runtime", "Event")
        union = UnionIR(
            union_name(self.context.name, aggregate.name, "Event"),
            tuple(e.name for e in aggregate.events),
            docstring(
                f"The subscribed events of {self.context.name}'s {aggregate.name} aggregate, "
                "at their latest version here: what consumers' handlers receive."
                if self.contract
                else f"Every event of the {aggregate.name} aggregate, at its latest version: "
                "what its apply methods receive and its handlers return.",
                "",
            ),
        )
        classes: list[EnumIR | ModelIR] = []
        for event in aggregate.events:
            # Latest first: a new version then adds the class of the one it replaces
            # after it, at the end of the event's lines, where the YAML gained its lines.
            for version in versions_latest_first(event):
                self.uses(version.fields, imports, 1)
                classes.append(self._event_class(event, version, imports, aggregate))
        return ModelsModuleIR(
            path=self.package / "events" / f"{snake(aggregate.name)}.py",
            sources=self.src(aggregate.location.file),
            docstring=docstring(
                f"Events of the {aggregate.name} aggregate, every version of each.", ""
            ),
            imports=imports.lines(),
            classes=tuple(classes),
            exports=(*(c.name for c in classes), union.name),
            unions=(union,),
        )

    def _event_class(
        self, event: Event, version: EventVersion, imports: Imports, aggregate: Aggregate
    ) -> ModelIR:
        parts = [p for p in (event.description, version.description) if p]
        if version is not event.latest:
            parts.append(
                f"Version {version.version} of {event.name}, as stored by earlier code; "
                f"reading it yields the latest version through upcasters."
            )
        elif event.renamed_from:
            former = ", ".join(event.renamed_from)
            names = "that name" if len(event.renamed_from) == 1 else "those names"
            parts.append(f"Formerly {former}: events stored under {names} are read as this one.")
        doc = "\n\n".join(parts)
        classvars = [
            ClassVarIR("event_type", "ClassVar[str]", string(event.name)),
            ClassVarIR("event_version", "ClassVar[int]", str(version.version)),
        ]
        if version.subject is None:
            subject = self.aggregate_subject(aggregate)
        else:
            subject = f"the subject in {version.subject}"
            classvars.append(data_subject(version.subject))
        return ModelIR(
            event_class_name(event, version),
            "Event",
            docstring(doc, "    ") if doc else None,
            tuple(classvars),
            self.fields(version.fields, imports, subject),
        )

    def _commands_module(self, aggregate: Aggregate) -> ModelsModuleIR | None:
        if not aggregate.commands:
            return None
        imports = Imports(self.order)
        imports.add("__future__", "annotations")
        imports.add("typing", "ClassVar")
        imports.add("typing", "TypeAlias")
        if len(aggregate.commands) > 1:
            imports.add("typing", "Union")
        imports.add("esgen.runtime", "Command")
        union = UnionIR(
            union_name(self.context.name, aggregate.name, "Command"),
            tuple(c.name for c in aggregate.commands),
            docstring(f"Every command of the {aggregate.name} aggregate.", ""),
        )
        classes: list[EnumIR | ModelIR] = []
        for command in aggregate.commands:
            self.uses(command.fields, imports, 1)
            classes.append(self._command_class(command, imports))
        return ModelsModuleIR(
            path=self.package / "commands" / f"{snake(aggregate.name)}.py",
            sources=self.src(aggregate.location.file),
            docstring=docstring(f"Commands of the {aggregate.name} aggregate.", ""),
            imports=imports.lines(),
            classes=tuple(classes),
            exports=(*(c.name for c in classes), union.name),
            unions=(union,),
        )

    def _command_class(self, command: Command, imports: Imports) -> ModelIR:
        doc = command.description
        return ModelIR(
            command.name,
            "Command",
            docstring(doc, "    ") if doc else None,
            (ClassVarIR("command_type", "ClassVar[str]", string(command.name)),),
            # Kept only by a saga that sends it (its steps), sealed under the saga's subject.
            self.fields(command.fields, imports, "the subject of the saga that sends it"),
        )

    def registry_module(self) -> RegistryModuleIR:
        ctx = self.context
        imports = Imports(self.order)
        imports.add("__future__", "annotations")
        imports.add("collections.abc", "Mapping")
        imports.add("types", "MappingProxyType")
        imports.add("typing", "Final")
        imports.add("esgen.runtime", "Event")
        imports.add("esgen.runtime", "EventRegistry")
        entries: list[RegistryEntryIR] = []
        renames: list[RenameIR] = []
        for aggregate in ctx.aggregates:
            for event in aggregate.events:
                for version in versions_latest_first(event):
                    name = event_class_name(event, version)
                    imports.add(f".events.{snake(aggregate.name)}", name)
                    entries.append(
                        RegistryEntryIR(string(event.name), version.version, name, aggregate.name)
                    )
                renames.extend(
                    RenameIR(string(old), string(event.name), aggregate.name)
                    for old in event.renamed_from
                )
        upcasters, upcaster_imports = registrations(self)
        imports.update(upcaster_imports)
        return RegistryModuleIR(
            path=self.package / "registry.py",
            sources=self.src(*ctx.files),
            docstring=docstring(
                f"Every subscribed event class of {ctx.name} by (event type, version), and the "
                "registry that reads messages of any version it knows as the latest one."
                if self.contract
                else "Every event class of the context by (event type, version), and the "
                "registry that reads stored events of any version as the latest one.",
                "",
            ),
            imports=imports.lines(),
            entries=tuple(entries),
            upcasters=tuple(upcasters),
            renames=tuple(renames),
        )
