"""`esgen new` end to end: a context that works at once, in a fresh or an existing project,
never a file overwritten, custom templates, and the template list."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from harness import CASES, chdir, run_pyright, tree

import esgen
from esgen.cli import main
from esgen.newctx import (
    Question,
    TemplateError,
    bundled_templates,
    load_template,
    locate_project,
    plan_new,
    resolve_answers,
    resolve_template,
)
from esgen.newctx._source import shared_git_source


@pytest.fixture(autouse=True)
def _this_python_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """The printed steps run `python` and `esgen` from the PATH: as a user would, with the
    environment esgen is installed in activated."""
    bin_dir = str(Path(sys.executable).parent)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")


def esgen_new(*args: str, cwd: Path | None = None) -> Result:
    with chdir(cwd or Path.cwd()):
        result = CliRunner().invoke(main, ["new", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HYPOTHESIS_STORAGE_DIRECTORY": str(cwd / ".hypothesis")}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)


def check_project(project: Path) -> subprocess.CompletedProcess[str]:
    """`esgen generate --check` is clean and mypy --strict passes; returns the test run."""
    generate = run([sys.executable, "-m", "esgen.cli", "generate", "--check"], project)
    assert generate.returncode == 0, generate.stdout + generate.stderr
    mypy = run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(project / ".mypy_cache"),
         "src", "tests"],
        project,
    )  # fmt: skip
    assert mypy.returncode == 0, mypy.stdout + mypy.stderr
    pyright = run_pyright([project / "src", project / "tests"], project, own=True)
    assert pyright.files > 0 and pyright.errors == 0, pyright.report
    return run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], project)


TEMPLATES = [t.name for t in bundled_templates()]


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_shipped_template_works_at_once(template: str, tmp_path: Path) -> None:
    result = esgen_new("sample", "--template", template, "--dir", str(tmp_path), "--no-input")
    assert result.exit_code == 0, result.output
    tests = check_project(tmp_path)
    examples = "(the template's implementation)" in result.output
    if examples:
        assert tests.returncode == 0, tests.stdout + tests.stderr
    else:
        assert "not written yet:" in tests.stdout, tests.stdout


def next_steps(output: str) -> list[str]:
    """The commands `esgen new` printed after `next:`, without their comments."""
    block = output.split("\nnext:\n", 1)[1].split("\nthen edit ", 1)[0]
    return [line.split("  #")[0].strip() for line in block.splitlines()]


def run_steps(steps: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The steps in one shell, as a user pastes them, with this environment's esgen and
    Python first on the PATH. `pip install` is checked, not run: this test must not change
    the environment it runs in (tests/test_install.py runs it in a clean one)."""
    assert (
        steps[steps.index("esgen generate --check") - 1] == "pip install 'esgen[generator,testing]'"
    )
    script = "set -e\n" + "\n".join(s for s in steps if not s.startswith("pip install"))
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "HYPOTHESIS_STORAGE_DIRECTORY": str(cwd / ".hypothesis"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    return subprocess.run(
        ["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )


def test_the_next_steps_printed_work_as_printed(tmp_path: Path) -> None:
    result = esgen_new("ledger", "--dir", "projects/my ledger", "--no-input", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    steps = next_steps(result.output)
    assert steps == [
        "cd 'projects/my ledger'",
        "pip install 'esgen[generator,testing]'",
        "esgen generate --check",
        "python -m pytest tests/ledger",
    ]
    done = run_steps(steps, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "passed" in done.stdout and "failed" not in done.stdout
    assert "then edit schemas/ledger.yaml and run `esgen generate`" in result.output


def test_a_new_project_names_its_dependencies(tmp_path: Path) -> None:
    result = esgen_new("shop", "--dir", str(tmp_path / "svc"), "--no-input")
    assert result.exit_code == 0, result.output
    config = tomllib.loads((tmp_path / "svc" / "pyproject.toml").read_text())
    assert config["project"]["dependencies"] == [f"esgen>={esgen.__version__}"]
    assert config["dependency-groups"] == {"dev": ["esgen[generator,testing]"]}
    assert config["tool"]["pytest"]["ini_options"] == {
        "pythonpath": ["src"],
        "testpaths": ["tests"],
    }
    assert "note:" not in result.output


def test_an_existing_pytest_table_gains_the_pythonpath_and_the_steps_work(
    tmp_path: Path,
) -> None:
    original = (
        "[project]\nname = 'legacy'\ndependencies = ['esgen']\n\n"
        "[tool.pytest.ini_options]\n# my options\naddopts = '-q'  # quiet\n\n"
        "[tool.black]\nline-length = 100\n"
    )
    (tmp_path / "pyproject.toml").write_text(original)
    result = esgen_new("billing", "--no-input", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    after = (tmp_path / "pyproject.toml").read_text()
    assert (
        after
        == original.replace(
            "addopts = '-q'  # quiet\n", "addopts = '-q'  # quiet\npythonpath = [\"src\"]\n"
        )
        + '\n[tool.esgen]\nschema_dir = "schemas"\nout_dir = "src"\ntests_dir = "tests"\n'
    )
    assert "note:" not in result.output, "esgen is a dependency already: nothing to add"
    done = run_steps(next_steps(result.output), tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "passed" in done.stdout and "failed" not in done.stdout


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ('pythonpath = "lib"', 'pythonpath = "lib app"'),
        ('pythonpath = ["lib"]', 'pythonpath = ["lib", "app"]'),
        ('pythonpath = ["app/"]', 'pythonpath = ["app/"]'),
    ],
)
def test_a_pythonpath_is_extended_in_place(tmp_path: Path, before: str, after: str) -> None:
    (tmp_path / "pyproject.toml").write_text(f"[tool.pytest.ini_options]\n{before}\n")
    result = esgen_new("shop", "--out", "app", "--no-input", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    text = (tmp_path / "pyproject.toml").read_text()
    assert text.startswith(f"[tool.pytest.ini_options]\n{after}\n"), text
    assert 'out_dir = "app"' in text
    done = run_steps(next_steps(result.output), tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_native_toml_pytest_configuration_is_edited(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (tmp_path / "pytest.toml").write_text('[pytest]\naddopts = ["-q"]\n')
    result = esgen_new("shop", "--no-input", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "pytest.toml").read_text() == (
        '[pytest]\naddopts = ["-q"]\npythonpath = ["src"]\n'
    )
    assert "[tool.pytest" not in (tmp_path / "pyproject.toml").read_text()
    assert "updated   pytest.toml" in result.output


@pytest.mark.parametrize(
    ("name", "text", "after"),
    [
        ("pytest.ini", "[pytest]\naddopts = -q\n", "[pytest]\npythonpath = src\naddopts = -q\n"),
        (
            "tox.ini",
            "[tox]\nenvlist = py311\n\n[pytest]\n; mine\npythonpath = lib\naddopts = -q\n",
            "[tox]\nenvlist = py311\n\n[pytest]\n; mine\npythonpath = lib src\naddopts = -q\n",
        ),
        (
            "setup.cfg",
            "[metadata]\nname = x\n[tool:pytest]\naddopts = -q\n[flake8]\nmax = 1\n",
            "[metadata]\nname = x\n[tool:pytest]\npythonpath = src\naddopts = -q\n[flake8]\nmax = 1\n",
        ),
    ],
)
def test_an_ini_configuration_gains_the_line_in_its_section(
    tmp_path: Path, name: str, text: str, after: str
) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (tmp_path / name).write_text(text)
    result = esgen_new("shop", "--no-input", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert (tmp_path / name).read_text() == after
    assert "[tool.pytest" not in (tmp_path / "pyproject.toml").read_text()
    assert f"updated   {name}" in result.output
    done = run_steps(next_steps(result.output), tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_an_ini_value_esgen_cannot_extend_safely_gets_the_exact_line(tmp_path: Path) -> None:
    text = "[pytest]\npythonpath =\n    lib\n    vendor\n"
    (tmp_path / "pytest.ini").write_text(text)
    result = esgen_new("shop", "--dir", str(tmp_path / "p"), "--no-input")
    assert result.exit_code == 0, result.output
    project = tmp_path / "p"
    (project / "pytest.ini").write_text(text)
    again = esgen_new("billing", "--no-input", cwd=project)
    assert again.exit_code == 0, again.output
    assert (project / "pytest.ini").read_text() == text, "left as it was"
    assert (
        "note: pytest reads pytest.ini, which esgen could not edit safely: add "
        "`pythonpath = src` to its [pytest] section"
    ) in again.output


def test_a_folder_with_a_space_goes_into_a_list(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.pytest.ini_options]\npythonpath = "lib"\n')
    result = esgen_new("shop", "--out", "my app", "--no-input", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    config = tomllib.loads((tmp_path / "pyproject.toml").read_text())
    assert config["tool"]["pytest"]["ini_options"]["pythonpath"] == ["lib", "my app"]
    assert run_steps(next_steps(result.output), tmp_path).returncode == 0


def test_a_context_that_would_hide_an_installed_module_is_a_clash(tmp_path: Path) -> None:
    result = esgen_new("pluggy", "--dir", str(tmp_path), "--no-input")  # pytest's, installed
    assert result.exit_code == 1
    assert "the installed module 'pluggy', which the context would hide" in result.stderr
    assert not (tmp_path / "pyproject.toml").exists()


def test_steps_for_another_python_say_which_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no python on it at all
    result = esgen_new("shop", "--dir", str(tmp_path / "p"), "--no-input")
    assert result.exit_code == 0, result.output
    assert (
        "note: `python` and `pip` on your PATH are not those of the environment esgen runs in "
        f"({sys.prefix}); activate it before the steps below"
    ) in result.output


@pytest.mark.parametrize(
    ("direct_url", "source"),
    [
        (
            '{"url": "https://git.example.org/team/esgen.git", "vcs_info": '
            '{"vcs": "git", "commit_id": "4d1c0f", "requested_revision": "v0.1.0"}}',
            "git+https://git.example.org/team/esgen.git@4d1c0f",
        ),
        (
            '{"url": "file://localhost/srv/esgen", "vcs_info": {"vcs": "git", "commit_id": "ab"}}',
            None,
        ),
        ('{"url": "file:///tmp/esgen-0.1.0-py3-none-any.whl", "archive_info": {}}', None),
        ('{"url": "file:///home/me/esgen", "dir_info": {"editable": true}}', None),
        ('{"url": "https://hg.example.org/x", "vcs_info": {"vcs": "hg", "commit_id": "1"}}', None),
        ("not json", None),
    ],
)
def test_a_project_names_esgen_as_it_was_installed(direct_url: str, source: str | None) -> None:
    assert shared_git_source(direct_url) == source


def test_a_new_project_says_where_esgen_comes_from(tmp_path: Path) -> None:
    result = esgen_new("shop", "--dir", str(tmp_path / "svc"), "--no-input")
    assert result.exit_code == 0, result.output
    text = (tmp_path / "svc" / "pyproject.toml").read_text()
    # This environment has esgen from a folder: nothing others could install from.
    assert "esgen is not on the Python Package Index" in text
    assert "uv sync" not in text


def test_the_package_folder_is_an_option(tmp_path: Path) -> None:
    result = esgen_new("shop", "--dir", "svc", "--out", "app", "--tests", "checks",
                       "--no-input", cwd=tmp_path)  # fmt: skip
    assert result.exit_code == 0, result.output
    project = tmp_path / "svc"
    assert (project / "app" / "shop" / "service.py").is_file()
    assert (project / "checks" / "shop" / "test_shop_item.py").is_file()
    config = tomllib.loads((project / "pyproject.toml").read_text())
    assert config["tool"]["esgen"] == {
        "schema_dir": "schemas", "out_dir": "app", "tests_dir": "checks"
    }  # fmt: skip
    assert config["tool"]["pytest"]["ini_options"]["pythonpath"] == ["app"]
    steps = next_steps(result.output)
    assert steps[-1] == "python -m pytest checks/shop"
    done = run_steps(steps, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    # A flat layout: the package at the project's top.
    flat = esgen_new("shop", "--dir", "flat", "--out", ".", "--no-input", cwd=tmp_path)
    assert flat.exit_code == 0, flat.output
    assert (tmp_path / "flat" / "shop" / "service.py").is_file()
    assert run_steps(next_steps(flat.output), tmp_path).returncode == 0


def test_the_package_folder_of_a_configured_project_cannot_be_changed(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.esgen]\nout_dir = "lib"\n')
    result = esgen_new("shop", "--out", "app", "--no-input", cwd=tmp_path)
    assert result.exit_code == 2
    assert "this project sets out_dir = 'lib' in pyproject.toml" in result.output
    assert esgen_new("shop", "--out", "lib", "--no-input", cwd=tmp_path).exit_code == 0
    outside = esgen_new("other", "--dir", "p", "--out", "../elsewhere", "--no-input", cwd=tmp_path)
    assert outside.exit_code == 2
    assert "--out ../elsewhere is outside the project folder" in outside.output


def test_a_project_esgen_configures_without_pytest_gets_its_pythonpath(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n[tool.esgen]\nout_dir = "lib"\n'
    )
    result = esgen_new("shop", "--no-input", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert (
        (tmp_path / "pyproject.toml")
        .read_text()
        .endswith('\n[tool.pytest.ini_options]\npythonpath = ["lib"]\n')
    )
    assert "note: esgen new does not edit your dependencies: add 'esgen>=" in result.output
    again = esgen_new("billing", "--no-input", cwd=tmp_path)
    assert again.exit_code == 0, again.output
    assert "pyproject.toml" not in again.output, "already configured: left as it is"
    done = run_steps(next_steps(again.output), tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_an_esgen_yaml_project_without_pyproject_is_told_what_to_add(tmp_path: Path) -> None:
    (tmp_path / "esgen.yaml").write_text("out_dir: lib\n")
    result = esgen_new("shop", "--no-input", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "pyproject.toml").exists()
    assert "note: pytest must import the context from lib/: add `pythonpath = lib`" in (
        result.output
    )


def test_blank_in_a_fresh_project_works_at_once(tmp_path: Path) -> None:
    project = tmp_path / "shop-service"
    first = esgen_new("shop", "--dir", str(project), "--no-input")
    assert first.exit_code == 0, first.output
    assert "esgen: started context 'shop' from template 'blank'" in first.output
    assert "src/shop/domain/item.py  (the template's implementation)" in first.output
    # Two more contexts, with the other id types and names, in the same project.
    for name, values in (
        ("billing", ["id_type=str", "aggregate=Invoice"]),
        ("stock", ["id_type=int"]),
    ):
        sets = [arg for value in values for arg in ("--set", value)]
        result = esgen_new(name, *sets, "--no-input", cwd=project)
        assert result.exit_code == 0, result.output
    pyproject = (project / "pyproject.toml").read_text()
    assert 'name = "shop-service"' in pyproject
    assert (
        '[tool.esgen]\nschema_dir = "schemas"\nout_dir = "src"\ntests_dir = "tests"\n' in pyproject
    )
    assert "id: {type: str}" in (project / "schemas" / "billing.yaml").read_text()
    assert "CreateInvoice" in (project / "src" / "billing" / "domain" / "invoice.py").read_text()
    tests = check_project(project)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "6 passed" in tests.stdout


def test_an_existing_pyproject_keeps_every_byte_and_gains_tables(tmp_path: Path) -> None:
    original = (
        "# my project, formatted my way\r\n[project]\r\nname='legacy'  # quoted my way\r\n"
        "version = '1.0'\r\n\r\n[tool.black]\r\nline-length=100"  # no newline at the end
    )
    (tmp_path / "pyproject.toml").write_bytes(original.encode())
    (tmp_path / "README.md").write_text("hello\n")
    result = esgen_new("orders", "--set", "aggregate=Order", "--no-input", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    after = (tmp_path / "pyproject.toml").read_bytes().decode()
    assert after.startswith(original)
    assert after[len(original) :] == (
        '\r\n\r\n[tool.esgen]\r\nschema_dir = "schemas"\r\nout_dir = "src"\r\n'
        'tests_dir = "tests"\r\n\r\n[tool.pytest.ini_options]\r\npythonpath = ["src"]\r\n'
    )
    assert "updated   pyproject.toml" in result.output
    assert (tmp_path / "README.md").read_text() == "hello\n"
    tests = check_project(tmp_path)
    assert tests.returncode == 0, tests.stdout + tests.stderr


def test_a_crlf_pytest_table_gains_a_crlf_line(tmp_path: Path) -> None:
    original = "[tool.pytest.ini_options]\r\naddopts = '-q'\r\n\r\n[tool.black]\r\nx = 1\r\n"
    (tmp_path / "pyproject.toml").write_bytes(original.encode())
    assert esgen_new("orders", "--no-input", cwd=tmp_path).exit_code == 0
    after = (tmp_path / "pyproject.toml").read_bytes().decode()
    assert after.startswith(
        "[tool.pytest.ini_options]\r\naddopts = '-q'\r\npythonpath = [\"src\"]\r\n\r\n[tool.black]"
    )
    assert "\n" not in after.replace("\r\n", "")


def test_a_project_with_esgen_settings_and_contexts_gains_only_the_new_context(
    tmp_path: Path,
) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.esgen]\nschema_dir = "model"\nout_dir = "lib"\ntests_dir = "checks"\n'
        '[tool.pytest.ini_options]\npythonpath = ["lib"]\n'
    )
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "library.yaml").write_text(
        (CASES / "basic" / "schemas" / "library.yaml").read_text()
    )
    with chdir(tmp_path):
        assert CliRunner().invoke(main, ["generate"]).exit_code == 0
    before = tree(tmp_path)
    result = esgen_new("shop", "--no-input", "--dir", str(tmp_path / "model"))
    assert result.exit_code == 0, result.output
    after = tree(tmp_path)
    assert {k: v for k, v in after.items() if k in before} == before, "an existing file changed"
    added = sorted(set(after) - set(before))
    assert added[0] == "checks/shop/test_shop_item.py"
    assert all(p.startswith(("checks/shop/", "lib/shop/", "model/shop.yaml")) for p in added)
    assert "pyproject.toml" not in result.output


def test_a_new_folder_inside_a_project_is_a_project_of_its_own(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "outer"\n')
    result = esgen_new("shop", "--dir", "inner", "--no-input", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "pyproject.toml").read_text() == '[project]\nname = "outer"\n'
    assert (tmp_path / "inner" / "pyproject.toml").is_file()
    assert (tmp_path / "inner" / "schemas" / "shop.yaml").is_file()


def test_without_examples_the_scaffolded_tests_fail_saying_what_to_write(tmp_path: Path) -> None:
    result = esgen_new("shop", "--dir", str(tmp_path), "--no-input", "--no-examples")
    assert result.exit_code == 0, result.output
    assert "template's implementation" not in result.output
    tests = check_project(tmp_path)
    assert tests.returncode == 1
    assert "not written yet: CreateItem(...)" in tests.stdout
    assert "1 failed" in tests.stdout


def test_a_clash_writes_nothing_and_reports_what_it_would_have_written(tmp_path: Path) -> None:
    own_test = tmp_path / "tests" / "shop" / "test_shop_item.py"
    own_test.parent.mkdir(parents=True)
    own_test.write_text("# mine\n")
    before = tree(tmp_path)
    result = esgen_new("shop", "--dir", str(tmp_path), "--no-input")
    assert result.exit_code == 1
    assert tree(tmp_path) == before, "a clash must leave the project as it was"
    err = result.stderr
    assert "esgen: not starting 'shop': nothing was written." in err
    assert "tests/shop/test_shop_item.py: exists" in err
    assert "create example   " in err and "test_shop_item.py  CLASH" in err
    assert "create config    " in err and "pyproject.toml" in err
    assert "create generated " in err and "src/shop/events/item.py" in err


def test_a_context_already_in_the_schemas_is_a_clash(tmp_path: Path) -> None:
    assert esgen_new("shop", "--dir", str(tmp_path), "--no-input").exit_code == 0
    (tmp_path / "schemas" / "shop.yaml").rename(tmp_path / "schemas" / "store.yaml")
    result = esgen_new("shop", "--dir", str(tmp_path), "--no-input")
    assert result.exit_code == 1
    assert "schemas/store.yaml: already defines the context 'shop'" in result.stderr
    assert not (tmp_path / "schemas" / "shop.yaml").exists()


CUSTOM_MANIFEST = """\
description: A ledger with entries; no implementation, so its tests say what to write.
questions:
  account:
    help: The account aggregate
    kind: pascal
    default: "{{ context | pascal }}Account"
  title:
    help: A title
    kind: text
    default: Ledger of {{ context }}
derived:
  posted: "{{ account }}Posted"
"""
CUSTOM_SCHEMA = """\
context: {{ context }}
description: {{ title | yaml }}
aggregates:
  {{ account }}:
    state: {balance: int}
    commands:
      Post{{ account }}: {fields: {amount: int}, emits: [{{ posted }}]}
    events:
      {{ posted }}: {versions: {1: {fields: {amount: int}}}}
"""


@pytest.fixture
def custom(tmp_path: Path) -> Path:
    folder = tmp_path / "my-templates" / "ledger"
    (folder / "schema").mkdir(parents=True)
    (folder / "template.yaml").write_text(CUSTOM_MANIFEST)
    (folder / "schema" / "{{ context }}.yaml.jinja").write_text(CUSTOM_SCHEMA)
    return folder


def test_a_custom_template_folder(tmp_path: Path, custom: Path) -> None:
    project = tmp_path / "project"
    title = "Money: \"in\" & 'out' # not a comment"
    result = esgen_new(
        "books", "--template", str(custom), "--dir", str(project), "--no-input",
        "--set", f"title={title}",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    schema = (project / "schemas" / "books.yaml").read_text()
    assert "BooksAccount:" in schema and "BooksAccountPosted" in schema
    import yaml

    assert yaml.safe_load(schema)["description"] == title
    tests = check_project(project)
    assert tests.returncode == 1
    assert "not written yet: PostBooksAccount(...)" in tests.stdout


def test_answers_come_from_set_then_prompts_then_defaults(custom: Path) -> None:
    template = load_template(custom)
    asked: list[str] = []

    def ask(question: Question, default: str, check: object) -> str:
        asked.append(f"{question.name}={default}")
        return "Cash" if question.name == "account" else default

    values = resolve_answers(template, "books", {"title": "Set"}, ask)
    assert asked == ["account=BooksAccount"]
    assert values == {"context": "books", "account": "Cash", "title": "Set", "posted": "CashPosted"}
    assert resolve_answers(template, "books", {}, None)["account"] == "BooksAccount"


@pytest.mark.parametrize(
    ("context", "given", "message"),
    [
        (
            "Books",
            {},
            "context name 'Books' must be snake_case in ASCII letters, digits and '_' (it becomes a package name), e.g. 'books'",
        ),
        ("class", {}, "context name 'class' is a Python keyword; choose another name"),
        ("json", {}, "context name 'json' would shadow the standard library module json"),
        (
            "books",
            {"account": "None"},
            "account 'None' is a Python keyword, which cannot name a module or a class",
        ),
        ("books", {"account": "cash"}, "account must be a PascalCase name, e.g. 'Cash'"),
        ("books", {"account": "Cash;import"}, "account must be a PascalCase name"),
        ("books", {"title": "two\nlines"}, "title must be one line"),
        ("books", {"colour": "red"}, "does not ask for colour"),
    ],
)
def test_values_are_checked_before_any_template_sees_them(
    custom: Path, context: str, given: dict[str, str], message: str
) -> None:
    with pytest.raises(TemplateError, match=re.escape(message)):
        resolve_answers(load_template(custom), context, given, None)


def test_a_template_default_that_does_not_fit_blames_the_template(custom: Path) -> None:
    manifest = custom / "template.yaml"
    manifest.write_text(
        manifest.read_text().replace('default: "{{ context | pascal }}Account"', "default: cash")
    )
    with pytest.raises(TemplateError, match="the default of account does not fit its question"):
        resolve_answers(load_template(custom), "books", {}, None)
    # A value given on the command line is the user's, and fixes it.
    assert resolve_answers(load_template(custom), "books", {"account": "Cash"}, None)


def test_free_text_printed_without_quoting_is_refused(custom: Path, tmp_path: Path) -> None:
    schema = custom / "schema" / "{{ context }}.yaml.jinja"
    schema.write_text(CUSTOM_SCHEMA.replace("{{ title | yaml }}", "{{ title }}"))
    template = load_template(custom)
    values = resolve_answers(template, "books", {}, None)
    with pytest.raises(TemplateError, match="printed without quoting"):
        plan_new(template, values, locate_project(tmp_path / "p"))


@pytest.mark.parametrize(
    "expression",
    ["title | trim", "title | upper", "title ~ ''", "'%s' % title", "title.strip()",
     "title | replace('a', 'b')", "title | format", "[title] | join(',')"],
)  # fmt: skip
def test_no_filter_operator_or_method_unquotes_free_text(
    custom: Path, tmp_path: Path, expression: str
) -> None:
    code = custom / "src" / "{{ context }}" / "domain" / "info.py.jinja"
    code.parent.mkdir(parents=True)
    code.write_text(f'INFO = "{{{{ {expression} }}}}"\n')
    template = load_template(custom)
    attack = 'x"; import os; os.system("echo PWNED") #'
    values = resolve_answers(template, "books", {"title": attack}, None)
    with pytest.raises(TemplateError):
        plan_new(template, values, locate_project(tmp_path / "p"))


def test_a_template_may_test_free_text_without_printing_it(custom: Path, tmp_path: Path) -> None:
    code = custom / "src" / "{{ context }}" / "domain" / "info.py.jinja"
    code.parent.mkdir(parents=True)
    code.write_text(
        "{% if title %}TITLED = True\n{% endif %}"
        "LENGTH = {{ title | length }}\n"
        "{% if 'Ledger' in title %}LEDGER = True\n{% endif %}"
    )
    template = load_template(custom)
    for given, expected in (
        ("", "LENGTH = 0\n"),
        ("Ledger", "TITLED = True\nLENGTH = 6\nLEDGER = True\n"),
    ):
        values = resolve_answers(template, "books", {"title": given}, None)
        plan = plan_new(template, values, locate_project(tmp_path / given / "p"))
        (text,) = [c.new for c in plan.changes if c.path.name == "info.py"]
        assert text == expected


def test_free_text_through_the_quoting_filters_is_data(custom: Path, tmp_path: Path) -> None:
    code = custom / "src" / "{{ context }}" / "domain" / "info.py.jinja"
    code.parent.mkdir(parents=True)
    code.write_text("INFO = {{ title | pystr }}\nNAME = '{{ title | snake }}'\n")
    template = load_template(custom)
    attack = 'x"; import os; os.system("echo PWNED") #'
    values = resolve_answers(template, "books", {"title": attack}, None)
    plan = plan_new(template, values, locate_project(tmp_path / "p"))
    (text,) = [c.new for c in plan.changes if c.path.name == "info.py"]
    assert text is not None
    namespace: dict[str, object] = {}
    exec(compile(text, "info.py", "exec"), namespace)  # the rendered module, run as data
    assert namespace["INFO"] == attack
    assert str(namespace["NAME"]).isidentifier()


def test_a_template_may_not_replace_generated_files(custom: Path, tmp_path: Path) -> None:
    target = custom / "src" / "{{ context }}" / "registry.py"
    target.parent.mkdir(parents=True)
    target.write_text("# not yours\n")
    template = load_template(custom)
    values = resolve_answers(template, "books", {}, None)
    with pytest.raises(TemplateError, match="esgen generates this file"):
        plan_new(template, values, locate_project(tmp_path / "p"))


def test_a_broken_manifest_says_what_is_wrong(custom: Path) -> None:
    (custom / "template.yaml").write_text(CUSTOM_MANIFEST + "colour: red\n")
    with pytest.raises(TemplateError, match=r"unknown key\(s\) colour"):
        load_template(custom)
    result = esgen_new("books", "--template", str(custom), "--no-input")
    assert result.exit_code == 2 and "unknown key(s) colour" in result.output


def test_an_unknown_template_lists_the_ones_there_are() -> None:
    with pytest.raises(TemplateError, match="no template named 'nope'; esgen has blank"):
        resolve_template("nope")


def test_list_describes_every_template() -> None:
    result = esgen_new("--list")
    assert result.exit_code == 0
    out = result.output
    assert out.startswith("blank\n    One aggregate with one command and one event")
    assert "aggregate    The aggregate's name (PascalCase); default: Item" in out
    assert "id_type      The type of the aggregate's id (uuid | str | int); default: uuid" in out


def test_a_context_name_is_required() -> None:
    result = esgen_new("--no-input")
    assert result.exit_code == 2
    assert "name the context to start" in result.output


def test_the_cli_stays_light(tmp_path: Path) -> None:
    """`esgen --version` and the run cache's fast path must not load docs or new."""
    code = "import sys, esgen.cli; print(sorted(m for m in sys.modules if m.startswith(('esgen.docs', 'esgen.newctx', 'jinja2'))))"
    result = run([sys.executable, "-c", code], tmp_path)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
