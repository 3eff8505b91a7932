"""esgen.lock: written deterministically, read back exactly, trusted only when its
fingerprints match, and never silently re-recording a changed published version."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from harness import CASES, EXAMPLES, chdir

from compat.gitrepo import SHOP_V1
from esgen.cli import main
from esgen.compat import check, current_side, fingerprints, load_lock, render_lock

EXIT_STALE = 1
EXIT_INPUT = 2
EXIT_BREAKING = 3

SCHEMA_ROOTS = [
    *(p / "schemas" for p in sorted(CASES.iterdir()) if not (p / "expected_stderr.txt").exists()),
    *(p / "schemas" for p in sorted(EXAMPLES.iterdir()) if (p / "schemas").is_dir()),
]


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text('[tool.esgen]\nschema_dir = "model"\n')
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "shop.yaml").write_text(SHOP_V1)
    return tmp_path


def edit(project: Path, old: str, new: str) -> None:
    path = project / "model" / "shop.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


@pytest.mark.parametrize("root", SCHEMA_ROOTS, ids=[p.parent.name for p in SCHEMA_ROOTS])
def test_every_example_and_golden_case_locks_and_reads_back(root: Path, tmp_path: Path) -> None:
    schema = current_side(root, strict=True).schema
    lock = tmp_path / "esgen.lock"
    text = render_lock(schema, lock)
    lock.write_text(text)
    locked = load_lock(lock)
    assert fingerprints(locked.schema) == fingerprints(schema)
    assert render_lock(locked.schema, lock) == text, "a lock must read back as written"
    report = check(locked, current_side(root))
    assert report.findings == () and report.events == ()


def test_the_lock_does_not_depend_on_order_files_or_prose(tmp_path: Path) -> None:
    one = tmp_path / "one"
    one.mkdir()
    (one / "shop.yaml").write_text(
        "context: shop\ndescription: A shop.\naggregates:\n"
        "  Order:\n    events:\n      OrderPlaced:\n        versions:\n"
        "          1: {fields: {total: decimal, note: str}}\n"
        "  Customer:\n    events:\n      CustomerJoined:\n        versions:\n"
        "          1: {fields: {name: str}}\n"
    )
    two = tmp_path / "two"
    two.mkdir()
    (two / "b.yaml").write_text(
        "context: shop\naggregates:\n  Order:\n    events:\n      OrderPlaced:\n"
        "        description: Someone ordered.\n        versions:\n"
        "          1:\n            fields:\n              note: {type: str}\n"
        "              total: decimal\n"
    )
    (two / "a.yaml").write_text(
        "context: shop\naggregates:\n  Customer:\n    events:\n      CustomerJoined:\n"
        "        versions:\n          1: {fields: {name: str}}\n"
    )
    lock = tmp_path / "esgen.lock"
    first = render_lock(current_side(one).schema, lock)
    assert first == render_lock(current_side(two).schema, lock)
    assert first == render_lock(current_side(one).schema, lock)


def test_lock_round_trip(project: Path) -> None:
    lock = project / "esgen.lock"
    with chdir(project / "model"):  # the lock goes next to the configuration
        result = run("lock")
        assert result.exit_code == 0, result.output
        assert (
            result.output
            == "esgen lock: wrote ../esgen.lock (1 event version(s), 1 newly recorded)\n"
        )
        assert (
            run("lock").output == "esgen lock: ../esgen.lock is up to date (1 event version(s))\n"
        )
        assert run("compat").exit_code == 0
    recorded = lock.read_text()
    assert "OrderPlaced: {1: " in recorded

    # A safe new version passes compat; the lock is then out of date until recorded.
    edit(
        project,
        '              note: {type: str, default: ""}\n',
        '              note: {type: str, default: ""}\n          2:\n            fields:\n              total: decimal\n',
    )
    with chdir(project):
        assert run("compat").exit_code == 0
        stale = run("lock", "--check")
        assert stale.exit_code == EXIT_STALE
        assert "esgen.lock is out of date; run `esgen lock`" in stale.stderr
        assert "1 newly recorded" in run("lock").output

    # Version 1 changed in place: caught without any git history, pointing into the lock.
    edit(
        project,
        "          1:\n            fields:\n              total: decimal\n",
        "          1:\n            fields:\n              total: int\n",
    )
    with chdir(project):
        result = run("compat")
    assert result.exit_code == EXIT_BREAKING, result.output
    first = result.output.splitlines()[:2]
    assert first[0].startswith(
        "model/shop.yaml:13:15: error[ES103]: event shop.OrderPlaced v1 field 'total'"
    )
    was = first[1].removeprefix("  was: esgen.lock:")
    line = int(was.split(":")[0])
    assert lock.read_text().splitlines()[line - 1].strip() == "total: decimal"

    # The lock refuses to record it, and changes nothing...
    before = lock.read_text()
    with chdir(project):
        refused = run("lock")
    assert refused.exit_code == EXIT_BREAKING
    assert "error[ES103]" in refused.stdout
    assert "refusing to record 1 breaking change(s)" in refused.stderr
    assert "--force" in refused.stderr
    assert lock.read_text() == before

    # ...unless forced, after which the lock holds the new shape.
    with chdir(project):
        forced = run("lock", "--force")
        assert forced.exit_code == 0, forced.output
        assert "--force: recording 1 breaking change(s)" in forced.stderr
        assert run("compat").exit_code == 0


def test_deleted_event_against_the_lock(project: Path) -> None:
    with chdir(project):
        assert run("lock").exit_code == 0
    edit(
        project,
        "    commands:\n      PlaceOrder:\n        fields: {total: decimal}\n        emits: [OrderPlaced]\n",
        "",
    )
    edit(
        project,
        "    events:\n",
        "    events:\n      OrderCancelled:\n        versions:\n          1: {}\n",
    )
    text = (project / "model" / "shop.yaml").read_text()
    start = text.index("      OrderPlaced:")
    (project / "model" / "shop.yaml").write_text(text[:start])
    with chdir(project):
        result = run("compat", "--format", "json")
    assert result.exit_code == EXIT_BREAKING
    assert '"rule": "ES101"' in result.output and '"rule": "ES301"' in result.output
    assert '"file": "esgen.lock"' in result.output


def test_json_schema_types_are_kept_in_the_lock(project: Path) -> None:
    (project / "model" / "crm.yaml").write_text(
        "context: crm\ntypes:\n  Address: {json_schema: address.json}\n"
        "aggregates:\n  Customer:\n    events:\n      CustomerMoved:\n"
        "        versions:\n          1: {fields: {address: Address}}\n"
    )
    address = project / "model" / "address.json"
    address.write_text('{"type": "object", "properties": {"street": {"type": "string"}}}')
    with chdir(project):
        assert run("lock").exit_code == 0
        assert "model/address.json: |" in (project / "esgen.lock").read_text()
        address.write_text('{"type": "object"}')
        result = run("compat")
    assert result.exit_code == EXIT_BREAKING
    assert "error[ES104]" in result.output and "was: esgen.lock:" in result.output


def test_a_hand_edited_lock_is_not_trusted(project: Path) -> None:
    lock = project / "esgen.lock"
    with chdir(project):
        assert run("lock").exit_code == 0
        lock.write_text(lock.read_text().replace("total: decimal", "total: int"))
        result = run("compat")
        assert result.exit_code == EXIT_INPUT
        assert "its fingerprints do not match the versions it records" in result.stderr
        assert "`esgen lock --force`" in result.stderr
        assert run("lock").exit_code == EXIT_INPUT
        assert run("lock", "--force").exit_code == 0
        assert run("compat").exit_code == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("esgen_lock: 2\n", "has format 2; this esgen reads format 1: upgrade esgen"),
        ("just: text\n", "not an esgen lock file"),
        ("[unclosed\n", "invalid YAML"),
        ("esgen_lock: 1\n---\ncontext: shop\naggregates: 3\n", "does not load"),
    ],
)
def test_damaged_locks(project: Path, text: str, message: str) -> None:
    (project / "esgen.lock").write_text(text)
    with chdir(project):
        result = run("compat")
    assert result.exit_code == EXIT_INPUT
    assert message in result.stderr


def test_missing_lock_says_what_to_do(project: Path) -> None:
    with chdir(project):
        result = run("compat")
    assert result.exit_code == EXIT_INPUT
    assert "no esgen.lock: record the published versions with `esgen lock`" in result.stderr


def test_lock_refuses_a_schema_with_errors(project: Path) -> None:
    edit(project, "          1:\n", "          2:\n")
    with chdir(project):
        result = run("lock")
    assert result.exit_code == EXIT_INPUT
    assert "error[E500]" in result.stderr
    assert not (project / "esgen.lock").exists()


def test_other_lock_paths(project: Path) -> None:
    with chdir(project):
        unwritable = run("lock", "--lock", "locks/published.lock")
        assert unwritable.exit_code == EXIT_INPUT
        assert "cannot write locks/published.lock: No such file or directory" in unwritable.stderr
        (project / "locks").mkdir()
        assert run("lock", "--lock", "locks/published.lock").exit_code == 0
        assert run("compat", "--lock", "locks/published.lock").exit_code == 0
        edit(project, "total: decimal\n", "total: int\n")
        assert run("compat", "--against", "locks/published.lock").exit_code == EXIT_BREAKING
    assert not (project / "esgen.lock").exists()


def test_a_lock_that_is_not_utf8_is_pointed_at(project: Path) -> None:
    (project / "esgen.lock").write_bytes(b"esgen_lock: 1\n# caf\xe9\n")
    with chdir(project):
        result = run("compat")
    assert result.exit_code == EXIT_INPUT
    assert result.stderr.startswith(
        "esgen compat: error: esgen.lock: is not UTF-8 text (byte 0xe9 at line 2, column 6)"
    )


def test_lock_rewrites_the_lock_whole_and_keeps_its_mode(project: Path) -> None:
    with chdir(project):
        assert run("lock").exit_code == 0
        lock = project / "esgen.lock"
        lock.chmod(0o640)
        edit(
            project,
            '              note: {type: str, default: ""}\n',
            '              note: {type: str, default: ""}\n'
            "          2:\n            fields:\n              total: decimal\n",
        )
        result = run("lock")
    assert result.exit_code == 0, result.output
    assert "newly recorded" in result.output
    assert lock.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in project.iterdir()) == ["esgen.lock", "model", "pyproject.toml"]


def test_lock_of_a_copy_of_the_bank_example(tmp_path: Path) -> None:
    # Without its committed lock: this test records one from scratch.
    ignore = shutil.ignore_patterns("src", "esgen.lock")
    shutil.copytree(EXAMPLES / "bank", tmp_path / "bank", ignore=ignore)
    with chdir(tmp_path / "bank"):
        result = run("lock")
        assert result.exit_code == 0, result.output
        count = sum(
            len(versions)
            for events in fingerprints(current_side(Path("schemas")).schema).values()
            for versions in events.values()
        )
        assert f"({count} event version(s), {count} newly recorded)" in result.output
        assert run("compat").output.strip() == (
            "esgen compat: compatible with esgen.lock (no event changed)"
        )


def test_the_lock_keeps_personal_marks_subjects_and_placeholders(tmp_path: Path) -> None:
    """Against a lock, a personal mark, subject or placeholder changed on a published
    version is found as against the schema the lock was written from."""
    case = Path(__file__).parent.parent / "compat_cases" / "personal_data_changed"
    lock = tmp_path / "esgen.lock"
    lock.write_text(render_lock(current_side(case / "previous").schema, lock))
    report = check(load_lock(lock), current_side(case / "current"))
    found = sorted((f.rule, f.hit.name, f.hit.field or "") for f in report.findings)
    assert found == [
        ("ES110", "CustomerRegistered", "address.city"),
        ("ES110", "CustomerRegistered", "address.street"),
        ("ES110", "CustomerRegistered", "email"),
        ("ES110", "CustomerRegistered", "name"),
        ("ES111", "NoteTaken", ""),
        ("ES112", "CustomerRegistered", "phone"),
    ]
