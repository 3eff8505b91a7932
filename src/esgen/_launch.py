"""The `esgen` console script: the command line, or which install it needs.

`pip install esgen` installs the runtime alone (pydantic only), yet pip installs the
console script with every install. Without the extra a command needs, importing the
command line would end in a traceback about click or jinja2; this says what to install,
into the environment esgen runs in. Standard library only, and cheap: it looks the
modules up without importing them.
"""

from __future__ import annotations

import sys
from importlib.util import find_spec

from esgen._version import __version__

__all__ = ["CLI_MODULES", "GENERATOR_MODULES", "RUN_COMMANDS", "command_of", "main", "needs"]

# The top-level modules of each extra's distributions (pyproject.toml), by what needs them.
CLI_MODULES = ("click", "yaml")  # esgen[cli]
GENERATOR_MODULES = (*CLI_MODULES, "black", "datamodel_code_generator", "jinja2", "tomlkit")
# Commands a service runs next to the runtime: they need esgen[cli] only.
RUN_COMMANDS = ("projections", "sagas")
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # as esgen.cli says it: Ctrl-C, as shells report SIGINT


def command_of(args: list[str]) -> str | None:
    return next((arg for arg in args if not arg.startswith("-")), None)


def needs(args: list[str]) -> tuple[str, tuple[str, ...]]:
    """The extra a command line needs, and the modules of it that must be installed."""
    command = command_of(args)
    if command is None:  # --help, --version: the command line itself
        return "cli", ("click",)
    if command in RUN_COMMANDS:
        return "cli", CLI_MODULES
    return "generator", GENERATOR_MODULES


def main() -> None:
    # Importing the command line takes a moment (click, pydantic, the user's code later):
    # a Ctrl-C in it is the person changing their mind, not a bug to show a traceback of.
    try:
        _main()
    except KeyboardInterrupt:
        sys.stderr.write("esgen: interrupted\n")
        sys.exit(EXIT_INTERRUPTED)


def _main() -> None:
    args = sys.argv[1:]
    extra, modules = needs(args)
    missing = [name for name in modules if find_spec(name) is None]
    if missing and args == ["--version"]:
        print(f"esgen, version {__version__}")
        return
    if missing:
        command = command_of(args)
        what = f"`esgen {command}`" if command else "the esgen command"
        sys.stderr.write(
            f"esgen: error: {what} needs esgen's {extra} extra, which is not installed "
            f"(missing: {', '.join(missing)}); install it with: "
            f"{sys.executable} -m pip install 'esgen[{extra}]'\n"
        )
        sys.exit(EXIT_USAGE)
    from esgen.cli import main as cli

    cli()
