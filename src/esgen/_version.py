# The single place the version is written; pyproject.toml reads it from here (and a
# constant is cheaper to import than importlib.metadata, which `esgen` pays on every run).
__version__ = "0.1.0"
