"""Real git repositories for the tests: init, commit, branch, tag, clone."""

from __future__ import annotations

import subprocess
from pathlib import Path

SHOP_V1 = """\
context: shop
aggregates:
  Order:
    commands:
      PlaceOrder:
        fields: {total: decimal}
        emits: [OrderPlaced]
    events:
      OrderPlaced:
        versions:
          1:
            fields:
              total: decimal
              note: {type: str, default: ""}
"""


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"git {' '.join(args)}: {result.stderr}"
    return result.stdout.strip()


def make_project(root: Path, schema: str = SHOP_V1) -> Path:
    """A committed project on `main`: [tool.esgen] points at model/."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "demo"\n\n[tool.esgen]\nschema_dir = "model"\n'
    )
    (root / "model").mkdir()
    (root / "model" / "shop.yaml").write_text(schema)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "first schema")
    return root
