"""`esgen new`: start a bounded context from a template, in a new or an existing project.

Registered on `esgen.cli.main`; only click is imported at module level.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from shlex import quote
from typing import TYPE_CHECKING

import click

from esgen.cli._common import UsageError, fail, shown, write_plan

if TYPE_CHECKING:
    from esgen.newctx import NewPlan, Question

__all__ = ["new"]

EXIT_CLASH = 1


@click.command()
@click.argument("context", required=False)
@click.option(
    "-t",
    "--template",
    "template_spec",
    default="blank",
    show_default=True,
    help="A template esgen ships (see --list), or the folder of your own.",
)
@click.option(
    "--dir",
    "project_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=".",
    help="The project folder (default: here); created when missing.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="The folder the context's package goes in, in the project (default: src; "
    "'.' for a flat layout). Only for a project esgen does not configure yet.",
)
@click.option(
    "--tests",
    "tests_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="The folder for its tests, in the project (default: tests).",
)
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="NAME=VALUE",
    help="Answer one of the template's questions; repeatable.",
)
@click.option("--no-input", is_flag=True, help="Ask nothing: --set values, else defaults.")
@click.option(
    "--no-examples",
    is_flag=True,
    help="Keep esgen's scaffolds instead of the template's example implementation.",
)
@click.option("--list", "list_only", is_flag=True, help="Describe the templates and exit.")
def new(
    context: str | None,
    template_spec: str,
    project_dir: Path,
    out_dir: Path | None,
    tests_dir: Path | None,
    assignments: tuple[str, ...],
    no_input: bool,
    no_examples: bool,
    list_only: bool,
) -> None:
    """Start a bounded context from a template.

    CONTEXT is a snake_case name; it becomes the context's package. Writes its schema,
    the [tool.esgen] settings when the project has none, pytest's pythonpath, and what
    `esgen generate` writes (code, scaffolds, tests), with the template's example
    implementation in place of the scaffolds it replaces. Never overwrites a file: when
    any would clash, it lists them and writes nothing.
    """
    from esgen.config import ConfigError
    from esgen.newctx import (
        RenderBudget,
        TemplateError,
        bundled_templates,
        locate_project,
        plan_new,
        resolve_answers,
        resolve_template,
    )

    try:
        if list_only:
            for template in bundled_templates():
                click.echo(_describe(template.name, template.description, template.questions))
            return
        if context is None:
            raise UsageError("name the context to start, e.g. `esgen new orders`")
        given: dict[str, str] = {}
        for item in assignments:
            name, sep, value = item.partition("=")
            if not sep or not name.strip():
                raise UsageError(f"--set takes NAME=VALUE (got {item!r})")
            given[name.strip()] = value
        template = resolve_template(template_spec)
        interactive = not no_input and sys.stdin.isatty()
        # One time budget for every render of the run: names, defaults and files.
        ask = _prompt if interactive else None
        budget = RenderBudget()
        values = resolve_answers(template, context, given, ask, budget)
        project = locate_project(project_dir, out_dir, tests_dir)
        plan = plan_new(template, values, project, examples=not no_examples, budget=budget)
    except (TemplateError, ConfigError) as exc:
        fail(str(exc))  # what was asked cannot be done: one line, not a usage screen

    if plan.clashes:
        _report_clashes(plan, shown)
        sys.exit(EXIT_CLASH)
    write_plan(plan.as_plan())
    _report(plan, shown)


def _describe(name: str, description: str, questions: tuple[Question, ...]) -> str:
    lines = [name, f"    {description}"]
    if questions:
        width = max(len(q.name) for q in questions)
        lines.append("    asks (answer with --set NAME=VALUE):")
        for q in questions:
            choices = f" ({' | '.join(q.choices)})" if q.choices else ""
            lines.append(f"      {q.name:{width}}  {q.help}{choices}; default: {q.default}")
    return "\n".join(lines) + "\n"


def _prompt(question: Question, default: str, check: Callable[[str], object]) -> str:
    from esgen.newctx import TemplateError

    def value_proc(value: str) -> str:
        try:
            check(value)  # asks again until the answer fits
        except TemplateError as exc:
            raise click.BadParameter(str(exc)) from None
        return value

    choices = f" ({'/'.join(question.choices)})" if question.choices else ""
    answer: str = click.prompt(f"{question.help}{choices}", default=default, value_proc=value_proc)
    return answer


def _role(plan: NewPlan, path: Path, owner: str) -> str:
    if path in plan.examples:
        return "example"
    if any(path == change.path for change in plan.project.changes):
        return "config"
    return owner


def _report_clashes(plan: NewPlan, shown: Callable[[Path], str]) -> None:
    clashing = {c.path for c in plan.clashes}
    click.echo(f"esgen: not starting {plan.context!r}: nothing was written.", err=True)
    click.echo("\nthese exist already:", err=True)
    for clash in plan.clashes:
        click.echo(f"  {shown(clash.path)}: {clash.reason}", err=True)
    click.echo("\nwhat esgen new would have written:", err=True)
    for change in plan.changes:
        mark = "  CLASH" if change.path in clashing else ""
        what = "append" if change.status.value == "updated" else "create"
        role = _role(plan, change.path, change.owner)
        click.echo(f"  {what:6} {role:9} {shown(change.path)}{mark}", err=True)
    click.echo(
        "\nmove the clashing files away, choose another context name, or use --dir for "
        "another project folder",
        err=True,
    )


def _report(plan: NewPlan, shown: Callable[[Path], str]) -> None:
    from esgen.newctx import DEV_EXTRAS

    for change in plan.changes:
        status = "updated" if change.status.value == "updated" else "created"
        note = {"example": "  (the template's implementation)", "config": ""}.get(
            _role(plan, change.path, change.owner), ""
        )
        click.echo(f"{status:9} {shown(change.path)}{note}")
    created = sum(1 for c in plan.changes if c.status.value == "created")
    click.echo(
        f"esgen: started context {plan.context!r} from template {plan.template.name!r}: "
        f"{created} file(s) created"
    )
    for note in plan.project.notes:
        click.echo(f"note: {note}")
    settings = plan.project.settings
    root = plan.project.root

    def inside(path: Path) -> str:
        return quote(path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path))

    # Each line runs as printed, in a shell, one after the other (a test does just that).
    steps: list[tuple[str, str]] = []
    if root.resolve() != Path.cwd().resolve():
        # The commands below read the project's configuration from where they run.
        relative = shown(root)
        steps.append((f"cd {quote(str(root) if relative.startswith('..') else relative)}", ""))
    why = "the generator, and pytest and hypothesis for the tests"
    if plan.project.created:
        why += " (the dev group of pyproject.toml)"
    steps.append((f"pip install {quote(DEV_EXTRAS)}", why))
    steps.append(("esgen generate --check", "clean: the code matches the schema"))
    steps.append((f"python -m pytest {inside(settings.tests_dir / plan.context)}", ""))
    if not _python_on_path_is_this_one():
        click.echo(
            f"note: `python` and `pip` on your PATH are not those of the environment esgen "
            f"runs in ({sys.prefix}); activate it before the steps below"
        )
    width = max(len(command) for command, _ in steps) + 2
    click.echo("\nnext:")
    for command, comment in steps:
        click.echo(f"  {command:{width}}# {comment}" if comment else f"  {command}")
    schema = next(c.path for c in plan.changes if c.path.is_relative_to(settings.schema_dir))
    click.echo(f"then edit {inside(schema)} and run `esgen generate`")


def _python_on_path_is_this_one() -> bool:
    """Whether the `python` the next steps run is in the environment esgen runs in (asked
    of it: links and version managers' shims make paths unreliable)."""
    import shutil
    import subprocess

    found = shutil.which("python")
    if found is None:
        return False
    try:
        answer = subprocess.run(
            [found, "-c", "import sys; print(sys.prefix)"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return False
    return answer.stdout.strip() == sys.prefix
