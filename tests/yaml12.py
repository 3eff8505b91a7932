"""YAML text for tests that build schema documents in Python.

PyYAML writes YAML 1.1: it leaves `0E0` or `1e3` unquoted, since 1.1 reads them as text,
while esgen's loader reads YAML 1.2, where they are numbers. Text that 1.2 would read as
something else is quoted here, so a document means the same to the loader as it did here.
"""

from __future__ import annotations

from typing import Any

import yaml

from esgen.schema import reads_as_text


class _Dumper(yaml.SafeDumper):
    pass


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    if not reads_as_text(value):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')
    return dumper.represent_str(value)


_Dumper.add_representer(str, _represent_str)


def dump_yaml(doc: Any, **options: Any) -> str:
    text: str = yaml.dump(doc, Dumper=_Dumper, **options)
    return text
