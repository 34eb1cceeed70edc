"""What every model backend shares (LLMs and embeddings): a typed dump, pickling, lifecycle.

A model is a pydantic model with runtime parameters, held by a step. Its dump carries a
``type_info`` so a step's model comes back from ``pipeline.yaml``; live state (clients, weights,
event loops) lives in private attributes, reset when the model is pickled (steps travel to worker
processes before ``load()``) or deep-copied (the Dagster layer copies a pipeline per run).
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from typing import Any, ClassVar, TypeVar

from pydantic import ConfigDict, SerializerFunctionWrapHandler, model_serializer

from distil_dagster.mixins.runtime_parameters import RuntimeParametersMixin
from distil_dagster.type_info import distilabel_only_fields, is_distilabel, resolve_type_info

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
        info = data.pop("type_info", None)
        obj = resolve_type_info(info, f"{cls.__name__} class")  # a TypeInfoError is a ValueError
        if not (isinstance(obj, type) and issubclass(obj, cls)):
            raise ValueError(f"'{info['module']}.{info['name']}' is not a {cls.__name__} class.")
        if any(not isinstance(key, str) for key in data):
            raise ValueError(f"{cls.__name__} fields must be named by strings, got {sorted(map(repr, data))}.")
        if is_distilabel(info):  # a file distilabel wrote: its fields that hold nothing are dropped
            data = distilabel_only_fields(obj, data)
        model: ModelT = obj(**data)
        return model

    def __getstate__(self) -> dict[Any, Any]:
        state: dict[Any, Any] = super().__getstate__()
        state["__pydantic_private__"] = None  # live state is recreated fresh on unpickling
        return state

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__(state)
        object.__setattr__(self, "__pydantic_private__", self._fresh_private())

    def __deepcopy__(self: ModelT, memo: dict[int, Any] | None = None) -> ModelT:
        """A deep copy of the fields; live state starts fresh, as after unpickling (locks, loops and
        clients cannot be copied, and a copy must not share them)."""
        memo = {} if memo is None else memo
        cls = type(self)
        copied = cls.__new__(cls)
        memo[id(self)] = copied
        object.__setattr__(copied, "__dict__", copy.deepcopy(self.__dict__, memo))
        object.__setattr__(copied, "__pydantic_extra__", copy.deepcopy(self.__pydantic_extra__, memo))
        object.__setattr__(copied, "__pydantic_fields_set__", set(self.__pydantic_fields_set__))
        object.__setattr__(copied, "__pydantic_private__", self._fresh_private())
        return copied

    def _fresh_private(self) -> dict[str, Any]:
        return {n: a.get_default(call_default_factory=True) for n, a in self.__private_attributes__.items()}

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
