"""What CI users run: the pre-commit hooks (.pre-commit-hooks.yaml) and the GitHub Action
(action.yml), each run for real on a fixture repository.

The hooks go through pre-commit itself: `pre-commit try-repo` and the README's configuration,
with pre-commit installing esgen from a git repository that holds this working tree (so
uncommitted work is tested too), as it would from esgen's own repository. The action's steps
run as the runner runs a composite action: `${{ ... }}` evaluated, each `run:` in
`bash --noprofile --norc -eo pipefail`, with GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files, on a
shallow single-branch clone of a pull request, as actions/checkout leaves it. Only the steps
that need GitHub itself (setup-python, the pull-request comment) are left out, by their own
conditions.

The fixture projects are written by the esgen of that same tree (`python -m esgen` with its
src/ first on the path), so that the code and catalog the hooks check come from the esgen
they run. About a minute and a quarter, most of it pip installing esgen's generator: twice
for try-repo (which always works in a store of its own), once for the README's
configuration, once for the action.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).parent.parent
ACTION = ROOT / "action.yml"
HOOKS = ROOT / ".pre-commit-hooks.yaml"
README = ROOT / "README.md"
CONTEXT = "cargo"
SCHEMA = f"schemas/{CONTEXT}.yaml"
IDENTITY = {
    "GIT_AUTHOR_NAME": "esgen tests",
    "GIT_AUTHOR_EMAIL": "tests@esgen.invalid",
    "GIT_COMMITTER_NAME": "esgen tests",
    "GIT_COMMITTER_EMAIL": "tests@esgen.invalid",
}


def clean_environ() -> dict[str, str]:
    """This process's environment without what would leak into the runs under test: a
    virtual environment, the caller's pre-commit or GitHub Actions settings, git's."""
    leaks = ("VIRTUAL_ENV", "PYTHON", "PRE_COMMIT", "GITHUB_", "RUNNER_", "GIT_", "SKIP")
    return {k: v for k, v in os.environ.items() if not k.startswith(leaks)} | IDENTITY


def run(
    argv: list[str], cwd: Path, env: Mapping[str, str], check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, cwd=cwd, env=dict(env), capture_output=True, text=True)
    if check:
        assert result.returncode == 0, f"$ {' '.join(argv)}\n{result.stdout}\n{result.stderr}"
    return result


def git(cwd: Path, *args: str) -> str:
    return run(["git", "-c", "commit.gpgsign=false", *args], cwd, clean_environ()).stdout


def marked_block(marker: str, language: str) -> str:
    """The fenced block right after `<!-- marker -->` in the README."""
    text = README.read_text(encoding="utf-8")
    found = re.search(rf"<!-- {marker} -->\n```{language}\n(.*?)```", text, re.DOTALL)
    assert found, f"the README has no {language} block after <!-- {marker} -->"
    return found.group(1)


@dataclass(frozen=True)
class Upstream:
    """esgen's repository as pre-commit and the action get it: this tree, committed."""

    path: Path
    rev: str
    cache: Path  # ESGEN_CACHE_DIR for every esgen run of this module

    def esgen(self, cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = clean_environ() | {
            "PYTHONPATH": str(self.path / "src"),
            "ESGEN_CACHE_DIR": str(self.cache),
        }
        return run([sys.executable, "-m", "esgen", *args], cwd, env, check)

    def new_project(self, where: Path) -> Path:
        """A committed esgen project on branch main: schema, code, catalog."""
        where.mkdir(parents=True)
        # From the parent folder: `python -m` puts the folder it runs in on the path, and a
        # folder named like the context would be a module the context hides.
        self.esgen(where, "new", CONTEXT, "--dir", "project", "--no-input")
        project = where / "project"
        self.esgen(project, "docs")
        git(project, "init", "-q", "-b", "main")
        return project


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Upstream:
    repo = tmp_path_factory.mktemp("esgen-upstream")
    listed = run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        ROOT, clean_environ(),
    ).stdout.split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / name)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "esgen")
    rev = git(repo, "rev-parse", "HEAD").strip()
    return Upstream(repo, rev, tmp_path_factory.mktemp("esgen-cache"))


def commit_all(project: Path, message: str) -> None:
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", message)


def add_version_2(project: Path) -> None:
    """A compatible change: a new version of the event, with a defaulted field."""
    with (project / SCHEMA).open("a", encoding="utf-8") as schema:
        schema.write("          2:\n            fields:\n              name: str\n")
        schema.write("              colour: {type: str, default: red}\n")


def change_version_1_in_place(project: Path) -> None:
    """A breaking change: the published version 1 tightens a field (ES103). A later version
    may still relax it again, so the code can be generated."""
    text = (project / SCHEMA).read_text(encoding="utf-8")
    v1 = "          1:\n            fields:\n              name: str\n"
    assert v1 in text, text
    narrowed = v1.replace("name: str", "name: {type: str, max_length: 50}")
    (project / SCHEMA).write_text(text.replace(v1, narrowed), encoding="utf-8")


# ----------------------------------------------------------------------------- pre-commit


@dataclass(frozen=True)
class PreCommit:
    env: dict[str, str]

    def __call__(self, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return run([sys.executable, "-m", "pre_commit", *args], cwd, self.env, check=False)


@pytest.fixture(scope="module")
def pre_commit(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> PreCommit:
    # One store for the module: the hooks' environment is installed once for the README's
    # configuration (try-repo always works in a store of its own).
    env = clean_environ() | {
        "PRE_COMMIT_HOME": str(tmp_path_factory.mktemp("pre-commit-home")),
        "PRE_COMMIT_COLOR": "never",
        "ESGEN_CACHE_DIR": str(upstream.cache),
    }
    return PreCommit(env)


HOOK_NAMES = {
    "esgen-generate-check": "esgen generate --check",
    "esgen-docs-check": "esgen docs --check",
    "esgen-compat": "esgen compat",
}


def hook_reports(output: str) -> dict[str, tuple[str, str]]:
    """Per hook id: its status (Passed, Failed, Skipped) and the output it printed."""
    ids = {name: hook_id for hook_id, name in HOOK_NAMES.items()}
    reports: dict[str, tuple[str, str]] = {}
    current: str | None = None
    for line in output.splitlines():
        status = re.match(r"^(.+?)\.{3,}(?:\(no files to check\))?(Passed|Failed|Skipped)$", line)
        if status and status.group(1) in ids:
            current = ids[status.group(1)]
            reports[current] = (status.group(2), "")
        elif current is not None:
            reports[current] = (reports[current][0], reports[current][1] + line + "\n")
    return reports


def test_the_hook_manifest_is_valid(pre_commit: PreCommit) -> None:
    result = pre_commit(ROOT, "validate-manifest", str(HOOKS))
    assert result.returncode == 0, result.stdout + result.stderr
    hooks = yaml.safe_load(HOOKS.read_text(encoding="utf-8"))
    assert {hook["id"]: hook["name"] for hook in hooks} == HOOK_NAMES
    for hook in hooks:
        # pre-commit installs the repository with `pip install .`: the runtime alone.
        assert hook["additional_dependencies"] == [".[generator]"], hook["id"]
        assert hook["pass_filenames"] is False, hook["id"]
    compat = next(hook for hook in hooks if hook["id"] == "esgen-compat")
    pattern = re.compile(compat["files"])
    for path in (SCHEMA, "esgen.lock", "pyproject.toml", "sub/schemas/types.json", "a.yml"):
        assert pattern.search(path), path
    assert not pattern.search(f"src/{CONTEXT}/events/item.py")


def test_try_repo_passes_a_project_in_step_and_names_each_problem(
    upstream: Upstream, pre_commit: PreCommit, tmp_path: Path
) -> None:
    project = upstream.new_project(tmp_path / "in-step")
    upstream.esgen(project, "lock")
    commit_all(project, "published")

    passing = pre_commit(project, "try-repo", str(upstream.path), "--all-files")
    reports = hook_reports(passing.stdout)
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert {hook_id: status for hook_id, (status, _) in reports.items()} == dict.fromkeys(
        HOOK_NAMES, "Passed"
    ), passing.stdout

    # The published version changes in place, and nothing is regenerated: each hook fails
    # and says why.
    change_version_1_in_place(project)
    failing = pre_commit(project, "try-repo", str(upstream.path), "--all-files")
    assert failing.returncode == 1, failing.stdout + failing.stderr
    reports = hook_reports(failing.stdout)
    assert {hook_id: status for hook_id, (status, _) in reports.items()} == dict.fromkeys(
        HOOK_NAMES, "Failed"
    ), failing.stdout
    assert f"stale     src/{CONTEXT}/events/item.py" in reports["esgen-generate-check"][1]
    assert f"docs/{CONTEXT}.md" in reports["esgen-docs-check"][1]
    assert "ES103" in reports["esgen-compat"][1]
    assert "exit code: 3" in reports["esgen-compat"][1]


def test_the_readme_configuration_gates_commits(
    upstream: Upstream, pre_commit: PreCommit, tmp_path: Path
) -> None:
    project = upstream.new_project(tmp_path / "gated")
    upstream.esgen(project, "lock")
    config = yaml.safe_load(marked_block("ci: pre-commit", "yaml"))
    [repo] = config["repos"]
    assert {hook["id"] for hook in repo["hooks"]} == set(HOOK_NAMES)
    repo.update(repo=str(upstream.path), rev=upstream.rev)
    (project / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    commit_all(project, "published")
    installed = pre_commit(project, "install")
    assert installed.returncode == 0, installed.stdout + installed.stderr

    def commit(message: str) -> subprocess.CompletedProcess[str]:
        git(project, "add", "-A")
        argv = ["git", "-c", "commit.gpgsign=false", "commit", "-q", "-m", message]
        return run(argv, project, pre_commit.env, check=False)

    # A new version without its code: refused, naming the stale files; regenerated: accepted.
    add_version_2(project)
    refused = commit("v2, schema only")
    assert refused.returncode != 0
    reports = hook_reports(refused.stdout + refused.stderr)
    assert reports["esgen-generate-check"][0] == "Failed", refused.stdout
    assert f"src/{CONTEXT}/events/item.py" in reports["esgen-generate-check"][1]
    assert reports["esgen-docs-check"][0] == "Failed", refused.stdout
    assert reports["esgen-compat"][0] == "Passed", refused.stdout
    upstream.esgen(project, "generate")
    upstream.esgen(project, "docs")
    accepted = commit("v2")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert git(project, "log", "-1", "--format=%s").strip() == "v2"

    # A published version changed in place, code and catalog regenerated: only compat
    # objects, against the committed esgen.lock.
    change_version_1_in_place(project)
    upstream.esgen(project, "generate")
    upstream.esgen(project, "docs")
    breaking = commit("v1 changed")
    assert breaking.returncode != 0
    reports = hook_reports(breaking.stdout + breaking.stderr)
    assert reports["esgen-generate-check"][0] == "Passed", breaking.stdout
    assert reports["esgen-docs-check"][0] == "Passed", breaking.stdout
    assert reports["esgen-compat"][0] == "Failed", breaking.stdout
    assert "ES103" in reports["esgen-compat"][1]
    assert git(project, "log", "-1", "--format=%s").strip() == "v2"


# ---------------------------------------------------------------------------- the action


class Expression:
    """GitHub Actions' expression language, as far as action.yml uses it: literals, context
    paths, `== != ! && ||`, parentheses, and the status functions. Anything else is an error,
    so the action cannot drift into syntax this runner would evaluate wrongly."""

    TOKEN = re.compile(
        r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>\d+(?:\.\d+)?)|(?P<op>==|!=|&&|\|\||!|\(|\))"
        r"|(?P<name>[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*))"
    )
    STATUS = frozenset({"success", "failure", "always", "cancelled"})

    def __init__(self, text: str, contexts: Mapping[str, Any], failed: bool) -> None:
        self.tokens: list[tuple[str, str]] = []
        position, text = 0, text.strip()
        while position < len(text):
            match = self.TOKEN.match(text, position)
            assert match and match.end() > position, f"cannot read {text[position:]!r}"
            kind = match.lastgroup
            assert kind is not None
            self.tokens.append((kind, match.group(kind)))
            position = match.end()
        self.contexts, self.failed, self.at = contexts, failed, 0

    def value(self) -> Any:
        result = self._or()
        assert self.at == len(self.tokens), f"unexpected {self.tokens[self.at :]}"
        return result

    def _peek(self) -> str | None:
        return self.tokens[self.at][1] if self.at < len(self.tokens) else None

    def _take(self) -> tuple[str, str]:
        self.at += 1
        return self.tokens[self.at - 1]

    def _or(self) -> Any:
        left = self._and()
        while self._peek() == "||":
            self._take()
            right = self._and()
            left = left if truthy(left) else right
        return left

    def _and(self) -> Any:
        left = self._compare()
        while self._peek() == "&&":
            self._take()
            right = self._compare()
            left = right if truthy(left) else left
        return left

    def _compare(self) -> Any:
        left = self._unary()
        if self._peek() in ("==", "!="):
            operator = self._take()[1]
            same = equal(left, self._unary())
            return same if operator == "==" else not same
        return left

    def _unary(self) -> Any:
        if self._peek() == "!":
            self._take()
            return not truthy(self._unary())
        return self._primary()

    def _primary(self) -> Any:
        kind, text = self._take()
        if text == "(":
            inner = self._or()
            assert self._take()[1] == ")"
            return inner
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind == "num":
            return float(text)
        if kind == "name":
            if text in ("true", "false", "null"):
                return {"true": True, "false": False, "null": None}[text]
            if self._peek() == "(":
                assert text in self.STATUS, f"function {text}() is not supported here"
                self._take()
                assert self._take()[1] == ")"
                return {"success": not self.failed, "failure": self.failed}.get(
                    text, text == "always"
                )
            found: Any = self.contexts
            for part in text.split("."):
                found = found.get(part) if isinstance(found, Mapping) else None
            return found
        raise AssertionError(f"unexpected {text!r}")


def truthy(value: Any) -> bool:
    if isinstance(value, float) and math.isnan(value):
        return False
    return value not in (None, False, 0, "")


def number(value: Any) -> float:
    if value is None or value == "":
        return 0.0
    if isinstance(value, bool | int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return math.nan
    return math.nan


def equal(left: Any, right: Any) -> bool:
    # GitHub compares strings ignoring case, and values of different types as numbers.
    if isinstance(left, str) and isinstance(right, str):
        return left.casefold() == right.casefold()
    if type(left) is type(right):
        return bool(left == right)
    return number(left) == number(right)


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def interpolate(text: str, contexts: Mapping[str, Any], failed: bool = False) -> str:
    return re.sub(
        r"\$\{\{(.*?)\}\}",
        lambda m: as_text(Expression(m.group(1), contexts, failed).value()),
        text,
    )


def condition(text: str, contexts: Mapping[str, Any], failed: bool) -> bool:
    text = text.strip()
    if text.startswith("${{") and text.endswith("}}"):
        text = text[3:-2]
    # Without a status function, a step runs only while every step before it succeeded.
    if not re.search(r"\b(success|failure|always|cancelled)\(", text):
        text = f"success() && ({text})"
    return truthy(Expression(text, contexts, failed).value())


def read_outputs(text: str) -> dict[str, str]:
    """A GITHUB_OUTPUT file: `name=value` lines and `name<<DELIMITER` blocks."""
    outputs: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if not line:
            continue
        heredoc = re.match(r"^([^=]+)<<(.+)$", line)
        if heredoc:
            body: list[str] = []
            for inner in lines:
                if inner == heredoc.group(2):
                    break
                body.append(inner)
            outputs[heredoc.group(1)] = "\n".join(body)
        else:
            name, sep, value = line.partition("=")
            assert sep, f"not an output line: {line!r}"
            outputs[name] = value
    return outputs


def load_action() -> dict[str, Any]:
    action = yaml.safe_load(ACTION.read_text(encoding="utf-8"))
    assert isinstance(action, dict)
    return action


def contexts_for(
    action: Mapping[str, Any], given: Mapping[str, str], github: Mapping[str, Any]
) -> dict[str, Any]:
    unknown = set(given) - set(action["inputs"])
    assert not unknown, f"inputs the action does not declare: {unknown}"
    contexts: dict[str, Any] = {"github": github, "steps": {}, "runner": {"os": "Linux"}}
    contexts["inputs"] = {
        name: given[name] if name in given else interpolate(str(spec.get("default", "")), contexts)
        for name, spec in action["inputs"].items()
    }
    return contexts


@dataclass
class ActionRun:
    outcomes: dict[str, str] = field(default_factory=dict)  # step name -> outcome
    log: str = ""
    summary: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    failed: bool = False


def run_action(
    given: Mapping[str, str],
    github: Mapping[str, Any],
    workspace: Path,
    runner_temp: Path,
    action_path: Path,
) -> ActionRun:
    action = load_action()
    contexts = contexts_for(action, given, {**github, "action_path": str(action_path)})
    contexts["runner"]["temp"] = str(runner_temp)
    base = clean_environ() | {
        # The runner's python3 is this test's interpreter (3.11 or later, like esgen needs).
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_ACTION_PATH": str(action_path),
        "GITHUB_BASE_REF": as_text(github.get("base_ref")),
        "GITHUB_EVENT_NAME": as_text(github.get("event_name")),
        "GITHUB_REPOSITORY": as_text(github.get("repository")),
        "RUNNER_TEMP": str(runner_temp),
    }
    result = ActionRun()
    files = Path(tempfile.mkdtemp(prefix="steps.", dir=runner_temp))
    for index, step in enumerate(action["runs"]["steps"]):
        name = step.get("name", f"step {index}")
        if not condition(str(step.get("if", "true")), contexts, result.failed):
            result.outcomes[name] = "skipped"
            if "id" in step:
                contexts["steps"][step["id"]] = {"outputs": {}, "outcome": "skipped"}
            continue
        assert "uses" not in step, f"{name!r} uses {step['uses']}, which needs GitHub to run"
        output, summary = files / f"{index}.output", files / f"{index}.summary"
        output.touch()
        summary.touch()
        env = base | {
            key: interpolate(str(value), contexts, result.failed)
            for key, value in step.get("env", {}).items()
        }
        env |= {"GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary)}
        script = files / f"{index}.sh"
        script.write_text(interpolate(step["run"], contexts, result.failed), encoding="utf-8")
        cwd = workspace / interpolate(str(step.get("working-directory", ".")), contexts)
        done = run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)], cwd, env, False
        )
        outcome = "success" if done.returncode == 0 else "failure"
        result.failed |= outcome == "failure"
        result.outcomes[name] = outcome
        result.log += f"## {name}: {outcome} ({done.returncode})\n{done.stdout}{done.stderr}"
        result.summary += summary.read_text(encoding="utf-8")
        if "id" in step:
            contexts["steps"][step["id"]] = {
                "outputs": read_outputs(output.read_text(encoding="utf-8")),
                "outcome": outcome,
            }
    result.outputs = {
        name: interpolate(str(spec["value"]), contexts) for name, spec in action["outputs"].items()
    }
    return result


def expressions_in(node: Any) -> Iterator[str]:
    """Every expression of a parsed action.yml: `${{ ... }}` anywhere, and bare `if:`s."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "if" and isinstance(value, str) and "${{" not in value:
                yield value
            else:
                yield from expressions_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from expressions_in(item)
    elif isinstance(node, str):
        yield from (m.group(1) for m in re.finditer(r"\$\{\{(.*?)\}\}", node, re.DOTALL))


def test_the_action_is_composite_and_every_name_it_uses_is_declared() -> None:
    action = load_action()
    assert action["runs"]["using"] == "composite"
    steps = action["runs"]["steps"]
    inputs = set(action["inputs"])
    used_inputs: set[str] = set()
    for expression in expressions_in(action):
        Expression(expression, {}, failed=False).value()  # it parses
        used_inputs |= set(re.findall(r"\binputs\.([\w-]+)", expression))
    assert used_inputs <= inputs, f"undeclared: {used_inputs - inputs}"
    assert inputs <= used_inputs, f"declared and never used: {inputs - used_inputs}"
    # Step outputs are read only from earlier steps that have that id.
    for index, step in enumerate(steps):
        for expression in expressions_in(step):
            for step_id in re.findall(r"\bsteps\.([\w-]+)\.", expression):
                assert step_id in [s.get("id") for s in steps[:index]], (step.get("name"), step_id)
    for name, spec in action["outputs"].items():
        assert re.fullmatch(r"\$\{\{ steps\.compat\.outputs\.[\w-]+ \}\}", spec["value"]), name
    for step in steps:
        if "run" in step:
            assert step["shell"] == "bash", step["name"]  # composite steps must name one
            # Values reach scripts through env: text spliced into a script could run as code.
            assert "${{" not in step["run"], step["name"]
            syntax = subprocess.run(
                ["bash", "-n"], input=step["run"], capture_output=True, text=True, check=False
            )
            assert syntax.returncode == 0, (step["name"], syntax.stderr)
        else:
            assert re.fullmatch(r"[\w-]+/[\w-]+@v\d+", step["uses"]), step["uses"]


@pytest.mark.parametrize(
    ("given", "github", "runs"),
    [
        ({}, {"event_name": "pull_request"}, {"Set up Python for esgen"}),
        ({"python-version": ""}, {"event_name": "pull_request"}, set()),
        (
            {"comment": "true"},
            {"event_name": "pull_request", "event": {"pull_request": {"number": 7}}},
            {"Set up Python for esgen", "Comment on the pull request"},
        ),
        ({"comment": "true"}, {"event_name": "push", "event": {}}, {"Set up Python for esgen"}),
        ({"comment": "TRUE", "python-version": ""}, {"event": {}}, set()),
    ],
)
def test_the_steps_that_need_github_run_when_asked_and_only_then(
    given: dict[str, str], github: dict[str, Any], runs: set[str]
) -> None:
    action = load_action()
    contexts = contexts_for(action, given, github)
    optional = {"Set up Python for esgen", "Comment on the pull request"}
    ran = {
        step["name"]
        for step in action["runs"]["steps"]
        if step["name"] in optional and condition(step["if"], contexts, failed=False)
    }
    assert ran == runs


@dataclass(frozen=True)
class PullRequests:
    """A repository whose main holds a published schema, with one branch per change."""

    origin: Path
    upstream: Upstream
    runner_temp: Path  # one for the module: the action's install is made once and reused

    def checkout(self, branch: str, where: Path) -> Path:
        # What actions/checkout leaves: depth 1, this branch alone, no origin/main.
        url = f"file://{self.origin.as_posix()}"
        shallow = ["--depth=1", "--single-branch", "-b", branch]
        git(where.parent, "clone", "-q", *shallow, url, where.name)
        return where

    def act(self, workspace: Path, given: Mapping[str, str], **github: Any) -> ActionRun:
        context = {
            "event_name": "pull_request",
            "base_ref": "main",
            "repository": "example/cargo",
            "token": "not-used",
            "event": {"pull_request": {"number": 7}},
        } | github
        inputs = {"python-version": "", **given}  # setup-python needs GitHub's tool cache
        return run_action(inputs, context, workspace, self.runner_temp, self.upstream.path)


@pytest.fixture(scope="module")
def pull_requests(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> PullRequests:
    base = tmp_path_factory.mktemp("pull-requests")
    origin = upstream.new_project(base / "origin")
    commit_all(origin, "published")
    for branch, change in (("breaking", change_version_1_in_place), ("compatible", add_version_2)):
        git(origin, "checkout", "-q", "-b", branch, "main")
        change(origin)
        commit_all(origin, branch)
    git(origin, "checkout", "-q", "main")
    return PullRequests(origin, upstream, tmp_path_factory.mktemp("runner-temp"))


def test_a_breaking_pull_request_fails_with_the_report_in_the_summary(
    pull_requests: PullRequests, tmp_path: Path
) -> None:
    workspace = pull_requests.checkout("breaking", tmp_path / "breaking")
    done = pull_requests.act(workspace, {})
    assert done.failed, done.log
    assert done.outcomes["esgen compat"] == "success", done.log  # it reports; Verdict fails
    assert done.outcomes["Verdict"] == "failure", done.log
    assert done.outcomes["Comment on the pull request"] == "skipped"
    assert done.outputs["compatible"] == "false"
    assert int(done.outputs["errors"]) >= 1 and done.outputs["warnings"] == "0"
    assert done.outputs["exit-code"] == "3"
    # The report is Markdown: the events table and a finding's rule, and it is the summary.
    assert "ES103" in done.summary and f"`{CONTEXT}.ItemCreated`" in done.summary
    assert "| --- |" in done.summary
    assert Path(done.outputs["report"]).read_text(encoding="utf-8") in done.summary
    # The finding is an annotation on the changed line of the diff.
    assert re.search(rf"^::error file={SCHEMA},line=\d+,col=\d+,title=ES103 ", done.log, re.M)
    # The target branch was fetched into the shallow clone, which stayed shallow.
    assert "From file://" in done.log
    assert git(workspace, "rev-parse", "origin/main") == git(
        pull_requests.origin, "rev-parse", "main"
    )
    assert git(workspace, "rev-parse", "--is-shallow-repository").strip() == "true"

    # The same pull request with the finding ignored (args split as a shell would): it
    # passes, and origin/main, now present, is not fetched again.
    again = pull_requests.act(workspace, {"args": f"--ignore 'ES103:{CONTEXT}.ItemCreated'"})
    assert not again.failed, again.log
    assert again.outputs["exit-code"] == "0" and again.outputs["compatible"] == "true"
    assert again.outcomes["Verdict"] == "skipped"
    assert "From file://" not in again.log


def test_a_compatible_pull_request_passes(pull_requests: PullRequests, tmp_path: Path) -> None:
    workspace = pull_requests.checkout("compatible", tmp_path / "compatible")
    done = pull_requests.act(workspace, {"strict": "true"})
    assert not done.failed, done.log
    assert done.outcomes["Verdict"] == "skipped"
    outputs = {k: done.outputs[k] for k in ("compatible", "errors", "warnings", "exit-code")}
    assert outputs == {"compatible": "true", "errors": "0", "warnings": "0", "exit-code": "0"}
    # The summary still shows what changed, so a reviewer sees the new version.
    assert f"`{CONTEXT}.ItemCreated`" in done.summary
    assert not re.search(r"\bES\d{3}\b", done.summary), done.summary


def test_outside_a_pull_request_it_compares_with_the_lock(
    pull_requests: PullRequests, tmp_path: Path
) -> None:
    # A push to main: no base branch, so esgen.lock, which this project does not have. The
    # job fails, and the summary says why in esgen's words.
    workspace = pull_requests.checkout("main", tmp_path / "main")
    done = pull_requests.act(workspace, {}, event_name="push", base_ref="", event={})
    assert done.failed, done.log
    assert done.outputs["exit-code"] == "2"
    assert done.outputs["compatible"] == "false" and done.outputs["errors"] == ""
    assert "could not compare" in done.summary and "esgen.lock" in done.summary

    # With the lock recorded and committed, the same push passes.
    pull_requests.upstream.esgen(workspace, "lock")
    commit_all(workspace, "lock")
    locked = pull_requests.act(workspace, {}, event_name="push", base_ref="", event={})
    assert not locked.failed, locked.log
    assert locked.outputs["exit-code"] == "0"


def test_the_readme_workflow_passes_only_declared_inputs() -> None:
    workflow = yaml.safe_load(marked_block("ci: github-action", "yaml"))
    [job] = workflow["jobs"].values()
    [step] = [s for s in job["steps"] if str(s.get("uses", "")).split("@")[0].endswith("/esgen")]
    declared = set(load_action()["inputs"])
    assert set(step.get("with", {})) <= declared
    if str(step.get("with", {}).get("comment", "")).lower() == "true":
        assert job["permissions"]["pull-requests"] == "write"
    checkout = next(
        s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/checkout")
    )
    assert checkout is job["steps"][0]
