"""The esgen runtime: what generated code and production services import.

Loads pydantic and the standard library only; never the generator's dependencies.
"""

from esgen.runtime._messages import Command, Event, ValueObject

__all__ = ["Command", "Event", "ValueObject"]
