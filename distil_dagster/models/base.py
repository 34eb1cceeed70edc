"""What every model backend shares (LLMs and embeddings): a typed dump, pickling, lifecycle.

A model is a pydantic model with runtime parameters, held by a step. Its dump carries a
``type_info`` so a step's model comes back from ``pipeline.yaml``; live state (clients, weights,
event loops) lives in private attributes, reset when the model is pickled (steps travel to worker
processes before ``load()``).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from typing import Any, ClassVar, TypeVar

from pydantic import ConfigDict, SerializerFunctionWrapHandler, model_serializer

from distil_dagster.mixins.runtime_parameters import RuntimeParametersMixin

__all__ = ["Model"]

ModelT = TypeVar("ModelT", bound="Model")


class Model(RuntimeParametersMixin, ABC):
    """Base of model backends: ``load``/``unload``, ``model_name``, devices, signature fields."""

    model_config = ConfigDict(
        arbitrary_types_allowed=True, validate_assignment=True, extra="forbid", protected_namespaces=()
    )

    signature_exclude: ClassVar[frozenset[str]] = frozenset()
    """Fields that do not change the outputs (left out of the cache signature)."""

    @model_serializer(mode="wrap")
    def _serialize_with_type(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        data["type_info"] = {"module": type(self).__module__, "name": type(self).__qualname__}
        return data

    @classmethod
    def from_dict(cls: type[ModelT], data: dict[str, Any]) -> ModelT:
        """Rebuild a model from its dump (``type_info`` names the class, which must be a ``cls``)."""
        data = dict(data)
        info = data.pop("type_info", None) or {}
        module, name = str(info.get("module")), str(info.get("name"))
        try:
            obj: Any = importlib.import_module(module)
            for part in name.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"cannot import {cls.__name__} class '{module}.{name}' ({exc}).") from exc
        if not (isinstance(obj, type) and issubclass(obj, cls)):
            raise ValueError(f"'{module}.{name}' is not a {cls.__name__} class.")
        model: ModelT = obj(**data)
        return model

    def __getstate__(self) -> dict[Any, Any]:
        state: dict[Any, Any] = super().__getstate__()
        private = self.__private_attributes__.items()
        state["__pydantic_private__"] = {n: a.get_default(call_default_factory=True) for n, a in private}
        return state

    def load(self) -> None:
        """Prepare the backend (open clients, load weights). Called once in the worker."""

    def unload(self) -> None:
        """Release what ``load()`` took."""

    @property
    @abstractmethod
    def model_name(self) -> str:
        """The model's name (written to the ``model_name`` column)."""

    def required_gpus(self) -> int:
        """GPUs one replica needs for this model (0: CPU or remote)."""
        return 0

    def signature_fields(self) -> dict[str, Any]:
        """The fields that define the outputs, JSON-able (for the cache signature)."""
        data: dict[str, Any] = self.model_dump(mode="json", exclude=set(self.signature_exclude))
        return data
