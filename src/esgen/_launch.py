"""The `esgen` console script: the command line, or how to install it.

`pip install esgen` installs the runtime alone (pydantic only), yet pip installs the
console script with every install. Without the `generator` extra, importing the command
line would end in a traceback about click or jinja2; this says what to install instead.
Standard library only, and cheap: it looks the modules up without importing them.
"""

from __future__ import annotations

import sys
from importlib.util import find_spec

__all__ = ["main"]

# The top-level modules of the `generator` extra's distributions (pyproject.toml).
GENERATOR_MODULES = ("black", "click", "datamodel_code_generator", "jinja2", "tomlkit", "yaml")
EXIT_USAGE = 2


def missing_generator_modules() -> list[str]:
    return [name for name in GENERATOR_MODULES if find_spec(name) is None]


def main() -> None:
    missing = missing_generator_modules()
    if missing:
        sys.stderr.write(
            "esgen: error: the esgen command needs the generator extra, which is not installed "
            f"(missing: {', '.join(missing)}); install it with: pip install 'esgen[generator]'\n"
        )
        sys.exit(EXIT_USAGE)
    from esgen.cli import main as cli

    cli()
