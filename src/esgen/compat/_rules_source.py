"""Source rules: code that sends commands or reads read models keeps working.

Not about stored events: a command is validated when it is sent, so a command whose fields
changed breaks its callers (esgen's command classes reject unknown fields), and a read
model whose rows changed breaks the screens and services that read it. Readers of read
models are expected to ignore columns they do not know.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from esgen.compat._compare import Comparison, Pair, ReadModelPair, is_consumer, locate
from esgen.compat._findings import Category, Hit, Kind, Severity
from esgen.compat._fits import Misfit, MisfitKind, misfits
from esgen.compat._rule import Rule, rule
from esgen.compat._shapes import record_of, type_text
from esgen.schema import (
    Command,
    Context,
    DictType,
    Field,
    ListType,
    NamedType,
    NullableType,
    TypeExpr,
    ValueType,
)

__all__ = ["RULES", "reads_as_text"]


def _command_misfits(c: Comparison) -> Iterator[tuple[Pair[Command], Misfit]]:
    """What callers sent before that the command may now reject."""
    for pair in c.commands:
        if pair.old is None or pair.new is None:
            continue
        assert pair.old_ctx is not None and pair.new_ctx is not None
        before = record_of(pair.old.fields, pair.old_ctx.user_type, pair.name)
        after = record_of(pair.new.fields, pair.new_ctx.user_type, pair.name)
        for m in misfits(before, after, tolerant=False, may_omit=True):
            yield pair, m


def _command_hit(pair: Pair[Command], m: Misfit, message: str, fix: str) -> Hit:
    assert pair.old is not None and pair.new is not None
    assert pair.old_ctx is not None and pair.new_ctx is not None
    return Hit(
        pair.context,
        Kind.COMMAND,
        pair.name,
        message,
        fix,
        locate(pair.old.fields, m.path, pair.old_ctx) or pair.old.location,
        locate(pair.new.fields, m.path, pair.new_ctx) or pair.new.location,
        field=".".join(m.path),
    )


@rule(
    "ES301",
    "COMMAND_NO_DELETE",
    Category.SOURCE,
    "a command is never deleted while callers may send it",
)
def command_no_delete(c: Comparison) -> Iterator[Hit]:
    for pair in c.commands:
        if pair.old is not None and pair.new is None:
            yield Hit(
                pair.context,
                Kind.COMMAND,
                pair.name,
                "deleted: code that sends it no longer works",
                "keep the command until no caller sends it (deprecate it in its description)",
                pair.old.location,
                pair.nearest_new(),
            )


@rule(
    "ES302",
    "COMMAND_FIELD_NO_DELETE",
    Category.SOURCE,
    "a command keeps every field callers may send",
)
def command_field_no_delete(c: Comparison) -> Iterator[Hit]:
    for pair, m in _command_misfits(c):
        if m.kind is MisfitKind.UNKNOWN:
            assert pair.new is not None and pair.new_ctx is not None
            heir = _renamed_to(pair.new.fields, m.path, pair.new_ctx)
            what = "field removed" if heir is None else f"field renamed to {heir!r}"
            note = "" if heir is None else " (renamed_from moves the values of stored events only)"
            yield _command_hit(
                pair,
                m,
                f"{what}: callers that send it are rejected, since commands forbid unknown "
                f"fields{note}",
                "keep the field (the handler may ignore it), or add a new command and deprecate "
                "this one",
            )


def _renamed_to(fields: Sequence[Field], path: tuple[str, ...], ctx: Context) -> str | None:
    """The field that says `renamed_from` the last name of `path`, beside where it was."""
    siblings = _fields_at(fields, path[:-1], ctx)
    return next((f.name for f in siblings if f.renamed_from == path[-1]), None)


def _fields_at(fields: Sequence[Field], path: tuple[str, ...], ctx: Context) -> Sequence[Field]:
    """The fields of the value type at `path` (the top level for an empty path)."""
    for name in path:
        f = next((x for x in fields if x.name == name), None)
        value_type = _value_type(f.type, ctx) if f is not None else None
        if value_type is None:
            return ()
        fields = value_type.fields
    return fields


def _field_at(fields: Sequence[Field], path: tuple[str, ...], ctx: Context) -> Field | None:
    return next((f for f in _fields_at(fields, path[:-1], ctx) if f.name == path[-1]), None)


def _value_type(type_: TypeExpr, ctx: Context) -> ValueType | None:
    while isinstance(type_, NullableType | ListType | DictType):
        type_ = type_.inner if isinstance(type_, NullableType) else _item(type_)
    target = ctx.user_type(type_.name) if isinstance(type_, NamedType) else None
    return target if isinstance(target, ValueType) else None


def _item(type_: ListType | DictType) -> TypeExpr:
    return type_.item if isinstance(type_, ListType) else type_.value


@rule(
    "ES303",
    "COMMAND_NO_NEW_REQUIRED_FIELD",
    Category.SOURCE,
    "a command requires no field that callers may leave out",
)
def command_no_new_required_field(c: Comparison) -> Iterator[Hit]:
    for pair, m in _command_misfits(c):
        if m.kind is MisfitKind.MISSING:
            name = ".".join(m.path)
            yield _command_hit(
                pair,
                m,
                ("new required field" if m.data == "absent" else "no longer has a default")
                + ": callers that leave it out are rejected",
                f"give {name!r} a default or make it optional",
            )


@rule(
    "ES304",
    "COMMAND_FIELD_SAME_TYPE",
    Category.SOURCE,
    "a command's field accepts every value of its previous type",
)
def command_field_same_type(c: Comparison) -> Iterator[Hit]:
    for pair, m in _command_misfits(c):
        if m.kind not in (MisfitKind.ENUM, MisfitKind.TYPE, MisfitKind.NULL):
            continue
        assert pair.old is not None and pair.new is not None
        assert pair.old_ctx is not None and pair.new_ctx is not None
        # The whole types as written: a misfit names only the part that differs, which
        # for `list[str]` -> `list[int]` would read "str to int".
        before = _field_at(pair.old.fields, m.path, pair.old_ctx)
        after = _field_at(pair.new.fields, m.path, pair.new_ctx)
        data, reader = m.data, m.reader
        if m.kind is not MisfitKind.ENUM and before is not None and after is not None:
            data = type_text(before.type, pair.old_ctx.user_type)
            reader = type_text(after.type, pair.new_ctx.user_type)
        if m.kind is MisfitKind.ENUM:
            what = f"no longer accepts {m.data}"
        elif data == reader:
            what = f"its type {reader} changed what it accepts"
        else:
            what = f"changed from {data} to {reader}"
        yield _command_hit(
            pair,
            m,
            f"{what}: values callers send may be rejected",
            "keep the type or widen it (int -> float or decimal, T -> T | None, an enum "
            "with more values)",
        )


@rule(
    "ES305",
    "COMMAND_FIELD_CONSTRAINTS_NOT_NARROWED",
    Category.SOURCE,
    "a command's field constraints accept every value they accepted",
)
def command_field_constraints_not_narrowed(c: Comparison) -> Iterator[Hit]:
    for pair, m in _command_misfits(c):
        if m.kind is MisfitKind.CONSTRAINT:
            yield _command_hit(
                pair,
                m,
                f"constraints tightened from ({m.data}) to ({m.reader}): values callers send "
                "may be rejected",
                "keep the constraints, or check the new rule in the handler and reject with a "
                "domain event",
            )


def _creators(ctx: Context, aggregate: str) -> list[str]:
    found = next((a for a in ctx.aggregates if a.name == aggregate), None)
    return [] if found is None else [c.name for c in found.commands if c.creates]


@rule(
    "ES306",
    "COMMAND_CREATION_NOT_NARROWED",
    Category.SOURCE,
    "a command still runs on every aggregate it ran on: new ones, existing ones, or both",
)
def command_creation_not_narrowed(c: Comparison) -> Iterator[Hit]:
    # Warnings: handlers usually refused these calls already (by hand, or because an
    # aggregate without events has no state), which `creates:` now does before them.
    # Creating commands first: the news that an aggregate declares its creation goes
    # with the command that creates it.
    pairs = sorted(
        (p for p in c.commands if p.old is not None and p.new is not None),
        key=lambda p: not (p.new is not None and p.new.creates),
    )
    declared: set[tuple[str, str]] = set()  # (context, aggregate) whose creation is new
    for pair in pairs:
        assert pair.old is not None and pair.new is not None
        assert pair.old_ctx is not None and pair.new_ctx is not None
        aggregate = pair.new.aggregate
        now = _creators(pair.new_ctx, aggregate)
        if not now:
            continue  # no creator left: every command runs on any id, which refuses no one
        newly = not _creators(pair.old_ctx, pair.old.aggregate)
        if pair.old.creates == pair.new.creates and not (
            newly and (pair.context, aggregate) not in declared
        ):
            continue
        if pair.new.creates:
            what = "creates its aggregate now: callers that send it for one that exists are refused"
        elif pair.old.creates:
            what = (
                "no longer creates its aggregate: callers that send it for an id with no "
                "events are refused"
            )
        else:
            what = ""
        if newly and (pair.context, aggregate) not in declared:
            declared.add((pair.context, aggregate))
            others = [
                p.name
                for p in pairs
                if p.context == pair.context
                and p.new is not None
                and p.new.aggregate == aggregate
                and not p.new.creates
            ]
            creators = ", ".join(now)
            verb = "is" if len(others) == 1 else "are"
            refused = (
                f"{aggregate} declares its creation now ({creators}): "
                f"{', '.join(others)} {verb} refused on an id with no events"
            )
            what = f"{what}; {refused}" if what else refused
        yield Hit(
            pair.context,
            Kind.COMMAND,
            pair.name,
            what,
            "check that no caller relied on it (handlers that refused such calls by hand "
            "may drop those checks); or keep which commands create the aggregate",
            pair.old.location,
            pair.new.location,
            severity=Severity.WARNING,
        )


# Read models store these as JSON-mode text, which a str field reads as it is.
_STORED_AS_TEXT = frozenset({"decimal", "uuid", "date", "datetime", "bytes"})


def reads_as_text(m: Misfit) -> bool:
    """A type misfit that a stored row never shows: a str reading what was stored as text."""
    return m.kind is MisfitKind.TYPE and m.reader == "str" and m.data in _STORED_AS_TEXT


def read_model_kind(pair: ReadModelPair) -> Kind:
    return Kind.CONSUMER if is_consumer(pair) else Kind.PROJECTION


def _row_misfits(c: Comparison) -> Iterator[tuple[ReadModelPair, Misfit]]:
    """What readers of the read model expect that its new rows may not give them."""
    for pair in c.read_models:
        if pair.old is None or pair.new is None:
            continue
        assert pair.old_ctx is not None and pair.new_ctx is not None
        before = record_of(pair.old.fields, pair.old_ctx.user_type, pair.name)
        after = record_of(pair.new.fields, pair.new_ctx.user_type, pair.name)
        for m in misfits(after, before, tolerant=True, may_omit=False):
            if not reads_as_text(m):
                yield pair, m


def _row_hit(
    pair: ReadModelPair,
    m: Misfit,
    message: str,
    fix: str,
    severity: Severity = Severity.ERROR,
) -> Hit:
    assert pair.old is not None and pair.new is not None
    assert pair.old_ctx is not None and pair.new_ctx is not None
    return Hit(
        pair.context,
        read_model_kind(pair),
        pair.name,
        message,
        fix,
        locate(pair.old.fields, m.path, pair.old_ctx) or pair.old.location,
        locate(pair.new.fields, m.path, pair.new_ctx) or pair.new.location,
        field=".".join(m.path),
        severity=severity,
    )


@rule(
    "ES311",
    "PROJECTION_NO_DELETE",
    Category.SOURCE,
    "a read model is never deleted while readers may query it",
)
def projection_no_delete(c: Comparison) -> Iterator[Hit]:
    for pair in c.read_models:
        if pair.old is not None and pair.new is None:
            yield Hit(
                pair.context,
                read_model_kind(pair),
                pair.name,
                "deleted: code that reads its read model breaks",
                "keep it until no reader queries it",
                pair.old.location,
                pair.nearest_new(),
            )


@rule(
    "ES312",
    "PROJECTION_KEY_SAME",
    Category.SOURCE,
    "a read model keeps the key its rows are found by",
)
def projection_key_same(c: Comparison) -> Iterator[Hit]:
    for pair in c.read_models:
        if pair.old is None or pair.new is None or pair.old.key == pair.new.key:
            continue
        assert pair.old_ctx is not None and pair.new_ctx is not None
        kind = read_model_kind(pair)
        yield Hit(
            pair.context,
            kind,
            pair.name,
            f"keyed by {pair.new.key!r} instead of {pair.old.key!r}: readers look rows up by "
            "the old key",
            f"keep the key; build a second {kind.value} keyed the new way",
            locate(pair.old.fields, (pair.old.key,), pair.old_ctx) or pair.old.location,
            locate(pair.new.fields, (pair.new.key,), pair.new_ctx) or pair.new.location,
            field=pair.new.key,
        )


@rule(
    "ES313",
    "PROJECTION_FIELD_NO_DELETE",
    Category.SOURCE,
    "a read model keeps every field its readers require",
)
def projection_field_no_delete(c: Comparison) -> Iterator[Hit]:
    for pair, m in _row_misfits(c):
        if m.kind is MisfitKind.MISSING:
            yield _row_hit(
                pair,
                m,
                "field removed: readers that use it break",
                "keep the field (it may get a default) until no reader uses it",
            )


@rule(
    "ES314",
    "PROJECTION_FIELD_SAME_TYPE",
    Category.SOURCE,
    "a read model's field gives readers only values of the type they know",
)
def projection_field_same_type(c: Comparison) -> Iterator[Hit]:
    for pair, m in _row_misfits(c):
        if m.kind is MisfitKind.MISSING:
            continue
        if m.kind is MisfitKind.ENUM:
            # An enum that grew is how a domain grows, not a broken read model: rows keep
            # their values, and readers built from the new schema know the new ones.
            continue
        what = {
            MisfitKind.TYPE: f"changed from {m.reader} to {m.data}",
            MisfitKind.NULL: f"may now be null ({m.reader} -> {m.data})",
            MisfitKind.CONSTRAINT: f"is looser: ({m.reader}) -> ({m.data})",
            MisfitKind.UNKNOWN: "changed",
        }[m.kind]
        yield _row_hit(
            pair,
            m,
            f"{what}: readers may get values they do not expect",
            "keep the field's type; add a new field for the new values",
        )


RULES: tuple[Rule, ...] = (
    command_no_delete,
    command_field_no_delete,
    command_no_new_required_field,
    command_field_same_type,
    command_field_constraints_not_narrowed,
    command_creation_not_narrowed,
    projection_no_delete,
    projection_key_same,
    projection_field_no_delete,
    projection_field_same_type,
)
