"""CUDA device placement: disjoint device sets for the replicas of GPU steps.

The scheduler chooses, before any work, which devices each replica may see, from the devices
visible to this process: an explicit list in ``EngineConfig.cuda_devices``, else
``CUDA_VISIBLE_DEVICES``, else the count reported by ``nvidia-smi`` (or NVML). Each worker sets
``CUDA_VISIBLE_DEVICES`` before it loads its step, so frameworks only ever see their own devices.
Unlike distilabel's host-wide lock file, nothing outlives the run: no stale leases.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Sequence

from distil_dagster.errors import PipelineValidationError
from distil_dagster.steps.base import _Step

__all__ = ["assign_devices", "visible_devices"]


def _driver_devices() -> list[str]:
    smi = shutil.which("nvidia-smi")
    if smi is not None:
        try:
            out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10, check=True).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        count = sum(1 for line in out.splitlines() if line.startswith("GPU "))
        if count:
            return [str(i) for i in range(count)]
    try:
        import pynvml  # type: ignore[import-not-found]  # optional: only where NVIDIA's bindings are installed
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
        return [str(i) for i in range(pynvml.nvmlDeviceGetCount())]
    except Exception:  # NVML present but no driver: no devices
        return []


def visible_devices(explicit: Sequence[int | str] | None = None) -> list[str]:
    """The CUDA devices this process may hand out, in order."""
    if explicit is not None:
        return [str(d) for d in explicit]
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [d.strip() for d in env.split(",") if d.strip() and d.strip() != "-1"]
    return _driver_devices()


def required_gpus(step: _Step) -> int:
    """GPUs one replica of ``step`` needs (``resources.gpus``, or what its model declares)."""
    declared = step.required_gpus()
    return int(declared or 0)


def assign_devices(
    steps: dict[str, _Step], explicit: Sequence[int | str] | None, logger: logging.Logger
) -> dict[str, list[dict[str, str]]]:
    """Per step, per replica, the environment to set (``CUDA_VISIBLE_DEVICES``).

    Raises :class:`PipelineValidationError` (requested vs available) before any work when the
    steps ask for more devices than are visible.
    """
    asks = {name: (required_gpus(step), int(step.resources.replicas or 1)) for name, step in steps.items()}
    asks = {name: ask for name, ask in asks.items() if ask[0] > 0}
    if not asks:
        return {}
    devices = visible_devices(explicit)
    wanted = sum(gpus * replicas for gpus, replicas in asks.values())
    if wanted > len(devices):
        detail = ", ".join(f"'{n}': {g} GPU(s) x {r} replica(s)" for n, (g, r) in asks.items())
        raise PipelineValidationError(
            [
                f"Steps ask for {wanted} GPU(s) ({detail}) but {len(devices)} are visible ({devices}); "
                "lower resources.gpus or replicas, or set EngineConfig.cuda_devices / CUDA_VISIBLE_DEVICES."
            ]
        )
    envs: dict[str, list[dict[str, str]]] = {}
    free = list(devices)
    for name, (gpus, replicas) in asks.items():
        for replica in range(replicas):
            taken, free = free[:gpus], free[gpus:]
            envs.setdefault(name, []).append({"CUDA_VISIBLE_DEVICES": ",".join(taken)})
            logger.info(
                "Device placement: step '%s' replica %d -> CUDA_VISIBLE_DEVICES=%s.", name, replica, ",".join(taken)
            )
    return envs
