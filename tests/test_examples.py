"""The examples run end to end: their tests pass, they type-check, the demo tells its story."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
from harness import EXAMPLES, run_pyright
from runtime.postgres_env import available_dsn

BANK = EXAMPLES / "bank"


def run(
    args: list[str], cwd: Path, tmp_path: Path, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "HYPOTHESIS_STORAGE_DIRECTORY": str(tmp_path / "hypothesis"),
        **(env or {}),
    }
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir()))
def test_example_tests_pass(example: str, tmp_path: Path) -> None:
    """On the server the repo's PostgreSQL tests use, when there is one (always in CI): the
    bank's read-side tests run on PostgreSQL when BANK_TEST_POSTGRES_DSN names a server."""
    dsn = available_dsn()
    env = {} if dsn is None else {"BANK_TEST_POSTGRES_DSN": dsn}
    result = run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider"],
        EXAMPLES / example,
        tmp_path,
        env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    if dsn is not None:
        assert "PostgreSQL not tested" not in result.stdout, result.stdout


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir()))
def test_example_generated_and_user_code_pass_mypy_strict(example: str, tmp_path: Path) -> None:
    result = run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path), "src", "tests"],
        EXAMPLES / example,
        tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir()))
def test_example_passes_pyright_strict(example: str, tmp_path: Path) -> None:
    """With the example's own settings ([tool.pyright] in its pyproject.toml): strict, and
    every override marked."""
    root = EXAMPLES / example
    result = run_pyright([root / "src", root / "tests"], root, own=True)
    assert result.files > 10, result.report
    assert result.errors == 0, result.report


def test_bank_demo_tells_its_story(tmp_path: Path) -> None:
    result = run([sys.executable, "demo.py"], BANK, tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "OpenAccount    -> AccountOpened(owner='Ada', currency='EUR')" in out
    assert "WithdrawalRejected(" in out and "insufficient funds" in out
    assert "Ada's balance: 70.00 EUR" in out
    assert "stored v1 AccountOpened  -> read as AccountOpened(owner='Grace', currency='EUR')" in out
    assert "closed before reasons were kept" in out
    assert "the balance was 100.00; now it is 70.00" in out
    assert "Ada -> Alan 25.00: completed" in out
    assert "Ada -> Grace 10.00: compensated" in out and "compensated with RefundMoney" in out
    assert "why: deposit rejected: the account is closed" in out
    assert "Ada: 45.00 EUR (open)" in out
    assert "Grace      250 EUR (closed)" in out
    assert "identical to the live one" in out
    assert "paid: 2 events in one append (Account, Account)" in out
    assert "Ada: 50.00 EUR" in out and "Alan: 20.00 EUR" in out
    # The query API: balances ordered as numbers (250 before 50.00), an owner's accounts.
    largest = out.partition("the largest balances:")[2].splitlines()[1:4]
    assert [line.split()[:2] for line in largest] == [
        ["Ada", "500.00"],
        ["Grace", "250"],
        ["Ada", "50.00"],
    ]
    adas = out.partition("Ada's accounts:")[2].splitlines()[1:3]
    assert [line.split()[:2] for line in adas] == [["Ada", "500.00"], ["Ada", "50.00"]]
    assert "Ada holds 550.00 EUR in 2 accounts; 3 of 4 are open" in out
    # Read-your-writes: the deposit's token, waited for while a runner follows in a thread.
    assert "DepositMoney -> position 22, token 'p1.22'" in out
    assert "balances.wait_for(token, timeout=30.0).get(ALAN): Alan     27.00 EUR (open)" in out


@pytest.mark.parametrize("example", sorted(p.parent.name for p in EXAMPLES.glob("*/esgen.lock")))
def test_example_schema_is_compatible_with_its_committed_lock(example: str, tmp_path: Path) -> None:
    root = EXAMPLES / example
    result = run([sys.executable, "-m", "esgen.cli", "compat"], root, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    lock = run([sys.executable, "-m", "esgen.cli", "lock", "--check"], root, tmp_path)
    assert lock.returncode == 0, lock.stdout + lock.stderr
