"""Engine settings shared by every backend."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, NonNegativeInt, PositiveFloat, PositiveInt

__all__ = ["EngineConfig"]


class EngineConfig(BaseModel):
    """How the engine runs a pipeline (none of this changes the output or the signature).

    Attributes:
        step_retries: extra attempts for a batch whose non-global step raised, before its outputs
            are imputed with ``None`` and its rows marked failed.
        failed_batch_reruns: later runs (``use_cache=True``) in which a batch with failed rows is
            recomputed, with everything built from it, before its imputed rows are final.
        fsync: fsync batch files and the journal (survives power loss; kills are safe without).
        lock_timeout: seconds to wait for another run of the same pipeline to release the cache.
        max_pending_rows: rows of finished batches that may wait for the writer before the
            scheduler blocks (bounds memory; the writer commits what waits as one group, with one
            filesystem sync, so a larger bound means fewer syncs).
        start_method: how worker processes start (``None``: ``forkserver``, fast and CUDA-safe, or
            ``fork`` where workers could not import the main module again: a script without
            ``if __name__ == "__main__":``, a notebook; see ``engine/main_module.py``).
        cuda_devices: the devices to hand out to GPU steps; overrides ``CUDA_VISIBLE_DEVICES``
            and the driver's count.
        progress_interval: seconds between progress lines when the console is not a terminal.
        step_timeout: seconds one batch (or one generator batch) may take in a step before the
            run fails with ``StepTimeoutError`` naming step, replica and batch (``None``: no limit).
            Committed batches are kept; the next run resumes from them.
        ray_address: the Ray cluster of the ``ray`` executor when Ray is not initialized in this
            process (``None``: ``RAY_ADDRESS``, a ``ray start`` cluster on this machine, else a new
            local instance).
    """

    step_retries: NonNegativeInt = Field(default=2)
    failed_batch_reruns: NonNegativeInt = 2
    fsync: bool = True
    lock_timeout: PositiveFloat = 600.0
    max_pending_rows: PositiveInt = 20_000
    start_method: Literal["forkserver", "spawn", "fork"] | None = None
    cuda_devices: list[int | str] | None = None
    progress_interval: PositiveFloat = 10.0
    step_timeout: PositiveFloat | None = None
    ray_address: str | None = None
