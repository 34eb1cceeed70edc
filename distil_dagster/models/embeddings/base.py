"""``Embeddings``: the embedding backends steps call (distilabel's ``distilabel.models.embeddings``).

An embeddings model is a pydantic model with runtime parameters that become nested runtime
parameters of the step holding it. The step calls ``load()`` once in the worker, ``encode(texts)``
per batch and ``unload()`` at the end. Live state (weights) lives in private attributes, which are
reset when the model is pickled (steps travel to worker processes before ``load()``).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from pydantic import ConfigDict, SerializerFunctionWrapHandler, model_serializer

from distil_dagster.mixins.runtime_parameters import RuntimeParametersMixin

__all__ = ["Embeddings"]


class Embeddings(RuntimeParametersMixin, ABC):
    """Base class of embedding backends.

    Subclasses implement ``model_name`` and ``encode`` (and ``load``/``unload`` when they hold
    weights).
    """

    model_config = ConfigDict(
        arbitrary_types_allowed=True, validate_assignment=True, extra="forbid", protected_namespaces=()
    )

    signature_exclude: ClassVar[frozenset[str]] = frozenset()
    """Fields that do not change the embeddings (left out of the cache signature)."""

    @model_serializer(mode="wrap")
    def _serialize_with_type(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        data["type_info"] = {"module": type(self).__module__, "name": type(self).__qualname__}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Embeddings:
        """Rebuild a model from its dump (``type_info`` names the class, which must be ``Embeddings``)."""
        data = dict(data)
        info = data.pop("type_info", None) or {}
        module, name = str(info.get("module")), str(info.get("name"))
        try:
            obj: Any = importlib.import_module(module)
            for part in name.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"cannot import embeddings class '{module}.{name}' ({exc}).") from exc
        if not (isinstance(obj, type) and issubclass(obj, Embeddings)):
            raise ValueError(f"'{module}.{name}' is not an Embeddings class.")
        embeddings: Embeddings = obj(**data)
        return embeddings

    def __getstate__(self) -> dict[Any, Any]:
        state: dict[Any, Any] = super().__getstate__()
        state["__pydantic_private__"] = {n: a.get_default() for n, a in self.__private_attributes__.items()}
        return state

    def load(self) -> None:
        """Load the weights. Called once in the worker."""

    def unload(self) -> None:
        """Release what ``load()`` took."""

    @property
    @abstractmethod
    def model_name(self) -> str:
        """The model's name (written to the ``model_name`` column by steps)."""

    def required_gpus(self) -> int:
        """GPUs one replica needs for this model (0: CPU)."""
        return 0

    def signature_fields(self) -> dict[str, Any]:
        """The fields that define the embeddings, JSON-able (for the cache signature)."""
        data: dict[str, Any] = self.model_dump(mode="json", exclude=set(self.signature_exclude))
        return data

    @abstractmethod
    def encode(self, inputs: list[str]) -> list[list[float]]:
        """Embed each text.

        Args:
            inputs: the texts.

        Returns:
            One vector per text, in order.
        """
