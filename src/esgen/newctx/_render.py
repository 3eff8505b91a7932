"""Answers and rendering: a template's questions answered, its files rendered in memory.

Values are checked before any template sees them: names must be identifiers of their
kind, choices one of the choices, free text one printable line. Free text can reach a
file only through a filter that quotes it (`yaml` for schema text, `pystr` for Python);
printing it raw is an error, so schema text never becomes code.
"""

from __future__ import annotations

import json
import keyword
import re
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import PurePosixPath
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from esgen.newctx._manifest import ROLES, Question, Template, TemplateError
from esgen.schema import pascal, snake

__all__ = ["Ask", "FreeText", "Rendered", "check_value", "render_template", "resolve_answers"]

# role -> {path inside the role's folder: text}
Rendered = dict[str, dict[PurePosixPath, str]]
# Asks a person for a value: (question, default, check) -> an answer that passed `check`.
Ask = Callable[[Question, str, Callable[[str], str]], str]

_SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
_PASCAL = re.compile(r"^[A-Z][A-Za-z0-9]*$")
_MAX_TEXT = 200


class FreeText(str):
    """An answer of kind `text`: only the quoting filters may print it."""

    __slots__ = ()


def check_value(question: Question, value: str) -> str | FreeText:
    """The value if it fits the question; raises TemplateError saying what fits."""
    what = f"{question.name} must be"
    if question.kind == "snake":
        if not _SNAKE.match(value) or keyword.iskeyword(value):
            raise TemplateError(
                f"{what} a snake_case name, e.g. {snake(pascal(value)) or 'orders'!r} "
                f"(got {value!r})"
            )
    elif question.kind == "pascal":
        if not _PASCAL.match(value) or keyword.iskeyword(value):
            raise TemplateError(
                f"{what} a PascalCase name, e.g. {pascal(value) or 'Order'!r} (got {value!r})"
            )
    elif question.kind == "choice":
        if value not in question.choices:
            raise TemplateError(f"{what} one of {', '.join(question.choices)} (got {value!r})")
    else:
        if not value.isprintable() or len(value) > _MAX_TEXT:
            raise TemplateError(f"{what} one line of at most {_MAX_TEXT} printable characters")
        return FreeText(value)
    return value


def _environment(loader: jinja2.BaseLoader | None = None) -> SandboxedEnvironment:
    # Sandboxed: a template folder from elsewhere can format values but not reach
    # Python internals.
    env = SandboxedEnvironment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
        finalize=_refuse_raw_text,
    )
    env.filters["snake"] = lambda value: snake(str(value))
    env.filters["pascal"] = lambda value: pascal(str(value))
    # A JSON string is a valid YAML scalar; repr of a str is a valid Python literal.
    env.filters["yaml"] = lambda value: json.dumps(str(value), ensure_ascii=False)
    env.filters["pystr"] = lambda value: repr(str(value))
    return env


def _refuse_raw_text(value: Any) -> Any:
    if isinstance(value, FreeText):
        raise TemplateError(
            f"free text ({str(value)[:40]!r}) printed without quoting; "
            "write `{{ value | yaml }}` in schema files or `{{ value | pystr }}` in Python"
        )
    return value


def resolve_answers(
    template: Template, context: str, given: Mapping[str, str], ask: Ask | None
) -> dict[str, str]:
    """Values from `given` (`--set`), else from `ask` (a prompt), else the defaults."""
    unknown = sorted(set(given) - {q.name for q in template.questions})
    if unknown:
        known = ", ".join(q.name for q in template.questions) or "none"
        raise TemplateError(
            f"template {template.name!r} does not ask for {', '.join(unknown)} "
            f"(it asks for: {known}; the context comes from the CONTEXT argument)"
        )
    context_question = Question("context", "context", "snake", context)
    values: dict[str, str] = {"context": check_value(context_question, context)}
    env = _environment()
    for question in template.questions:
        default = _expand(
            env, template, f"the default of {question.name}", question.default, values
        )
        if question.name in given:
            values[question.name] = check_value(question, given[question.name])
            continue
        if ask is None:
            values[question.name] = check_value(question, default)
        else:
            # `ask` re-asks until the check passes (click prompts do, with value_proc).
            answer = ask(question, default, partial(check_value, question))
            values[question.name] = check_value(question, answer)
    for name, expression in template.derived:
        value = _expand(env, template, f"derived {name}", expression, values)
        if not value.isidentifier() or keyword.iskeyword(value):
            raise TemplateError(
                f"{template.name}: derived {name} is {value!r}, which is not a Python identifier; "
                "check the values given to the template"
            )
        values[name] = value
    return values


def _expand(
    env: SandboxedEnvironment, template: Template, what: str, text: str, values: Mapping[str, str]
) -> str:
    try:
        return env.from_string(text).render(values)
    except TemplateError:
        raise
    except jinja2.TemplateError as exc:
        raise TemplateError(f"{template.root}: {what}: {exc}") from None


def render_template(template: Template, values: Mapping[str, str]) -> Rendered:
    """Every file of the template, rendered in memory, by role."""
    env = _environment(jinja2.FileSystemLoader(str(template.root)))
    rendered: Rendered = {role: {} for role in ROLES}
    for role in ROLES:
        folder = template.root / role
        if not folder.is_dir():
            continue
        for source in sorted(p for p in folder.rglob("*") if p.is_file()):
            relative = source.relative_to(template.root).as_posix()
            if any(part.startswith(".") or part == "__pycache__" for part in source.parts):
                continue
            target = _target_path(env, template, source.relative_to(folder).as_posix(), values)
            try:
                if source.name.endswith(".jinja"):
                    text = env.get_template(relative).render(values)
                else:
                    text = source.read_text(encoding="utf-8")
            except TemplateError as exc:
                raise TemplateError(f"{source}: {exc}") from None
            except jinja2.TemplateSyntaxError as exc:
                raise TemplateError(f"{source}:{exc.lineno}: {exc.message}") from None
            except jinja2.TemplateError as exc:
                raise TemplateError(f"{source}: {exc}") from None
            except UnicodeDecodeError:
                raise TemplateError(
                    f"{source}: not UTF-8 text; templates hold text files only"
                ) from None
            rendered[role][target] = text
    if not rendered["schema"]:
        raise TemplateError(f"{template.root}: the template has no schema/ files")
    return rendered


def _target_path(
    env: SandboxedEnvironment, template: Template, relative: str, values: Mapping[str, str]
) -> PurePosixPath:
    text = _expand(env, template, f"the file name {relative!r}", relative, values)
    if text.endswith(".jinja"):
        text = text[: -len(".jinja")]
    parts = text.split("/")
    if any(part in ("", ".", "..") or "\\" in part or not part.isprintable() for part in parts):
        raise TemplateError(f"{template.root}: {relative!r} renders to the unusable path {text!r}")
    return PurePosixPath(*parts)
