"""Example pipelines shipped with the package (used by ``make demo`` and ``definitions.py``)."""
