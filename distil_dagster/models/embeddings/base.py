"""``Embeddings``: the embedding backends steps call (distilabel's ``distilabel.models.embeddings``).

An embeddings model is a pydantic model with runtime parameters that become nested runtime
parameters of the step holding it. The step calls ``load()`` once in the worker, ``encode(texts)``
per batch and ``unload()`` at the end. Live state (weights) lives in private attributes, which are
reset when the model is pickled (steps travel to worker processes before ``load()``).
"""

from __future__ import annotations

from abc import abstractmethod

from distil_dagster.models.base import Model

__all__ = ["Embeddings"]


class Embeddings(Model):
    """Base class of embedding backends.

    Subclasses implement ``model_name`` and ``encode`` (and ``load``/``unload`` when they hold
    weights).
    """

    @abstractmethod
    def encode(self, inputs: list[str]) -> list[list[float]]:
        """Embed each text.

        Args:
            inputs: the texts.

        Returns:
            One vector per text, in order.
        """
