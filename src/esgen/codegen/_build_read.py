"""IR of the read side and workflows: projection and saga bases, their scaffolds and tests."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from esgen.codegen._ir import (
    MappingEntryIR,
    MethodIR,
    ModuleIR,
    PackageInitIR,
    ProjectionModuleIR,
    QueryFieldIR,
    RefusalHookIR,
    SagaModuleIR,
    ScenarioIR,
    SendMethodIR,
    UserClassIR,
    UserTestsIR,
)
from esgen.codegen._pyexpr import Imports, docstring, string
from esgen.codegen._pyexpr import comment_text as _comment
from esgen.schema import (
    Consumer,
    Field,
    Projection,
    Saga,
    ScalarKind,
    ScalarType,
    handler_name,
    python_name,
    queryable,
    read_model_table,
    refusal_hook_name,
    snake,
)

if TYPE_CHECKING:
    from esgen.codegen._build import _ContextBuilder

__all__ = ["correlation_type", "read_side_modules"]


def read_side_modules(b: _ContextBuilder) -> list[ModuleIR]:
    ctx = b.context
    modules: list[ModuleIR] = []
    sources = b.src(*ctx.files)
    if ctx.projections:
        modules.append(
            PackageInitIR(
                path=b.package / "projections" / "__init__.py",
                sources=sources,
                docstring=docstring("Row models and abstract bases of the projections.", ""),
            )
        )
        for projection in ctx.projections:
            modules.append(_projection_module(b, projection))
            modules.append(_user_projection(b, projection))
    if ctx.consumers:
        modules.append(
            PackageInitIR(
                path=b.package / "consumers" / "__init__.py",
                sources=sources,
                docstring=docstring(
                    "Row models and abstract bases of the consumers: read models fed by "
                    "the events other contexts publish.",
                    "",
                ),
            )
        )
        for consumer in ctx.consumers:
            modules.append(_projection_module(b, consumer))
            modules.append(_user_projection(b, consumer))
    if ctx.sagas:
        modules.append(
            PackageInitIR(
                path=b.package / "sagas" / "__init__.py",
                sources=sources,
                docstring=docstring("State models and abstract bases of the sagas.", ""),
            )
        )
        for saga in ctx.sagas:
            modules.append(_saga_module(b, saga))
            modules.append(_user_saga(b, saga))
            modules.append(_saga_tests(b, saga))
    return modules


# -- projections ----------------------------------------------------------------------


def _handled(model: Projection | Consumer) -> tuple[str, ...]:
    """The event classes a read model's handlers take: its context's own events for a
    projection, the upstreams' for a consumer (their names are distinct: see E204)."""
    if isinstance(model, Projection):
        return model.consumes
    return tuple(event for _, event in model.handles)


def _projection_methods(b: _ContextBuilder, projection: Projection | Consumer) -> list[MethodIR]:
    recorded = (
        "`recorded` is the stored envelope: stream, position, time, metadata."
        if isinstance(projection, Projection)
        else "`recorded` is the message as the upstream recorded the event: its id, "
        "stream, position in the upstream's store, time, metadata."
    )
    return [
        MethodIR(
            name=handler_name(event),
            parameters=f"event: {event}, recorded: RecordedEvent",
            returns="None",
            docstring=docstring(
                f"Change the rows for {event}, through `self.rows` (get, put, update, "
                f"delete; list and count query them). {recorded}",
                "        ",
            ),
            todo=_comment(f"{projection.name}.{handler_name(event)}: change the rows for {event}"),
        )
        for event in _handled(projection)
    ]


def _read_model_event_imports(
    b: _ContextBuilder, model: Projection | Consumer, imports: Imports, depth: int
) -> None:
    if isinstance(model, Projection):
        _event_imports(b, model.consumes, imports, depth)
        return
    prefix = "." * (depth + 1)
    for upstream, name in model.handles:
        subscription = b.context.subscription(upstream)
        assert subscription is not None
        event = subscription.event(name)
        assert event is not None
        imports.add(f"{prefix}upstream.{upstream}.events.{snake(event.aggregate)}", name)


def _event_imports(
    b: _ContextBuilder, names: tuple[str, ...], imports: Imports, depth: int
) -> None:
    prefix = "." * (depth + 1)
    for name in names:
        event = b.context.event(name)
        assert event is not None
        imports.add(f"{prefix}events.{snake(event.aggregate)}", name)


def _command_imports(
    b: _ContextBuilder, names: tuple[str, ...], imports: Imports, depth: int
) -> None:
    prefix = "." * (depth + 1)
    for name in names:
        command = b.context.command(name)
        assert command is not None
        imports.add(f"{prefix}commands.{snake(command.aggregate)}", name)


def _sent_fields(b: _ContextBuilder, saga: Saga) -> Iterator[Field]:
    """The fields of every command the saga sends (compensations included)."""
    for name in saga.sends:
        command = b.context.command(name)
        if command is not None:
            yield from command.fields


def _projection_module(b: _ContextBuilder, projection: Projection | Consumer) -> ProjectionModuleIR:
    consumer = isinstance(projection, Consumer)
    kind = "consumer" if consumer else "projection"
    package = "consumers" if consumer else "projections"
    imports = Imports(b.order)
    imports.add("__future__", "annotations")
    imports.add("abc", "ABC")
    imports.add("abc", "abstractmethod")
    imports.add("collections.abc", "Mapping")
    imports.add("typing", "ClassVar")
    imports.add("pydantic", "BaseModel")
    for name in (
        "Column",
        "Event",
        "Consumer" if consumer else "Projection",
        "ConsumerReadModel" if consumer else "ReadModel",
        "RecordedEvent",
        "Rows",
        "TableSpec",
        "ValueObject",
    ):
        imports.add("esgen.runtime", name)
    # Rows use pydantic's `Field` (aliases, constraints, descriptions), so the runtime's
    # query `Field` goes by another name here, in every projection module alike.
    imports.add("esgen.runtime", "Field as QueryField")
    # The typed rows: `update` and the `rows` property override the runtime's.
    imports.add("typing_extensions", "override")
    _read_model_event_imports(b, projection, imports, 1)
    b.uses(projection.fields, imports, 1)
    row_name = f"{projection.name}Row"
    # The table compat predicts rebuilds from: one definition for both.
    spec = read_model_table(projection, b.types.get)
    table_name = spec.name
    columns = [
        f"Column({string(c.name)}, {string(c.kind)}{', nullable=True' if c.nullable else ''})"
        for c in spec.columns
    ]
    table = (
        f"TableSpec({string(table_name)}, key={string(spec.key)}, columns=({', '.join(columns)},)"
    )
    if spec.indexes:
        imports.add("esgen.runtime", "Index")
        indexes = [f"Index({_tuple(string(c) for c in i)})" for i in spec.indexes]
        # A trailing comma, as for the columns: one index a line once formatted.
        table += f", indexes=({', '.join(indexes)},)"
    table += ")"
    described = projection.description or f"The {projection.name} {kind}."
    rows_name = f"{projection.name}Rows"
    fields_name = f"{projection.name}Fields"
    query_name = f"{projection.name}Query"
    subject = projection.subject_field if isinstance(projection, Projection) else projection.key
    row = b.evolvable(
        row_name,
        docstring(f"One row of the {table_name} read model.", "    "),
        # before imports.lines(): fields add imports
        b.fields(projection.fields, imports, f"the subject in {subject}"),
        imports,
        b.subject_of(subject, projection.fields),
    )
    key_field = next(f for f in row.fields if f.name == python_name(spec.key))
    # The row's annotations, which already spell names a field hides (`_datetime.date`).
    # Personal fields are stored sealed: no condition can look at them.
    query_fields = tuple(
        QueryFieldIR(generated.name, generated.changes_annotation, string(column.name))
        for column, generated, f in zip(spec.columns, row.fields, projection.fields, strict=True)
        if queryable(column.kind) and f.personal is None
    )
    example = next((f for f in query_fields if f.name != key_field.name), query_fields[0])
    id_types = _aggregate_id_types(b, projection, imports)
    subscriptions: tuple[MappingEntryIR, ...] = ()
    upstream_of: tuple[MappingEntryIR, ...] = ()
    fed = ""
    if isinstance(projection, Consumer):
        imports.add("esgen.runtime", "EventRegistry")
        upstreams = tuple(dict.fromkeys(upstream for upstream, _ in projection.handles))
        for upstream in upstreams:
            imports.add(f"..upstream.{upstream}.registry", f"REGISTRY as {_registry(upstream)}")
        subscriptions = tuple(MappingEntryIR(string(u), _registry(u)) for u in upstreams)
        upstream_of = tuple(MappingEntryIR(e, string(u)) for u, e in projection.handles)
        fed = (
            " Its events come from the broker, published by "
            + ", ".join(upstreams)
            + "; the consumer runner (`service.consumers()`) commits each message's row "
            "changes with the message's id, so a message delivered twice changes nothing "
            "the second time."
        )
    return ProjectionModuleIR(
        path=b.package / package / f"{snake(projection.name)}.py",
        sources=b.src(projection.location.file),
        docstring=docstring(
            f"Rows, typed queries and abstract base of the {projection.name} {kind}.", ""
        ),
        imports=imports.lines(),
        row=row,
        base_name=f"{projection.name}Base",
        base_docstring=docstring(
            f"{described}\n\nGenerated base: subclass it in {b.context.name}.domain."
            f"{snake(projection.name)}; its rows live in the table (a view) {table_name!r}. "
            "Handlers change them through `self.rows` (get, put, update, delete) and query "
            f"them with `self.rows.list(...)` and `count(...)` on {fields_name}; elsewhere, "
            f"{query_name}(store) reads them.{fed}",
            "    ",
        ),
        name=string(table_name),
        table=table,
        handlers=tuple(
            MappingEntryIR(event, string(handler_name(event))) for event in _handled(projection)
        ),
        methods=tuple(_projection_methods(b, projection)),
        exports=(f"{projection.name}Base", fields_name, query_name, row_name, rows_name),
        rows_name=rows_name,
        rows_docstring=docstring(
            f"The rows of {table_name}, keyed by {spec.key}; `update` takes the row's "
            f"fields as typed keywords, `list` and `count` conditions on {fields_name}.",
            "    ",
        ),
        key_type=key_field.changes_annotation,
        aggregate_id_type=" | ".join(dict.fromkeys(e.value for e in id_types)) or "str",
        aggregate_id_types=id_types,
        fields_name=fields_name,
        fields_docstring=docstring(
            f"The fields of {table_name} to filter and order on, in `list` and `count` of "
            f"{query_name} and of the projection's `self.rows`; fields stored as JSON "
            "(value types, lists, maps) have none.",
            "    ",
        ),
        query_fields=query_fields,
        query_name=query_name,
        query_docstring=docstring(
            f"Typed queries on {table_name}: `get(key)`, `list`, `count` and `exists`, "
            "from any code that has the store; they read the active generation only, "
            "never a table a rebuild is still filling:\n\n"
            f"    F = {fields_name}\n"
            f"    {query_name}(store).list(order_by=F.{example.name}.desc(), limit=10)",
            "    ",
        ),
        base_class="Consumer" if consumer else "Projection",
        query_base="ConsumerReadModel" if consumer else "ReadModel",
        subscriptions=subscriptions,
        upstream_of=upstream_of,
    )


def _registry(upstream: str) -> str:
    """The name a consumer module imports an upstream's registry as."""
    return f"{upstream.upper()}_REGISTRY"


def _tuple(items: Iterable[str]) -> str:
    listed = list(items)
    return f"({listed[0]},)" if len(listed) == 1 else f"({', '.join(listed)})"


def _aggregate_id_types(
    b: _ContextBuilder, projection: Projection | Consumer, imports: Imports
) -> tuple[MappingEntryIR, ...]:
    """The aggregates whose events the projection (or consumer) reads, each with its id
    type (in schema order), so that `aggregate_id(recorded)` returns ids as declared."""
    entries: list[MappingEntryIR] = []
    if isinstance(projection, Projection):
        for aggregate in b.context.aggregates:
            if any(e.name in projection.consumes for e in aggregate.events):
                b.uses((aggregate.id_field,), imports, 1)
                id_type = b.field(aggregate.id_field, imports).annotation
                entries.append(MappingEntryIR(string(aggregate.name), id_type))
        return tuple(entries)
    handled = set(projection.handles)
    for subscription in b.context.subscriptions:
        for aggregate in subscription.contract.aggregates:
            if any((subscription.upstream, e.name) in handled for e in aggregate.events):
                # Ids are uuid, int or str: scalars, which need no import of the upstream.
                id_type = b.field(aggregate.id_field, imports).annotation
                entries.append(MappingEntryIR(string(aggregate.name), id_type))
    return tuple(entries)


def _user_projection(b: _ContextBuilder, projection: Projection | Consumer) -> UserClassIR:
    module = snake(projection.name)
    kind = "projection" if isinstance(projection, Projection) else "consumer"
    imports = Imports()
    imports.add("__future__", "annotations")
    # Every method overrides the generated base: left behind when its event goes,
    # it is an error, not dead code.
    imports.add("typing_extensions", "override")
    imports.add("esgen.runtime", "RecordedEvent")
    imports.add(f"..{kind}s.{module}", f"{projection.name}Base")
    _read_model_event_imports(b, projection, imports, 1)
    return UserClassIR(
        path=b.package / "domain" / f"{module}.py",
        sources=b.src(projection.location.file),
        docstring=docstring(
            f"The {projection.name} {kind}: how each event changes its rows.\n\n"
            "Handlers read and change rows through `self.rows`: get, put, update, delete, "
            f"and `list(...)`/`count(...)` with conditions and orders built from "
            f"{projection.name}Fields (`{projection.name}Fields.<field>.eq(value)`, "
            f"`.desc()`). Code outside handlers queries the read model with "
            f"{projection.name}Query(store).\n\n"
            "Yours to edit: esgen created this file once and never touches it again.",
            "",
        ),
        imports=imports.lines(),
        class_name=projection.name,
        class_docstring=docstring(projection.description or f"The {projection.name}.", "    "),
        base_name=f"{projection.name}Base",
        methods=tuple(_projection_methods(b, projection)),
        method_prefixes=("on_",),
    )


# -- sagas ----------------------------------------------------------------------------


def _saga_methods(b: _ContextBuilder, saga: Saga) -> list[MethodIR]:
    methods = []
    for event in dict.fromkeys((saga.starts_with, *saga.handles)):
        start = event == saga.starts_with
        failure = event in saga.fails_on
        what = (
            "Start the workflow: set `self.state` and send the first commands"
            if start
            else "React to it: send commands (send_*), update `self.state`, or complete()"
        )
        if failure:
            what += "; the compensations run after this handler"
        methods.append(
            MethodIR(
                name=handler_name(event),
                parameters=f"event: {event}",
                returns="None",
                docstring=docstring(f"{event} happened. {what}.", "        "),
                todo=_comment(f"{saga.name}.{handler_name(event)}: react to {event}"),
            )
        )
    for sent, undo in saga.compensations:
        name = f"compensate_{snake(sent)}"
        methods.append(
            MethodIR(
                name=name,
                parameters=f"sent: {sent}",
                returns=f"{undo} | None",
                docstring=docstring(
                    f"The {undo} that undoes a {sent} this saga sent, or None when that "
                    f"{sent} had no effect to undo (say, it was rejected).",
                    "        ",
                ),
                todo=_comment(f"{saga.name}.{name}: build the {undo} that undoes {sent}"),
            )
        )
    if saga.timeout is not None and saga.timeout.then == "handler":
        methods.append(
            MethodIR(
                name="on_timeout",
                parameters="",
                returns="None",
                docstring=docstring(
                    f"The deadline ({saga.timeout.text}) passed: send commands, complete() "
                    "or fail(); if the instance is still running afterwards, it times out "
                    "and the compensations run.",
                    "        ",
                ),
                todo=_comment(f"{saga.name}.on_timeout: decide what the deadline means"),
            )
        )
    return methods


def _saga_module(b: _ContextBuilder, saga: Saga) -> SagaModuleIR:
    imports = Imports(b.order)
    imports.add("__future__", "annotations")
    imports.add("abc", "ABC")
    imports.add("abc", "abstractmethod")
    imports.add("collections.abc", "Mapping")
    imports.add("typing", "ClassVar")
    imports.add("typing", "Literal")
    imports.add("datetime", "timedelta")
    imports.add("pydantic", "BaseModel")
    for name in ("Command", "Event", "Saga", "ValueObject"):
        imports.add("esgen.runtime", name)
    _event_imports(b, (saga.starts_with, *saga.handles), imports, 1)
    _command_imports(b, saga.sends, imports, 1)
    b.uses(saga.state, imports, 1)
    state_name = f"{saga.name}State"
    described = saga.description or f"The {saga.name} saga."
    timeout = "None" if saga.timeout is None else f"timedelta(seconds={saga.timeout.seconds})"
    subject = saga.subject or ""
    state = b.evolvable(
        state_name,
        docstring(f"What the {saga.name} saga remembers between events.", "    "),
        # before imports.lines(): fields add imports
        b.fields(saga.state, imports, subject and f"the subject in {subject}"),
        imports,
        # The subject seals the state's personal fields and those of the commands it keeps.
        b.subject_of(subject, (*saga.state, *_sent_fields(b, saga))) if subject else (),
    )
    correlation = correlation_type(b, saga, imports)  # before imports.lines()
    if saga.correlation_aggregate is None:
        found_by = f"found again by {saga.correlation!r}"
    else:
        found_by = (
            f"found again by the id of the {saga.correlation_aggregate} whose stream "
            f"recorded the event (events of other aggregates name it in "
            f"{saga.correlation!r})"
        )
    return SagaModuleIR(
        path=b.package / "sagas" / f"{snake(saga.name)}.py",
        sources=b.src(saga.location.file),
        docstring=docstring(f"State and abstract base of the {saga.name} saga.", ""),
        imports=imports.lines(),
        state=state,
        base_name=f"{saga.name}Base",
        base_docstring=docstring(
            f"{described}\n\nGenerated base: subclass it in {b.context.name}.domain."
            f"{snake(saga.name)}. Instances start with {saga.starts_with} and are "
            f"{found_by}.",
            "    ",
        ),
        name=string(saga.name),
        starts_with=saga.starts_with,
        correlation=string(python_name(saga.correlation)),  # the runtime reads the attribute
        correlation_aggregate=(
            "None" if saga.correlation_aggregate is None else string(saga.correlation_aggregate)
        ),
        handlers=tuple(
            MappingEntryIR(event, string(handler_name(event)))
            for event in dict.fromkeys((saga.starts_with, *saga.handles))
        ),
        fails_on=saga.fails_on,
        sends=saga.sends,
        compensations=tuple(
            MappingEntryIR(sent, string(f"compensate_{snake(sent)}"))
            for sent, _ in saga.compensations
        ),
        timeout=timeout,
        on_deadline=string(saga.timeout.then if saga.timeout is not None else "compensate"),
        send_methods=tuple(SendMethodIR(f"send_{snake(c)}", c) for c in saga.sends),
        refusals=tuple(MappingEntryIR(c, string(refusal_hook_name(c))) for c in saga.sends),
        refusal_hooks=tuple(_refusal_hooks(saga)),
        methods=tuple(_saga_methods(b, saga)),
        exports=(f"{saga.name}Base", state_name),
        correlation_type=correlation,
    )


def _refusal_hooks(saga: Saga) -> list[RefusalHookIR]:
    hooks = []
    for command in saga.sends:
        undoes = [sent for sent, undo in saga.compensations if undo == command]
        note = f" Not called for a {command} sent as a compensation." if undoes else ""
        hooks.append(
            RefusalHookIR(
                name=refusal_hook_name(command),
                command=command,
                docstring=docstring(
                    f"{command} was refused (`error` is what its handler raised). By "
                    "default the workflow fails and the compensations of the steps taken "
                    "run; override to update `self.state`, send commands, complete(), "
                    "fail(reason, compensate=False) or wait for more events (see "
                    f"`Saga.refusals`).{note}",
                    "        ",
                ),
            )
        )
    return hooks


def correlation_type(b: _ContextBuilder, saga: Saga, imports: Imports) -> str:
    """The type of the saga's correlation: the id type of its correlation aggregate, or
    the type of its correlation field in the event that starts it; what
    `correlation_value` holds. Ids (uuid, int, str) keep their type; anything else is
    kept as its text."""
    if saga.correlation_aggregate is not None:
        aggregate = next(
            (a for a in b.context.aggregates if a.name == saga.correlation_aggregate), None
        )
        kind = None if aggregate is None else aggregate.id_field.type
    else:
        event = b.context.event(saga.starts_with)
        field = (
            None
            if event is None
            else next((f for f in event.latest.fields if f.name == saga.correlation), None)
        )
        kind = None if field is None else field.type
    if isinstance(kind, ScalarType) and kind.kind is ScalarKind.UUID:
        return imports.name("uuid", "UUID")
    if isinstance(kind, ScalarType) and kind.kind is ScalarKind.INT:
        return "int"
    return "str"


def _user_saga(b: _ContextBuilder, saga: Saga) -> UserClassIR:
    module = snake(saga.name)
    imports = Imports()
    imports.add("__future__", "annotations")
    # Every method overrides the generated base: left behind when its event goes,
    # it is an error, not dead code.
    imports.add("typing_extensions", "override")
    imports.add(f"..sagas.{module}", f"{saga.name}Base")
    _event_imports(b, (saga.starts_with, *saga.handles), imports, 1)
    _command_imports(b, tuple(undo for _, undo in saga.compensations), imports, 1)
    _command_imports(b, tuple(sent for sent, _ in saga.compensations), imports, 1)
    return UserClassIR(
        path=b.package / "domain" / f"{module}.py",
        sources=b.src(saga.location.file),
        docstring=docstring(
            f"The {saga.name} saga: how the workflow reacts to each event, and how it "
            "undoes its steps.\n\n"
            "Yours to edit: esgen created this file once and never touches it again.",
            "",
        ),
        imports=imports.lines(),
        class_name=saga.name,
        class_docstring=docstring(saga.description or f"The {saga.name}.", "    "),
        base_name=f"{saga.name}Base",
        methods=tuple(_saga_methods(b, saga)),
        method_prefixes=("on_", "compensate_"),
        hooks=tuple(refusal_hook_name(c) for c in saga.sends),
    )


def _saga_tests(b: _ContextBuilder, saga: Saga) -> UserTestsIR:
    ctx = b.context
    imports = Imports()
    imports.add("__future__", "annotations")
    imports.add("esgen.runtime.testing", "SagaScenario")
    imports.add("esgen.runtime.testing", "todo")
    imports.add(f"{ctx.name}.domain.{snake(saga.name)}", saga.name)
    # How to see a refusal hook run, shown once, in the first scenario's comment.
    refused = (
        f"; .when(..., failing=({saga.sends[0]},)) refuses that command and runs "
        f"{refusal_hook_name(saga.sends[0])}, then .then_state(...) and .then_status(...)"
        if saga.sends
        else ""
    )
    scenarios = [
        ScenarioIR(
            test_name=f"test_{snake(saga.name)}_{handler_name(event)}",
            kind="command",
            subject=event,
            version=0,
            todo=_comment(
                f"{event}(...): the event under test (given the events before it, starting "
                f"with {saga.starts_with}); then the commands {saga.name} sends, and "
                f".then_compensates(...) for a failure{'' if index else refused}"
            ),
        )
        for index, event in enumerate(dict.fromkeys((saga.starts_with, *saga.handles)))
    ]
    return UserTestsIR(
        path=PurePosixPath(ctx.name) / f"test_{ctx.name}_{snake(saga.name)}.py",
        sources=b.src(saga.location.file),
        docstring=docstring(
            f"Scenarios of the {saga.name} saga: one per event it handles.\n\n"
            "Yours to edit: esgen created this file once. Each test fails until its "
            "scenario is written.",
            "",
        ),
        imports=imports.lines(),
        subject_class=saga.name,
        fixture="SagaScenario",
        then="then_sends",
        scenarios=tuple(scenarios),
    )
