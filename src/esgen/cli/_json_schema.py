"""`esgen json-schema`: the JSON Schema of the YAML language, for editors."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["json_schema"]


@click.command("json-schema")
@click.option(
    "--out",
    "out_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write to this file instead of standard output.",
)
def json_schema(out_file: Path | None) -> None:
    """Print the JSON Schema of esgen's YAML language (for editor support)."""
    from esgen.schema import language_json_schema

    text = language_json_schema()
    if out_file is None:
        click.echo(text, nl=False)
    else:
        out_file.write_text(text, encoding="utf-8")
