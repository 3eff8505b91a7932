"""The `esgen` command line: thin commands that map errors to exit codes, one module each.

Exit codes:
  0   success
  1   schema errors, `--check` found stale files, or a run failed (a projection's or a
      saga's handler raised, the store failed)
  2   usage or configuration errors
  3   `esgen compat` found breaking changes (`esgen lock` refused to record them)
  4   saga instances stalled: `esgen sagas run` stalled some in this run, or `esgen
      sagas retry` left some stalled
  130 interrupted (Ctrl-C); the line before says what was committed
  143 a read-side command stopped by SIGTERM without --follow; said as for Ctrl-C

Errors are one line, `esgen: error: ...`; only a malformed command line (an unknown
option, a missing value) gets click's usage screen.

Every command module imports only click and the modules of shared options and messages
(`_common`, `_options`) at module level, so that `esgen --version` and a run answered
from the cache load nothing else; a test checks it, and that no module imports in a
circle.
"""

from __future__ import annotations

import click

from esgen._version import __version__
from esgen.cli._common import (
    EXIT_INTERRUPTED,
    EXIT_SCHEMA,
    EXIT_STALLED,
    EXIT_TERMINATED,
    EXIT_USAGE,
    UsageError,
)
from esgen.cli._compat import compat, lock
from esgen.cli._consumers import consumers
from esgen.cli._docs import docs
from esgen.cli._forget import forget, master_key
from esgen.cli._generate import generate
from esgen.cli._inspect import inspect
from esgen.cli._json_schema import json_schema
from esgen.cli._new import new
from esgen.cli._options import RunGroup
from esgen.cli._projections import projections
from esgen.cli._relay import relay
from esgen.cli._sagas import sagas

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_SCHEMA",
    "EXIT_STALLED",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "UsageError",
    "main",
]


@click.group(cls=RunGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="esgen")
def main() -> None:
    """Generate typed, event-sourced Python from YAML schemas."""


for _command in (
    compat,
    consumers,
    docs,
    forget,
    generate,
    inspect,
    json_schema,
    lock,
    master_key,
    new,
    projections,
    relay,
    sagas,
):
    main.add_command(_command)
