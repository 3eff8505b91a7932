"""The wheel carries what esgen needs at run time: templates and the language's JSON Schema."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_wheel_ships_templates_and_json_schema(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("esgen-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = {
        p.relative_to(ROOT).as_posix() for p in (ROOT / "templates").rglob("*") if p.is_file()
    }
    for template in templates:
        assert f"esgen/_data/{template}" in names
    assert "esgen/_data/schemas/esgen.schema.json" in names
    assert "esgen/py.typed" in names
    assert "esgen/runtime/__init__.py" in names


def test_an_installed_wheel_generates_from_its_own_templates(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "dist"), str(ROOT)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("esgen-*.whl")
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "import esgen._resources as r, sys; "
        "print(r.data_dir('templates')); "
        "from esgen.cli import main; "
        "main(['generate', sys.argv[1], '--out', sys.argv[2]])"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            str(ROOT / "tests/cases/basic/schemas"),
            str(tmp_path / "out"),
        ],
        env={"PYTHONPATH": str(site), "ESGEN_CACHE_DIR": str(tmp_path / "cache")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == str(site / "esgen" / "_data" / "templates")
    assert (tmp_path / "out" / "library" / "events" / "book.py").is_file()
