"""From shape-checked documents to the validated model: names, types and references.

All files of one context are checked together and every problem is collected, so a run
reports everything at once. A context whose files failed the shape check is not checked
further here: its missing parts would only produce confusing follow-up errors.
"""

from __future__ import annotations

import json
import keyword
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from esgen._suggest import closest, did_you_mean
from esgen.schema._diagnostics import Diagnostic, Location, display_path
from esgen.schema._jsonbundle import RefError, bundle
from esgen.schema._jsonrefs import path_problem
from esgen.schema._language import (
    AggregateDef,
    CommandDef,
    ConsumerDef,
    Document,
    EnumTypeDef,
    EventDef,
    FieldDef,
    FieldSpec,
    JsonSchemaTypeDef,
    ProjectionDef,
    SagaDef,
    SubscriptionDef,
    ValueTypeDef,
)
from esgen.schema._model import (
    Aggregate,
    Command,
    Compatibility,
    Constraints,
    Consumer,
    Context,
    DictType,
    EnumType,
    Event,
    EventVersion,
    Field,
    JsonSchemaType,
    ListType,
    NamedType,
    NullableType,
    Personal,
    Projection,
    Saga,
    SagaTimeout,
    ScalarKind,
    ScalarType,
    Subscription,
    TypeExpr,
    UserType,
    ValueType,
    named_types,
)
from esgen.schema._names import (
    GENERATED_MODULE_NAMES,
    QUALIFIABLE_NAMES,
    annotation_names,
    check_class_name,
    check_context_name,
    check_field_name,
    default_names,
    enum_member_name,
    handler_name,
    pascal,
    python_name,
    refusal_hook_name,
    snake,
    union_name,
)
from esgen.schema._patterns import pattern_problem
from esgen.schema._personal import check_personal, default_erased
from esgen.schema._readmodel import column_kind, queryable
from esgen.schema._typeexpr import SCALAR_NAMES, TypeSyntaxError, parse_type
from esgen.schema._upstream import load_upstream
from esgen.schema._values import ValueProblem, check_value, describe
from esgen.schema._yaml import KeyPath, LoadedYaml, shorten

if TYPE_CHECKING:
    from esgen.schema._jsonremote import Fetcher

__all__ = ["Reader", "Source", "build_context"]

Reader = Callable[[Path], str]


@dataclass(frozen=True)
class Source:
    """One schema file that passed the shape check."""

    doc: Document
    yaml: LoadedYaml


# Names people reach for from other languages, and what esgen calls them.
_TYPE_ALIASES = {
    "string": "str",
    "String": "str",
    "text": "str",
    "integer": "int",
    "long": "int",
    "Integer": "int",
    "number": "decimal",
    "double": "float",
    "boolean": "bool",
    "Boolean": "bool",
    "Decimal": "decimal",
    "UUID": "uuid",
    "Uuid": "uuid",
    "guid": "uuid",
    "timestamp": "datetime",
    "DateTime": "datetime",
    "Datetime": "datetime",
    "Date": "date",
    "binary": "bytes",
    "List": "list[T]",
    "Dict": "dict[str, T]",
    "map": "dict[str, T]",
}
_FOLDED_ALIASES = {alias.casefold(): name for alias, name in _TYPE_ALIASES.items()}
_NO_ANY = frozenset({"Any", "any", "object", "Object", "json", "JSON"})
_NUMERIC = frozenset({ScalarKind.INT, ScalarKind.FLOAT, ScalarKind.DECIMAL})
_SIZED = frozenset({ScalarKind.STR, ScalarKind.BYTES})
_BOUNDS_IN_ORDER = ("min", "exclusive_min", "max", "exclusive_max")
_BOUNDS = frozenset(_BOUNDS_IN_ORDER)


def _nan_and_bounds(bounds: list[str], kept: dict[str, Any]) -> str:
    # pydantic checks the bound after allow_inf_nan, and NaN fails every comparison: the
    # field would refuse the very values allow_nan asks for, at run time and silently.
    named = " and ".join(f"{b} {kept[b]}" for b in bounds)
    low = any(b in bounds for b in ("min", "exclusive_min"))
    high = any(b in bounds for b in ("max", "exclusive_max"))
    infinity = "either infinity" if low and high else "-Infinity" if low else "Infinity"
    return (
        f"'allow_nan' cannot be combined with {named}: NaN compares false with every bound, "
        f"so the field could never hold it, nor {infinity}; drop "
        f"{'the bounds' if len(bounds) > 1 else 'the bound'} or allow_nan"
    )


def _holds_float(type_: TypeExpr) -> bool:
    """Whether a float is the field's value or its items' (where allow_nan applies); a
    value type's floats say it on their own fields."""
    if isinstance(type_, NullableType):
        return _holds_float(type_.inner)
    if isinstance(type_, ListType):
        return _holds_float(type_.item)
    if isinstance(type_, DictType):
        return _holds_float(type_.value)
    return isinstance(type_, ScalarType) and type_.kind is ScalarKind.FLOAT


_DURATION = re.compile(r"^([1-9][0-9]*)(s|m|h|d)$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_MAX_TIMEOUT = 36_500 * 86_400
# Module names esgen itself generates next to the per-aggregate, per-projection and
# per-saga modules (`domain/upcasting/`, `tests/<ctx>/test_<ctx>_upcasters.py`).
_RESERVED_MODULES = {
    "upcasting": "the package of hand-written upcasters",
    "upcasters": "the generated upcaster property tests",
}


def _the(what: str) -> str:
    return what if what.startswith("the ") else f"the {what}"


class _Builder:
    def __init__(
        self,
        name: str,
        sources: Sequence[Source],
        read: Reader,
        folders: Sequence[Path] | None = None,
        fetch: Fetcher | None = None,
        upstreams: bool = True,
    ) -> None:
        self.name = name
        # Load the schemas that subscriptions name (see load_sources).
        self.upstreams = upstreams
        self.sources = sources
        self.read = read
        # Where json_schema files may be on disk (see _jsonrefs); None: `read` does not
        # read the disk (a git ref, a lock), so there is no folder to leave.
        self.folders = folders
        # Fetches http(s) `$ref`s when json_schema_remote_refs allows them; None: refused.
        self.fetch = fetch
        self.diagnostics: list[Diagnostic] = []
        # Every class name the context claims, with where and what claimed it first.
        self.claimed: dict[str, tuple[Location, str]] = {}
        self.raw_types: dict[str, tuple[Any, Source, KeyPath]] = {}
        self.event_owner: dict[str, str] = {}
        self.command_owner: dict[str, str] = {}
        self.inline_enums: list[EnumType] = []
        self.types: dict[str, UserType] = {}
        self.events: dict[str, Event] = {}
        # Former event names (`renamed_from`) -> the event that reads them, and where.
        self.former: dict[str, tuple[str, Location]] = {}
        # Declared names already reported as bad: references to them are not reported
        # again as references to something unknown.
        self.rejected: set[str] = set()
        # Events listed in `publishes` (in any of the context's files).
        self.published: dict[str, Location] = {}  # where each is listed first
        # Upstream context -> the events subscribed from it, as listed; and the upstreams
        # whose schema was not loaded (refused, or not read), whose events are not checked.
        self.subscribed: dict[str, tuple[set[str], Location]] = {}
        self.unchecked: set[str] = set()
        # Upstream context -> the subscribed events found published there.
        self.contracted: dict[str, dict[str, str]] = {}

    # -- reporting ------------------------------------------------------------------

    def error(self, location: Location, code: str, message: str) -> None:
        self.diagnostics.append(Diagnostic(location, code, message))

    def claim(self, name: str, what: str, location: Location) -> bool:
        """Register a class name; report a clash with an earlier one."""
        first = self.claimed.get(name)
        if first is not None:
            self.error(
                location,
                "E204",
                f"{what} {name!r}: the name is already taken by {_the(first[1])} at {first[0]}",
            )
            return False
        self.claimed[name] = (location, what)
        return True

    def unknown(self, name: str, known: Mapping[str, str]) -> bool:
        """A reference to report: not declared, and not a declaration already refused."""
        return name not in known and name not in self.rejected

    def check_class(self, name: str, what: str, location: Location) -> bool:
        problem = check_class_name(name, what)
        if problem is not None:
            self.error(location, *problem)
            self.rejected.add(name)
            return False
        if not self.claim(name, what, location):
            self.rejected.add(name)
            return False
        return True

    # -- the whole context ----------------------------------------------------------

    def build(self) -> Context | None:
        first = self.sources[0]
        context_loc = first.yaml.at(("context",))
        if problem := check_context_name(self.name):
            self.error(context_loc, *problem)
        description = self._single("description")
        compatibility: Compatibility = self._single("compatibility") or "backward"
        self._collect_names()
        self._collect_former_names()
        for prefix, suffix, what in (
            ("", "Service", "the service class"),
            ("", "Command", "the union of the commands"),
            ("", "Event", "the union of the events"),
            ("", "UnitOfWork", "the unit of work class"),
            ("Async", "Service", "the asynchronous service class"),
            ("Async", "UnitOfWork", "the asynchronous unit of work class"),
        ):
            derived = prefix + pascal(self.name) + suffix
            if derived in GENERATED_MODULE_NAMES:
                self.error(
                    context_loc,
                    "E203",
                    f"context name {self.name!r} makes {what} {derived!r}, a name the "
                    "generated service imports; rename the context",
                )
            else:
                self.claim(derived, f"{what} of the context", context_loc)
        self._check_module_names()
        # Before the aggregates: each event is built knowing whether it is published.
        self.published = {
            event: src.yaml.at(("publishes", index))
            for src in reversed(self.sources)  # the first listing wins
            for index, event in reversed(list(enumerate(src.doc.publishes)))
        }
        for src in self.sources:
            self._event_refs(src.doc.publishes, ("publishes",), src, "publishes")
        types = self._build_types()
        aggregates = [
            agg
            for src in self.sources
            for name, adef in src.doc.aggregates.items()
            if (agg := self._aggregate(name, adef, src, compatibility)) is not None
        ]
        projections = tuple(
            self._projection(name, pdef, src)
            for src in self.sources
            for name, pdef in src.doc.projections.items()
        )
        subscriptions = tuple(
            sub
            for src in self.sources
            for upstream, sdef in src.doc.subscribes.items()
            if (sub := self._subscription(upstream, sdef, src)) is not None
        )
        consumers = tuple(
            self._consumer(name, cdef, src)
            for src in self.sources
            for name, cdef in src.doc.consumers.items()
        )
        by_name = {agg.name: agg for agg in aggregates}
        sagas = tuple(
            self._saga(name, sdef, src, by_name)
            for src in self.sources
            for name, sdef in src.doc.sagas.items()
        )
        context = Context(
            name=self.name,
            files=tuple(src.yaml.path for src in self.sources),
            types=(*types, *self.inline_enums),
            aggregates=tuple(aggregates),
            projections=projections,
            sagas=sagas,
            location=context_loc,
            compatibility=compatibility,
            description=description,
            subscriptions=subscriptions,
            consumers=consumers,
        )
        self.diagnostics.extend(check_personal(context, self._lookup))
        return context

    def _single(self, key: Literal["description", "compatibility"]) -> Any:
        """A context-level setting that at most one of the context's files may give."""
        found: tuple[Any, Location] | None = None
        for src in self.sources:
            value = getattr(src.doc, key)
            if value is None:
                continue
            loc = src.yaml.key_at((key,))
            if found is not None:
                self.error(loc, "E204", f"the context's {key} is already set at {found[1]}")
            else:
                found = (value, loc)
        return found[0] if found else None

    def _collect_names(self) -> None:
        """Claim every declared name first, so references can be checked in any order."""
        for src in self.sources:
            y = src.yaml
            for name, tdef in src.doc.types.items():
                if self.check_class(name, "type", y.key_at(("types", name))):
                    self.raw_types[name] = (tdef, src, ("types", name))
            for agg_name, adef in src.doc.aggregates.items():
                base: KeyPath = ("aggregates", agg_name)
                self.check_class(agg_name, "aggregate", y.key_at(base))
                for event_name, edef in adef.events.items():
                    path = (*base, "events", event_name)
                    if self.check_class(event_name, "event", y.key_at(path)):
                        self.event_owner[event_name] = agg_name
                        for number in sorted(edef.versions)[:-1]:
                            self.claim(
                                f"{event_name}V{number}",
                                f"class of version {number} of event {event_name!r}",
                                y.key_at((*path, "versions", number)),
                            )
                for command_name in adef.commands:
                    path = (*base, "commands", command_name)
                    if self.check_class(command_name, "command", y.key_at(path)):
                        self.command_owner[command_name] = agg_name
                for name, what in (
                    (f"{agg_name}State", "the state class"),
                    (f"{agg_name}Base", "the base class"),
                    (union_name(self.name, agg_name, "Event"), "the union of the events"),
                    (union_name(self.name, agg_name, "Command"), "the union of the commands"),
                ):
                    self.claim(name, f"{what} of aggregate {agg_name!r}", y.key_at(base))
            for name in src.doc.projections:
                loc = y.key_at(("projections", name))
                if self.check_class(name, "projection", loc):
                    for suffix in ("Row", "Rows", "Fields", "Query", "Base"):
                        self.claim(
                            f"{name}{suffix}",
                            f"the {suffix.lower()} class of projection {name!r}",
                            loc,
                        )
            for name in src.doc.consumers:
                loc = y.key_at(("consumers", name))
                if self.check_class(name, "consumer", loc):
                    for suffix in ("Row", "Rows", "Fields", "Query", "Base"):
                        self.claim(
                            f"{name}{suffix}",
                            f"the {suffix.lower()} class of consumer {name!r}",
                            loc,
                        )
            for name in src.doc.sagas:
                loc = y.key_at(("sagas", name))
                if self.check_class(name, "saga", loc):
                    for suffix in ("State", "Base"):
                        self.claim(
                            f"{name}{suffix}", f"the {suffix.lower()} class of saga {name!r}", loc
                        )

    def _collect_former_names(self) -> None:
        """Each stored type name is read by exactly one event: a former name can be neither
        a live event nor another event's former name (the registry maps it to one class)."""
        for src in self.sources:
            y = src.yaml
            for agg_name, adef in src.doc.aggregates.items():
                for event_name, edef in adef.events.items():
                    path: KeyPath = ("aggregates", agg_name, "events", event_name)
                    claimed = self.claimed.get(event_name)
                    if edef.renamed_from is None or claimed is None:
                        continue
                    if claimed[0] != y.key_at(path):
                        continue  # a second definition of the name: reported as E204
                    for index, old in _former_names(edef.renamed_from):
                        item = (
                            (*path, "renamed_from")
                            if index is None
                            else (*path, "renamed_from", index)
                        )
                        self._former_name(event_name, old, y.at(item))

    def _former_name(self, event: str, old: str, loc: Location) -> None:
        if problem := check_class_name(old, "former event"):
            self.error(loc, *problem)
            return
        if old == event:
            self.error(loc, "E205", f"event {event!r} is renamed from its own name")
            return
        if old in self.event_owner:
            self.error(
                loc,
                "E205",
                f"event {event!r} is renamed from {old!r}, but {old!r} is still an event "
                f"(at {self.claimed[old][0]}): stored {old!r} events cannot be read as both; "
                f"delete {old!r} (its stored events are then read as {event!r}), or take "
                f"{old!r} out of renamed_from",
            )
            return
        first = self.former.get(old)
        if first is not None and first[0] == event:
            self.error(loc, "E204", f"{old!r} is listed twice in the renamed_from of {event!r}")
            return
        if first is not None:
            self.error(
                loc,
                "E205",
                f"event {event!r} is renamed from {old!r}, which is already a former name of "
                f"{first[0]!r} (at {first[1]}): stored {old!r} events can be read as only "
                "one event",
            )
            return
        self.former[old] = (event, loc)

    def _unknown_event(self, name: str) -> str:
        """What to add to "unknown event": where a former name went, or a near name."""
        renamed = self.former.get(name)
        if renamed is not None:
            return (
                f"; it was renamed to {renamed[0]!r} (renamed_from at {renamed[1]}): "
                f"refer to {renamed[0]!r}"
            )
        return did_you_mean(name, self.event_owner)

    def _check_module_names(self) -> None:
        """Names that become the same module or method once in snake_case would overwrite
        each other's generated files (`HTTPRequest` and `HttpRequest`)."""
        modules: dict[str, str] = {}
        json_modules: dict[str, str] = {}  # JSON Schema types each get one in _json_types
        for src in self.sources:
            y = src.yaml
            for name, tdef in src.doc.types.items():
                if not isinstance(tdef, JsonSchemaTypeDef):
                    continue
                module = snake(name)
                if keyword.iskeyword(module):
                    self.error(
                        y.key_at(("types", name)),
                        "E201",
                        f"type name {name!r} would name its module {module!r}, a Python keyword",
                    )
                elif (first_type := json_modules.setdefault(module, name)) != name:
                    self.error(
                        y.key_at(("types", name)),
                        "E204",
                        f"{name!r} and {first_type!r} would both generate the module "
                        f"_json_types/{module}.py; rename one",
                    )
            named = [
                *(("aggregates", n) for n in src.doc.aggregates),
                *(("projections", n) for n in src.doc.projections),
                *(("consumers", n) for n in src.doc.consumers),
                *(("sagas", n) for n in src.doc.sagas),
            ]
            for kind, name in named:
                module = snake(name)
                if module in _RESERVED_MODULES:
                    self.error(
                        y.key_at((kind, name)),
                        "E204",
                        f"{name!r} would generate the module {module!r}, which esgen "
                        f"uses for {_RESERVED_MODULES[module]}; rename it",
                    )
                    continue
                first = modules.setdefault(module, name)
                if first != name:
                    self.error(
                        y.key_at((kind, name)),
                        "E204",
                        f"{name!r} and {first!r} would both generate the module "
                        f"{module!r}; rename one",
                    )
            for agg_name, adef in src.doc.aggregates.items():
                methods: dict[str, str] = {}
                for kind, names in (("events", adef.events), ("commands", adef.commands)):
                    for name in names:
                        method = snake(name)
                        first = methods.setdefault(method, name)
                        if first != name:
                            self.error(
                                y.key_at(("aggregates", agg_name, kind, name)),
                                "E204",
                                f"{name!r} and {first!r} would both generate methods "
                                f"named after {method!r}; rename one",
                            )

    # -- types ----------------------------------------------------------------------

    def _build_types(self) -> list[UserType]:
        # Enums and JSON Schema types first: value types' defaults may refer to them.
        for name, (tdef, src, path) in self.raw_types.items():
            loc = src.yaml.key_at(path)
            if isinstance(tdef, EnumTypeDef):
                enum = self._enum(name, tdef.enum, (*path, "enum"), src, tdef.description)
                if enum is not None:
                    self.types[name] = enum
            elif isinstance(tdef, JsonSchemaTypeDef):
                json_type = self._json_schema_type(name, tdef, path, src, loc)
                if json_type is not None:
                    self.types[name] = json_type
        pending = {n: r for n, r in self.raw_types.items() if isinstance(r[0], ValueTypeDef)}
        # Value types in an order where a type's defaults only use types built before it.
        for name in _dependency_order(pending):
            tdef, src, path = pending[name]
            assert isinstance(tdef, ValueTypeDef)
            fields = self._fields(tdef.fields, (*path, "fields"), src, owner=name)
            self.types[name] = ValueType(name, fields, src.yaml.key_at(path), tdef.description)
        # Enums and JSON Schema types in declaration order, then value types in
        # dependency order: generated modules define them in this order.
        ordered = [n for n in self.raw_types if n not in pending] + _dependency_order(pending)
        return [self.types[n] for n in ordered if n in self.types]

    def _enum(
        self,
        name: str,
        values: list[Any],
        path: KeyPath,
        src: Source,
        description: str | None = None,
        *,
        inline: bool = False,
    ) -> EnumType | None:
        seen: set[str] = set()
        members: dict[str, str] = {}
        ok = True
        for index, value in enumerate(values):
            loc = src.yaml.at((*path, index))
            if not isinstance(value, str):
                self.error(
                    loc,
                    "E305",
                    f"enum values must be strings; quote it: '{value}' (got {describe(value)})",
                )
                ok = False
            elif value in seen:
                self.error(loc, "E305", f"enum value {value!r} is listed twice")
                ok = False
            elif value == "":
                self.error(loc, "E305", "enum values must not be empty")
                ok = False
            elif (first := members.setdefault(enum_member_name(value), value)) != value:
                self.error(
                    loc,
                    "E305",
                    f"enum values {first!r} and {value!r} would both be the member "
                    f"{name}.{enum_member_name(value)}; use values that differ in more "
                    "than case and punctuation",
                )
                ok = False
            else:
                seen.add(value)
        if not ok:
            return None
        return EnumType(name, tuple(values), src.yaml.at(path), description, inline)

    def _json_schema_type(
        self, name: str, tdef: JsonSchemaTypeDef, path: KeyPath, src: Source, loc: Location
    ) -> JsonSchemaType | None:
        value_loc = src.yaml.at((*path, "json_schema"))
        schema_path = src.yaml.path.parent / tdef.json_schema
        folders = self.folders
        if folders is not None and (
            outside := path_problem(tdef.json_schema, schema_path, folders)
        ):
            self.error(value_loc, "E306", outside)
            return None
        try:
            text = self.read(schema_path)
        except UnicodeDecodeError:
            self.error(value_loc, "E304", f"{tdef.json_schema} is not UTF-8 text; save it as UTF-8")
            return None
        except (OSError, KeyError):
            what = (
                "is a folder, not a file"
                if schema_path.is_dir()
                else "cannot be read"
                if schema_path.exists()
                else "does not exist"
            )
            self.error(
                value_loc,
                "E304",
                f"the JSON Schema file {tdef.json_schema!r} {what} (looked for "
                f"{display_path(schema_path)})",
            )
            return None
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            self.error(
                value_loc,
                "E304",
                f"{tdef.json_schema} is not valid JSON: {exc.msg} "
                f"at line {exc.lineno} column {exc.colno}",
            )
            return None
        if not isinstance(parsed, dict):
            self.error(value_loc, "E304", f"{tdef.json_schema} must hold a JSON object schema")
            return None
        referenced: list[Path] = []
        remote: list[str] = []

        def load(ref: str, key: str) -> object:
            return self._referenced_file(ref, schema_path.parent / key, key, referenced)

        def fetch(ref: str, url: str) -> object:
            assert self.fetch is not None  # bundle() fetches only when given `fetch`
            document = self.fetch(ref, url)
            remote.append(url)
            return document

        try:
            bundled = bundle(parsed, schema_path.name, load, fetch if self.fetch else None)
        except RefError as exc:
            self.error(value_loc, exc.code, f"{tdef.json_schema}: {exc}")
            return None
        if bundled is not parsed:  # unchanged text when nothing was bundled
            text = json.dumps(bundled, indent=2, ensure_ascii=False) + "\n"
        return JsonSchemaType(
            name,
            schema_path,
            text,
            loc,
            tdef.description,
            tuple(sorted(set(referenced))),
            tuple(sorted(set(remote))),
        )

    def _referenced_file(self, ref: str, path: Path, key: str, read: list[Path]) -> object:
        """The parsed JSON of a file a `$ref` names, read under the json_schema file's rules."""
        written = ref.partition("#")[0]
        if self.folders is not None and (outside := path_problem(written, path, self.folders)):
            raise RefError(f"$ref {ref!r}: {outside}")
        try:
            text = self.read(path)
        except UnicodeDecodeError:
            raise RefError(f"$ref {ref!r}: {key} is not UTF-8 text", "E304") from None
        except (FileNotFoundError, KeyError):
            raise RefError(
                f"$ref {ref!r}: {key} does not exist (looked for {display_path(path)})", "E304"
            ) from None
        except OSError as exc:  # a folder; at a git ref: missing there, or a link
            raise RefError(f"$ref {ref!r}: {key} cannot be read ({exc})", "E304") from None
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RefError(
                f"$ref {ref!r}: {key} is not valid JSON: {exc.msg} at line {exc.lineno} "
                f"column {exc.colno}",
                "E304",
            ) from None
        read.append(path)
        return document

    # -- fields ---------------------------------------------------------------------

    def _fields(
        self,
        specs: dict[str, FieldSpec],
        path: KeyPath,
        src: Source,
        owner: str,
        prefix: Sequence[Field] = (),
    ) -> tuple[Field, ...]:
        fields = list(prefix)
        for name, spec in specs.items():
            f = self._field(name, spec, (*path, name), src, owner)
            if f is not None:
                fields.append(f)
        self._attributes(fields, owner)
        return tuple(fields)

    def _attributes(self, fields: Sequence[Field], owner: str) -> None:
        """Two fields that would be the same attribute (`from` and `from_`), and a field
        named like a value type or an import that a later field of the same class is
        annotated with: mypy reads the later annotation as the field. (`date`, `Decimal`
        and the like are reached through their module in such a class instead.)"""
        earlier: dict[str, Field] = {}
        reported: set[str] = set()
        for f in fields:
            attribute = python_name(f.name)
            if (first := earlier.get(attribute)) is not None and first.name != f.name:
                self.error(
                    f.location,
                    "E203",
                    f"fields {first.name!r} and {f.name!r} would both be the attribute "
                    f"{attribute} in the generated class; rename one",
                )
            used = annotation_names(f.type, f.constraints)
            if f.has_default:
                used |= default_names(f.type, f.default, self.types.get)
            if f.description or attribute != f.name:
                used.add("Field")  # `= Field(description=..., ...)` in the class body
            if f.personal is not None:
                # `Annotated[T, Personal(erased=...)]`, described by `Field(description=...)`
                used |= {"Annotated", "Personal", "Field"}
            used -= QUALIFIABLE_NAMES
            for name in sorted(used & earlier.keys()):
                if name in reported:
                    continue
                reported.add(name)
                self.error(
                    earlier[name].location,
                    "E203",
                    f"field {earlier[name].name!r} would hide {name}, which field "
                    f"{f.name!r} after it uses in the generated class; choose a more "
                    f"specific name (e.g. '{snake(owner)}_{snake(name)}')",
                )
            earlier.setdefault(attribute, f)

    def _field(
        self, name: str, spec: FieldSpec, path: KeyPath, src: Source, owner: str
    ) -> Field | None:
        y = src.yaml
        key_loc = y.key_at(path)
        if problem := check_field_name(name):
            self.error(key_loc, *problem)
            return None
        fdef = FieldDef(type=spec) if isinstance(spec, str) else spec
        type_path = path if isinstance(spec, str) else (*path, "type")
        type_loc = y.at(type_path)
        if fdef.type is not None and fdef.enum is not None:
            self.error(key_loc, "E103", f"field {name!r}: give either 'type' or 'enum', not both")
            return None
        type_: TypeExpr | None
        if fdef.enum is not None:
            enum_name = owner + pascal(name)
            type_loc = y.at((*path, "enum"))
            enum = self._enum(enum_name, fdef.enum, (*path, "enum"), src, inline=True)
            if enum is None or not self.claim(enum_name, f"the enum of field {name!r}", type_loc):
                return None
            self.inline_enums.append(enum)
            self.types[enum_name] = enum
            type_ = NamedType(enum_name)
        elif fdef.type is None:
            self.error(key_loc, "E104", f"field {name!r} needs a 'type' (or an 'enum')")
            return None
        else:
            type_ = self._type(fdef.type, type_path, src)
            if type_ is None:
                return None
        constraints = self._constraints(fdef, type_, path, src)
        if fdef.optional and not isinstance(type_, NullableType):
            type_ = NullableType(type_)
        has_default = "default" in fdef.model_fields_set or fdef.optional
        hides = name in GENERATED_MODULE_NAMES and name not in QUALIFIABLE_NAMES
        if has_default and (hides or name in self.types or name in self.raw_types):
            # A default binds the name in the class body, where pydantic then looks up
            # the annotations: `date: date | None = None` would read its own value as
            # the type.
            self.error(
                key_loc,
                "E203",
                f"field {name!r} has a default, so its name would hide the type {name} "
                "in the generated class; choose a more specific name "
                f"(e.g. '{snake(owner)}_{snake(name)}')",
            )
            return None
        default: Any = None
        if "default" in fdef.model_fields_set:
            try:
                default = check_value(type_, fdef.default, self._lookup, constraints)
            except ValueProblem as exc:
                self.error(y.at((*path, "default")), "E303", f"default of {name!r}: {exc}")
                return None
        personal = self._personal(name, fdef, type_, constraints, path, src)
        return Field(
            name=name,
            type=type_,
            location=key_loc,
            type_location=type_loc,
            description=fdef.description,
            has_default=has_default,
            default=default,
            optional=fdef.optional,
            renamed_from=fdef.renamed_from,
            constraints=constraints,
            personal=personal,
        )

    def _personal(
        self,
        name: str,
        fdef: FieldDef,
        type_: TypeExpr,
        constraints: Constraints,
        path: KeyPath,
        src: Source,
    ) -> Personal | None:
        """The field's personal mark, its placeholder checked like a default."""
        spec = fdef.personal
        if spec is None or spec is False:
            return None
        y = src.yaml
        where = y.key_at((*path, "personal"))
        if spec is True or "erased" not in spec.model_fields_set:
            found, erased = default_erased(type_)
            if not found:
                self.error(
                    where,
                    "E701",
                    f"personal field {name!r} of type {type_} needs a placeholder: say what "
                    "it reads as once its subject is forgotten with `personal: {erased: "
                    "<a valid value>}` (only str, lists, maps and optional fields have one "
                    "by default)",
                )
                return None
            try:
                check_value(type_, erased, self._lookup, constraints)
            except ValueProblem as exc:
                self.error(
                    where,
                    "E701",
                    f"personal field {name!r}: its default placeholder {erased!r} is not a "
                    f"valid value ({exc}); declare one with `personal: {{erased: ...}}`",
                )
                return None
            return Personal(erased, where)
        erased_at = y.at((*path, "personal", "erased"))
        if spec.erased is None and not isinstance(type_, NullableType):
            self.error(
                erased_at,
                "E701",
                f"personal field {name!r}: a placeholder of null needs an optional field "
                f"(the field is a {type_})",
            )
            return None
        try:
            erased = check_value(type_, spec.erased, self._lookup, constraints)
        except ValueProblem as exc:
            self.error(erased_at, "E701", f"placeholder of personal field {name!r}: {exc}")
            return None
        return Personal(erased, where, declared=True)

    def _lookup(self, name: str) -> UserType | None:
        return self.types.get(name)

    def _type(self, text: str, path: KeyPath, src: Source) -> TypeExpr | None:
        loc = src.yaml.at(path)
        shift = 1 if path in src.yaml.quoted else 0
        try:
            type_ = parse_type(text)
        except TypeSyntaxError as exc:
            quoted = repr(shorten(text))
            self.error(loc.shifted(shift + exc.offset), "E301", f"type {quoted}: {exc.message}")
            return None
        ok = True
        for named in named_types(type_):
            if named in self.raw_types or named in self.types:
                continue
            ok = False
            if named in self.rejected:
                continue
            offset = text.find(named)
            where = loc.shifted(shift + max(offset, 0))
            self.error(where, "E300", self._unknown_type_message(named))
        return type_ if ok else None

    def _unknown_type_message(self, name: str) -> str:
        if name in _NO_ANY:
            return (
                f"esgen has no {name!r} type: every field needs a concrete type "
                "(declare a value type, or a type backed by a JSON Schema file)"
            )
        candidates = [*SCALAR_NAMES, *self.raw_types]
        # A declared or built-in type in other case first (`money` for Money), then the
        # name another language gives it (`String`), then the closest spelling (`Strng`).
        suggestion = (
            next((c for c in candidates if c.casefold() == name.casefold()), None)
            or _TYPE_ALIASES.get(name)
            or _FOLDED_ALIASES.get(name.casefold())
            or closest(name, candidates)
        )
        if suggestion is not None:
            return f"unknown type {name!r}; did you mean {suggestion!r}?"
        declared = ", ".join(sorted(self.raw_types)) or "none"
        return (
            f"unknown type {name!r} (built in: {', '.join(SCALAR_NAMES)}; "
            f"declared types: {declared})"
        )

    def _constraints(
        self, fdef: FieldDef, type_: TypeExpr, path: KeyPath, src: Source
    ) -> Constraints:
        c = Constraints(
            min=fdef.min,
            max=fdef.max,
            exclusive_min=fdef.exclusive_min,
            exclusive_max=fdef.exclusive_max,
            min_length=fdef.min_length,
            max_length=fdef.max_length,
            pattern=fdef.pattern,
            max_digits=fdef.max_digits,
            decimal_places=fdef.decimal_places,
            allow_nan=fdef.allow_nan or None,
        )
        base = type_.inner if isinstance(type_, NullableType) else type_
        kind = base.kind if isinstance(base, ScalarType) else None
        applies = {
            "min": kind in _NUMERIC,
            "max": kind in _NUMERIC,
            "exclusive_min": kind in _NUMERIC,
            "exclusive_max": kind in _NUMERIC,
            "min_length": kind in _SIZED or isinstance(base, ListType | DictType),
            "max_length": kind in _SIZED or isinstance(base, ListType | DictType),
            "pattern": kind is ScalarKind.STR,
            "max_digits": kind is ScalarKind.DECIMAL,
            "decimal_places": kind is ScalarKind.DECIMAL,
            "allow_nan": _holds_float(type_),
        }
        kept: dict[str, Any] = {}
        for name, value in c.items():
            loc = src.yaml.key_at((*path, name))
            if not applies[name]:
                hint = " (only to float, and lists, maps and optionals of float)"
                shown = hint if name == "allow_nan" else ""
                self.error(
                    loc, "E302", f"{name!r} does not apply to a field of type {type_}{shown}"
                )
            elif name in _BOUNDS and kind is ScalarKind.INT and value != int(value):
                self.error(
                    src.yaml.at((*path, name)),
                    "E302",
                    f"{name} {value} is not a whole number, and the field is an int",
                )
            elif name in _BOUNDS and kind is ScalarKind.FLOAT and math.isinf(float(value)):
                self.error(
                    src.yaml.at((*path, name)),
                    "E302",
                    f"{name} {value} is beyond the range of a float",
                )
            elif name == "pattern":
                if (problem := pattern_problem(value)) is not None:
                    self.error(src.yaml.at((*path, name)), "E302", problem)
                    continue
                kept[name] = value
            else:
                kept[name] = value
        if "allow_nan" in kept and (bounds := [b for b in _BOUNDS_IN_ORDER if b in kept]):
            self.error(src.yaml.key_at((*path, "allow_nan")), "E302", _nan_and_bounds(bounds, kept))
        for low, high in (("min", "max"), ("min_length", "max_length")):
            if low in kept and high in kept and kept[low] > kept[high]:
                self.error(
                    src.yaml.key_at((*path, low)),
                    "E302",
                    f"{low} {kept[low]} is greater than {high} {kept[high]}",
                )
        return Constraints(**kept)

    # -- aggregates, commands, events -----------------------------------------------

    def _aggregate(
        self, name: str, adef: AggregateDef, src: Source, compatibility: Compatibility
    ) -> Aggregate | None:
        y = src.yaml
        path: KeyPath = ("aggregates", name)
        id_name = adef.id.name or f"{snake(name)}_id"
        id_loc = y.key_at((*path, "id")) if "id" in adef.model_fields_set else y.key_at(path)
        if problem := check_field_name(id_name, "id field"):
            self.error(y.at((*path, "id", "name")), *problem)
        id_type = ScalarType(ScalarKind(adef.id.type))
        id_field = Field(id_name, id_type, id_loc, id_loc)
        state = self._fields(adef.state, (*path, "state"), src, owner=name)
        events = tuple(
            self._event(ename, edef, (*path, "events", ename), src, name, compatibility)
            for ename, edef in adef.events.items()
        )
        commands = tuple(
            self._command(cname, cdef, (*path, "commands", cname), src, name, id_field)
            for cname, cdef in adef.commands.items()
        )
        return Aggregate(
            name=name,
            id_field=id_field,
            state=state,
            commands=commands,
            events=events,
            location=y.key_at(path),
            snapshot_every=adef.snapshot_every,
            description=adef.description,
        )

    def _command(
        self,
        name: str,
        cdef: CommandDef,
        path: KeyPath,
        src: Source,
        aggregate: str,
        id_field: Field,
    ) -> Command:
        y = src.yaml
        declared_id = cdef.fields.get(id_field.name)
        prefix: list[Field] = []
        if declared_id is None:
            prefix.append(id_field)
        fields = self._fields(cdef.fields, (*path, "fields"), src, owner=name, prefix=prefix)
        own_id = next((f for f in fields if f.name == id_field.name), None)
        if declared_id is not None and own_id is not None and own_id.type != id_field.type:
            self.error(
                own_id.type_location,
                "E103",
                f"command {name!r}: field {id_field.name!r} is the id of aggregate "
                f"{aggregate!r} and must be {id_field.type} (found {own_id.type})",
            )
        for index, event in self._unique_refs(cdef.emits, (*path, "emits"), src):
            loc = y.at((*path, "emits", index))
            owner = self.event_owner.get(event)
            if self.unknown(event, self.event_owner):
                self.error(
                    loc,
                    "E400",
                    f"command {name!r} emits unknown event {event!r}" + self._unknown_event(event),
                )
            elif owner is not None and owner != aggregate:
                self.error(
                    loc,
                    "E403",
                    f"command {name!r} of aggregate {aggregate!r} emits "
                    f"{event!r}, an event of aggregate {owner!r}",
                )
        return Command(
            name,
            aggregate,
            fields,
            tuple(cdef.emits),
            y.key_at(path),
            cdef.description,
            cdef.creates,
        )

    def _event(
        self,
        name: str,
        edef: EventDef,
        path: KeyPath,
        src: Source,
        aggregate: str,
        compatibility: Compatibility,
    ) -> Event:
        y = src.yaml
        numbers = sorted(edef.versions)
        if numbers != list(range(1, len(numbers) + 1)):
            found = ", ".join(str(n) for n in numbers)
            missing = _missing(numbers)
            why = f"missing {missing}" if missing else "must start at 1"
            self.error(
                y.key_at((*path, "versions")),
                "E500",
                f"versions of event {name!r} must be numbered 1..N: found {found} ({why})",
            )
        versions: list[EventVersion] = []
        latest = numbers[-1]
        for number in numbers:
            vdef = edef.versions[number]
            vpath = (*path, "versions", number)
            owner = name if number == latest else f"{name}V{number}"
            fields = self._fields(vdef.fields, (*vpath, "fields"), src, owner=owner)
            if vdef.upcast is not None and number == numbers[0]:
                self.error(
                    y.key_at((*vpath, "upcast")),
                    "E502",
                    f"version {number} of {name!r} has no earlier version to upcast from",
                )
            version = EventVersion(
                number,
                fields,
                y.key_at(vpath),
                vdef.description,
                vdef.upcast,
                tuple(vdef.dropped or ()),
                vdef.subject,
                None if vdef.subject is None else y.at((*vpath, "subject")),
            )
            self._check_renames(name, version, versions[-1] if versions else None, vpath, src)
            self._check_dropped(name, version, versions[-1] if versions else None, vpath, src)
            versions.append(version)
        event = Event(
            name=name,
            aggregate=aggregate,
            versions=tuple(versions),
            location=y.key_at(path),
            compatibility=edef.compatibility or compatibility,
            description=edef.description,
            renamed_from=tuple(dict.fromkeys(old for _, old in _former_names(edef.renamed_from))),
            renamed_from_location=(
                None if edef.renamed_from is None else y.at((*path, "renamed_from"))
            ),
            published=name in self.published,
            published_location=self.published.get(name),
        )
        self.events.setdefault(name, event)
        return event

    def _check_dropped(
        self,
        event: str,
        version: EventVersion,
        previous: EventVersion | None,
        path: KeyPath,
        src: Source,
    ) -> None:
        """`dropped` names fields of the previous version that this version no longer has."""
        renamed = {f.renamed_from for f in version.fields if f.renamed_from}
        seen: set[str] = set()
        for index, name in enumerate(version.dropped):
            loc = src.yaml.at((*path, "dropped", index))
            where = f"{event!r} version {version.version}: dropped {name!r}"
            if name in seen:
                self.error(loc, "E204", f"{where} is listed twice")
            elif previous is None:
                self.error(loc, "E501", f"{where}, but there is no previous version")
            elif (kept := version.field_named(name)) is not None and kept.renamed_from in (
                None,
                name,
            ):
                self.error(loc, "E501", f"{where}, but the version still has that field")
            elif previous.field_named(name) is None:
                names = ", ".join(p.name for p in previous.fields) or "none"
                self.error(
                    loc,
                    "E501",
                    f"{where} names no field of version {previous.version} (its fields: "
                    f"{names})" + did_you_mean(name, [p.name for p in previous.fields]),
                )
            elif name in renamed:
                self.error(
                    loc,
                    "E501",
                    f"{where}, but a field of the version is renamed from it: its values "
                    "are moved, not dropped",
                )
            seen.add(name)

    def _check_renames(
        self,
        event: str,
        version: EventVersion,
        previous: EventVersion | None,
        path: KeyPath,
        src: Source,
    ) -> None:
        renamed: dict[str, str] = {}
        for f in version.fields:
            if f.renamed_from is None:
                continue
            loc = src.yaml.at((*path, "fields", f.name, "renamed_from"))
            first = renamed.setdefault(f.renamed_from, f.name)
            if first != f.name:
                # An upcaster moves a value once; the second field would never be set.
                self.error(
                    loc,
                    "E501",
                    f"{event!r} version {version.version}: fields {first!r} and {f.name!r} "
                    f"are both renamed from {f.renamed_from!r}; a field can be renamed "
                    "only once (give the other a default, or write the upcaster by hand)",
                )
            elif previous is None:
                self.error(
                    loc,
                    "E501",
                    f"{event!r} version {version.version}: field {f.name!r} "
                    "is renamed from a field, but there is no previous version",
                )
            elif previous.field_named(f.renamed_from) is None:
                names = ", ".join(p.name for p in previous.fields) or "none"
                self.error(
                    loc,
                    "E501",
                    f"{event!r} version {version.version}: renamed_from "
                    f"{f.renamed_from!r} names no field of version {previous.version} "
                    f"(its fields: {names})"
                    + did_you_mean(f.renamed_from, [p.name for p in previous.fields]),
                )
            elif version.field_named(f.renamed_from) is not None:
                self.error(
                    loc,
                    "E501",
                    f"{event!r} version {version.version}: renamed_from "
                    f"{f.renamed_from!r}, but the version still has a field of that name",
                )

    def _unique_refs(
        self, names: Sequence[str], path: KeyPath, src: Source
    ) -> Iterator[tuple[int, str]]:
        seen: set[str] = set()
        for index, name in enumerate(names):
            if name in seen:
                self.error(src.yaml.at((*path, index)), "E204", f"{name!r} is listed twice")
                continue
            seen.add(name)
            yield index, name

    # -- projections and sagas ------------------------------------------------------

    def _projection(self, name: str, pdef: ProjectionDef, src: Source) -> Projection:
        path: KeyPath = ("projections", name)
        self._event_refs(pdef.consumes, (*path, "consumes"), src, f"projection {name!r}")
        fields, indexes = self._read_model(f"projection {name!r}", name, pdef, path, src)
        return Projection(
            name,
            tuple(pdef.consumes),
            pdef.key,
            fields,
            src.yaml.key_at(path),
            pdef.description,
            indexes,
            pdef.subject,
            None if pdef.subject is None else src.yaml.at((*path, "subject")),
        )

    def _read_model(
        self, who: str, name: str, pdef: ProjectionDef | ConsumerDef, path: KeyPath, src: Source
    ) -> tuple[tuple[Field, ...], tuple[tuple[str, ...], ...]]:
        """The fields and indexes of a read model (a projection's or a consumer's),
        checked alike: columns SQL can tell apart, a usable key, indexes it can build."""
        fields = self._fields(pdef.fields, (*path, "fields"), src, owner=name)
        self._columns(who, fields)
        self._query_attributes(name, fields)
        key = next((f for f in fields if f.name == pdef.key), None)
        if key is None and pdef.key not in pdef.fields:
            self.error(
                src.yaml.at((*path, "key")),
                "E402",
                f"{who}: key {pdef.key!r} is not one of its fields"
                + did_you_mean(pdef.key, [f.name for f in fields]),
            )
        elif key is not None and not self._usable_key(key.type):
            self.error(
                src.yaml.at((*path, "key")),
                "E404",
                f"{who}: key {pdef.key!r} is a {key.type}; a row key must be "
                "a str, int, uuid, date, datetime, decimal or enum, and never null",
            )
        return fields, self._indexes(who, pdef, fields, (*path, "indexes"), src)

    # -- subscriptions and consumers ------------------------------------------------

    def _subscription(
        self, upstream: str, sdef: SubscriptionDef, src: Source
    ) -> Subscription | None:
        y = src.yaml
        path: KeyPath = ("subscribes", upstream)
        loc = y.key_at(path)
        if upstream in self.subscribed:
            at = self.subscribed[upstream][1]
            self.error(loc, "E204", f"the context already subscribes to {upstream!r} at {at}")
            return None
        listed: set[str] = set()
        self.subscribed[upstream] = (listed, loc)
        refs = list(self._unique_refs(sdef.events, (*path, "events"), src))
        listed.update(name for _, name in refs)
        if problem := check_context_name(upstream):
            self.error(loc, *problem)
            self.unchecked.add(upstream)
            return None
        if upstream == self.name:
            self.error(
                loc,
                "E411",
                f"the context subscribes to itself ({upstream!r}); its own events reach its "
                "projections and sagas directly: consume them there",
            )
            self.unchecked.add(upstream)
            return None
        if not self.upstreams:
            self.unchecked.add(upstream)
            return None
        source = y.path.parent / sdef.from_
        context, problems = load_upstream(source, upstream, y.at((*path, "from")))
        self.diagnostics.extend(problems)
        if context is None:
            self.unchecked.add(upstream)
            return None
        events: list[Event] = []
        for index, name in refs:
            at = y.at((*path, "events", index))
            event = context.event(name)
            if event is None:
                self.error(
                    at,
                    "E400",
                    f"{upstream!r} has no event {name!r}"
                    + did_you_mean(name, [e.name for e in context.events]),
                )
            elif not event.published:
                published = [e.name for e in context.events if e.published]
                offered = ", ".join(published) if published else "none"
                self.error(
                    at,
                    "E410",
                    f"{upstream!r} does not publish {name!r} (it publishes: {offered}); only "
                    "published events are a contract its consumers may rely on: list "
                    f"{name!r} under `publishes:` in {upstream}'s schema "
                    f"({display_path(event.location.file)}) if it should be one",
                )
            elif (taken := self.claimed.get(name)) is not None:
                # Consumers import the upstreams' event classes by name, beside the
                # context's own names.
                self.error(
                    at,
                    "E204",
                    f"{upstream}'s event {name!r}: the name is already taken by "
                    f"{_the(taken[1])} at {taken[0]}; a context cannot consume two events "
                    "of one name, nor one named like a class of its own",
                )
            else:
                self.claimed[name] = (at, f"event {name!r} of {upstream!r}")
                events.append(event)
        self.contracted[upstream] = {e.name: e.aggregate for e in events}  # -> aggregate
        return Subscription(upstream, source, loc, _contract(context, events))

    def _consumer(self, name: str, cdef: ConsumerDef, src: Source) -> Consumer:
        y = src.yaml
        path: KeyPath = ("consumers", name)
        who = f"consumer {name!r}"
        handles: list[tuple[str, str]] = []
        # Aggregate -> the upstream whose events of it are handled: a handler's
        # `aggregate_id(recorded)` knows an id's type by the aggregate's name alone.
        aggregates: dict[str, str] = {}
        for index, ref in self._unique_refs(cdef.handles, (*path, "handles"), src):
            at = y.at((*path, "handles", index))
            upstream, dot, event = ref.partition(".")
            if not dot or not upstream or not event or "." in event:
                owners = sorted(u for u, (names, _) in self.subscribed.items() if ref in names)
                hint = f" ({owners[0]}.{ref})" if len(owners) == 1 else ""
                self.error(
                    at,
                    "E412",
                    f"{who} handles {ref!r}; name a subscribed event with its upstream "
                    f"context, as <upstream>.<Event>{hint}",
                )
            elif upstream not in self.subscribed:
                self.error(
                    at,
                    "E412",
                    f"{who} handles {ref!r}, but the context does not subscribe to "
                    f"{upstream!r}"
                    + did_you_mean(upstream, list(self.subscribed))
                    + "; subscribe to it under `subscribes:`",
                )
            elif event not in self.subscribed[upstream][0]:
                known = sorted(self.subscribed[upstream][0])
                self.error(
                    at,
                    "E412",
                    f"{who} handles {ref!r}, but {event!r} is not among the events "
                    f"subscribed from {upstream!r}: add it to subscribes.{upstream}.events"
                    + did_you_mean(event, known),
                )
            elif upstream in self.unchecked or event in self.contracted.get(upstream, ()):
                aggregate = self.contracted.get(upstream, {}).get(event)
                other = aggregates.setdefault(aggregate, upstream) if aggregate else upstream
                if other != upstream:
                    self.error(
                        at,
                        "E204",
                        f"{who} handles events of aggregate {aggregate!r} from both "
                        f"{other!r} and {upstream!r}; its handlers could not tell their ids "
                        "apart: consume each upstream's events in a consumer of its own",
                    )
                    continue
                handles.append((upstream, event))
            # Otherwise the subscription itself was refused, and said why.
        fields, indexes = self._read_model(who, name, cdef, path, src)
        return Consumer(
            name,
            tuple(handles),
            cdef.key,
            fields,
            y.key_at(path),
            cdef.description,
            indexes,
        )

    def _indexes(
        self,
        who: str,
        pdef: ProjectionDef | ConsumerDef,
        fields: Sequence[Field],
        path: KeyPath,
        src: Source,
    ) -> tuple[tuple[str, ...], ...]:
        """The indexes as written, those that can be built: on fields stored in columns a
        database can sort (not JSON), each field once, not the key alone, each index once."""
        y = src.yaml
        by_name = {f.name: f for f in fields}
        found: dict[tuple[str, ...], Location] = {}
        for index, spec in enumerate(pdef.indexes):
            at = (*path, index)
            listed = (
                [(at, spec)]
                if isinstance(spec, str)
                else [((*at, i), name) for i, name in enumerate(spec)]
            )
            columns: list[str] = []
            for item, name in listed:
                f = by_name.get(name)
                problem: tuple[str, str] | None = None
                if f is None:
                    if name in pdef.fields:
                        columns = []  # the field itself was refused, and reported
                        break
                    problem = (
                        "E402",
                        f"{who}: index on {name!r}, which is not one of "
                        "its fields" + did_you_mean(name, by_name),
                    )
                elif name in columns:
                    problem = (
                        "E204",
                        f"{who}: {name!r} is listed twice in one index",
                    )
                elif f.personal is not None:
                    problem = (
                        "E703",
                        f"{who}: {name!r} is personal data, stored sealed, and can be "
                        "neither indexed nor queried; index a field that is not personal",
                    )
                elif not queryable(column_kind(f.type, self.types.get)[0]):
                    problem = (
                        "E406",
                        f"{who}: {name!r} ({f.type}) is stored as JSON, "
                        "like every value type, list and map, and can be neither indexed "
                        "nor queried; index fields of scalar or enum types (add one to the "
                        "read model if need be)",
                    )
                if problem is not None:
                    self.error(y.at(item), *problem)
                    columns = []
                    break
                columns.append(name)
            if not columns:
                continue
            key = tuple(columns)
            if key == (pdef.key,):
                self.error(
                    y.at(at),
                    "E406",
                    f"{who}: an index on its key {pdef.key!r} alone; the "
                    "key is already the table's primary key, so remove this index",
                )
            elif (first := found.setdefault(key, y.at(at))) != y.at(at):
                self.error(
                    y.at(at),
                    "E204",
                    f"{who}: the index on ({', '.join(key)}) is listed twice (first at {first})",
                )
        return tuple(found)

    def _columns(self, who: str, fields: Sequence[Field]) -> None:
        """Fields become columns named as written. SQLite compares column names without
        case, and a view (what readers query) renames a column called true or false."""
        seen: dict[str, Field] = {}
        for f in fields:
            folded = f.name.casefold()
            if folded in ("true", "false"):
                self.error(
                    f.location,
                    "E405",
                    f"{who}: SQLite cannot show a column named {f.name!r} "
                    "in the read model's view; choose another name",
                )
            elif (first := seen.setdefault(folded, f)) is not f:
                self.error(
                    f.location,
                    "E405",
                    f"{who}: fields {first.name!r} and {f.name!r} would "
                    "be the same column (SQLite compares column names without case)",
                )

    def _query_attributes(self, projection: str, fields: Sequence[Field]) -> None:
        """Every attribute of the generated `<Name>Fields` is annotated
        `ClassVar[QueryField[<Name>Row, T]]` and built by `QueryField(...)`: an attribute
        with one of those names would hide it from the attributes after it (the row's own
        check covers the names of types T)."""
        used = {"ClassVar", "QueryField", f"{projection}Row"}
        for f in fields:
            attribute = python_name(f.name)
            if attribute in used and queryable(column_kind(f.type, self.types.get)[0]):
                self.error(
                    f.location,
                    "E203",
                    f"field {f.name!r} would hide {attribute}, which the generated class "
                    f"{projection}Fields uses; choose another name",
                )

    def _usable_key(self, type_: TypeExpr) -> bool:
        if isinstance(type_, ScalarType):
            return type_.kind not in (ScalarKind.FLOAT, ScalarKind.BYTES, ScalarKind.BOOL)
        return isinstance(type_, NamedType) and isinstance(self.types.get(type_.name), EnumType)

    def _event_refs(self, names: Sequence[str], path: KeyPath, src: Source, who: str) -> None:
        for index, event in self._unique_refs(names, path, src):
            if self.unknown(event, self.event_owner):
                self.error(
                    src.yaml.at((*path, index)),
                    "E400",
                    f"{who} refers to unknown event {event!r}" + self._unknown_event(event),
                )

    def _command_refs(self, names: Sequence[str], path: KeyPath, src: Source, who: str) -> None:
        for index, command in self._unique_refs(names, path, src):
            if self.unknown(command, self.command_owner):
                self.error(
                    src.yaml.at((*path, index)),
                    "E401",
                    f"{who} refers to unknown command {command!r}"
                    + did_you_mean(command, self.command_owner),
                )

    def _saga(
        self, name: str, sdef: SagaDef, src: Source, aggregates: Mapping[str, Aggregate]
    ) -> Saga:
        y = src.yaml
        path: KeyPath = ("sagas", name)
        who = f"saga {name!r}"
        self._event_refs([sdef.starts_with], (*path, "starts_with"), src, who)
        self._event_refs(sdef.handles, (*path, "handles"), src, who)
        self._event_refs(sdef.fails_on, (*path, "fails_on"), src, who)
        self._command_refs(sdef.sends, (*path, "sends"), src, who)
        for step, undo in sdef.compensations.items():
            for command in (step, undo):
                loc = (
                    y.key_at((*path, "compensations", step))
                    if command == step
                    else y.at((*path, "compensations", step))
                )
                if self.unknown(command, self.command_owner):
                    self.error(
                        loc,
                        "E401",
                        f"{who}: compensation refers to unknown command "
                        f"{command!r}" + did_you_mean(command, self.command_owner),
                    )
            if step not in sdef.sends:
                self.error(
                    y.key_at((*path, "compensations", step)),
                    "E401",
                    f"{who} compensates {step!r}, but does not list it in 'sends'",
                )
        # Failure events are handled events; compensating commands are sent commands.
        handles = list(dict.fromkeys([*sdef.handles, *sdef.fails_on]))
        sends = list(dict.fromkeys([*sdef.sends, *sdef.compensations.values()]))
        events = [
            (sdef.starts_with, (*path, "starts_with")),
            *[(h, (*path, "handles", i)) for i, h in enumerate(sdef.handles)],
            *[(h, (*path, "fails_on", i)) for i, h in enumerate(sdef.fails_on)],
        ]
        correlation, aggregate = self._saga_correlation(who, sdef, path, src, events, aggregates)
        self._hook_names(who, sdef, path, src, sends)
        timeout = None
        if sdef.timeout is not None:
            match = _DURATION.match(sdef.timeout.after)
            assert match is not None  # the language model checked the pattern
            digits = match.group(1)
            # Anything longer than 100 years' seconds in digits is too long; not converted.
            too_long = len(digits) > len(str(_MAX_TIMEOUT))
            seconds = _MAX_TIMEOUT + 1 if too_long else int(digits) * _SECONDS[match.group(2)]
            if seconds > _MAX_TIMEOUT:
                # Deadlines are datetimes; far enough out, they stop being representable.
                self.error(
                    y.at((*path, "timeout", "after")),
                    "E103",
                    f"{who}: a timeout of {sdef.timeout.after} is longer than 100 years",
                )
            else:
                timeout = SagaTimeout(seconds, sdef.timeout.then, sdef.timeout.after)
        state = self._fields(sdef.state, (*path, "state"), src, owner=name)
        return Saga(
            name=name,
            starts_with=sdef.starts_with,
            correlation=correlation,
            handles=tuple(handles),
            sends=tuple(sends),
            compensations=tuple(sdef.compensations.items()),
            fails_on=tuple(sdef.fails_on),
            state=state,
            location=y.key_at(path),
            timeout=timeout,
            description=sdef.description,
            correlation_aggregate=aggregate,
            subject=sdef.subject,
            subject_location=None if sdef.subject is None else y.at((*path, "subject")),
        )

    def _saga_correlation(
        self,
        who: str,
        sdef: SagaDef,
        path: KeyPath,
        src: Source,
        events: Sequence[tuple[str, KeyPath]],
        aggregates: Mapping[str, Aggregate],
    ) -> tuple[str, str | None]:
        """The correlation field and aggregate (None for the field form), checked against
        every event the saga handles."""
        y = src.yaml
        if isinstance(sdef.correlation, str):
            for event_name, event_path in events:
                event = self.events.get(event_name)
                if event is not None and event.latest.field_named(sdef.correlation) is None:
                    self.error(
                        y.at(event_path),
                        "E402",
                        f"{who} correlates on {sdef.correlation!r}, but the latest version "
                        f"of {event_name!r} has no such field"
                        + did_you_mean(sdef.correlation, [f.name for f in event.latest.fields]),
                    )
            return sdef.correlation, None
        wanted = sdef.correlation.aggregate_id
        aggregate = aggregates.get(wanted)
        if aggregate is None:
            if wanted not in self.rejected:
                self.error(
                    y.at((*path, "correlation", "aggregate_id")),
                    "E407",
                    f"{who} correlates on the id of unknown aggregate {wanted!r}"
                    + did_you_mean(wanted, list(aggregates)),
                )
            return "", None
        id_field = aggregate.id_field
        for event_name, event_path in events:
            event = self.events.get(event_name)
            if event is None or event.aggregate == aggregate.name:
                continue  # its stream's id is the correlation
            field = event.latest.field_named(id_field.name)
            lead = (
                f"{who} correlates on the id of {aggregate.name}, so {event_name!r} (an event "
                f"of {event.aggregate}) must carry {aggregate.name}'s id field "
                f"{id_field.name!r} ({id_field.type})"
            )
            if field is None:
                names = [f.name for f in event.latest.fields]
                self.error(
                    y.at(event_path),
                    "E402",
                    f"{lead}; its latest version has no such field"
                    + did_you_mean(id_field.name, names),
                )
            elif field.type not in (id_field.type, NullableType(id_field.type)):
                self.error(
                    y.at(event_path),
                    "E408",
                    f"{lead}; in its latest version the field is a {field.type}",
                )
        return id_field.name, aggregate.name

    def _hook_names(
        self, who: str, sdef: SagaDef, path: KeyPath, src: Source, sends: Sequence[str]
    ) -> None:
        """A refusal hook (`on_<command>_refused`) and an event handler (`on_<event>`) of
        the same saga must not share a name."""
        handled = {handler_name(e): e for e in (sdef.starts_with, *sdef.handles, *sdef.fails_on)}
        for command in sends:
            hook = refusal_hook_name(command)
            event = handled.get(hook)
            if event is not None:
                self.error(
                    src.yaml.key_at(path),
                    "E204",
                    f"{who}: the handler of event {event!r} and the hook of a refused "
                    f"{command!r} would both be the method {hook}; rename the event or the "
                    "command",
                )


def _missing(numbers: list[int], shown: int = 5) -> str:
    """The first missing version numbers below the highest; found by counting up, never by
    building the whole range (a version `1000000000` must not cost a billion steps)."""
    present, top = set(numbers), max(numbers)
    missing: list[int] = []
    candidate = 1
    while candidate < top and len(missing) <= shown:
        if candidate not in present:
            missing.append(candidate)
        candidate += 1
    text = ", ".join(map(str, missing[:shown]))
    return f"{text}, ..." if len(missing) > shown else text


def _former_names(written: str | list[str] | None) -> list[tuple[int | None, str]]:
    """(index in the list, or None for a single name; name) of an event's `renamed_from`."""
    if written is None:
        return []
    if isinstance(written, str):
        return [(None, written)]
    return list(enumerate(written))


def _dependency_order(types: dict[str, tuple[Any, Source, KeyPath]]) -> list[str]:
    """Value types ordered so that each comes after the value types its fields name.

    Cycles (a tree type naming itself) are legal: pydantic resolves such references
    lazily; they just keep their declaration order.
    """
    deps: dict[str, list[str]] = {}
    for name, (tdef, _, _) in types.items():
        names: list[str] = []
        for spec in tdef.fields.values():
            text = spec if isinstance(spec, str) else spec.type
            if text:
                names.extend(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))
        deps[name] = [n for n in names if n in types and n != name]
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:  # a cycle; keep declaration order
            return
        state[name] = 1
        for dep in deps[name]:
            visit(dep)
        state[name] = 2
        order.append(name)

    for name in types:
        visit(name)
    return order


def _contract(context: Context, events: Sequence[Event]) -> Context:
    """What a subscriber sees of an upstream context: the subscribed events with every
    version, their aggregates (only the id field; no commands, no state) and the types
    those events use, directly or through other types."""
    wanted = {e.name for e in events}
    aggregates = tuple(
        replace(
            a,
            state=(),
            commands=(),
            events=tuple(e for e in a.events if e.name in wanted),
            snapshot_every=None,
        )
        for a in context.aggregates
        if any(e.name in wanted for e in a.events)
    )
    pending = [
        f
        for a in aggregates
        for f in (a.id_field, *(f for e in a.events for v in e.versions for f in v.fields))
    ]
    used: set[str] = set()
    while pending:
        f = pending.pop()
        names = set(named_types(f.type))
        if f.has_default:
            names |= default_names(f.type, f.default, context.user_type)
        for type_name in names - used:
            used.add(type_name)
            user_type = context.user_type(type_name)
            if isinstance(user_type, ValueType):
                pending.extend(user_type.fields)
    return Context(
        name=context.name,
        files=context.files,
        types=tuple(t for t in context.types if t.name in used),
        aggregates=aggregates,
        projections=(),
        sagas=(),
        location=context.location,
        compatibility=context.compatibility,
        description=context.description,
    )


def build_context(
    name: str,
    sources: Sequence[Source],
    read: Reader,
    folders: Sequence[Path] | None = None,
    fetch: Fetcher | None = None,
    *,
    upstreams: bool = True,
) -> tuple[Context | None, list[Diagnostic]]:
    """`folders`: where json_schema files read from disk may be; `fetch`: how http(s)
    `$ref`s are fetched, when the project allows them; `upstreams`: load the schemas
    subscriptions name (see _Builder)."""
    builder = _Builder(name, sources, read, folders, fetch, upstreams)
    context = builder.build()
    return context, builder.diagnostics
