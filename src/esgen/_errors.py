"""The root of every exception esgen raises.

EsgenError
├── esgen.schema.SchemaError            schema files that do not load or validate (ValueError)
├── esgen.config.ConfigError            bad [tool.esgen] / esgen.yaml settings (ValueError)
├── esgen.compat.CompatError            a comparison that cannot be made (git, lock file)
└── esgen.runtime.EventStoreError       anything the runtime raises (see esgen.runtime)

Kept free of imports so the runtime can share it without loading the generator.
"""

__all__ = ["EsgenError"]


class EsgenError(Exception):
    """Catch this to catch everything esgen raises on purpose."""
