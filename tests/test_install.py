"""The README's install commands, run as written, each in a new virtual environment.

The repository is this working tree made into a git repository of its own (so the test
sees uncommitted work too), reached as `$ESGEN_REPO` through a `file://localhost/` URL: clone, wheel
and git-URL installs run offline but for the package index. Each environment is then
checked for what it holds: the runtime alone must bring pydantic and nothing else, and the
generator installs must start a project with `esgen new` whose printed next steps pass.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import venv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import esgen

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"

# What `pip install esgen` may bring: pydantic and its own dependencies.
RUNTIME = {"esgen", "pydantic", "pydantic-core", "annotated-types", "typing-extensions",
           "typing-inspection"}  # fmt: skip
POSTGRES = {"psycopg", "psycopg-binary", "psycopg-pool"}
CLI = {"click", "pyyaml"}
# What every new environment starts with, before anything is installed in it.
SEED = {"pip", "setuptools"}


def readme_block(name: str) -> str:
    """The shell block right after `<!-- install: name -->` in the README."""
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"<!-- install: {name} -->\n```sh\n(.*?)```", text, re.DOTALL)
    assert match, f"the README has no install block {name!r}"
    return match.group(1)


@dataclass(frozen=True)
class Env:
    """A new virtual environment, and a shell in `cwd` with it activated."""

    root: Path
    cwd: Path
    variables: dict[str, str]

    @classmethod
    def create(cls, root: Path, cwd: Path, repo_url: str) -> Env:
        venv.EnvBuilder(with_pip=True).create(root)
        variables = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))},
            "VIRTUAL_ENV": str(root),
            "PATH": f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            "ESGEN_REPO": repo_url,
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "HYPOTHESIS_STORAGE_DIRECTORY": str(cwd / ".hypothesis"),
        }
        return cls(root, cwd, variables)

    def sh(self, script: str, where: Path | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["bash", "-c", f"set -euo pipefail\n{script}"],
            cwd=where or self.cwd,
            env=self.variables,
            capture_output=True,
            text=True,
            check=False,
        )
        return result

    def ok(self, script: str, where: Path | None = None) -> str:
        result = self.sh(script, where)
        assert result.returncode == 0, f"$ {script}\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def distributions(self) -> set[str]:
        code = (
            "import importlib.metadata as m, json, re; print(json.dumps(sorted("
            "re.sub(r'[-_.]+', '-', d.metadata['Name']).lower() for d in m.distributions())))"
        )
        return set(json.loads(self.ok(f"python -c {shell_quote(code)}"))) - SEED


def shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


@pytest.fixture(scope="module")
def workplace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A folder to work in, and the `file://` URL of a repository holding this tree."""
    base = tmp_path_factory.mktemp("install")
    repo = base / "upstream"
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / name)
    git = ["git", "-c", "user.name=esgen tests", "-c", "user.email=tests@esgen.invalid"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "tree"]):
        subprocess.run([*git, *args], cwd=repo, check=True, capture_output=True)
    work = base / "work"
    work.mkdir()
    # With a host: pip before 23.3 refuses `git+file:///...` requirements (no netloc).
    yield work, f"file://localhost{repo.as_posix()}"


def start_a_project(env: Env, name: str) -> Path:
    """`esgen new`, then its printed next steps, as a user pastes them."""
    printed = env.ok(f"esgen new {name} --dir {name} --no-input")
    block = printed.split("\nnext:\n", 1)[1].split("\nthen edit ", 1)[0]
    steps = [line.split("  #")[0].strip() for line in block.splitlines()]
    assert steps[0] == f"cd {name}" and steps[1] == "pip install 'esgen[generator,testing]'"
    output = env.ok("\n".join(steps))
    assert re.search(r"\b\d+ passed\b", output) and "failed" not in output, output
    return env.cwd / name


def test_from_a_clone_with_the_generator(workplace: tuple[Path, str]) -> None:
    work, url = workplace
    env = Env.create(work / "venv-clone", work, url)
    env.ok(readme_block("clone"))
    assert env.ok("esgen --version").strip() == f"esgen, version {esgen.__version__}"
    project = start_a_project(env, "shop")
    assert {"esgen", "black", "click", "jinja2", "pytest", "hypothesis"} <= env.distributions()
    env.ok("esgen generate --check", project)


def test_from_a_wheel_the_runtime_alone(workplace: tuple[Path, str]) -> None:
    work, url = workplace
    if not (work / "esgen").is_dir():
        subprocess.run(["git", "clone", "-q", url, "esgen"], cwd=work, check=True)
    env = Env.create(work / "venv-wheel", work, url)
    block = readme_block("wheel")
    assert f"esgen-{esgen.__version__}-py3-none-any.whl" in block, "the README names the wheel"
    env.ok(block)
    assert env.distributions() == RUNTIME
    # The bank example runs on it: generated code needs the runtime and nothing else.
    demo = env.ok("python esgen/examples/bank/demo.py")
    assert "saga" in demo.lower(), demo
    loaded = env.ok(
        "python -c 'import sys, esgen.runtime; "
        'print(sorted(m for m in sys.modules if m.split(".")[0] in '
        '("click", "jinja2", "yaml", "black", "datamodel_code_generator", "esgen.codegen")))\''
    )
    assert loaded.strip() == "[]"
    # The command says what to install instead of a traceback about click.
    refused = env.sh("esgen generate")
    assert refused.returncode == 2
    assert refused.stderr.startswith(
        "esgen: error: `esgen generate` needs esgen's generator extra, which is not installed"
    ), refused.stderr
    # Into the environment esgen runs in, whichever pip is first on the PATH.
    assert re.search(
        rf"{env.root}/bin/python[0-9.]* -m pip install 'esgen\[generator\]'", refused.stderr
    )
    assert "Traceback" not in refused.stderr and refused.stderr.count("\n") == 1
    assert env.ok("esgen --version").strip() == f"esgen, version {esgen.__version__}"
    wheel = f"esgen/dist/esgen-{esgen.__version__}-py3-none-any.whl"
    # The cli extra runs the read side from the command line, and brings click and PyYAML.
    env.ok(f"pip install --quiet '{wheel}[cli]'")
    assert env.distributions() == RUNTIME | CLI
    # From outside the project, as a service runs them: the schema folder is named.
    bank = "esgen/examples/bank"
    where = f"{bank}/schemas --store {bank}/demo-out/bank.sqlite"
    status = env.ok(f"esgen projections status {where}", work)
    assert "account_balances" in status, status
    sagas = json.loads(env.ok(f"esgen sagas status {where} --json", work))
    assert [saga["name"] for saga in sagas["sagas"]] == ["MoneyTransfer"], sagas
    # The PostgreSQL extra adds its driver and nothing else.
    env.ok(f"pip install --quiet '{wheel}[postgres]'")
    assert env.distributions() == RUNTIME | CLI | POSTGRES
    env.ok("python -c 'from esgen.runtime import PostgresEventStore; print(PostgresEventStore)'")


def test_from_a_git_url_with_the_generator(workplace: tuple[Path, str]) -> None:
    work, url = workplace
    env = Env.create(work / "venv-git", work, url)
    env.ok(readme_block("git"))
    assert env.ok("esgen --version").strip() == f"esgen, version {esgen.__version__}"
    start_a_project(env, "billing")


def test_the_extras_are_what_the_launcher_looks_for() -> None:
    """The launcher's lists of modules follow pyproject's extras."""
    import tomllib

    from esgen._launch import CLI_MODULES, GENERATOR_MODULES

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    modules = {"pyyaml": "yaml", "datamodel-code-generator": "datamodel_code_generator"}

    def names(extra: str) -> set[str]:
        found: set[str] = set()
        for requirement in extras[extra]:
            name = re.match(r"[A-Za-z0-9_.-]+", requirement)
            assert name is not None
            if name.group(0) == "esgen":  # an extra that includes another one
                included = re.search(r"\[(.*)\]", requirement)
                assert included is not None
                for other in included.group(1).split(","):
                    found |= names(other.strip())
            else:
                found.add(modules.get(name.group(0).lower(), name.group(0).lower()))
        return found

    assert names("cli") == set(CLI_MODULES)
    assert names("generator") == set(GENERATOR_MODULES)


@pytest.mark.parametrize("argv", [["--version"], ["generate", "--help"]])
def test_python_dash_m_esgen_is_the_command(argv: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "esgen", *argv], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
