"""`esgen new` as one plan: the schema, the configuration, everything `esgen generate`
would write for it, and the template's example implementation in place of the scaffolds
it replaces. Nothing is written here; the plan says what would be, and what clashes.

A clash is any file of the plan that already exists, or a context of the same name in
the project's schemas. With a clash nothing at all is written: half a context would
leave `esgen generate --check` and the tests in a state nobody chose.
"""

from __future__ import annotations

import importlib.util
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from esgen.codegen import Change, Plan, Status, plan_generation
from esgen.newctx._manifest import Template, TemplateError
from esgen.newctx._project import Project
from esgen.newctx._render import Answer, render_template
from esgen.newctx._sandbox import RenderBudget
from esgen.schema import SchemaError, find_schema_files, load_sources

__all__ = ["Clash", "NewPlan", "plan_new"]


@dataclass(frozen=True)
class Clash:
    path: Path
    reason: str


@dataclass(frozen=True)
class NewPlan:
    project: Project
    template: Template
    context: str
    changes: tuple[Change, ...]  # every file written, in path order
    clashes: tuple[Clash, ...]
    examples: tuple[Path, ...]  # files that come from the template's implementation

    def as_plan(self) -> Plan:
        settings = self.project.settings
        folders = (self.project.root, settings.schema_dir, settings.out_dir, settings.tests_dir)
        return Plan(self.project.root, self.changes, folders=folders)


def _context_line(name: str) -> re.Pattern[str]:
    return re.compile(rf"^context:\s*['\"]?{re.escape(name)}['\"]?\s*(#.*)?$", re.MULTILINE)


def plan_new(
    template: Template,
    values: dict[str, Answer],
    project: Project,
    *,
    examples: bool = True,
    budget: RenderBudget | None = None,
) -> NewPlan:
    settings = project.settings
    context = values["context"]
    assert isinstance(context, str)  # a snake_case name, never free text
    rendered = render_template(template, values, budget)
    schema_texts = {settings.schema_dir / p: text for p, text in rendered["schema"].items()}
    _check_schema(template, context, settings.schema_dir, schema_texts)

    clashes: list[Clash] = []
    if settings.schema_dir.is_dir():
        pattern = _context_line(context)
        for path in find_schema_files(settings.schema_dir):
            if path not in schema_texts and pattern.search(path.read_text(encoding="utf-8")):
                clashes.append(Clash(path, f"already defines the context {context!r}"))

    files: dict[Path, Change] = {
        path: Change(path, Status.CREATED, None, text, owner="user")
        for path, text in schema_texts.items()
    }
    files.update(_generated(template, settings.schema_dir, schema_texts, project))
    example_paths: list[Path] = []
    if examples:
        folders = {"src": settings.out_dir, "tests": settings.tests_dir}
        for role, folder in folders.items():
            for relative, text in rendered[role].items():
                path = folder / relative
                planned = files.get(path)
                if planned is not None and planned.owner == "generated":
                    raise TemplateError(
                        f"{template.root / role / relative}: esgen generates this file; a "
                        "template may replace scaffolds (user-owned files) only"
                    )
                files[path] = Change(path, Status.CREATED, None, text, owner="user")
                example_paths.append(path)
    for change in project.changes:
        files[change.path] = change

    for path, change in sorted(files.items()):
        if change.status is Status.CREATED and (path.exists() or path.is_symlink()):
            clashes.append(Clash(path, "exists"))
    installed = _installed_module(context, settings.out_dir)
    if installed is not None:
        clashes.append(
            Clash(installed, f"the installed module {context!r}, which the context would hide")
        )
    return NewPlan(
        project,
        template,
        context,
        tuple(change for _, change in sorted(files.items())),
        tuple(sorted(clashes, key=lambda c: c.path)),
        tuple(sorted(example_paths)),
    )


def _installed_module(name: str, out_dir: Path) -> Path | None:
    """Where a module of the context's name is importable from here, outside the project's
    package folder: the new package would hide it (or it, the package) wherever both are on
    the path, as with a dependency of a dependency that no list can name in advance."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    places = [spec.origin] if spec.origin not in (None, "built-in", "frozen") else []
    places += list(spec.submodule_search_locations or [])
    for place in places:
        assert place is not None
        if not Path(place).resolve().is_relative_to(out_dir.resolve()):
            return Path(place)
    return None


def _check_schema(
    template: Template, context: str, schema_dir: Path, texts: dict[Path, str]
) -> None:
    """The rendered schema must be valid and hold exactly the new context."""
    schema, diagnostics = load_sources(schema_dir, texts, _no_external_files)
    if any(d.severity.value == "error" for d in diagnostics):
        raise TemplateError(
            f"the schema template {template.name!r} renders with these values to an invalid "
            f"schema:\n{SchemaError(diagnostics).render()}"
        )
    names = [c.name for c in schema.contexts]
    if names != [context]:
        raise TemplateError(
            f"template {template.name!r}: its schema/ files must define the context "
            f"{context!r} only (they define {', '.join(names) or 'none'})"
        )


def _no_external_files(path: Path) -> str:
    raise OSError(f"a template's schema may not refer to other files ({path.name})")


def _generated(
    template: Template, schema_dir: Path, texts: dict[Path, str], project: Project
) -> dict[Path, Change]:
    """What `esgen generate` writes for the new context alone, planned in a scratch folder
    (plan_generation reads schemas from disk, and nothing may be written to the project
    before the whole plan is known), then moved to the project's folders."""
    settings = project.settings
    with tempfile.TemporaryDirectory(prefix="esgen-new-") as scratch:
        root = Path(scratch)
        # The schema folder keeps its name: generated headers name it.
        scratch_schemas = root / "in" / schema_dir.name
        for path, text in texts.items():
            target = scratch_schemas / path.relative_to(schema_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        out, tests = root / "out", root / "tests"
        try:
            plan = plan_generation(scratch_schemas, out, settings.formatter, tests)
        except SchemaError as exc:  # pragma: no cover - the schema was checked already
            raise TemplateError(f"template {template.name!r}:\n{exc.render()}") from None
    moved: dict[Path, Change] = {}
    for change in plan.changes:
        if change.new is None:  # pragma: no cover - nothing stale in an empty folder
            continue
        if change.path.is_relative_to(out):
            path = settings.out_dir / change.path.relative_to(out)
        else:
            path = settings.tests_dir / change.path.relative_to(tests)
        moved[path] = Change(path, Status.CREATED, None, change.new, change.owner)
    return moved
