"""Rules for the names in a schema: they become Python identifiers in generated code."""

from __future__ import annotations

import builtins
import keyword
import re
import sys
import unicodedata
from collections.abc import Callable
from typing import Any

from esgen.schema._model import (
    Constraints,
    DictType,
    ListType,
    NamedType,
    NullableType,
    ScalarKind,
    ScalarType,
    TypeExpr,
    UserType,
    ValueType,
)

__all__ = [
    "GENERATED_MODULE_NAMES",
    "QUALIFIABLE_NAMES",
    "SCALAR_ANNOTATIONS",
    "annotation_names",
    "check_class_name",
    "check_context_name",
    "check_field_name",
    "default_names",
    "enum_member_name",
    "handler_name",
    "pascal",
    "python_name",
    "refusal_hook_name",
    "snake",
    "union_name",
]

_PASCAL = re.compile(r"^[A-Z][A-Za-z0-9]*$")
_SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
_BUILTINS = frozenset(name for name in dir(builtins) if not name.startswith("_"))
# How generated annotations spell each scalar type (codegen imports the non-builtin ones).
SCALAR_ANNOTATIONS: dict[ScalarKind, str] = {
    ScalarKind.STR: "str",
    ScalarKind.INT: "int",
    ScalarKind.FLOAT: "float",
    ScalarKind.BOOL: "bool",
    ScalarKind.BYTES: "bytes",
    ScalarKind.DECIMAL: "Decimal",
    ScalarKind.UUID: "UUID",
    # Events record moments; a naive datetime is ambiguous, so it is refused.
    ScalarKind.DATETIME: "AwareDatetime",
    ScalarKind.DATE: "date",
}
# Names generated classes import that a field may share: where one does, the class
# reaches the import through its module (`_datetime.date`) instead.
QUALIFIABLE_NAMES = frozenset({"AwareDatetime", "Decimal", "UUID", "date", "datetime"})
# The builtins that generated annotations name. An attribute called `str` would be what
# mypy finds for every later `str` in its class (and, with a default, what pydantic finds
# too), so such fields become `str_`; other builtins (`id`, `type`, `hash`, ...) stay.
_ANNOTATION_BUILTINS = frozenset(
    {"dict", "list", "tuple", *(n for n in SCALAR_ANNOTATIONS.values() if n in _BUILTINS)}
)

# Names generated modules import or define at module level; a schema name equal to one
# of them would shadow it and break the module.
GENERATED_MODULE_NAMES = frozenset(
    {
        "ABC",
        "Aggregate",
        "AggregateScenario",
        "Annotated",
        "Any",
        "AsyncEventStore",
        "AsyncRepository",
        "AsyncUnitOfWork",
        "AwareDatetime",
        "Awaitable",
        "BaseModel",
        "Callable",
        "ClassVar",
        "Clock",
        "Column",
        "Command",
        "CommandResult",
        "ConfigDict",
        "Consumer",
        "ConsumerReadModel",
        "ConsumerRunner",
        "Decimal",
        "Enum",
        "Event",
        "EventRegistry",
        "EventStore",
        "Field",
        "Final",
        "FrozenDict",
        "FrozenMap",
        "Index",
        "JsonValue",
        "Literal",
        "Mapping",
        "MappingProxyType",
        "NanFloat",
        "NotRequired",
        "Personal",
        "Projection",
        "ProjectionRunner",
        "QueryField",
        "ReadModel",
        "RecordedEvent",
        "Repository",
        "Rows",
        "Saga",
        "SagaRunner",
        "SagaScenario",
        "Sequence",
        "StrEnum",
        "TableSpec",
        "TypeAlias",
        "TypeVar",
        "TypedDict",
        "UUID",
        "UnitOfWork",
        "UnitOfWorkResult",
        "Union",
        "Unpack",
        "UpcastError",
        "UpcasterScenario",
        "ValueObject",
        "Wire",
        "date",
        "datetime",
    }
)
# Attributes of pydantic models and of esgen's message classes: a field with one of these
# names becomes `name_`. Written out rather than read from `dir(BaseModel)`, so that the
# attributes generated code has do not change with the installed pydantic.
_MODEL_ATTRIBUTES = frozenset(
    {
        "construct",
        "copy",
        "dict",
        "from_orm",
        "json",
        "model_computed_fields",
        "model_config",
        "model_construct",
        "model_copy",
        "model_dump",
        "model_dump_json",
        "model_extra",
        "model_fields",
        "model_fields_set",
        "model_json_schema",
        "model_parametrized_name",
        "model_post_init",
        "model_rebuild",
        "model_validate",
        "model_validate_json",
        "model_validate_strings",
        "parse_file",
        "parse_obj",
        "parse_raw",
        "schema",
        "schema_json",
        "update_forward_refs",
        "validate",
        # esgen's own class attributes of events and commands
        "event_type",
        "event_version",
        "command_type",
        # and what value types, states and rows add: `evolve` and its `Changes`
        "evolve",
        "Changes",
    }
)
# pydantic protects these prefixes: a field starting with one is refused at import.
_PROTECTED_PREFIXES = ("model_validate", "model_dump")


def pascal(name: str) -> str:
    """`account_status` -> `AccountStatus`; already-Pascal names pass through."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[_\W]+", name) if part)


def snake(name: str) -> str:
    """`AccountOpened` -> `account_opened`, `HTTPRequest` -> `http_request`."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return name.lower()


def union_name(context: str, aggregate: str, kind: str) -> str:
    """The alias of the union of an aggregate's events or commands (`kind`: "Event" or
    "Command"): `AccountEvent`. An aggregate named like its context would take the name of
    the context's own union (`BankEvent`), so its union is `BankAggregateEvent` instead."""
    stem = aggregate if aggregate != pascal(context) else f"{aggregate}Aggregate"
    return stem + kind


# Kinds of declaration whose snake_case name is also the name of a generated module.
_MODULE_KINDS = frozenset({"aggregate", "projection", "saga", "consumer"})


def check_class_name(name: str, what: str) -> tuple[str, str] | None:
    """Problems with a type, aggregate, event, command, projection or saga name."""
    if problem := _not_normalised(name, what):
        return problem
    if not name.isidentifier() or not _PASCAL.match(name):
        suggestion = pascal(name)
        usable = bool(_PASCAL.match(suggestion)) and not keyword.iskeyword(suggestion)
        hint = f", e.g. '{suggestion}'" if usable else ""
        return "E200", f"{what} name {name!r} must be PascalCase (letters and digits){hint}"
    if keyword.iskeyword(name):
        return "E201", f"{what} name {name!r} is a Python keyword"
    if what in _MODULE_KINDS and keyword.iskeyword(snake(name)):
        return "E201", (
            f"{what} name {name!r} would name its module {snake(name)!r}, a Python keyword"
        )
    if name in _BUILTINS:
        return "E202", f"{what} name {name!r} shadows the Python builtin {name}"
    if name in GENERATED_MODULE_NAMES:
        return "E203", f"{what} name {name!r} is reserved: generated modules import it"
    return None


def check_field_name(name: str, what: str = "field") -> tuple[str, str] | None:
    """Problems with a field name; it becomes a JSON key and, through `python_name`, a
    model attribute."""
    if not name.isidentifier():
        return "E200", f"{what} name {name!r} is not a valid Python identifier"
    if problem := _not_normalised(name, what):
        return problem
    if name.startswith("_"):
        return "E203", f"{what} name {name!r} starts with '_', which pydantic treats as private"
    if name.startswith(_PROTECTED_PREFIXES):  # `model_dump_` would still be one
        return "E203", (
            f"{what} name {name!r} starts with 'model_validate' or 'model_dump', which "
            "pydantic keeps for its own methods"
        )
    return None


def python_name(name: str) -> str:
    """The attribute a field becomes. Its JSON key is always the schema's name; a name that
    cannot be an attribute as it is (a keyword such as `from`, a pydantic or esgen model
    attribute such as `json`, a builtin type that annotations use such as `str`) gets a
    trailing underscore, as PEP 8 suggests, and the model maps it to the key."""
    if keyword.iskeyword(name) or name in _ANNOTATION_BUILTINS or name in _MODEL_ATTRIBUTES:
        return f"{name}_"
    return name


def annotation_names(type_: TypeExpr, constraints: Constraints | None = None) -> set[str]:
    """The names a field's generated annotation refers to, e.g. `list[date] | None` ->
    {tuple, date}: a field of the same class with one of these names would hide it."""
    names: set[str] = set()
    if constraints is not None and any(name != "allow_nan" for name, _ in constraints.items()):
        names |= {"Annotated", "Field"}
    if constraints is not None and constraints.allow_nan:
        names.add("NanFloat")  # in place of float, at any depth
    if isinstance(type_, ScalarType):
        names.add(SCALAR_ANNOTATIONS[type_.kind])
    elif isinstance(type_, ListType):
        names |= {"tuple", *annotation_names(type_.item)}
    elif isinstance(type_, DictType):
        names |= {"FrozenMap", "str", *annotation_names(type_.value)}
    elif isinstance(type_, NullableType):
        names |= annotation_names(type_.inner)
    elif isinstance(type_, NamedType):
        names.add(type_.name)
    return names


def default_names(
    type_: TypeExpr, value: Any, lookup: Callable[[str], UserType | None]
) -> set[str]:
    """The context's types a default's generated literal names, nested ones included:
    `Leg(route=Route(...))` needs `Route` imported, and no field may hide it."""
    if value is None:
        return set()
    if isinstance(type_, NullableType):
        return default_names(type_.inner, value, lookup)
    if isinstance(type_, ListType):
        return {n for v in value for n in default_names(type_.item, v, lookup)}
    if isinstance(type_, DictType):
        return {n for v in value.values() for n in default_names(type_.value, v, lookup)}
    if isinstance(type_, NamedType):
        names = {type_.name}
        target = lookup(type_.name)
        if isinstance(target, ValueType):
            for f in target.fields:
                if f.name in value:
                    names |= default_names(f.type, value[f.name], lookup)
        return names
    return set()


def _not_normalised(name: str, what: str) -> tuple[str, str] | None:
    # Python reads identifiers in NFKC form: `ﬁle` becomes `file`, so the attribute
    # would differ from the JSON key, and two such names could become one.
    normal = unicodedata.normalize("NFKC", name)
    if normal == name:
        return None
    return (
        "E200",
        f"{what} name {name!r} is not in Unicode normal form; Python reads it as {normal!r}",
    )


def check_context_name(name: str) -> tuple[str, str] | None:
    """The context name becomes a Python package name."""
    if not _SNAKE.match(name):
        suggestion = snake(pascal(name))
        usable = bool(_SNAKE.match(suggestion)) and not keyword.iskeyword(suggestion)
        hint = f", e.g. {suggestion!r}" if usable else ""
        return "E200", (
            f"context name {name!r} must be snake_case in ASCII letters, digits and '_' "
            f"(it becomes a package name){hint}"
        )
    if keyword.iskeyword(name):
        return "E201", f"context name {name!r} is a Python keyword; choose another name"
    if name == "deadletter" or name.startswith("deadletter_"):
        # Consumers' dead letters go to <prefix>.deadletter.<context> in the stream
        # <PREFIX>_DEADLETTER_<CONTEXT>: a context of such a name would publish there.
        return "E203", (
            f"context name {name!r} is reserved: dead letters of consuming contexts use "
            "the subjects <prefix>.deadletter.<context> and streams named "
            "<PREFIX>_DEADLETTER_<CONTEXT>; choose another name"
        )
    if name in sys.stdlib_module_names:
        return "E203", (
            f"context name {name!r} would shadow the standard library module {name}; "
            "choose another name"
        )
    if name in _DEPENDENCIES:
        return "E203", (
            f"context name {name!r} would shadow the package {name} that esgen or generated "
            "code imports; choose another name"
        )
    return None


# Packages generated code (or esgen itself) imports: a context package of the same name
# on the path would hide them.
# (The runtime's, pydantic's own, the extras'. `esgen new` also refuses any name that is
# importable where it runs; this list keeps a schema's validity independent of that.)
_DEPENDENCIES = frozenset(
    {"esgen", "pydantic", "pydantic_core", "typing_extensions", "typing_inspection",
     "annotated_types", "psycopg", "psycopg_binary", "psycopg_pool", "hypothesis", "pytest",
     "click", "jinja2", "markupsafe", "yaml", "black", "datamodel_code_generator", "tomlkit"}
)  # fmt: skip


def enum_member_name(value: str) -> str:
    """The UPPER_SNAKE member name of an enum value, from the value alone.

    Never from its neighbours: adding a value must not rename another member that user
    code refers to, so values that would share a name are refused by the validator.
    """
    name = re.sub(r"[^0-9A-Za-z]+", "_", value).strip("_").upper()
    if not name:  # punctuation only: spell out the code points
        return "CHAR_" + "_".join(f"{ord(ch):X}" for ch in value)
    return name if name[0].isalpha() else f"V_{name}"


def handler_name(event: str) -> str:
    """The method of a projection or saga that handles `event`."""
    return f"on_{snake(event)}"


def refusal_hook_name(command: str) -> str:
    """The method of a saga called when `command`, which it sent, is refused."""
    return f"on_{snake(command)}_refused"
