"""esgen.lock: the published schema, recorded so a changed published version is caught even
without git history, the way a schema registry remembers what was registered.

The file is YAML in several documents. The first holds the format version, a fingerprint of
every published event version, the events each context publishes to other contexts (its
`publishes`, when it has any) and the JSON Schema files types refer to; each further
document is one context written in esgen's own schema language (sorted, without prose), so
the lock loads through the same validator as the schema, and every finding against it
points at a line of esgen.lock. Read models are recorded too, projections and consumers
(with the subscriptions their handles need to load), since compat checks their readers.
Fingerprints are recomputed on load: a lock edited by hand is refused instead of trusted.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import yaml

from esgen._text import bad_byte
from esgen.compat._compare import version_record
from esgen.compat._errors import CompatError, LockError
from esgen.compat._shapes import fingerprint
from esgen.compat._sides import Side, load_tolerant, shown
from esgen.schema import (
    Context,
    EnumType,
    Field,
    NamedType,
    NullableType,
    SchemaError,
    SchemaSet,
    Subscription,
    UserType,
    ValueType,
    explain_yaml_error,
    reads_as_text,
    yaml_documents,
)

__all__ = [
    "LOCK_FORMAT",
    "LOCK_NAME",
    "fingerprints",
    "load_lock",
    "published_events",
    "read_lock",
    "render_lock",
]

LOCK_NAME = "esgen.lock"
LOCK_FORMAT = 1

_HEADER = """\
# esgen.lock: every published event version, as `esgen lock` recorded it. Commit this file.
# `esgen compat` (without --against) fails when a version recorded here changed or vanished,
# and `esgen lock` refuses to record such a change without --force. Do not edit by hand.
"""

# Plain scalars esgen's YAML loader (YAML 1.2 core) reads as something other than a string.
_ESCAPED = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]")


class _Flow(dict[Any, Any]):
    """A mapping written on one line: a field's spec, an aggregate's id."""


class _FlowList(list[Any]):
    """A list written on one line: enum values, emitted or consumed event names."""


class _Dumper(yaml.SafeDumper):
    pass


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    if "\n" in value and not _ESCAPED.search(value.replace("\n", "")):
        # Multi-line text (an embedded JSON Schema) as a block, one line per line;
        # PyYAML falls back to quotes where a block cannot hold it exactly.
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    if not reads_as_text(value) or _ESCAPED.search(value):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')
    return dumper.represent_str(value)


def _represent_decimal(dumper: yaml.SafeDumper, value: Decimal) -> yaml.Node:
    if value.is_nan():
        return dumper.represent_scalar("tag:yaml.org,2002:float", ".nan")
    if value.is_infinite():
        return dumper.represent_scalar("tag:yaml.org,2002:float", "-.inf" if value < 0 else ".inf")
    text = format(value, "f")
    tag = "tag:yaml.org,2002:float" if "." in text else "tag:yaml.org,2002:int"
    return dumper.represent_scalar(tag, text)


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(Decimal, _represent_decimal)
_Dumper.add_representer(
    _Flow, lambda d, v: d.represent_mapping("tag:yaml.org,2002:map", v.items(), flow_style=True)
)
_Dumper.add_representer(
    _FlowList, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True)
)


def _dump(data: Any, start: bool) -> str:
    text: str = yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=2**31,
        explicit_start=start,
    )
    return text


# -- writing ---------------------------------------------------------------------------------


def _value(value: Any) -> Any:
    """A default as YAML that esgen's loader reads back to the same value."""
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, list):
        return [_value(v) for v in value]
    if isinstance(value, dict):
        # Sorted: the lock lists a value type's fields in its own order, so a default
        # read back from it would otherwise come out in a different one.
        return {str(k): _value(v) for k, v in sorted(value.items())}
    return value


def _inline_enum(type_: Any, lookup: Any) -> EnumType | None:
    if isinstance(type_, NamedType):
        target = lookup(type_.name)
        if isinstance(target, EnumType) and target.declared_inline:
            return target
    return None


def _field(f: Field, ctx: Context) -> Any:
    type_ = f.type
    spec: dict[str, Any] = {}
    if f.optional and isinstance(type_, NullableType):
        type_ = type_.inner
    if (enum := _inline_enum(type_, ctx.user_type)) is not None:
        spec["enum"] = _FlowList(enum.values)
    else:
        spec["type"] = str(type_)
    if f.optional:
        spec["optional"] = True
    if f.renamed_from:
        spec["renamed_from"] = f.renamed_from
    spec.update(f.constraints.items())
    if f.has_default and not (f.optional and f.default is None):
        spec["default"] = _value(f.default)
    if f.personal is not None:
        # The placeholder only where written: a default one follows from the type.
        spec["personal"] = {"erased": _value(f.personal.erased)} if f.personal.declared else True
    return spec["type"] if list(spec) == ["type"] else _Flow(spec)


def _fields(fields: tuple[Field, ...], ctx: Context) -> dict[str, Any]:
    return {f.name: _field(f, ctx) for f in sorted(fields, key=lambda f: f.name)}


def _type(t: UserType, ctx: Context, lock_dir: Path, schemas: dict[str, str]) -> Any:
    if isinstance(t, ValueType):
        return {"fields": _fields(t.fields, ctx)}
    if isinstance(t, EnumType):
        return {"enum": _FlowList(t.values)}
    key = Path(os.path.relpath(t.schema_path.resolve(), lock_dir)).as_posix()
    schemas[key] = json.dumps(json.loads(t.schema_text), indent=2, sort_keys=True) + "\n"
    return {"json_schema": key}


def _context(ctx: Context, lock_dir: Path, schemas: dict[str, str]) -> dict[str, Any]:
    doc: dict[str, Any] = {"context": ctx.name, "compatibility": ctx.compatibility}
    if published := _published(ctx):
        # Only when there is a contract, so that locks written before `publishes` read the same.
        doc["publishes"] = _FlowList(published)
    types = sorted(
        (t for t in ctx.types if not (isinstance(t, EnumType) and t.declared_inline)),
        key=lambda t: t.name,
    )
    if types:
        doc["types"] = {t.name: _type(t, ctx, lock_dir, schemas) for t in types}
    aggregates: dict[str, Any] = {}
    for agg in sorted(ctx.aggregates, key=lambda a: a.name):
        entry: dict[str, Any] = {"id": _Flow(name=agg.id_field.name, type=str(agg.id_field.type))}
        if agg.commands:
            entry["commands"] = {
                c.name: {
                    "fields": _fields(c.fields, ctx),
                    "emits": _FlowList(c.emits),
                    # Only when set, so that locks written before `creates` read the same.
                    **({"creates": True} if c.creates else {}),
                }
                for c in sorted(agg.commands, key=lambda c: c.name)
            }
        events: dict[str, Any] = {}
        for event in sorted(agg.events, key=lambda e: e.name):
            spec: dict[str, Any] = {}
            if event.compatibility != ctx.compatibility:
                spec["compatibility"] = event.compatibility
            if event.renamed_from:  # the stored names a later rename must keep reading
                spec["renamed_from"] = _FlowList(sorted(event.renamed_from))
            versions: dict[int, Any] = {}
            for v in event.versions:
                versions[v.version] = {"fields": _fields(v.fields, ctx)}
                if v.upcast is not None:
                    versions[v.version]["upcast"] = v.upcast
                if v.subject is not None:  # only when set: older locks read the same
                    versions[v.version]["subject"] = v.subject
            spec["versions"] = versions
            events[event.name] = spec
        if events:
            entry["events"] = events
        aggregates[agg.name] = entry
    if aggregates:
        doc["aggregates"] = aggregates
    if ctx.projections:
        doc["projections"] = {
            p.name: {
                "consumes": _FlowList(p.consumes),
                "key": p.key,
                "fields": _fields(p.fields, ctx),
                **({"subject": p.subject} if p.subject is not None else {}),
            }
            for p in sorted(ctx.projections, key=lambda p: p.name)
        }
    if ctx.consumers:
        doc["subscribes"] = _subscribes(ctx, lock_dir)
        doc["consumers"] = {
            c.name: {
                "handles": _FlowList(f"{upstream}.{event}" for upstream, event in c.handles),
                "key": c.key,
                "fields": _fields(c.fields, ctx),
            }
            for c in sorted(ctx.consumers, key=lambda c: c.name)
        }
    if ctx.sagas:
        doc["sagas"] = {
            s.name: {
                "starts_with": s.starts_with,
                "correlation": (
                    s.correlation
                    if s.correlation_aggregate is None
                    else _Flow({"aggregate_id": s.correlation_aggregate})
                ),
                "handles": _FlowList(h for h in s.handles if h not in s.fails_on),
                "fails_on": _FlowList(s.fails_on),
            }
            for s in sorted(ctx.sagas, key=lambda s: s.name)
        }
    return doc


def _subscribes(ctx: Context, lock_dir: Path) -> dict[str, Any]:
    """The subscriptions as far as the consumers need them to load again: each upstream
    they read, where its schema was, and the events they handle of it. Not the upstream's
    contract: that is recorded in the upstream's own lock, and a lock is read without
    following `from`."""
    handled: dict[str, set[str]] = {}
    for consumer in ctx.consumers:
        for upstream, event in consumer.handles:
            handled.setdefault(upstream, set()).add(event)
    sources = {s.upstream: s.source for s in ctx.subscriptions}
    missing = sorted(handled.keys() - sources.keys())
    if missing:
        raise CompatError(
            f"context {ctx.name!r}: its consumers handle events of {', '.join(missing)}, but "
            "the schema holds no subscription to it; a lock is written from the schema as "
            "loaded from its folder"
        )
    return {
        upstream: {
            "from": Path(os.path.relpath(sources[upstream].resolve(), lock_dir)).as_posix(),
            "events": _FlowList(sorted(events)),
        }
        for upstream, events in sorted(handled.items())
    }


def _published(ctx: Context) -> list[str]:
    return sorted(e.name for e in ctx.events if e.published)


def published_events(schema: SchemaSet) -> dict[str, list[str]]:
    """context -> the events it publishes, sorted; contexts without a contract left out."""
    return {
        ctx.name: published
        for ctx in sorted(schema.contexts, key=lambda c: c.name)
        if (published := _published(ctx))
    }


def fingerprints(schema: SchemaSet) -> dict[str, dict[str, dict[int, str]]]:
    """context -> event -> version -> fingerprint, for every event version of the schema."""
    return {
        ctx.name: {
            event.name: {v.version: fingerprint(version_record(v, ctx)) for v in event.versions}
            for event in sorted(ctx.events, key=lambda e: e.name)
        }
        for ctx in sorted(schema.contexts, key=lambda c: c.name)
    }


def render_lock(schema: SchemaSet, lock_path: Path) -> str:
    """The lock file's text for `schema`: the same schema always gives the same bytes."""
    schemas: dict[str, str] = {}
    lock_dir = lock_path.resolve().parent
    contexts = [
        _context(ctx, lock_dir, schemas) for ctx in sorted(schema.contexts, key=lambda c: c.name)
    ]
    header: dict[str, Any] = {
        "esgen_lock": LOCK_FORMAT,
        "fingerprints": {
            context: {event: _Flow(versions) for event, versions in events.items()}
            for context, events in fingerprints(schema).items()
        },
    }
    # Next to the fingerprints, which say nothing of it: a contract edited by hand in one
    # place of the lock and not in the other is refused on load like a changed version.
    if contract := published_events(schema):
        header["publishes"] = {context: _FlowList(names) for context, names in contract.items()}
    if schemas:
        header["json_schemas"] = dict(sorted(schemas.items()))
    return _HEADER + _dump(header, False) + "".join(_dump(doc, True) for doc in contexts)


# -- reading ---------------------------------------------------------------------------------


def _damaged(lock_path: Path, why: str) -> LockError:
    return LockError(
        f"{shown(lock_path)}: {why}; restore it from git, or write it again from the schema "
        "with `esgen lock --force`"
    )


def read_lock(lock_path: Path) -> str | None:
    """The lock's text; None when there is no lock. LockError when it cannot be read."""
    if lock_path.is_dir():
        raise LockError(f"{shown(lock_path)} is a folder, not a lock file")
    try:
        return lock_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        raise _damaged(lock_path, _not_utf8(lock_path.read_bytes())) from None
    except OSError as exc:
        raise _damaged(lock_path, f"cannot be read ({exc.strerror or exc})") from None


def _not_utf8(data: bytes) -> str:
    # Decoded again, whole, so that the position surely counts from the start of the file.
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = bad_byte(data, exc)
        return f"is not UTF-8 text (byte 0x{bad.byte:02x} at line {bad.line}, column {bad.column})"
    return "is not UTF-8 text"


def load_lock(lock_path: Path, text: str | None = None) -> Side:
    """The schema recorded in a lock file, checked against its own fingerprints."""
    if text is None:
        text = read_lock(lock_path)
    if text is None:
        raise LockError(
            f"no {shown(lock_path)}: record the published versions with `esgen lock`, "
            "or compare with a git ref: `esgen compat --against main`"
        )
    documents = list(yaml_documents(text))
    try:
        header = yaml.safe_load(documents[0][1])
    except yaml.YAMLError as exc:
        problem = explain_yaml_error(exc, documents[0][1])
        where = f"line {problem.line}, column {problem.col}"
        raise _damaged(lock_path, f"invalid YAML at {where}: {problem.message}") from None
    if isinstance(header, dict) and "context" in header:
        raise LockError(
            f"{shown(lock_path)} is a schema file, not an esgen lock; to compare with a "
            f"schema, give its folder: --against {shown(lock_path.parent)}"
        )
    if not isinstance(header, dict) or "esgen_lock" not in header:
        raise _damaged(lock_path, "not an esgen lock file")
    if header["esgen_lock"] != LOCK_FORMAT:
        raise LockError(
            f"{shown(lock_path)} has format {header['esgen_lock']!r}; this esgen reads format "
            f"{LOCK_FORMAT}: upgrade esgen"
        )
    recorded = header.get("fingerprints") or {}
    schemas: dict[str, str] = header.get("json_schemas") or {}
    lock_dir = lock_path.resolve().parent

    def read(path: Path) -> str:
        return schemas[Path(os.path.relpath(path.resolve(), lock_dir)).as_posix()]

    contexts: list[Context] = []
    for first_line, body in documents[1:]:
        # Padding keeps line numbers those of the whole file, so findings point into it.
        texts = {lock_path: "\n" * first_line + body}
        try:
            loaded = load_tolerant(lock_dir, texts, read)
        except SchemaError as exc:
            raise _damaged(lock_path, "does not load:\n" + exc.render()) from None
        contexts.extend(_with_subscriptions(c, body, lock_dir) for c in loaded.contexts)
    schema = SchemaSet(lock_dir, tuple(contexts))
    try:
        expected = _normalised(recorded)
    except (AttributeError, TypeError, ValueError):
        raise _damaged(lock_path, "its fingerprints are not a mapping of versions") from None
    if fingerprints(schema) != expected:
        raise _damaged(lock_path, "its fingerprints do not match the versions it records")
    # A lock written before `publishes` has neither the header's list nor the contexts'.
    if published_events(schema) != _normalised_contract(header.get("publishes")):
        raise _damaged(lock_path, "its list of published events does not match its contexts'")
    label = shown(lock_path)
    return Side(schema, "lock", label, detail={"path": label})


def _with_subscriptions(ctx: Context, body: str, lock_dir: Path) -> Context:
    """The context with the subscriptions its document records. Upstreams are not loaded
    from a lock, so the validator kept none; they come back naming the upstream and where
    its schema was, with no contract (the upstream's lock has it)."""
    document = yaml.safe_load(body)  # it loaded above, so it is a mapping
    subscribes = document.get("subscribes") or {}
    return replace(
        ctx,
        subscriptions=tuple(
            Subscription(
                str(upstream),
                lock_dir / str(spec["from"]),
                ctx.location,
                Context(str(upstream), (), (), (), (), (), ctx.location),
            )
            for upstream, spec in subscribes.items()
        ),
    )


def _normalised_contract(recorded: Any) -> Any:
    if recorded is None:
        return {}
    if not isinstance(recorded, dict):
        return recorded
    return {
        str(context): sorted(str(n) for n in names) if isinstance(names, list) else names
        for context, names in recorded.items()
    }


def _normalised(recorded: Any) -> Any:
    if not isinstance(recorded, dict):
        return recorded
    return {
        str(context): {
            str(event): {int(v): str(fp) for v, fp in (versions or {}).items()}
            for event, versions in (events or {}).items()
        }
        for context, events in recorded.items()
    }
