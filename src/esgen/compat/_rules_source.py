"""Source rules: code that sends commands or reads read models keeps working.

Not about stored events: a command is validated when it is sent, so a command whose fields
changed breaks its callers (esgen's command classes reject unknown fields), and a read
model whose rows changed breaks the screens and services that read it. Readers of read
models are expected to ignore columns they do not know.
"""

from __future__ import annotations

from collections.abc import Iterator

from esgen.compat._compare import Comparison, Pair, locate
from esgen.compat._findings import Category, Hit, Kind
from esgen.compat._fits import Misfit, MisfitKind, misfits
from esgen.compat._rule import Rule, rule
from esgen.compat._shapes import record_of
from esgen.schema import Command, Projection

__all__ = ["RULES"]


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
            yield _command_hit(
                pair,
                m,
                "field removed: callers that send it are rejected, since commands forbid "
                "unknown fields",
                "keep the field (the handler may ignore it), or add a new command and deprecate "
                "this one",
            )


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
        if m.kind is MisfitKind.ENUM:
            what = f"no longer accepts {m.data}"
        elif m.kind in (MisfitKind.TYPE, MisfitKind.NULL) and m.data == m.reader:
            what = f"its type {m.reader} changed what it accepts"
        elif m.kind in (MisfitKind.TYPE, MisfitKind.NULL):
            what = f"changed from {m.data} to {m.reader}"
        else:
            continue
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


def _row_misfits(c: Comparison) -> Iterator[tuple[Pair[Projection], Misfit]]:
    """What readers of the read model expect that its new rows may not give them."""
    for pair in c.projections:
        if pair.old is None or pair.new is None:
            continue
        assert pair.old_ctx is not None and pair.new_ctx is not None
        before = record_of(pair.old.fields, pair.old_ctx.user_type, pair.name)
        after = record_of(pair.new.fields, pair.new_ctx.user_type, pair.name)
        for m in misfits(after, before, tolerant=True, may_omit=False):
            yield pair, m


def _row_hit(pair: Pair[Projection], m: Misfit, message: str, fix: str) -> Hit:
    assert pair.old is not None and pair.new is not None
    assert pair.old_ctx is not None and pair.new_ctx is not None
    return Hit(
        pair.context,
        Kind.PROJECTION,
        pair.name,
        message,
        fix,
        locate(pair.old.fields, m.path, pair.old_ctx) or pair.old.location,
        locate(pair.new.fields, m.path, pair.new_ctx) or pair.new.location,
        field=".".join(m.path),
    )


@rule(
    "ES311",
    "PROJECTION_NO_DELETE",
    Category.SOURCE,
    "a read model is never deleted while readers may query it",
)
def projection_no_delete(c: Comparison) -> Iterator[Hit]:
    for pair in c.projections:
        if pair.old is not None and pair.new is None:
            yield Hit(
                pair.context,
                Kind.PROJECTION,
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
    for pair in c.projections:
        if pair.old is None or pair.new is None or pair.old.key == pair.new.key:
            continue
        assert pair.old_ctx is not None and pair.new_ctx is not None
        yield Hit(
            pair.context,
            Kind.PROJECTION,
            pair.name,
            f"keyed by {pair.new.key!r} instead of {pair.old.key!r}: readers look rows up by "
            "the old key",
            "keep the key; build a second projection keyed the new way",
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
        what = {
            MisfitKind.TYPE: f"changed from {m.reader} to {m.data}",
            MisfitKind.NULL: f"may now be null ({m.reader} -> {m.data})",
            MisfitKind.ENUM: f"may now hold {m.data}",
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
    projection_no_delete,
    projection_key_same,
    projection_field_no_delete,
    projection_field_same_type,
)
