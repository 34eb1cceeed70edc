"""Where a local model runs: the torch device of a ``device`` setting and the GPUs it needs.

The engine chooses the GPUs and sets ``CUDA_VISIBLE_DEVICES`` in the worker before torch is
imported; a model only says how many it needs (``required_gpus``) and uses ``cuda`` there.
"""

from __future__ import annotations

__all__ = ["gpus_for_device", "set_torch_threads", "torch_device"]


def torch_device(device: str | None) -> str:
    """The torch device for ``device`` (``None``/``"auto"``: CUDA when available, else CPU)."""
    if device in (None, "", "auto"):
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device)


def gpus_for_device(device: str | None) -> int:
    """GPUs a replica needs to run on ``device`` (1 for ``cuda`` or ``cuda:N``)."""
    return 1 if str(device or "").startswith("cuda") else 0


def set_torch_threads(num_threads: int | None) -> None:
    """Set torch's CPU threads for this process (workers sharing few cores run faster with fewer)."""
    if num_threads:
        import torch

        torch.set_num_threads(num_threads)
