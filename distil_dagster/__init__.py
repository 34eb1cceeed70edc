"""distil_dagster: distilabel-compatible synthetic-data pipelines on a crash-proof engine, as Dagster assets."""

__version__ = "0.1.0"

__all__ = ["__version__"]
