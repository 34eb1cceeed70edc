"""Filtering steps: exact and near-duplicate removal."""

from distil_dagster.steps.filtering.deduplication import DeduplicateRows
from distil_dagster.steps.filtering.embedding_dedup import EmbeddingDedup

__all__ = ["DeduplicateRows", "EmbeddingDedup"]
