"""Embedding backends: the base class and sentence-transformers."""

from distil_dagster.models.embeddings.base import Embeddings
from distil_dagster.models.embeddings.sentence_transformers import SentenceTransformerEmbeddings

__all__ = ["Embeddings", "SentenceTransformerEmbeddings"]
