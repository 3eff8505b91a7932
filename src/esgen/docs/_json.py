"""A Python value from the schema (a default, a constraint) as the JSON an event holds."""

from __future__ import annotations

import base64
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

__all__ = ["jsonable"]


def jsonable(value: Any) -> Any:
    if isinstance(value, Enum):
        return jsonable(value.value)
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.urlsafe_b64encode(value).decode()
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    # An allow_nan field's NaN or infinity stays a float, which json.dumps writes NaN,
    # Infinity, -Infinity: the stored strings ("NaN") would read as a str default.
    return value
