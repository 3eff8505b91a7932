"""The intermediate representation: generated modules with every name and type computed.

Templates read only these objects. Each module kind names its template, so there is one
template per kind of output file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import ClassVar, Literal

from esgen.schema import Location

__all__ = [
    "AggregateModuleIR",
    "ClassVarIR",
    "DerivedUpcasterIR",
    "EnumIR",
    "FieldIR",
    "GitAttributesIR",
    "JsonSchemaModuleIR",
    "ManualUpcasterIR",
    "MappingEntryIR",
    "MethodIR",
    "ModelIR",
    "ModelsModuleIR",
    "ModuleIR",
    "Owner",
    "PackageInitIR",
    "PayloadFieldIR",
    "PayloadIR",
    "PayloadsModuleIR",
    "ProjectionModuleIR",
    "QueryFieldIR",
    "ReExportIR",
    "RefusalHookIR",
    "RegistryEntryIR",
    "RegistryModuleIR",
    "RenameIR",
    "Root",
    "RouteIR",
    "SagaModuleIR",
    "ScenarioIR",
    "SendMethodIR",
    "ServiceModuleIR",
    "StrategyIR",
    "UnionIR",
    "UpcasterRegistrationIR",
    "UpcasterTestsIR",
    "UpcastersModuleIR",
    "UserClassIR",
    "UserPackageIR",
    "UserTestsIR",
    "UserUpcasterIR",
]


@dataclass(frozen=True, slots=True)
class FieldIR:
    name: str
    annotation: str
    default: str | None  # a Python expression, or None when the field is required
    # The annotation without constraints, for the `Changes` of `evolve`; "" where it is
    # the annotation itself.
    value_type: str = ""

    @property
    def changes_annotation(self) -> str:
        return self.value_type or self.annotation


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
    # A typed `evolve(**changes)` and its `Changes` TypedDict: for the models user code
    # steps from one value to the next (states, rows, value types), not for messages.
    evolve: bool = False


@dataclass(frozen=True, slots=True)
class EnumIR:
    kind: ClassVar[str] = "enum"
    name: str
    docstring: str | None
    members: tuple[tuple[str, str], ...]  # (member name, value literal)


@dataclass(frozen=True, slots=True)
class UnionIR:
    """A type alias for the union of some classes: an aggregate's events or commands."""

    name: str
    members: tuple[str, ...]
    docstring: str  # a string literal


@dataclass(frozen=True, slots=True)
class ReExportIR:
    module: str  # relative, e.g. ".events"
    names: tuple[str, ...]
    section: str = ""  # what kind of names, where a package re-exports several kinds


@dataclass(frozen=True, slots=True)
class RegistryEntryIR:
    event_type: str  # a string literal
    version: int
    class_name: str
    aggregate: str = ""  # the aggregate the event belongs to, heading its lines


Owner = Literal["generated", "user"]
Root = Literal["out", "tests"]


@dataclass(frozen=True, kw_only=True)
class ModuleIR:
    """One output file, relative to its root folder (the output or the tests folder).

    Generated files are rewritten on every run; user-owned ones (scaffolds) are created
    once and never touched again.
    """

    template: ClassVar[str]
    owner: ClassVar[Owner] = "generated"
    root: ClassVar[Root] = "out"
    path: PurePosixPath
    sources: tuple[str, ...]  # schema files it comes from, for the header
    docstring: str  # a string literal
    imports: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ModelsModuleIR(ModuleIR):
    template: ClassVar[str] = "generated/models.py.jinja"
    classes: tuple[EnumIR | ModelIR, ...]
    exports: tuple[str, ...]
    unions: tuple[UnionIR, ...] = ()


@dataclass(frozen=True, kw_only=True)
class PackageInitIR(ModuleIR):
    template: ClassVar[str] = "generated/package_init.py.jinja"
    reexports: tuple[ReExportIR, ...] = ()
    exports: tuple[str, ...] = ()
    unions: tuple[UnionIR, ...] = ()


@dataclass(frozen=True, slots=True)
class UpcasterRegistrationIR:
    event_type: str  # a string literal
    from_version: int
    function: str  # empty where same_payload
    aggregate: str = ""  # the aggregate the event belongs to, heading its lines
    # A widening: stored data of the old version is read as the new version, as it is.
    same_payload: bool = False


@dataclass(frozen=True, slots=True)
class RenameIR:
    """A former name of an event type, whose stored events the current type reads."""

    old_type: str  # a string literal
    event_type: str  # a string literal
    aggregate: str = ""  # the aggregate the event belongs to, heading its lines


@dataclass(frozen=True, kw_only=True)
class RegistryModuleIR(ModuleIR):
    template: ClassVar[str] = "generated/registry.py.jinja"
    entries: tuple[RegistryEntryIR, ...]
    upcasters: tuple[UpcasterRegistrationIR, ...]
    renames: tuple[RenameIR, ...] = ()


@dataclass(frozen=True, slots=True)
class MethodIR:
    """An abstract method of a generated base, and its stub in the user's scaffold."""

    name: str
    parameters: str  # after `self`, e.g. "event: AccountOpened"; may be empty
    returns: str
    docstring: str  # a string literal
    todo: str  # comment text: what the stub is for


@dataclass(frozen=True, slots=True)
class MappingEntryIR:
    key: str
    value: str  # a Python expression


@dataclass(frozen=True, kw_only=True)
class AggregateModuleIR(ModuleIR):
    """The state model and the abstract base of one aggregate."""

    template: ClassVar[str] = "generated/aggregate.py.jinja"
    state: ModelIR
    base_name: str
    base_docstring: str  # a string literal
    aggregate_type: str  # a string literal
    snapshot_every: str  # "None" or an int
    apply_methods: tuple[MappingEntryIR, ...]
    command_methods: tuple[MappingEntryIR, ...]
    command_emits: tuple[MappingEntryIR, ...]
    methods: tuple[MethodIR, ...]
    exports: tuple[str, ...]
    id_type: str = "str"  # the annotation of the aggregate's id
    creation_commands: tuple[str, ...] = ()
    event_union: str = ""  # the alias of the union of its events, for a typed `execute`


@dataclass(frozen=True, slots=True)
class PayloadFieldIR:
    key: str  # the JSON key, as the schema names it (not a literal)
    annotation: str  # e.g. "NotRequired[list[MoneyPayload]]"


@dataclass(frozen=True, slots=True)
class PayloadIR:
    """A TypedDict of one stored JSON object: an event version's or a value type's."""

    name: str
    docstring: str  # a string literal
    comment: str  # the same text, above the functional form, which has no docstring
    fields: tuple[PayloadFieldIR, ...]
    functional: bool  # a key that is a keyword (`from`) can only be written that way


@dataclass(frozen=True, kw_only=True)
class PayloadsModuleIR(ModuleIR):
    template: ClassVar[str] = "generated/payloads.py.jinja"
    payloads: tuple[PayloadIR, ...]
    exports: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DerivedUpcasterIR:
    name: str
    docstring: str  # a string literal
    statements: tuple[str, ...]  # lines of the body after the docstring, on `data`
    old_payload: str = ""
    new_payload: str = ""


@dataclass(frozen=True, slots=True)
class ManualUpcasterIR:
    name: str
    docstring: str  # a string literal
    function: str  # the user's function, as imported
    old_class: str
    new_class: str


@dataclass(frozen=True, kw_only=True)
class UpcastersModuleIR(ModuleIR):
    template: ClassVar[str] = "generated/upcasters.py.jinja"
    derived: tuple[DerivedUpcasterIR, ...]
    manual: tuple[ManualUpcasterIR, ...]
    exports: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RouteIR:
    """Commands of one aggregate, and how the service reaches it."""

    repository: str  # attribute name on the service
    aggregate_class: str
    commands: tuple[str, ...]
    id_field: str
    handler: str = ""  # the service's private method that runs a command on it
    id_type: str = "str"  # the annotation of the aggregate's id
    command_union: str = ""
    event_union: str = ""
    emits: tuple[str, ...] = ()  # per command: the union of the events it may emit
    placeholder_id: str = '""'  # an id expression, for the type-checking-only instance


@dataclass(frozen=True, kw_only=True)
class ServiceModuleIR(ModuleIR):
    template: ClassVar[str] = "generated/service.py.jinja"
    class_name: str
    class_docstring: str  # a string literal
    command_alias: str
    event_alias: str
    uow_class: str = ""  # the typed unit of work, for contexts with commands
    commands: tuple[str, ...]
    routes: tuple[RouteIR, ...]
    # The aggregates that take commands, `Order | Shipment`: a line of its own that starts
    # with an expression, since lstrip_blocks would take a leading block's indentation.
    aggregate_union: str = ""
    projections: tuple[str, ...]  # the user's projection classes
    sagas: tuple[str, ...]  # the user's saga classes
    saga_runners: tuple[str, ...] = ()  # the type of each saga's runner
    consumers: tuple[str, ...] = ()  # the user's consumer classes
    upstreams: tuple[str, ...] = ()  # the contexts they consume, each once
    # The relay: the context's name and, per published event, (event type, aggregate).
    context: str = ""
    published: tuple[tuple[str, str], ...] = ()
    # `forget(subject)`: the context holds personal data; how the subject's type is spelled.
    forget: bool = False
    subject_type: str = ""
    # The asyncio variants of the service and its unit of work: for contexts with commands
    # whose aggregates hold no personal data (AsyncRepository cannot seal it yet).
    async_class_name: str = ""
    async_uow_class: str = ""


@dataclass(frozen=True, slots=True)
class StrategyIR:
    """A property test: random payloads of an old version read as the latest version."""

    test_name: str
    event_type: str  # a string literal
    version: int
    old_class: str
    latest_class: str
    strategy: str  # a hypothesis strategy expression building `old_class`


@dataclass(frozen=True, kw_only=True)
class UpcasterTestsIR(ModuleIR):
    template: ClassVar[str] = "generated/test_upcasters.py.jinja"
    root: ClassVar[Root] = "tests"
    tests: tuple[StrategyIR, ...]


@dataclass(frozen=True, slots=True)
class QueryFieldIR:
    """One attribute of a projection's `<Name>Fields`: a typed field to query on."""

    name: str  # the row's attribute
    value_type: str  # the annotation of the row's field, without constraints
    column: str  # a string literal: the column, the field's JSON name


@dataclass(frozen=True, kw_only=True)
class ProjectionModuleIR(ModuleIR):
    """The row model and the abstract base of one projection."""

    template: ClassVar[str] = "generated/projection.py.jinja"
    row: ModelIR
    base_name: str
    base_docstring: str  # a string literal
    name: str  # a string literal: the checkpoint and table name
    table: str  # a Python expression building the TableSpec
    handlers: tuple[MappingEntryIR, ...]
    methods: tuple[MethodIR, ...]
    exports: tuple[str, ...]
    # The typed rows class (`Rows` of this row type and its key's type), whose `update`
    # takes the row's fields as keywords; "" for none.
    rows_name: str = ""
    rows_docstring: str = ""  # a string literal
    aggregate_id_type: str = "str"  # what `aggregate_id(recorded)` returns
    aggregate_id_types: tuple[MappingEntryIR, ...] = ()  # aggregate type -> id type
    key_type: str = "Any"  # the annotation of the key field
    # The typed query API: `<Name>Fields` (one attribute per field stored in a column that
    # can be filtered and ordered on) and `<Name>Query`, sharing the base's table.
    fields_name: str = ""
    fields_docstring: str = ""  # a string literal
    query_fields: tuple[QueryFieldIR, ...] = ()
    query_name: str = ""
    query_docstring: str = ""  # a string literal
    # A consumer's base: `Consumer`, the upstream registries (upstream context -> its
    # registry, imported) and each handled event's upstream.
    base_class: str = "Projection"
    query_base: str = "ReadModel"  # a consumer's queries cannot wait for this store's positions
    subscriptions: tuple[MappingEntryIR, ...] = ()
    upstream_of: tuple[MappingEntryIR, ...] = ()


@dataclass(frozen=True, slots=True)
class SendMethodIR:
    name: str
    command: str


@dataclass(frozen=True, slots=True)
class RefusalHookIR:
    """A saga's hook for one command it sends, called when that command is refused."""

    name: str
    command: str
    docstring: str  # a string literal


@dataclass(frozen=True, kw_only=True)
class SagaModuleIR(ModuleIR):
    """The state model and the abstract base of one saga."""

    template: ClassVar[str] = "generated/saga.py.jinja"
    state: ModelIR
    base_name: str
    base_docstring: str  # a string literal
    name: str  # a string literal
    starts_with: str
    correlation: str  # a string literal
    correlation_aggregate: str  # a string literal, or None
    handlers: tuple[MappingEntryIR, ...]
    fails_on: tuple[str, ...]
    sends: tuple[str, ...]
    compensations: tuple[MappingEntryIR, ...]
    timeout: str  # a Python expression: None or a timedelta
    on_deadline: str  # a string literal
    send_methods: tuple[SendMethodIR, ...]
    refusals: tuple[MappingEntryIR, ...]  # command -> its refusal hook
    refusal_hooks: tuple[RefusalHookIR, ...]
    methods: tuple[MethodIR, ...]
    exports: tuple[str, ...]
    correlation_type: str = "str"  # the type of the correlation


@dataclass(frozen=True, kw_only=True)
class GitAttributesIR(ModuleIR):
    """The package's `.gitattributes`: generated files folded in review, `domain/` not.

    The same text for every context, so that it never shows up in a diff; every
    user-owned file of a package lies under `domain/`. A `.gitattributes` the user wrote
    there is kept as it is.
    """

    template: ClassVar[str] = "generated/gitattributes.jinja"


# -- scaffolds: created once, then the user's -----------------------------------------


@dataclass(frozen=True, kw_only=True)
class UserPackageIR(ModuleIR):
    template: ClassVar[str] = "scaffold/package_init.py.jinja"
    owner: ClassVar[Owner] = "user"


@dataclass(frozen=True, kw_only=True)
class UserClassIR(ModuleIR):
    """The user's subclass of a generated base (aggregate, projection or saga)."""

    template: ClassVar[str] = "scaffold/class.py.jinja"
    owner: ClassVar[Owner] = "user"
    class_name: str
    class_docstring: str  # a string literal
    base_name: str
    methods: tuple[MethodIR, ...]
    # How the names of the base's methods begin ("apply_", "on_"...): a method of the
    # user's class named so that the base no longer declares was left behind.
    method_prefixes: tuple[str, ...] = ()
    # Methods the base defines with a default (a saga's refusal hooks): overriding one is
    # never left behind, and not overriding it is no obligation.
    hooks: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class UserUpcasterIR(ModuleIR):
    template: ClassVar[str] = "scaffold/upcaster.py.jinja"
    owner: ClassVar[Owner] = "user"
    old_class: str
    new_class: str
    todo: str  # comment text


@dataclass(frozen=True, slots=True)
class ScenarioIR:
    test_name: str
    kind: Literal["command", "upcaster"]
    subject: str  # the command class, or the event type literal
    version: int  # for upcasters: the stored version
    todo: str  # comment text


@dataclass(frozen=True, kw_only=True)
class UserTestsIR(ModuleIR):
    template: ClassVar[str] = "scaffold/tests.py.jinja"
    owner: ClassVar[Owner] = "user"
    root: ClassVar[Root] = "tests"
    subject_class: str  # the aggregate or saga under test
    fixture: str  # AggregateScenario or SagaScenario
    then: str  # the assertion the scaffold ends with: then or then_sends
    scenarios: tuple[ScenarioIR, ...]


@dataclass(frozen=True, kw_only=True)
class JsonSchemaModuleIR(ModuleIR):
    """Models for a type described by a JSON Schema, produced by datamodel-code-generator."""

    template: ClassVar[str] = ""  # not a Jinja template: see _jsonschema.py
    class_name: str
    schema_text: str
    location: Location  # of the `json_schema:` key, for errors
