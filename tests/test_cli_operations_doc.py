"""The alerts of docs/operations.md, run as written: an alert that passes when esgen itself
fails (the store out of reach, no JSON at all) would stay silent exactly when it is needed.

The snippets run in `sh` with the installed `esgen` on a copy of the bank example; only
`mail` is a stand-in (a script that keeps what it was given), and the paths of the
production machine are replaced by the test's own.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from harness import EXAMPLES

ROOT = Path(__file__).resolve().parents[1]
OPERATIONS = ROOT / "docs" / "operations.md"
PROM = "/var/lib/node_exporter/textfile_collector/esgen.prom"
CONFIG = "/app/pyproject.toml"


def alerts() -> dict[str, str]:
    """The cron alert, the probe's command and the Prometheus script, by name."""
    text = OPERATIONS.read_text(encoding="utf-8")
    section = text[text.index("### Alerts") : text.index("## Rebuilding")]
    blocks = re.findall(r"```(sh|yaml)\n(.*?)```", section, flags=re.DOTALL)
    (cron, prometheus) = [body for kind, body in blocks if kind == "sh"]
    (probe,) = [body for kind, body in blocks if kind == "yaml"]
    # The probe runs `sh -c` with the folded (`>-`) scalar: its lines joined by spaces.
    folded = probe[probe.index(">-\n") + 3 : probe.index("periodSeconds")]
    command = " ".join(line.strip() for line in folded.splitlines() if line.strip())
    return {"cron": cron, "probe": command, "prometheus": prometheus}


@pytest.mark.parametrize("name", ["cron", "probe", "prometheus"])
def test_every_alert_checks_esgens_exit_status_before_reading_its_answer(name: str) -> None:
    snippet = alerts()[name]
    assert "esgen " in snippet
    # Never `esgen ... | jq`: a pipeline's status is jq's, and jq 1.6 takes no input as true.
    assert not re.search(r"esgen [^|)\n]*\|\s*jq", snippet), snippet
    calls = re.findall(r"esgen (?:projections|sagas) status --", snippet)
    assert calls and snippet.count("=$(esgen ") == len(calls), snippet


@pytest.fixture
def machine(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A folder with the bank project, `mail` that writes to mail.log, and the environment
    the snippets run in."""
    if shutil.which("jq") is None:
        pytest.skip("jq is not installed")
    bank = tmp_path / "bank"
    for part in ("schemas", "src"):
        shutil.copytree(
            EXAMPLES / "bank" / part, bank / part, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(EXAMPLES / "bank" / "pyproject.toml", bank)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    mail = bin_dir / "mail"
    mail.write_text(f'#!/bin/sh\ncat >> "{tmp_path / "mail.log"}"\n')
    mail.chmod(0o755)
    path = os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), os.environ["PATH"]])
    return tmp_path, {**os.environ, "PATH": path, "PYTHONDONTWRITEBYTECODE": "1"}


def run(snippet: str, where: Path, env: dict[str, str], store: str) -> int:
    script = snippet.replace(CONFIG, str(where / "bank" / "pyproject.toml"))
    script = script.replace(PROM, str(where / "esgen.prom"))
    return subprocess.run(
        ["sh", "-c", script],
        cwd=where,
        env={**env, "STORE": store},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    ).returncode


def test_the_alerts_fire_when_esgen_fails_and_stay_quiet_when_all_is_well(
    machine: tuple[Path, dict[str, str]],
) -> None:
    from esgen.runtime import SQLiteEventStore

    where, env = machine
    snippets = alerts()
    mail = where / "mail.log"
    prom = where / "esgen.prom"

    SQLiteEventStore(where / "bank.sqlite").close()
    assert run(snippets["cron"], where, env, "bank.sqlite") == 0
    assert not mail.exists()
    assert run(snippets["probe"], where, env, "bank.sqlite") == 0
    assert run(snippets["prometheus"], where, env, "bank.sqlite") == 0
    good = prom.read_text()
    assert 'esgen_projection_behind_events{projection="account_balances"} 0' in good
    assert 'esgen_saga_instances{saga="MoneyTransfer",status="stalled"} 0' in good
    assert good.endswith("esgen_status_ok 1\n")

    # No store there: esgen exits non-zero with nothing on standard output.
    run(snippets["cron"], where, env, "gone.sqlite")
    assert "esgen sagas status failed" in mail.read_text()
    assert run(snippets["probe"], where, env, "gone.sqlite") != 0
    run(snippets["prometheus"], where, env, "gone.sqlite")
    stale = prom.read_text()
    assert stale == good.replace("esgen_status_ok 1\n", "esgen_status_ok 0\n")
    assert not (where / "esgen.prom.tmp").exists()
