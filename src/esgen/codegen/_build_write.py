"""IR of the write side: aggregate bases, upcasters, the command service, and scaffolds.

Generated modules (always rewritten) hold everything the schema determines; scaffolds
(created once, then the user's) hold the decisions only people can make: command
handlers, apply methods, upcasters the schema cannot derive, and test scenarios.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Sequence
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from esgen.codegen._build_read import correlation_type
from esgen.codegen._ir import (
    AggregateModuleIR,
    DerivedUpcasterIR,
    ManualUpcasterIR,
    MappingEntryIR,
    MethodIR,
    ModuleIR,
    PackageInitIR,
    PayloadFieldIR,
    PayloadIR,
    PayloadsModuleIR,
    RouteIR,
    ScenarioIR,
    ServiceModuleIR,
    StrategyIR,
    UpcasterRegistrationIR,
    UpcastersModuleIR,
    UpcasterTestsIR,
    UserClassIR,
    UserPackageIR,
    UserTestsIR,
    UserUpcasterIR,
)
from esgen.codegen._pyexpr import Imports, docstring, string
from esgen.codegen._pyexpr import comment_text as _comment
from esgen.codegen._strategies import Unsupported, model_strategy
from esgen.codegen._upcast import Payloads, class_syntax_fits, derived_body, same_payload
from esgen.schema import (
    Aggregate,
    Event,
    EventVersion,
    Field,
    ScalarKind,
    ScalarType,
    ValueType,
    VersionStep,
    pascal,
    python_name,
    snake,
    union_name,
)

if TYPE_CHECKING:
    from esgen.codegen._build import _ContextBuilder

__all__ = [
    "apply_method",
    "class_of",
    "handler_method",
    "registrations",
    "upcaster_function",
    "upcaster_modules",
    "upcaster_tests",
    "write_side_modules",
]


def apply_method(event: Event) -> str:
    return f"apply_{snake(event.name)}"


def handler_method(command_name: str) -> str:
    return f"handle_{snake(command_name)}"


def upcaster_function(step: VersionStep) -> str:
    return f"{snake(step.event)}_v{step.old.version}_to_v{step.new.version}"


def class_of(event: Event, version: EventVersion) -> str:
    return event.name if version is event.latest else f"{event.name}V{version.version}"


def write_side_modules(b: _ContextBuilder) -> list[ModuleIR]:
    ctx = b.context
    if not ctx.aggregates and not ctx.consumers:
        return []
    modules: list[ModuleIR] = []
    pkg = b.package
    sources = b.src(*ctx.files)
    if ctx.aggregates:
        modules.append(
            PackageInitIR(
                path=pkg / "aggregates" / "__init__.py",
                sources=sources,
                docstring=docstring("State models and abstract bases of the aggregates.", ""),
            )
        )
    # The domain package holds the user's consumers too, in a context without aggregates.
    modules.append(
        UserPackageIR(
            path=pkg / "domain" / "__init__.py",
            sources=sources,
            docstring=docstring(
                f"The hand-written domain logic of the {ctx.name} context.\n\n"
                "esgen created this package once; it never changes or removes what is here.",
                "",
            ),
        )
    )
    for aggregate in ctx.aggregates:
        modules.append(_aggregate_module(b, aggregate))
        modules.append(_user_aggregate(b, aggregate))
        modules.append(_user_tests(b, aggregate))
    modules.extend(upcaster_modules(b))
    modules.append(_service_module(b))
    tests = upcaster_tests(b)
    if tests is not None:
        modules.append(tests)
    return modules


def upcaster_modules(b: _ContextBuilder) -> list[ModuleIR]:
    """The payload types, the upcasters between versions of the context's events, and the
    scaffolds of the hand-written ones."""
    ctx = b.context
    modules: list[ModuleIR] = []
    pkg = b.package
    sources = b.src(*ctx.files)
    steps = [s for a in ctx.aggregates for e in a.events for s in b.steps[e.name]]
    if steps:
        modules.append(_payloads_module(b))
        # Widenings only need a registration: an aggregate may have no upcaster to define.
        upcasters = [m for a in ctx.aggregates if (m := _upcasters_module(b, a)) is not None]
        if upcasters:
            modules.append(
                PackageInitIR(
                    path=pkg / "upcasters" / "__init__.py",
                    sources=sources,
                    docstring=docstring("Upcasters between versions of the context's events.", ""),
                )
            )
            modules.extend(upcasters)
    manual = [s for s in steps if s.manual]
    if manual and not b.contract:
        modules.append(
            UserPackageIR(
                path=pkg / "domain" / "upcasting" / "__init__.py",
                sources=sources,
                docstring=docstring(
                    "Hand-written upcasters: version steps the schema cannot derive.", ""
                ),
            )
        )
        modules.extend(_user_upcaster(b, step) for step in manual)
    return modules


def registrations(b: _ContextBuilder) -> tuple[list[UpcasterRegistrationIR], Imports]:
    """The registry's upcaster registrations, and what the registry must import for them."""
    imports = Imports()
    entries: list[UpcasterRegistrationIR] = []
    for aggregate in b.context.aggregates:
        for event in aggregate.events:
            for step in b.steps[event.name]:
                if same_payload(step):
                    entries.append(
                        UpcasterRegistrationIR(
                            string(event.name), step.old.version, "", aggregate.name, True
                        )
                    )
                    continue
                name = upcaster_function(step)
                imports.add(f".upcasters.{snake(aggregate.name)}", name)
                entries.append(
                    UpcasterRegistrationIR(
                        string(event.name), step.old.version, name, aggregate.name
                    )
                )
    return entries, imports


# -- the aggregate's generated base ---------------------------------------------------


def _methods(b: _ContextBuilder, aggregate: Aggregate) -> list[MethodIR]:
    # The base and the user's scaffold declare the same methods: build them once.
    cached = b.methods.get(aggregate.name)
    if cached is None:
        cached = b.methods[aggregate.name] = _aggregate_methods(aggregate)
    return cached


def _aggregate_methods(aggregate: Aggregate) -> list[MethodIR]:
    state = f"{aggregate.name}State"
    methods: list[MethodIR] = []
    events = {e.name: e for e in aggregate.events}
    for command in aggregate.commands:
        emitted = " | ".join(command.emits)
        names = ", ".join(command.emits)
        methods.append(
            MethodIR(
                name=handler_method(command.name),
                parameters=f"command: {command.name}",
                returns=f"Sequence[{emitted}]",
                docstring=docstring(
                    f"Decide what {command.name} means now: return the events it causes "
                    f"({names}), or raise to refuse it. Record nothing yourself.",
                    "        ",
                ),
                todo=_comment(
                    f"{aggregate.name}.{handler_method(command.name)}: decide which events "
                    f"{command.name} causes ({names})"
                ),
            )
        )
    for event in events.values():
        methods.append(
            MethodIR(
                name=apply_method(event),
                parameters=f"event: {event.name}",
                returns=state,
                docstring=docstring(
                    f"Return the state after {event.name}; the current state is "
                    "`self.state_or_none` (None before the first event).",
                    "        ",
                ),
                todo=_comment(
                    f"{aggregate.name}.{apply_method(event)}: return the {state} after {event.name}"
                ),
            )
        )
    return methods


def _aggregate_module(b: _ContextBuilder, aggregate: Aggregate) -> AggregateModuleIR:
    imports = Imports(b.order)
    imports.add("__future__", "annotations")
    imports.add("abc", "ABC")
    if aggregate.events:  # one abstract apply method per event, and none without
        imports.add("abc", "abstractmethod")
    imports.add("collections.abc", "Mapping")
    imports.add("typing", "ClassVar")
    imports.add("esgen.runtime", "Aggregate")
    imports.add("esgen.runtime", "Command")
    imports.add("esgen.runtime", "Event")
    imports.add("esgen.runtime", "ValueObject")
    agg_module = snake(aggregate.name)
    event_union = union_name(b.context.name, aggregate.name, "Event")
    if aggregate.commands:
        imports.add("collections.abc", "Sequence")
        imports.add("typing", "cast")
        imports.add("typing_extensions", "override")
        imports.add(f"..events.{agg_module}", event_union)
    for event in aggregate.events:
        imports.add(f"..events.{agg_module}", event.name)
    for command in aggregate.commands:
        imports.add(f"..commands.{agg_module}", command.name)
    b.uses(aggregate.state, imports, 1)
    b.uses((aggregate.id_field,), imports, 1)
    id_type = b.field(aggregate.id_field, imports).annotation
    state_name = f"{aggregate.name}State"
    state = b.evolvable(
        state_name,
        docstring(
            f"The state of the {aggregate.name} aggregate, built by its apply methods.", "    "
        ),
        b.fields(aggregate.state, imports, b.aggregate_subject(aggregate)),
        imports,
    )
    described = aggregate.description or f"The {aggregate.name} aggregate."
    base_doc = (
        f"{described}\n\nGenerated base: subclass it in "
        f"{b.context.name}.domain.{agg_module} and implement every abstract method."
    )
    return AggregateModuleIR(
        path=b.package / "aggregates" / f"{agg_module}.py",
        sources=b.src(aggregate.location.file),
        docstring=docstring(f"State and abstract base of the {aggregate.name} aggregate.", ""),
        imports=imports.lines(),
        state=state,
        base_name=f"{aggregate.name}Base",
        base_docstring=docstring(base_doc, "    "),
        aggregate_type=string(aggregate.name),
        snapshot_every=str(aggregate.snapshot_every),
        apply_methods=tuple(
            MappingEntryIR(e.name, string(apply_method(e))) for e in aggregate.events
        ),
        command_methods=tuple(
            MappingEntryIR(c.name, string(handler_method(c.name))) for c in aggregate.commands
        ),
        command_emits=tuple(
            MappingEntryIR(c.name, "(" + ", ".join(c.emits) + ",)") for c in aggregate.commands
        ),
        methods=tuple(_methods(b, aggregate)),
        exports=(f"{aggregate.name}Base", state_name),
        id_type=id_type,
        creation_commands=tuple(c.name for c in aggregate.commands if c.creates),
        event_union=event_union if aggregate.commands else "",
    )


def _user_aggregate(b: _ContextBuilder, aggregate: Aggregate) -> UserClassIR:
    agg_module = snake(aggregate.name)
    imports = Imports()
    imports.add("__future__", "annotations")
    imports.add(f"..aggregates.{agg_module}", f"{aggregate.name}Base")
    if aggregate.events:  # an aggregate without events yet has no methods to write
        # Every method overrides the generated base: left behind when its event goes,
        # it is an error, not dead code.
        imports.add("typing_extensions", "override")
        imports.add(f"..aggregates.{agg_module}", f"{aggregate.name}State")
    if aggregate.commands:
        imports.add("collections.abc", "Sequence")
    for event in aggregate.events:
        imports.add(f"..events.{agg_module}", event.name)
    for command in aggregate.commands:
        imports.add(f"..commands.{agg_module}", command.name)
    return UserClassIR(
        path=b.package / "domain" / f"{agg_module}.py",
        sources=b.src(aggregate.location.file),
        docstring=docstring(
            f"The {aggregate.name} aggregate: what its commands decide, and how its events "
            "change its state.\n\n"
            "Yours to edit: esgen created this file once and never touches it again. When "
            "the schema gains an event or a command, the generated base gains an abstract "
            "method, and mypy and the tests name what to add here.",
            "",
        ),
        imports=imports.lines(),
        class_name=aggregate.name,
        class_docstring=docstring(aggregate.description or f"The {aggregate.name}.", "    "),
        base_name=f"{aggregate.name}Base",
        methods=tuple(_methods(b, aggregate)),
        method_prefixes=("handle_", "apply_"),
    )


# -- upcasters ------------------------------------------------------------------------


def _payloads(b: _ContextBuilder) -> tuple[Payloads, list[tuple[Event, EventVersion]]]:
    """The context's payload types, and the event versions that have one: every version
    of each event with more than one (the ones upcasters read and write)."""
    versions = [
        (event, version)
        for aggregate in b.context.aggregates
        for event in aggregate.events
        if len(event.versions) > 1
        for version in event.versions
    ]
    names = [Payloads.event_name(e.name, v.version) for e, v in versions]
    return Payloads(b.types.get, names), versions


def _payload_order(b: _ContextBuilder, payloads: Payloads) -> dict[str, int]:
    """The schema order of the context's names, then the payloads' in theirs: imports of
    several payloads list them as the payloads module defines them."""
    _, versions = _payloads(b)
    names = [payloads.value_name(t.name) for t in b.declared]
    names += [Payloads.event_name(e.name, v.version) for e, v in versions]
    return {**b.order, **{n: len(b.order) + i for i, n in enumerate(names)}}


def _payloads_module(b: _ContextBuilder) -> PayloadsModuleIR:
    payloads, versions = _payloads(b)
    used = payloads.value_types(f.type for _, v in versions for f in v.fields)
    found: list[PayloadIR] = []
    files = [e.location.file for e, _ in versions]
    for value in b.declared:
        if isinstance(value, ValueType) and value.name in used:
            files.append(value.location.file)
            text = f"{value.name} as stored inside events."
            if any(f.has_default for f in value.fields):
                text += (
                    " A field with a default may be missing: values stored before it was "
                    "added lack it."
                )
            found.append(_payload(payloads, payloads.value_name(value.name), text, value.fields))
    for event, version in versions:
        text = f"{event.name} version {version.version} as stored."
        name = Payloads.event_name(event.name, version.version)
        found.append(_payload(payloads, name, text, version.fields, event_fields=True))
    imports = Imports(_payload_order(b, payloads))
    imports.add("__future__", "annotations")
    imports.add("typing", "TypedDict")
    annotations = [f.annotation for p in found for f in p.fields]
    if any(a.startswith("NotRequired[") for a in annotations):
        imports.add("typing", "NotRequired")
    # Only enums spell Literal (an enum value that reads "Literal[" costs an unused import).
    if any("Literal[" in a for a in annotations):
        imports.add("typing", "Literal")
    ctx = b.context
    return PayloadsModuleIR(
        path=b.package / "payloads.py",
        sources=b.src(*files),
        docstring=docstring(
            f"The stored JSON payloads of the {ctx.name} context's events: a TypedDict per "
            "version of each event that has several, and one per value type they use. "
            "Upcasters read and return these.\n\n"
            "Keys are the schema's field names. uuid, date, datetime and bytes (base64) are "
            "text; a decimal is text, or a number where it was widened from an int; an enum "
            "is one of its values. An event version's fields are all present, since events "
            "are stored with every field; a value type's fields with defaults may be "
            "missing, since value types grow in place.",
            "",
        ),
        imports=imports.lines(),
        payloads=tuple(found),
        exports=tuple(p.name for p in found),
    )


def _payload(
    payloads: Payloads,
    name: str,
    text: str,
    fields: Sequence[Field],
    event_fields: bool = False,
) -> PayloadIR:
    return PayloadIR(
        name,
        docstring(text, "    "),
        _comment(text),
        tuple(
            PayloadFieldIR(f.name, payloads.field_annotation(f, not event_fields)) for f in fields
        ),
        not class_syntax_fits(f.name for f in fields),
    )


def _upcasters_module(b: _ContextBuilder, aggregate: Aggregate) -> UpcastersModuleIR | None:
    steps = [s for e in aggregate.events for s in b.steps[e.name] if not same_payload(s)]
    if not steps:
        return None
    payloads, _ = _payloads(b)
    imports = Imports(_payload_order(b, payloads))
    imports.add("__future__", "annotations")
    derived: list[DerivedUpcasterIR] = []
    manual: list[ManualUpcasterIR] = []
    for step in steps:
        event = next(e for e in aggregate.events if e.name == step.event)
        summary = "; ".join(c.summary for c in step.changes) or "no change to the fields"
        name = upcaster_function(step)
        old_payload = Payloads.event_name(event.name, step.old.version)
        new_payload = Payloads.event_name(event.name, step.new.version)
        if step.manual and b.contract:
            imports.add("..payloads", old_payload)
            imports.add("..payloads", new_payload)
            imports.add("esgen.runtime", "UpcastError")
            reason = (
                f"{step.event} version {step.old.version} needs the hand-written upcaster "
                f"of the {b.context.name} context to become version {step.new.version}; "
                "this contract cannot read it (an up-to-date relay of the upstream sends "
                "the latest version)"
            )
            derived.append(
                DerivedUpcasterIR(
                    name,
                    docstring(
                        f"{step.event} version {step.old.version} -> {step.new.version}: "
                        f"upcast by hand in {b.context.name}, so refused here ({summary}).",
                        "    ",
                    ),
                    (
                        "raise UpcastError(",
                        *(f"    {string(part)}" for part in _pieces(reason)),
                        ")",
                    ),
                    old_payload,
                    new_payload,
                )
            )
        elif step.manual:
            # Hand-written steps work on the event classes (validated values), not on the
            # payloads: upcast_events reads the one and dumps the other.
            alias = f"_{step.manual_module}"
            imports.add(f"..domain.upcasting.{step.manual_module}", f"upcast as {alias}")
            imports.add(f"..events.{snake(aggregate.name)}", class_of(event, step.old))
            imports.add(f"..events.{snake(aggregate.name)}", class_of(event, step.new))
            imports.add("esgen.runtime", "upcast_events")
            imports.add("typing", "Final")
            manual.append(
                ManualUpcasterIR(
                    name,
                    docstring(
                        f"{step.event} version {step.old.version} -> {step.new.version}, by "
                        f"the hand-written upcaster in {b.context.name}.domain.upcasting."
                        f"{step.manual_module} ({summary}).",
                        "    ",
                    ),
                    alias,
                    class_of(event, step.old),
                    class_of(event, step.new),
                )
            )
        else:
            imports.add("..payloads", old_payload)
            imports.add("..payloads", new_payload)
            body, used = derived_body(step, payloads)
            for payload in used:
                imports.add("..payloads", payload)
            derived.append(
                DerivedUpcasterIR(
                    name,
                    docstring(
                        f"{step.event} version {step.old.version} -> {step.new.version}: "
                        f"{summary}.",
                        "    ",
                    ),
                    tuple(body),
                    old_payload,
                    new_payload,
                )
            )
    return UpcastersModuleIR(
        path=b.package / "upcasters" / f"{snake(aggregate.name)}.py",
        sources=b.src(aggregate.location.file),
        docstring=docstring(
            f"Upcasters of the {aggregate.name} aggregate's events: stored data of version "
            "k to the data of version k + 1.",
            "",
        ),
        imports=imports.lines(),
        derived=tuple(derived),
        manual=tuple(manual),
        # In step order, one a line: a new version adds its line where its event is.
        exports=tuple(upcaster_function(s) for s in steps),
    )


def _pieces(text: str) -> list[str]:
    """Text cut into pieces that fit a line each as string literals, spaces kept."""
    return textwrap.wrap(
        text, 70, drop_whitespace=False, break_long_words=False, break_on_hyphens=False
    )


def _user_upcaster(b: _ContextBuilder, step: VersionStep) -> UserUpcasterIR:
    event = b.context.event(step.event)
    assert event is not None
    aggregate_module = snake(event.aggregate)
    old_class, new_class = class_of(event, step.old), class_of(event, step.new)
    imports = Imports()
    imports.add("__future__", "annotations")
    imports.add(f"...events.{aggregate_module}", old_class)
    imports.add(f"...events.{aggregate_module}", new_class)
    why = "; ".join(c.summary for c in step.blocking) or "the schema asks for `upcast: manual`"
    return UserUpcasterIR(
        path=b.package / "domain" / "upcasting" / f"{step.manual_module}.py",
        sources=b.src(event.location.file),
        docstring=docstring(
            f"{step.event}: reading version {step.old.version} as version "
            f"{step.new.version}, written by hand.\n\n"
            f"esgen cannot derive this step: {why}.\n\n"
            f"`upcast` gets a stored event of version {step.old.version}, validated, and "
            f"returns it as version {step.new.version}.\n\n"
            "Yours to edit: esgen created this file once and never touches it again.",
            "",
        ),
        imports=imports.lines(),
        old_class=old_class,
        new_class=new_class,
        todo=_comment(
            f"upcast {step.event} version {step.old.version} to {step.new.version} "
            f"in {b.context.name}.domain.upcasting.{step.manual_module}"
        ),
    )


# -- the command service --------------------------------------------------------------


def _service_module(b: _ContextBuilder) -> ServiceModuleIR:
    ctx = b.context
    name = pascal(ctx.name)
    command_alias, event_alias = f"{name}Command", f"{name}Event"
    imports = Imports(b.order)
    imports.add("__future__", "annotations")
    imports.add("collections.abc", "Mapping")
    imports.add("typing", "TYPE_CHECKING")
    imports.add("pydantic", "JsonValue")
    for runtime_name in ("Clock", "EventStore", "utc_now"):
        imports.add("esgen.runtime", runtime_name)
    if ctx.aggregates:
        imports.add("esgen.runtime", "Repository")
    if ctx.aggregates:  # consumers read through their upstreams' registries
        imports.add(".registry", "REGISTRY")
    # Overloads type each command's result; with one command, dispatch alone does.
    overloads = len(ctx.commands) > 1
    if ctx.commands:
        imports.add("typing", "assert_never")
        if overloads:
            imports.add("typing", "overload")
        imports.add("esgen.runtime", "CommandResult")
        imports.add("collections.abc", "Callable")
        imports.add("typing", "TypeVar")
        for runtime_name in ("UnitOfWork", "UnitOfWorkResult", "run_in_unit_of_work"):
            imports.add("esgen.runtime", runtime_name)
        imports.add("esgen.runtime", "handle_command")
        imports.add(".commands", command_alias)
        imports.add(".events", event_alias)
    else:
        imports.add("esgen.runtime", "Command")
    routes: list[RouteIR] = []
    for aggregate in ctx.aggregates:
        agg_module = snake(aggregate.name)
        imports.add(f".domain.{agg_module}", aggregate.name)
        id_field = b.field(aggregate.id_field, imports)
        b.uses((aggregate.id_field,), imports, 0)
        command_union = union_name(ctx.name, aggregate.name, "Command")
        event_union = union_name(ctx.name, aggregate.name, "Event")
        if aggregate.commands:
            imports.add(f".commands.{agg_module}", command_union)
            imports.add(f".events.{agg_module}", event_union)
        for command in aggregate.commands:
            imports.add(f".commands.{agg_module}", command.name)
            for event in command.emits if overloads else ():
                imports.add(f".events.{agg_module}", event)
        routes.append(
            RouteIR(
                repository=f"{agg_module}_repository",
                aggregate_class=aggregate.name,
                commands=tuple(c.name for c in aggregate.commands),
                id_field=python_name(aggregate.id_field.name),
                handler=f"_handle_{agg_module}",
                id_type=id_field.annotation,
                command_union=command_union,
                event_union=event_union,
                emits=tuple(" | ".join(c.emits) for c in aggregate.commands),
                placeholder_id=_placeholder_id(aggregate, imports),
            )
        )
    for projection in ctx.projections:
        imports.add(f".domain.{snake(projection.name)}", projection.name)
    runners: list[str] = []
    for saga in ctx.sagas:
        imports.add(f".domain.{snake(saga.name)}", saga.name)
        runners.append(f"SagaRunner[{saga.name}, {correlation_type(b, saga, imports)}]")
    if ctx.projections:
        imports.add("esgen.runtime", "ProjectionRunner")
    for consumer in ctx.consumers:
        imports.add(f".domain.{snake(consumer.name)}", consumer.name)
    if ctx.consumers:
        imports.add("collections.abc", "Sequence")
    if ctx.sagas:
        imports.add("esgen.runtime", "SagaRunner")
        imports.add("typing", "Literal")
    published = tuple(
        (event.name, aggregate.name)
        for aggregate in ctx.aggregates
        for event in aggregate.events
        if event.published
    )
    if published:
        # Only for the annotations: the relay's module (and nats-py) loads when called.
        imports.add("typing", "TYPE_CHECKING")
        imports.add("collections.abc", "Sequence")
    # Personal data anywhere (events, states, rows, saga state, commands a saga keeps): the
    # service can forget a subject. Not on every service: one without any has nothing to erase.
    forget = any(
        b.holds_personal(fields)
        for fields in (
            *(v.fields for e in ctx.events for v in e.versions),
            *(c.fields for c in ctx.commands),
            *(a.state for a in ctx.aggregates),
            *(p.fields for p in ctx.projections),
            *(s.state for s in ctx.sagas),
        )
    )
    subject_type = f"str | {imports.name('uuid', 'UUID')} | int" if forget else ""
    # The asyncio variant: its repositories cannot seal or open personal data yet, so a
    # context whose events or aggregate states hold some has none.
    seals = any(
        b.holds_personal(fields)
        for fields in (
            *(v.fields for e in ctx.events for v in e.versions),
            *(a.state for a in ctx.aggregates),
        )
    )
    with_async = bool(ctx.commands) and not seals
    if with_async:
        imports.add("collections.abc", "Awaitable")
        for runtime_name in (
            "AsyncEventStore",
            "AsyncRepository",
            "AsyncUnitOfWork",
            "handle_command_async",
            "run_in_unit_of_work_async",
        ):
            imports.add("esgen.runtime", runtime_name)
    return ServiceModuleIR(
        path=b.package / "service.py",
        sources=b.src(*ctx.files),
        docstring=docstring(
            f"The {ctx.name} context on an event store: a repository per aggregate, the "
            "typed command dispatcher, and the runners of its projections and sagas.",
            "",
        ),
        imports=imports.lines(),
        class_name=f"{name}Service",
        class_docstring=docstring(
            "Repositories of the context's aggregates, and `dispatch` for its commands.\n\n"
            "Events are read through the context's registry, so stored events of any "
            "version come back as the latest version.",
            "    ",
        ),
        command_alias=command_alias,
        event_alias=event_alias,
        uow_class=f"{name}UnitOfWork",
        commands=tuple(c.name for c in ctx.commands),
        # In schema order, with or without commands: an aggregate's first command must
        # not move its lines.
        routes=tuple(routes),
        aggregate_union=" | ".join(r.aggregate_class for r in routes if r.commands),
        projections=tuple(p.name for p in ctx.projections),
        sagas=tuple(s.name for s in ctx.sagas),
        saga_runners=tuple(runners),
        consumers=tuple(c.name for c in ctx.consumers),
        upstreams=tuple(
            dict.fromkeys(upstream for c in ctx.consumers for upstream, _ in c.handles)
        ),
        context=ctx.name,
        published=published,
        forget=forget,
        subject_type=subject_type,
        async_class_name=f"Async{name}Service" if with_async else "",
        async_uow_class=f"Async{name}UnitOfWork" if with_async else "",
    )


def _placeholder_id(aggregate: Aggregate, imports: Imports) -> str:
    """An id of the aggregate's type, to build one where only the type checker looks."""
    kind = aggregate.id_field.type
    if isinstance(kind, ScalarType) and kind.kind is ScalarKind.UUID:
        return f"{imports.name('uuid', 'UUID')}(int=0)"
    if isinstance(kind, ScalarType) and kind.kind is ScalarKind.INT:
        return "0"
    return '""'


# -- tests ----------------------------------------------------------------------------


def _user_tests(b: _ContextBuilder, aggregate: Aggregate) -> UserTestsIR:
    ctx = b.context
    agg_module = snake(aggregate.name)
    imports = Imports()
    imports.add("__future__", "annotations")
    scenarios: list[ScenarioIR] = []
    if aggregate.commands or any(s.manual for e in aggregate.events for s in b.steps[e.name]):
        imports.add("esgen.runtime.testing", "todo")
    if aggregate.commands:
        imports.add("esgen.runtime.testing", "AggregateScenario")
        imports.add(f"{ctx.name}.domain.{agg_module}", aggregate.name)
    for command in aggregate.commands:
        events = ", ".join(command.emits)
        scenarios.append(
            ScenarioIR(
                test_name=f"test_{snake(command.name)}",
                kind="command",
                subject=command.name,
                version=0,
                todo=_comment(
                    f"{command.name}(...): the command under test; then the events "
                    f"{aggregate.name} should record ({events}) or .then_raises(...)"
                ),
            )
        )
    for event in aggregate.events:
        for step in b.steps[event.name]:
            if not step.manual:
                continue
            imports.add("esgen.runtime.testing", "UpcasterScenario")
            imports.add(f"{ctx.name}.registry", "REGISTRY")
            scenarios.append(
                ScenarioIR(
                    test_name=f"test_upcast_{step.manual_module}",
                    kind="upcaster",
                    subject=string(event.name),
                    version=step.old.version,
                    todo=_comment(
                        f"a {event.name} payload as version {step.old.version} stored it, "
                        f"and the {event.name} it should read as"
                    ),
                )
            )
    return UserTestsIR(
        path=PurePosixPath(ctx.name) / f"test_{ctx.name}_{agg_module}.py",
        sources=b.src(aggregate.location.file),
        docstring=docstring(
            f"Scenarios of the {aggregate.name} aggregate: one per command"
            + (
                ", one per hand-written upcaster"
                if any(s.kind == "upcaster" for s in scenarios)
                else ""
            )
            + ".\n\nYours to edit: esgen created this file once. Each test fails until its "
            "scenario is written.",
            "",
        ),
        imports=imports.lines(),
        subject_class=aggregate.name,
        fixture="AggregateScenario",
        then="then",
        scenarios=tuple(scenarios),
    )


def upcaster_tests(b: _ContextBuilder) -> UpcasterTestsIR | None:
    """Property tests of the derived upcasters of the context, or of an upstream's
    contract inside its subscriber (in the subscriber's tests, named after both)."""
    ctx = b.context
    package = ".".join(b.package.parts)
    owner = b.package.parts[0]  # the context whose tests folder holds the module
    imports = Imports(b.order)
    imports.add("__future__", "annotations")
    imports.add("hypothesis", "given")
    imports.add("hypothesis", "strategies as st")
    imports.add(f"{package}.registry", "REGISTRY")
    tests: list[StrategyIR] = []
    for aggregate in ctx.aggregates:
        for event in aggregate.events:
            tests.extend(_event_property_tests(b, aggregate, event, imports))
    if not tests:
        return None
    name = (
        f"test_{owner}_{ctx.name}_contract_upcasters.py"
        if b.contract
        else f"test_{ctx.name}_upcasters.py"
    )
    what = f"the upcasters of the {ctx.name} contract" if b.contract else "the derived upcasters"
    return UpcasterTestsIR(
        path=PurePosixPath(owner) / name,
        sources=b.src(*ctx.files),
        docstring=docstring(
            f"Property tests of {what}: any payload an older version could have stored "
            "reads as a valid event of the latest version.",
            "",
        ),
        imports=imports.lines(),
        tests=tuple(tests),
    )


def _event_property_tests(
    b: _ContextBuilder, aggregate: Aggregate, event: Event, imports: Imports
) -> Iterable[StrategyIR]:
    steps: Sequence[VersionStep] = b.steps[event.name]
    package = ".".join(b.package.parts)
    module = f"{package}.events.{snake(aggregate.name)}"
    for index, step in enumerate(steps):
        # Only chains made of derived steps: hand-written ones have their own scenarios.
        if any(s.manual for s in steps[index:]):
            continue
        old_class = class_of(event, step.old)
        local = Imports()
        try:
            strategy = model_strategy(old_class, step.old, b.types, local, f"{package}.types")
        except Unsupported:
            continue
        imports.update(local)
        imports.add(module, old_class)
        imports.add(module, event.name)
        yield StrategyIR(
            test_name=f"test_{snake(event.name)}_v{step.old.version}_reads_as_latest",
            event_type=string(event.name),
            version=step.old.version,
            old_class=old_class,
            latest_class=event.name,
            strategy=strategy,
        )
