"""No command writes, removes or reads a file outside the project's folders.

Every path a user (or a cloned repository) controls gets a real link or a `..`: the run
must stop with an error naming it, leave the folder outside exactly as it was, and leave
nothing half-written inside. esgen runs as users run it, in a subprocess.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from harness import CASES

BASIC = CASES / "basic" / "schemas"
JSON_CASE = CASES / "json_schema_type" / "schemas"
EXIT_SCHEMA, EXIT_USAGE = 1, 2


def esgen(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ESGEN_CACHE_DIR": str(cwd.parent / "cache")}
    return subprocess.run(
        [sys.executable, "-m", "esgen", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,  # generous: a bound against a hang, not a measurement
        check=False,
    )


def snapshot(folder: Path) -> dict[str, str]:
    """Every entry under `folder` (links not followed) with what it holds."""
    found: dict[str, str] = {}
    for here, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(here) / name
            key = path.relative_to(folder).as_posix()
            if path.is_symlink():
                found[key] = f"link:{os.readlink(path)}"
            elif path.is_file():
                found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                found[key] = "folder"
    return found


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """A project (with the `basic` schemas, configured) and a folder outside it."""
    project, outside = tmp_path / "project", tmp_path / "outside"
    shutil.copytree(BASIC, project / "schemas")
    (project / "pyproject.toml").write_text(
        '[project]\nname = "demo"\n\n[tool.esgen]\nschema_dir = "schemas"\nout_dir = "src"\n'
    )
    outside.mkdir()
    (outside / "keep.txt").write_text("precious\n")
    return project, outside


# -- esgen generate ---------------------------------------------------------------------


def test_generate_refuses_a_linked_package_folder_and_writes_nothing(
    layout: tuple[Path, Path],
) -> None:
    project, outside = layout
    (project / "src").mkdir()
    (project / "src" / "library").symlink_to("../../outside")
    before, inside = snapshot(outside), snapshot(project)
    result = esgen(project, "generate")
    assert result.returncode == EXIT_SCHEMA, result.stderr
    assert "src/library: error[E601]: is a link (to ../../outside)" in result.stderr
    assert snapshot(outside) == before
    assert snapshot(project) == inside  # nothing half-written inside either


def test_generate_refuses_a_link_deeper_down_and_a_file_that_is_a_link(
    layout: tuple[Path, Path],
) -> None:
    project, outside = layout
    assert esgen(project, "generate").returncode == 0
    events = project / "src" / "library" / "events"
    shutil.rmtree(events)
    events.symlink_to(outside)
    types = project / "src" / "library" / "types.py"
    types.unlink()
    (outside / "types.py").write_text("# mine\n")
    types.symlink_to(outside / "types.py")
    before, inside = snapshot(outside), snapshot(project)
    result = esgen(project, "generate", "--no-cache")
    assert result.returncode == EXIT_SCHEMA, result.stderr
    assert "src/library/events: error[E601]: is a link" in result.stderr
    assert "src/library/types.py: error[E601]: is a link" in result.stderr
    assert snapshot(outside) == before
    assert snapshot(project) == inside
    # --check and --diff read nothing through the link either: the same error.
    for flag in ("--check", "--diff"):
        checked = esgen(project, "generate", "--no-cache", flag)
        assert checked.returncode == EXIT_SCHEMA
        assert "# mine" not in checked.stdout + checked.stderr


def test_stale_removal_never_follows_a_link(layout: tuple[Path, Path]) -> None:
    """Generated files of a removed context behind a link outside: not read, not removed."""
    project, outside = layout
    assert esgen(project, "generate").returncode == 0
    shutil.move(project / "src" / "library", outside / "library")
    (project / "src" / "old").symlink_to(outside / "library")
    before = snapshot(outside)
    result = esgen(project, "generate", "--no-cache")
    assert result.returncode == 0, result.stderr
    assert "removed" not in result.stdout
    assert snapshot(outside) == before


def test_a_configured_output_folder_linked_inside_the_project_is_followed(
    layout: tuple[Path, Path],
) -> None:
    project, _ = layout
    (project / "build" / "src").mkdir(parents=True)
    (project / "src").symlink_to("build/src")
    result = esgen(project, "generate")
    assert result.returncode == 0, result.stderr
    assert (project / "build" / "src" / "library" / "events" / "book.py").is_file()


def test_stale_removal_never_deletes_through_a_configured_folder_linked_outside(
    layout: tuple[Path, Path],
) -> None:
    """A committed `src -> ../outside/src` holding esgen's own files: refused before the
    planner sees them, so a copy of a generated file there is not removed as stale."""
    project, outside = layout
    assert esgen(project, "generate").returncode == 0
    shutil.move(project / "src", outside / "src")
    library = outside / "src" / "library"
    shutil.copy(library / "payloads.py", library / "victim.py")
    (project / "src").symlink_to("../outside/src")
    before = snapshot(outside)
    result = esgen(project, "generate", "--no-cache")
    assert result.returncode == EXIT_USAGE, result.stdout + result.stderr
    assert "removed" not in result.stdout
    assert "the link src (to ../outside/src)" in result.stderr
    assert (library / "victim.py").is_file()
    assert snapshot(outside) == before


def test_a_linked_tests_folder_below_the_configured_one_is_refused(
    layout: tuple[Path, Path],
) -> None:
    project, outside = layout
    (project / "tests").mkdir()
    (project / "tests" / "library").symlink_to(outside)
    before = snapshot(outside)
    result = esgen(project, "generate")
    assert result.returncode == EXIT_SCHEMA, result.stderr
    assert "tests/library: error[E601]: is a link" in result.stderr
    assert snapshot(outside) == before
    assert not (project / "src").exists()


# -- esgen docs -------------------------------------------------------------------------


def test_docs_refuse_a_page_that_is_a_link_and_skip_linked_stale_pages(
    layout: tuple[Path, Path],
) -> None:
    project, outside = layout
    (project / "docs").mkdir()
    (outside / "index.md").write_text("secret\n")
    (project / "docs" / "index.md").symlink_to(outside / "index.md")
    before = snapshot(outside)
    result = esgen(project, "docs")
    assert result.returncode == EXIT_SCHEMA, result.stderr
    assert "docs/index.md: error[E601]: is a link" in result.stderr
    assert "secret" not in result.stderr + result.stdout
    assert snapshot(outside) == before
    assert [p.name for p in (project / "docs").iterdir()] == ["index.md"]


# -- schema files ----------------------------------------------------------------------

# A schema that would be valid: read through a link, its text would reach the output.
SECRET_SCHEMA = """context: secret
description: SECRET-TOKEN
aggregates:
  Vault:
    events:
      Opened: {versions: {1: {fields: {code: str}}}}
"""
SCHEMA_COMMANDS = {
    "generate": (("generate",), EXIT_SCHEMA),
    "docs": (("docs",), EXIT_SCHEMA),
    "lock": (("lock",), EXIT_USAGE),
    "compat": (("compat", "--against", "schemas"), EXIT_USAGE),
}


def plant_schema_links(project: Path, outside: Path) -> list[str]:
    """Links in the schema folder to a schema outside it, each as the error names it; the
    linked folder is not entered, so not an error, and its schema is never read."""
    (outside / "secret.yaml").write_text(SECRET_SCHEMA)
    (outside / "more").mkdir()
    (outside / "more" / "vault.yaml").write_text(SECRET_SCHEMA)
    (project / "schemas" / "secret.yaml").symlink_to("../../outside/secret.yaml")
    (project / "schemas" / "more").symlink_to(outside / "more")
    (project / "schemas" / "gone.yml").symlink_to("/nowhere/at/all.yml")
    return [
        "schemas/secret.yaml: error[E107]: is a link (to ../../outside/secret.yaml)",
        "schemas/gone.yml: error[E107]: is a link (to /nowhere/at/all.yml)",
    ]


@pytest.mark.parametrize("command", sorted(SCHEMA_COMMANDS))
def test_schema_files_are_never_read_through_a_link(
    layout: tuple[Path, Path], command: str
) -> None:
    project, outside = layout
    said = plant_schema_links(project, outside)
    before, inside = snapshot(outside), snapshot(project)
    args, code = SCHEMA_COMMANDS[command]
    result = esgen(project, *args)
    assert result.returncode == code, result.stdout + result.stderr
    for line in said:
        assert line in result.stderr
    assert "SECRET-TOKEN" not in result.stdout + result.stderr
    assert snapshot(outside) == before
    assert snapshot(project) == inside


def test_a_schema_file_swapped_for_a_link_is_not_taken_from_the_run_cache(
    layout: tuple[Path, Path],
) -> None:
    """The same text behind a link: the cache must not find its record still true."""
    project, outside = layout
    assert esgen(project, "generate").returncode == 0
    schema = project / "schemas" / "library.yaml"
    shutil.copy(schema, outside / "library.yaml")
    schema.unlink()
    schema.symlink_to(outside / "library.yaml")
    inside = snapshot(project)
    result = esgen(project, "generate")
    assert result.returncode == EXIT_SCHEMA, result.stdout + result.stderr
    assert "schemas/library.yaml: error[E107]: is a link" in result.stderr
    assert snapshot(project) == inside


def test_a_configured_schema_folder_linked_inside_the_project_is_read(
    layout: tuple[Path, Path],
) -> None:
    project, _ = layout
    (project / "shared").mkdir()
    shutil.move(project / "schemas", project / "shared" / "schemas")
    (project / "schemas").symlink_to("shared/schemas")
    result = esgen(project, "generate")
    assert result.returncode == 0, result.stderr
    assert (project / "src" / "library" / "events" / "book.py").is_file()
    assert esgen(project, "generate").returncode == 0  # and the run cache agrees


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.mark.parametrize("target", ["../shared/library.yaml", "../../outside/secret.yaml"])
def test_compat_refuses_a_link_at_a_git_ref(layout: tuple[Path, Path], target: str) -> None:
    """git would follow a link anywhere in the repository (and report one leading out of
    it): at a ref, as on disk, a linked schema file is refused, its target never read."""
    project, outside = layout
    plant_schema_links(project, outside)
    for name in ("secret.yaml", "more", "gone.yml"):
        (project / "schemas" / name).unlink()
    (project / "shared").mkdir()
    (project / "shared" / "library.yaml").write_text(SECRET_SCHEMA)
    (project / "schemas" / "linked.yaml").symlink_to(target)
    git(project, "init", "-q", "-b", "main")
    git(project, "add", ".")
    git(project, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "linked")
    (project / "schemas" / "linked.yaml").unlink()  # the work tree is clean of links
    before = snapshot(outside)
    result = esgen(project, "compat", "--against", "main")
    assert result.returncode == EXIT_USAGE, result.stdout + result.stderr
    assert f"main:schemas/linked.yaml (to {target})" in result.stderr
    assert "E107" in result.stderr
    assert "SECRET-TOKEN" not in result.stdout + result.stderr
    assert snapshot(outside) == before


# -- json_schema: and $ref --------------------------------------------------------------

SHOP = """context: json_shop
types:
  Address: {{json_schema: {path}}}
aggregates:
  Customer:
    events:
      CustomerMoved:
        versions:
          1: {{fields: {{address: Address}}}}
"""
ADDRESS = '{"type": "object", "properties": {"street": {"type": "string"}}}'


def json_project(layout: tuple[Path, Path], path: str, address: str = ADDRESS) -> Path:
    project, outside = layout
    shutil.rmtree(project / "schemas")
    (project / "schemas").mkdir()
    (project / "schemas" / "shop.yaml").write_text(SHOP.format(path=path))
    (outside / "creds.json").write_text('{"type": "object", "title": "SECRET-TOKEN"}')
    (project / "schemas" / "address.json").write_text(address)
    return project


@pytest.mark.parametrize(
    ("path", "said"),
    [
        ("../../outside/creds.json", "leads out of the project's folders"),
        ("/etc/passwd", "is an absolute path"),
        ("linked/creds.json", "goes through schemas/linked, which is a link"),
        ("creds.json", "goes through schemas/creds.json, which is a link"),
    ],
)
def test_json_schema_paths_stay_in_the_project(
    layout: tuple[Path, Path], path: str, said: str
) -> None:
    project = json_project(layout, path)
    outside = layout[1]
    (project / "schemas" / "linked").symlink_to(outside)
    (project / "schemas" / "creds.json").symlink_to(outside / "creds.json")
    before = snapshot(outside)
    result = esgen(project, "generate")
    assert result.returncode == EXIT_SCHEMA, result.stderr
    assert f"schemas/shop.yaml:3:26: error[E306]: {path!r} {said}" in result.stderr
    assert "SECRET-TOKEN" not in result.stdout + result.stderr
    assert not (project / "src").exists()
    assert snapshot(outside) == before


def test_json_schema_beside_the_schema_folder_in_the_project_is_read(
    layout: tuple[Path, Path],
) -> None:
    project = json_project(layout, "../shared/address.json")
    (project / "shared").mkdir()
    (project / "shared" / "address.json").write_text(ADDRESS)
    result = esgen(project, "generate")
    assert result.returncode == 0, result.stderr
    assert "street" in (project / "src" / "json_shop" / "_json_types" / "address.py").read_text()


@pytest.mark.parametrize(
    ("ref", "said"),
    [
        ("http://127.0.0.1:9/x.json", "is remote"),
        ("https://example.com/schemas/x.json#/a", "is remote"),
        ("file:///etc/passwd", "names a file: URL"),
        ("/etc/passwd", "is an absolute path"),
        ("../../outside/creds.json", "'../../outside/creds.json' leads out of the project"),
        ("linked/creds.json", "'linked/creds.json' goes through schemas/linked, which is a link"),
        ("creds.json#/title", "'creds.json' goes through schemas/creds.json, which is a link"),
    ],
)
def test_json_schema_refs_out_of_the_document_are_refused(
    layout: tuple[Path, Path], ref: str, said: str
) -> None:
    address = (
        '{"type": "object", "properties": {"street": {"type": "string"}, '
        f'"extra": {{"items": {{"$ref": "{ref}"}}}}}}}}'
    )
    project = json_project(layout, "address.json", address)
    (project / "schemas" / "linked").symlink_to(layout[1])
    (project / "schemas" / "creds.json").symlink_to(layout[1] / "creds.json")
    result = esgen(project, "generate")
    assert result.returncode == EXIT_SCHEMA, result.stderr
    assert f"error[E306]: address.json: $ref {ref!r}" in result.stderr
    assert said in result.stderr
    assert "SECRET-TOKEN" not in result.stdout + result.stderr
    assert not (project / "src").exists()


ORDER = """{
  "type": "object",
  "properties": {
    "ship_to": {"$ref": "./parts/address.json#/definitions/Address"},
    "country": {"$ref": "../shared/common.json#/definitions/Country"}
  }
}"""
PARTS_ADDRESS = """{
  "definitions": {
    "Address": {
      "type": "object",
      "properties": {"street": {"type": "string"}, "zone": {"$ref": "#/definitions/Zone"}}
    },
    "Zone": {"type": "string", "enum": ["north", "south"]}
  }
}"""
COMMON = '{"definitions": {"Country": {"type": "string", "minLength": 2, "maxLength": 2}}}'


def multi_file_project(layout: tuple[Path, Path]) -> Path:
    """A json_schema file whose $refs name a file beside it and one in the project."""
    project = json_project(layout, "order.json")
    (project / "schemas" / "order.json").write_text(ORDER)
    (project / "schemas" / "parts").mkdir()
    (project / "schemas" / "parts" / "address.json").write_text(PARTS_ADDRESS)
    (project / "shared").mkdir()
    (project / "shared" / "common.json").write_text(COMMON)
    return project


def test_local_refs_to_files_in_the_project_are_followed(layout: tuple[Path, Path]) -> None:
    project = multi_file_project(layout)
    result = esgen(project, "generate")
    assert result.returncode == 0, result.stderr
    module = (project / "src" / "json_shop" / "_json_types" / "address.py").read_text()
    assert "class Address(" in module and "street:" in module and "Zone" in module
    assert "min_length=2" in module  # the Country of shared/common.json
    # The referenced files are inputs of the run: an edit of one is not "unchanged".
    common = project / "shared" / "common.json"
    common.write_text(COMMON.replace('"maxLength": 2', '"maxLength": 3'))
    again = esgen(project, "generate")
    assert again.returncode == 0, again.stderr
    assert (
        "max_length=3" in (project / "src" / "json_shop" / "_json_types" / "address.py").read_text()
    )


def test_a_local_ref_that_names_no_file_is_located(layout: tuple[Path, Path]) -> None:
    project = multi_file_project(layout)
    (project / "shared" / "common.json").unlink()
    result = esgen(project, "generate")
    assert result.returncode == EXIT_SCHEMA, result.stderr
    assert (
        "error[E304]: order.json: $ref '../shared/common.json#/definitions/Country': "
        "../shared/common.json does not exist"
    ) in result.stderr


def test_the_lock_and_compat_see_an_edit_of_a_referenced_file(
    layout: tuple[Path, Path],
) -> None:
    """The lock records the referenced parts; a git ref reads them as they were there."""
    project = multi_file_project(layout)
    assert esgen(project, "lock").returncode == 0
    git(project, "init", "-q", "-b", "main")
    git(project, "add", ".")
    git(project, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "v1")
    address = project / "schemas" / "parts" / "address.json"
    address.write_text(PARTS_ADDRESS.replace('"street": {"type": "string"}', '"street": {}'))
    for against in ((), ("--against", "main")):
        result = esgen(project, "compat", *against)
        assert result.returncode == 3, result.stdout + result.stderr  # breaking
        assert "Address" in result.stdout + result.stderr


# -- esgen new --template ---------------------------------------------------------------

MANIFEST = "description: A template with a link in it.\n"
TEMPLATE_SCHEMA = """\
context: {{ context }}
aggregates:
  Ledger:
    state: {balance: int}
    commands:
      Post: {fields: {amount: int}, emits: [Posted]}
    events:
      Posted: {versions: {1: {fields: {amount: int}}}}
"""


def make_template(root: Path) -> Path:
    folder = root / "tpl"
    (folder / "schema").mkdir(parents=True)
    (folder / "src").mkdir()
    (folder / "template.yaml").write_text(MANIFEST)
    (folder / "schema" / "{{ context }}.yaml.jinja").write_text(TEMPLATE_SCHEMA)
    return folder


@pytest.mark.parametrize(
    ("link", "target"),
    [
        ("src/secret.txt", "SECRET"),  # a file outside the template
        ("src/etc", "OUTSIDE"),  # a folder outside it
        ("src/dangling.txt", "nowhere"),
        ("src/inside.txt", "INSIDE"),  # even a link to a file of the template itself
        ("schema", "OUTSIDE"),  # a role folder
        ("template.yaml", "MANIFEST"),
        ("src/page.jinja", "INCLUDER"),  # rendered, including a hidden linked file
    ],
)
def test_new_refuses_a_template_with_a_link_and_writes_nothing(
    layout: tuple[Path, Path], link: str, target: str
) -> None:
    project, outside = layout
    template = make_template(outside.parent)
    (outside / "secret.txt").write_text("id_rsa: SECRET-TOKEN\n")
    (outside / "manifest.yaml").write_text(MANIFEST)
    (outside / "schema").mkdir()
    (outside / "schema" / "x.yaml.jinja").write_text(TEMPLATE_SCHEMA)
    (template / "src" / "real.txt").write_text("inside\n")
    at = template / link
    if at.exists():
        shutil.rmtree(at) if at.is_dir() else at.unlink()
    pointed = {
        "SECRET": outside / "secret.txt",
        "OUTSIDE": outside,
        "nowhere": outside / "nowhere.txt",
        "INSIDE": Path("real.txt"),
        "MANIFEST": outside / "manifest.yaml",
    }
    if target == "INCLUDER":
        at.write_text("{% include 'src/.hidden' %}\n")
        at = template / "src" / ".hidden"
        at.symlink_to(outside / "secret.txt")
    else:
        at.symlink_to(pointed[target])
    before, inside = snapshot(outside), snapshot(project)
    result = esgen(project, "new", "books", "--template", str(template), "--no-input")
    assert result.returncode == EXIT_USAGE, result.stdout + result.stderr
    assert f"{at}: is a link" in result.stderr
    assert "Nothing was written" in result.stderr
    assert "SECRET-TOKEN" not in result.stdout + result.stderr
    assert snapshot(outside) == before
    assert snapshot(project) == inside


def test_new_refuses_dot_dot_in_a_template_include(layout: tuple[Path, Path]) -> None:
    project, outside = layout
    template = make_template(outside.parent)
    (outside / "secret.txt").write_text("SECRET-TOKEN\n")
    (template / "src" / "page.txt.jinja").write_text("{% include '../outside/secret.txt' %}\n")
    before, inside = snapshot(outside), snapshot(project)
    result = esgen(project, "new", "books", "--template", str(template), "--no-input")
    assert result.returncode == EXIT_USAGE, result.stdout + result.stderr
    assert "page.txt.jinja" in result.stderr
    assert "SECRET-TOKEN" not in result.stdout + result.stderr
    assert snapshot(outside) == before
    assert snapshot(project) == inside


def test_new_writes_a_template_without_links(layout: tuple[Path, Path]) -> None:
    project, outside = layout
    template = make_template(outside.parent)
    (template / "src" / "notes.txt").write_text("plain\n")
    result = esgen(project, "new", "books", "--template", str(template), "--no-input")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (project / "src" / "notes.txt").read_text() == "plain\n"


# -- configured folders -----------------------------------------------------------------


@pytest.mark.parametrize("key", ["schema_dir", "out_dir", "tests_dir", "docs_dir"])
@pytest.mark.parametrize("value", ["../outside", "/tmp", "src/../../outside"])
def test_configured_folders_stay_in_the_project(
    layout: tuple[Path, Path], key: str, value: str
) -> None:
    project, outside = layout
    (project / "pyproject.toml").write_text(
        f'[project]\nname = "demo"\n\n[tool.esgen]\n{key} = "{value}"\n'
    )
    before, inside = snapshot(outside), snapshot(project)
    for command in ("generate", "docs") if key == "docs_dir" else ("generate",):
        result = esgen(project, command)
        assert result.returncode == EXIT_USAGE, result.stdout + result.stderr
        assert f"pyproject.toml:5:1: error[C003]: {key} {value!r} is outside the project" in (
            result.stderr
        )
    assert snapshot(outside) == before
    assert snapshot(project) == inside


def test_folders_given_on_the_command_line_may_be_anywhere(layout: tuple[Path, Path]) -> None:
    project, outside = layout
    result = esgen(project, "generate", "--out", "../outside/src", "--tests", "../outside/t")
    assert result.returncode == 0, result.stderr
    assert (outside / "src" / "library" / "events" / "book.py").is_file()


LINKED_FOLDERS = {  # setting lines, the link, where it leads (from the project), blamed path
    "out_dir": ('out_dir = "src"', "src", "../outside", "src"),
    "out_dir below": ('out_dir = "gen/src"', "gen", "../outside", "gen"),
    "tests_dir": ("", "tests", "../outside", "tests"),
    "schema_dir": ('schema_dir = "schemas"', "schemas", "../outside/schemas", "schemas"),
    "docs_dir": ('docs_dir = "docs"', "docs", "../outside", "docs"),
    "out_dir in, then out": ('out_dir = "src"', "src", "build/src", "src"),  # build -> ../outside
}


def link_project(project: Path, outside: Path, case: str) -> list[str]:
    """Configure `case` of LINKED_FOLDERS; what its error names: where, the setting, the link."""
    setting, link, target, blamed = LINKED_FOLDERS[case]
    key = case.split()[0]
    (project / "pyproject.toml").write_text(
        f'[project]\nname = "demo"\n\n[tool.esgen]\n{setting}\n'
    )
    if key == "schema_dir":
        shutil.move(project / "schemas", outside / "schemas")
    if case == "out_dir in, then out":
        (project / "build").symlink_to("../outside")
    (project / link).symlink_to(target)
    shown = os.readlink(project / blamed)
    where = "pyproject.toml:5:1" if setting else "pyproject.toml"
    return [f"{where}: error[C003]: {key} ", f"the link {blamed} (to {shown})"]


@pytest.mark.parametrize("case", list(LINKED_FOLDERS))
@pytest.mark.parametrize(
    "command",
    [
        ("generate",),
        ("generate", "--check"),
        ("generate", "--diff"),
        ("docs",),
        ("lock",),
        ("compat",),
    ],
)
def test_configured_folders_linked_outside_are_refused(
    layout: tuple[Path, Path], case: str, command: tuple[str, ...]
) -> None:
    """A committed link may not do what a configured `..` may not (C003), for every
    command, before anything is read or written."""
    project, outside = layout
    expected = link_project(project, outside, case)
    before, inside = snapshot(outside), snapshot(project)
    result = esgen(project, *command)
    assert result.returncode == EXIT_USAGE, result.stdout + result.stderr
    for part in expected:
        assert part in result.stderr
    assert "leads outside the project" in result.stderr
    assert snapshot(outside) == before
    assert snapshot(project) == inside


def test_new_refuses_a_configured_folder_linked_outside(layout: tuple[Path, Path]) -> None:
    project, outside = layout
    template = make_template(outside.parent)
    (project / "src").symlink_to("../outside")
    before, inside = snapshot(outside), snapshot(project)
    result = esgen(project, "new", "books", "--template", str(template), "--no-input")
    assert result.returncode == EXIT_USAGE, result.stdout + result.stderr
    assert "error[C003]: out_dir 'src' leads outside the project" in result.stderr
    assert snapshot(outside) == before
    assert snapshot(project) == inside


def test_default_folders_without_a_configuration_are_held_to_the_project(
    layout: tuple[Path, Path],
) -> None:
    project, outside = layout
    (project / "pyproject.toml").unlink()
    (project / "tests").symlink_to("../outside")
    before, inside = snapshot(outside), snapshot(project)
    result = esgen(project, "generate")
    assert result.returncode == EXIT_USAGE, result.stdout + result.stderr
    assert "tests: error[C003]: tests_dir 'tests' leads outside the project" in result.stderr
    assert snapshot(outside) == before
    assert snapshot(project) == inside
    # Named on the command line, the folders are the person's: the link is theirs too.
    result = esgen(project, "generate", "--out", "linked", "--tests", "tests")
    assert result.returncode == 0, result.stdout + result.stderr


def test_folders_given_on_the_command_line_may_be_links_to_anywhere(
    layout: tuple[Path, Path],
) -> None:
    project, outside = layout
    (project / "mine").symlink_to("../outside")
    (project / "src").symlink_to("../outside")  # the configured one, overridden
    result = esgen(project, "generate", "--out", "mine/src", "--tests", "mine/t")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (outside / "src" / "library" / "events" / "book.py").is_file()


# -- esgen lock -------------------------------------------------------------------------


def test_lock_refuses_a_project_lock_that_is_a_link(layout: tuple[Path, Path]) -> None:
    project, outside = layout
    (outside / "esgen.lock").write_text("SECRET-TOKEN\n")
    (project / "esgen.lock").symlink_to(outside / "esgen.lock")
    before, inside = snapshot(outside), snapshot(project)
    result = esgen(project, "lock")
    assert result.returncode == EXIT_USAGE, result.stdout + result.stderr
    assert "esgen lock: error: esgen.lock is a link (to " in result.stderr
    assert "SECRET-TOKEN" not in result.stdout + result.stderr
    assert snapshot(outside) == before
    assert snapshot(project) == inside
