"""``EmbeddingGeneration``: embed a text column with an :class:`Embeddings` model."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import field_validator

from distil_dagster.models.embeddings.base import Embeddings
from distil_dagster.steps.base import Step, StepInput
from distil_dagster.steps.typing import StepOutput

__all__ = ["EmbeddingGeneration"]


class EmbeddingGeneration(Step):
    """Write the embedding of each row's ``text`` to ``embedding`` (and the model to ``model_name``).

    Rows whose ``text`` is ``None`` (e.g. a failed generation upstream) get a ``None`` embedding.

    Attributes:
        embeddings: the model; loaded in the worker, its runtime parameters nested under
            ``embeddings``.

    Examples:
        >>> from distil_dagster.models.embeddings import SentenceTransformerEmbeddings
        >>> step = EmbeddingGeneration(  # doctest: +SKIP
        ...     embeddings=SentenceTransformerEmbeddings(model="sentence-transformers/all-MiniLM-L6-v2"),
        ...     input_mappings={"text": "generation"},
        ... )
    """

    embeddings: Embeddings

    signature_exclude: ClassVar[frozenset[str]] = frozenset({"embeddings"})

    @field_validator("embeddings", mode="before")
    @classmethod
    def _embeddings_from_dict(cls, value: Any) -> Any:
        """Rebuild the model from its dump (``pipeline.yaml``)."""
        return Embeddings.from_dict(value) if isinstance(value, dict) else value

    @property
    def inputs(self) -> list[str]:
        return ["text"]

    @property
    def outputs(self) -> list[str]:
        return ["embedding", "model_name"]

    def signature_extra(self) -> dict[str, Any]:
        """The model's output-defining fields (device and thread settings left out)."""
        return {"embeddings": self.embeddings.signature_fields()}

    def required_gpus(self) -> int:
        return max(super().required_gpus(), self.embeddings.required_gpus())

    def load(self) -> None:
        super().load()
        self.embeddings.load()

    def unload(self) -> None:
        self.embeddings.unload()
        super().unload()

    def process(self, *inputs: StepInput) -> StepOutput:
        """Embed the texts of the batch in one call."""
        rows = inputs[0]
        texts = [row["text"] for row in rows if row.get("text") is not None]
        vectors = iter(self.embeddings.encode(texts))
        name = self.embeddings.model_name
        for row in rows:
            row["embedding"] = next(vectors) if row.get("text") is not None else None
            row["model_name"] = name
        yield rows
