"""Find the data files esgen ships: Jinja templates and the language's JSON Schema.

In a wheel they sit inside the package (`esgen/_data/...`); in a source checkout or an
editable install they are the top-level `templates/` and `schemas/` folders.
"""

from __future__ import annotations

from pathlib import Path

from esgen._errors import EsgenError

__all__ = ["data_dir"]


def data_dir(name: str) -> Path:
    packaged = Path(__file__).parent / "_data" / name
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[2] / name
    if checkout.is_dir():
        return checkout
    raise EsgenError(f"esgen's {name!r} folder is missing from this installation")
