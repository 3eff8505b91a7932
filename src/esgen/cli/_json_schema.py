"""`esgen json-schema`: the JSON Schema of the YAML language, for editors."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["json_schema"]


@click.command("json-schema", short_help="Print the JSON Schema of the YAML language, for editors.")
@click.option(
    "--out",
    "out_file",
    # Not dir_okay=False: click would answer a folder with a usage screen, not one line.
    type=click.Path(path_type=Path),
    help="Write to this file instead of standard output.",
)
def json_schema(out_file: Path | None) -> None:
    """Print the JSON Schema of esgen's YAML language (for editor support)."""
    from esgen.cli._common import fail
    from esgen.codegen import WriteError, write_file
    from esgen.schema import language_json_schema

    text = language_json_schema()
    if out_file is None:
        click.echo(text, nl=False)
        return
    try:
        write_file(out_file, text)
    except WriteError as exc:
        fail(str(exc))
