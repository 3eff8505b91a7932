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

from esgen.newctx._files import (
    ConfinedLoader,
    TemplateFileError,
    read_template_text,
    template_files,
)
from esgen.newctx._manifest import ROLES, Question, Template, TemplateError
from esgen.newctx._sandbox import (
    BoundedEnvironment,
    RenderBudget,
    TemplateRenderError,
    render_bounded,
)
from esgen.schema import check_context_name, pascal, snake

__all__ = [
    "Answer",
    "Ask",
    "FreeText",
    "Rendered",
    "check_value",
    "render_template",
    "resolve_answers",
]

# role -> {path inside the role's folder: text}
Rendered = dict[str, dict[PurePosixPath, str]]
# Asks a person for a value: (question, default, check) -> an answer that passed `check`.
Ask = Callable[[Question, str, Callable[[str], "Answer"]], str]

_SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
_PASCAL = re.compile(r"^[A-Z][A-Za-z0-9]*$")
_MAX_TEXT = 200


class FreeText:
    """An answer of kind `text`: only the quoting filters may print it.

    Deliberately not a str: a str would come back out of any filter (`trim`, `upper`),
    operator (`~`, `%`) or method (`.strip()`) as a plain str that prints raw. Anything
    that turns this into text goes through `__str__`, which refuses.
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        raise TemplateError(_RAW_TEXT.format(shown=repr(self.text[:40])))

    def __repr__(self) -> str:
        return f"FreeText({self.text!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FreeText):
            return self.text == other.text
        if isinstance(other, str):
            return self.text == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.text)

    # Questions a template may ask of the text without printing it.
    def __bool__(self) -> bool:
        return bool(self.text)

    def __len__(self) -> int:
        return len(self.text)

    def __contains__(self, part: object) -> bool:
        return isinstance(part, str) and part in self.text


Answer = str | FreeText
_RAW_TEXT = (
    "free text ({shown}) printed without quoting; write `{{{{ value | yaml }}}}` in schema "
    "files or `{{{{ value | pystr }}}}` in Python"
)


def _text(value: Any) -> str:
    return value.text if isinstance(value, FreeText) else str(value)


def check_value(question: Question, value: str) -> Answer:
    """The value if it fits the question; raises TemplateError saying what fits."""
    what = f"{question.name} must be"
    if question.kind in ("snake", "pascal") and keyword.iskeyword(value):
        # The right case, but Python reserves it: it could name no module or class.
        raise TemplateError(
            f"{question.name} {value!r} is a Python keyword, which cannot name a module or a "
            "class; choose another name"
        )
    if question.kind == "snake":
        if not _fits(_SNAKE, value):
            hint = _suggest(_SNAKE, snake(pascal(value)), "orders")
            raise TemplateError(f"{what} a snake_case name, e.g. {hint!r} (got {value!r})")
    elif question.kind == "pascal":
        if not _fits(_PASCAL, value):
            hint = _suggest(_PASCAL, pascal(value), "Order")
            raise TemplateError(f"{what} a PascalCase name, e.g. {hint!r} (got {value!r})")
    elif question.kind == "choice":
        if value not in question.choices:
            raise TemplateError(f"{what} one of {', '.join(question.choices)} (got {value!r})")
    else:
        if not value.isprintable() or len(value) > _MAX_TEXT:
            raise TemplateError(f"{what} one line of at most {_MAX_TEXT} printable characters")
        return FreeText(value)
    return value


def _fits(pattern: re.Pattern[str], value: str) -> bool:
    return bool(pattern.match(value)) and value.isascii() and not keyword.iskeyword(value)


def _suggest(pattern: re.Pattern[str], candidate: str, example: str) -> str:
    """A corrected spelling, or a plain example when correcting gives nothing usable."""
    return candidate if _fits(pattern, candidate) else example


def _environment(loader: jinja2.BaseLoader | None = None) -> BoundedEnvironment:
    # Sandboxed: a template folder from elsewhere can format values but not reach
    # Python internals, nor render without end (see _sandbox).
    env = BoundedEnvironment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
        finalize=_refuse_raw_text,
    )
    # snake and pascal keep letters and digits only, so free text comes out a name.
    env.filters["snake"] = lambda value: (
        snake(pascal(value.text)) if isinstance(value, FreeText) else snake(str(value))
    )
    env.filters["pascal"] = lambda value: pascal(_text(value))
    # A JSON string is a valid YAML scalar; repr of a str is a valid Python literal.
    env.filters["yaml"] = lambda value: json.dumps(_text(value), ensure_ascii=False)
    env.filters["pystr"] = lambda value: repr(_text(value))
    return env


def _refuse_raw_text(value: Any) -> Any:
    if isinstance(value, FreeText):
        raise TemplateError(_RAW_TEXT.format(shown=repr(value.text[:40])))
    return value


def resolve_answers(
    template: Template,
    context: str,
    given: Mapping[str, str],
    ask: Ask | None,
    budget: RenderBudget | None = None,
) -> dict[str, Answer]:
    """Values from `given` (`--set`), else from `ask` (a prompt), else the defaults; the
    renders of defaults and derived values spend `budget` (a fresh one when None)."""
    budget = budget or RenderBudget()
    unknown = sorted(set(given) - {q.name for q in template.questions})
    if unknown:
        known = ", ".join(q.name for q in template.questions) or "none"
        raise TemplateError(
            f"template {template.name!r} does not ask for {', '.join(unknown)} "
            f"(it asks for: {known}; the context comes from the CONTEXT argument)"
        )
    # The context becomes a package: the schema's own rules for its name apply (keywords,
    # modules of the standard library or of esgen's dependencies it would hide).
    problem = check_context_name(context)
    if problem is not None:
        raise TemplateError(problem[1])
    values: dict[str, Answer] = {"context": context}
    env = _environment()
    for question in template.questions:
        default = _expand(
            env, template, f"the default of {question.name}", question.default, values, budget
        )
        if question.name in given:
            values[question.name] = check_value(question, given[question.name])
            continue
        if ask is None:
            try:
                values[question.name] = check_value(question, default)
            except TemplateError as exc:
                # Nobody typed this: the template's own default does not fit its question.
                raise TemplateError(
                    f"template {template.name!r}: the default of {question.name} does not "
                    f"fit its question ({exc}); give a value with --set {question.name}=..."
                ) from None
        else:
            # `ask` re-asks until the check passes (click prompts do, with value_proc).
            answer = ask(question, default, partial(check_value, question))
            values[question.name] = check_value(question, answer)
    for name, expression in template.derived:
        value = _expand(env, template, f"derived {name}", expression, values, budget)
        if not value.isidentifier() or keyword.iskeyword(value):
            why = "a Python keyword" if keyword.iskeyword(value) else "not a Python identifier"
            raise TemplateError(
                f"the values given make {name} {value!r}, which is {why}; "
                f"choose other values (template {template.name!r})"
            )
        values[name] = value
    return values


def _expand(
    env: BoundedEnvironment,
    template: Template,
    what: str,
    text: str,
    values: Mapping[str, Answer],
    budget: RenderBudget,
) -> str:
    try:
        return render_bounded(lambda: env.from_string(text), values, budget)
    except TemplateRenderError as exc:
        raise TemplateError(f"{template.root}: {what}: {exc}") from None
    except TemplateError:
        raise
    except jinja2.TemplateError as exc:
        raise TemplateError(f"{template.root}: {what}: {exc}") from None


def render_template(
    template: Template, values: Mapping[str, Answer], budget: RenderBudget | None = None
) -> Rendered:
    """Every file of the template, rendered in memory, by role, within `budget` (a fresh
    one when None)."""
    budget = budget or RenderBudget()
    env = _environment(ConfinedLoader(template.root))
    rendered: Rendered = {role: {} for role in ROLES}
    for role in ROLES:
        folder = template.root / role
        if not folder.is_dir():
            continue
        for source in template_files(template.root, folder):
            relative = source.relative_to(template.root).as_posix()
            if any(part.startswith(".") or part == "__pycache__" for part in source.parts):
                continue
            relative_in_role = source.relative_to(folder).as_posix()
            target = _target_path(env, template, relative_in_role, values, budget)
            try:
                if source.name.endswith(".jinja"):
                    text = render_bounded(partial(env.get_template, relative), values, budget)
                else:
                    text = read_template_text(source)
            except TemplateRenderError as exc:
                where = f"{source}:{exc.line}" if exc.line else str(source)
                raise TemplateError(f"{where}: {exc}") from None
            except TemplateFileError:
                raise  # names the file it is about, which may be one this file includes
            except TemplateError as exc:
                raise TemplateError(f"{source}: {exc}") from None
            except jinja2.TemplateSyntaxError as exc:
                raise TemplateError(f"{source}:{exc.lineno}: {exc.message}") from None
            except jinja2.TemplateError as exc:
                raise TemplateError(f"{source}: {exc}") from None
            rendered[role][target] = text
    if not rendered["schema"]:
        raise TemplateError(f"{template.root}: the template has no schema/ files")
    return rendered


def _target_path(
    env: BoundedEnvironment,
    template: Template,
    relative: str,
    values: Mapping[str, Answer],
    budget: RenderBudget,
) -> PurePosixPath:
    text = _expand(env, template, f"the file name {relative!r}", relative, values, budget)
    if text.endswith(".jinja"):
        text = text[: -len(".jinja")]
    parts = text.split("/")
    if any(part in ("", ".", "..") or "\\" in part or not part.isprintable() for part in parts):
        raise TemplateError(f"{template.root}: {relative!r} renders to the unusable path {text!r}")
    return PurePosixPath(*parts)
