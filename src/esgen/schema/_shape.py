"""Turn pydantic's validation errors on a schema document into located diagnostics.

pydantic reports a `loc` path through the language models, including the tags of the
unions we discriminate; we walk the models alongside it to recover the YAML path (for
the line and column) and the model that refused an unknown key (for "did you mean").
"""

from __future__ import annotations

import types
import typing
from typing import Any, get_args, get_origin

from pydantic import BaseModel, Tag, ValidationError
from pydantic_core import ErrorDetails

from esgen._suggest import did_you_mean
from esgen.schema._diagnostics import Diagnostic
from esgen.schema._language import Document
from esgen.schema._values import describe
from esgen.schema._yaml import KeyPath, LoadedYaml

__all__ = ["shape_diagnostics"]


def shape_diagnostics(exc: ValidationError, src: LoadedYaml) -> list[Diagnostic]:
    seen: set[KeyPath] = set()
    result: list[Diagnostic] = []
    for error in exc.errors(include_url=False):
        path, model, numeric = _walk(error["loc"])
        if path in seen:  # one message per place, not one per union member
            continue
        seen.add(path)
        result.append(_diagnostic(error, path, model, numeric, src))
    return result


def _diagnostic(
    error: ErrorDetails,
    path: KeyPath,
    model: type[BaseModel] | None,
    numeric: bool,
    src: LoadedYaml,
) -> Diagnostic:
    kind = error["type"]
    where = _dotted(path[:-1]) or "the top level"
    if kind == "extra_forbidden" and path:
        key = str(path[-1])
        # As written in YAML: a field's alias (`from`) where it has one, not `from_`.
        allowed = (
            sorted(field.alias or name for name, field in model.model_fields.items())
            if model is not None
            else []
        )
        hint = did_you_mean(key, allowed) or (
            f" (expected one of: {', '.join(allowed)})" if allowed else ""
        )
        return Diagnostic(src.key_at(path), "E102", f"unknown key {key!r} in {where}{hint}")
    if kind == "missing" and path:
        return Diagnostic(
            src.key_at(path[:-1]), "E104", f"missing required key {path[-1]!r} in {where}"
        )
    if path and path[-1] == "[key]":
        key_path = path[:-1]
        where = _dotted(key_path[:-1])
        if key_path[-2:-1] == ("versions",):
            msg = f"key {key_path[-1]!r} in {where} must be a version number (1, 2, ...)"
        else:
            # `True:`, `null:` or `1.5:` as a name: YAML reads the key as something else.
            got = error["input"]
            hint = "; quote it to use it as a name" if isinstance(got, bool) else ""
            msg = f"key in {where} must be a name, not {describe(got)}{hint}"
            # pydantic spells a null key 'None' in its location; the YAML has it as None.
            key_path = (*key_path[:-1], got)
        return Diagnostic(src.key_at(key_path), "E103", msg)
    expected = "a number" if kind in _NUMBER_ERRORS and numeric else _lower(error["msg"])
    message = f"{_dotted(path) or 'the file'}: {expected} (got {describe(error['input'])})"
    return Diagnostic(src.at(path), "E103", message)


# Errors from the `int | Decimal` union of numeric constraints; "expected a number" says
# it better than pydantic's message for whichever member failed first.
_NUMBER_ERRORS = frozenset({"int_parsing", "int_type", "decimal_parsing", "decimal_type"})


def _lower(msg: str) -> str:
    return msg[:1].lower() + msg[1:]


def _dotted(path: KeyPath) -> str:
    return ".".join(str(p) for p in path)


def _walk(loc: tuple[int | str, ...]) -> tuple[KeyPath, type[BaseModel] | None, bool]:
    """Follow `loc` through the language models.

    Returns the YAML path, the last model passed, and whether a numeric union was passed.
    """
    annotation: Any = Document
    model: type[BaseModel] | None = None
    path: list[Any] = []
    numeric = False
    for part in loc:
        annotation, metadata = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
            info = annotation.model_fields.get(str(part))
            annotation = info.annotation if info is not None else Any
            path.append(part)
            continue
        origin = get_origin(annotation)
        if origin is dict or origin is list:
            annotation = get_args(annotation)[-1]
            path.append(part)
            continue
        if origin in (typing.Union, types.UnionType):
            branch = _union_branch(annotation, metadata, part)
            if branch is not None:
                numeric = numeric or part in ("int", "decimal")
                annotation = branch
                continue
        path.append(part)
        annotation = Any
    return tuple(path), model, numeric


def _unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    metadata: list[Any] = []
    while get_origin(annotation) is typing.Annotated:
        metadata.extend(annotation.__metadata__)
        annotation = get_args(annotation)[0]
    return annotation, metadata


def _union_branch(annotation: Any, metadata: list[Any], part: Any) -> Any | None:
    """The union member that `part` names: a discriminator tag, or a type name."""
    for member in get_args(annotation):
        inner, member_meta = _unwrap(member)
        if any(isinstance(m, Tag) and m.tag == part for m in member_meta):
            return member
        if get_origin(inner) in (typing.Union, types.UnionType):
            # A tagged union made optional (`FormerNames | None`): the tag is one level down.
            nested = _union_branch(inner, member_meta, part)
            if nested is not None:
                return nested
        name = getattr(inner, "__name__", None)
        if isinstance(part, str) and name is not None and name.lower() == part.lower():
            return member
    if isinstance(part, str) and (part.startswith("function-") or part in ("int", "decimal")):
        return Any
    return None
