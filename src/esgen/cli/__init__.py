"""The `esgen` command line: thin commands that map errors to exit codes, one module each.

Exit codes: 0 success; 1 schema errors, or `--check` found stale files; 2 usage or
configuration errors; 3 `esgen compat` found breaking changes (see `_compat`).

Every command module imports only click at module level, so that `esgen --version` and a
run answered from the cache load nothing else.
"""

from __future__ import annotations

import click

from esgen._version import __version__
from esgen.cli._common import EXIT_SCHEMA, EXIT_USAGE, UsageError
from esgen.cli._compat import compat, lock
from esgen.cli._docs import docs
from esgen.cli._generate import generate
from esgen.cli._json_schema import json_schema
from esgen.cli._new import new
from esgen.cli._run import projections, sagas

__all__ = ["EXIT_SCHEMA", "EXIT_USAGE", "UsageError", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="esgen")
def main() -> None:
    """Generate typed, event-sourced Python from YAML schemas."""


for _command in (compat, docs, generate, json_schema, lock, new, projections, sagas):
    main.add_command(_command)
