"""esgen: typed code for event-sourced, CQRS Python systems, generated from YAML schemas.

This module stays tiny on purpose: production services import `esgen.runtime`, and
importing a subpackage imports this file first, so nothing heavy may live here.
"""

from esgen._errors import EsgenError
from esgen._version import __version__

__all__ = ["EsgenError", "__version__"]
