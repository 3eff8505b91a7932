"""Templates of `esgen new`: folders of data, each with a `template.yaml` manifest.

    <template>/
      template.yaml   description, questions (with defaults), derived names
      schema/         rendered into the project's schema folder
      src/            the template's example implementation, into the output folder
      tests/          its tests, into the tests folder
      README.md       optional, for people; not rendered

Every file is rendered with Jinja2 (a `.jinja` suffix is dropped) or, without the
suffix, copied as it is; folder and file names may hold `{{ name }}` placeholders.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from esgen._errors import EsgenError
from esgen._resources import data_dir
from esgen.schema._yaml import KeyPath, LoadedYaml, load_yaml

__all__ = [
    "MANIFEST",
    "ROLES",
    "Question",
    "Template",
    "TemplateError",
    "bundled_templates",
    "cut",
    "load_template",
    "resolve_template",
    "shown",
]

MANIFEST = "template.yaml"
ROLES = ("schema", "src", "tests")
Kind = Literal["snake", "pascal", "choice", "text"]
KINDS: tuple[Kind, ...] = ("snake", "pascal", "choice", "text")
_TOP_LEVEL = {MANIFEST, "README.md", *ROLES}
_CHOICE = re.compile(r"^[A-Za-z0-9_.-]+$")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class TemplateError(EsgenError, ValueError):
    """A template that cannot be used as it is, or values it cannot take."""


def cut(text: str, limit: int = 60) -> str:
    """`text` cut short: a template's values may be huge (aliases, expressions)."""
    if len(text) <= limit:
        return text
    return f"{text[: limit - 20]}...{text[-12:]} ({len(text):,} characters)"


def shown(value: Any) -> str:
    return cut(repr(value))


@dataclass(frozen=True, slots=True)
class Question:
    name: str
    help: str
    kind: Kind
    default: str  # may hold `{{ ... }}` of the context and earlier answers
    choices: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Template:
    name: str
    root: Path
    description: str
    questions: tuple[Question, ...]
    derived: tuple[tuple[str, str], ...]  # (name, Jinja expression text), in order

    def question(self, name: str) -> Question | None:
        return next((q for q in self.questions if q.name == name), None)


def bundled_templates() -> list[Template]:
    """The templates shipped with esgen: every folder of `templates/contexts/`."""
    root = data_dir("templates") / "contexts"
    return [load_template(p) for p in sorted(root.iterdir()) if (p / MANIFEST).is_file()]


def resolve_template(spec: str) -> Template:
    """A bundled template by name, or a folder (anything that looks like a path)."""
    looks_like_path = any(sep in spec for sep in ("/", "\\")) or spec.startswith((".", "~"))
    bundled = {} if looks_like_path else {t.name: t for t in bundled_templates()}
    if spec in bundled:
        return bundled[spec]
    folder = Path(spec).expanduser()
    if looks_like_path or folder.is_dir():
        if not (folder / MANIFEST).is_file():
            raise TemplateError(f"{folder}: not a template folder (no {MANIFEST} in it)")
        return load_template(folder)
    raise TemplateError(
        f"no template named {spec!r}; esgen has {', '.join(sorted(bundled))} "
        "(see `esgen new --list`), or give the path of your own template folder"
    )


def load_template(folder: Path) -> Template:
    # Imported here: it needs this module's TemplateError.
    from esgen.newctx._files import no_link, read_template_text

    manifest = folder / MANIFEST
    where = str(manifest)
    for entry in sorted(folder.iterdir()):
        no_link(folder, entry)  # the manifest, the role folders, hidden files: no links
    try:
        text = read_template_text(manifest)
    except OSError as exc:
        raise TemplateError(f"{where}: cannot read the manifest: {exc}") from None
    # esgen's schema loader: its aliases are bounded (an alias bomb is refused, located,
    # before anything expands it), and so are its numbers.
    loaded, problems = load_yaml(manifest, text)
    if loaded is None or problems:
        raise TemplateError(str(problems[0]))
    data = loaded.data
    if not isinstance(data, dict):
        raise TemplateError(f"{where}: the manifest must be a mapping")
    unknown = set(data) - {"description", "questions", "derived"}
    if unknown:
        raise TemplateError(
            f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))} "
            "(known: description, questions, derived)"
        )
    description = data.get("description")
    if not isinstance(description, str) or not description.strip():
        raise TemplateError(f"{where}: 'description' must be a sentence saying what it starts")
    questions = tuple(
        _question(loaded, name, spec) for name, spec in _mapping(where, data, "questions").items()
    )
    derived = []
    for name, expression in _mapping(where, data, "derived").items():
        if not isinstance(expression, str):
            raise TemplateError(f"{where}: derived {name!r} must be a template string")
        derived.append((_checked_name(where, name), expression))
    names = ["context", *(q.name for q in questions), *(n for n, _ in derived)]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise TemplateError(
            f"{where}: {', '.join(duplicates)} defined twice ('context' is always asked)"
        )
    for entry in sorted(folder.iterdir()):
        if entry.name not in _TOP_LEVEL and not entry.name.startswith("."):
            raise TemplateError(
                f"{entry}: unexpected in a template folder "
                f"(expected {MANIFEST}, {', '.join(ROLES)}/ and an optional README.md)"
            )
    return Template(folder.name, folder, " ".join(description.split()), questions, tuple(derived))


def _mapping(where: str, data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise TemplateError(f"{where}: {key!r} must be a mapping of names")
    return value


def _checked_name(where: str, name: Any) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise TemplateError(f"{where}: {shown(name)} is not a snake_case name for a value")
    return name


def _question(loaded: LoadedYaml, name: Any, spec: Any) -> Question:
    def at(*path: Any) -> str:
        where: KeyPath = ("questions", name, *path)
        return str(loaded.at(where))

    where = at()
    name = _checked_name(where, name)
    if not isinstance(spec, dict):
        raise TemplateError(f"{where}: question {name!r} must be a mapping")
    unknown = set(spec) - {"help", "kind", "default", "choices"}
    if unknown:
        raise TemplateError(
            f"{where}: question {name!r}: unknown key(s) {', '.join(sorted(map(str, unknown)))}"
        )
    kind = spec.get("kind", "snake")
    if kind not in KINDS:
        raise TemplateError(
            f"{where}: question {name!r}: kind must be one of {', '.join(KINDS)} "
            f"(got {shown(kind)})"
        )
    default = spec.get("default")
    if not isinstance(default, str):
        raise TemplateError(
            f"{where}: question {name!r} needs a default (a string), for `--no-input`"
        )
    choices: tuple[str, ...] = ()
    if kind == "choice":
        raw = spec.get("choices")
        if not isinstance(raw, list) or not raw:
            raise TemplateError(f"{where}: question {name!r} of kind choice needs its choices")
        for index, choice in enumerate(raw):
            if isinstance(choice, list | dict) or not _CHOICE.match(str(choice)):
                raise TemplateError(
                    f"{at('choices', index)}: question {name!r}: choices must be plain words "
                    f"(got {shown(choice)})"
                )
        choices = tuple(str(c) for c in raw)
    help_text = spec.get("help", name)
    if not isinstance(help_text, str):
        raise TemplateError(f"{where}: question {name!r}: help must be text")
    return Question(name, " ".join(help_text.split()), kind, default, choices)
