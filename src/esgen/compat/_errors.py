"""What `esgen compat` and `esgen lock` raise when they cannot compare at all.

CompatError (esgen.EsgenError)
├── GitError (RuntimeError)        git is missing, the folder is no repository, a ref is unknown
└── LockError (ValueError)         esgen.lock is missing, damaged or edited by hand

A breaking change is not an error: it is a finding in a report.
"""

from __future__ import annotations

from esgen._errors import EsgenError

__all__ = ["CompatError", "GitError", "LockError"]


class CompatError(EsgenError):
    """The comparison could not be made; the message says what to do."""


class GitError(CompatError, RuntimeError):
    pass


class LockError(CompatError, ValueError):
    pass
