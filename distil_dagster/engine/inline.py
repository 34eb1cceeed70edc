"""The inline backend: every step runs in the calling process, one task at a time.

The reference behaviour the other backends must match; rows stay in memory between steps.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator

from distil_dagster.engine.batch import Rows
from distil_dagster.engine.step_runner import call_step
from distil_dagster.engine.tasks import GenerateTask, ProcessTask, Task, TaskResult
from distil_dagster.engine.time_limit import Expired, time_limit
from distil_dagster.errors import GeneratorStepError, StepExecutionError, StepLoadError, StepTimeoutError
from distil_dagster.steps.base import GeneratorStep, Step, _Step

__all__ = ["InlineBackend"]


class InlineBackend:
    """Runs every step in the calling process (``step_timeout``: see ``time_limit``)."""

    in_memory = True

    def __init__(self, retries: int, logger: logging.Logger, step_timeout: float | None = None) -> None:
        self.retries = retries
        self.step_timeout = step_timeout
        self.logger = logger
        self.steps: dict[str, _Step] = {}
        self._loaded: list[_Step] = []
        self._results: deque[TaskResult] = deque()
        self._generators: dict[str, Iterator[tuple[Rows, bool]]] = {}

    def start(self, steps: dict[str, _Step]) -> None:
        self.steps = steps
        gpu_steps = [name for name, step in steps.items() if step.required_gpus()]
        if gpu_steps:
            self.logger.warning(
                "Steps %s declare GPUs but the inline executor runs every step in this process: "
                "no device placement is applied. Use executor='processes' to give each its own devices.",
                gpu_steps,
            )
        for name, step in steps.items():
            try:
                step.load()
            except Exception as exc:
                raise StepLoadError(
                    f"Step '{name}' (replica 0) failed to load: {exc!r}; no data was processed."
                ) from exc
            self._loaded.append(step)
            self.logger.info("Step '%s' loaded (replica 0).", name)

    def submit(self, task: Task) -> None:
        if isinstance(task, GenerateTask):
            self._results.append(self._generate(task))
            return
        self._results.append(self._process(task))

    def _process(self, task: ProcessTask) -> TaskResult:
        step = self.steps[task.batch.step]
        assert isinstance(step, Step)
        try:
            with time_limit(self.step_timeout):
                result = call_step(step, task.batch, self.retries, self.logger)
        except StepExecutionError as exc:
            return TaskResult(task, error=exc)
        except Expired:
            return TaskResult(task, error=self._timeout(task.batch.step, task.batch.seq_no))
        return TaskResult(task, result.rows, len(result.rows), None, task.batch.last_batch, result.failed_rows)

    def _generate(self, task: GenerateTask) -> TaskResult:
        step = self.steps[task.step]
        assert isinstance(step, GeneratorStep)
        iterator = self._generators.get(task.step)
        if iterator is None:
            iterator = self._generators[task.step] = step.process_applying_mappings(task.offset)
        try:
            with time_limit(self.step_timeout):
                rows, last = next(iterator)
        except StopIteration:
            rows, last = [], True
        except Expired:
            return TaskResult(task, error=self._timeout(task.step, task.seq_no))
        except Exception as exc:
            error = GeneratorStepError(
                f"Generator step '{task.step}' failed producing batch {task.seq_no} (offset {task.offset}): {exc!r}."
            )
            error.__cause__ = exc
            return TaskResult(task, error=error)
        rows = list(rows)
        return TaskResult(task, rows, len(rows), None, bool(last))

    def _timeout(self, step: str, seq_no: int) -> StepTimeoutError:
        self.logger.error("Step '%s' exceeded the step timeout of %ss on batch %d.", step, self.step_timeout, seq_no)
        return StepTimeoutError(
            f"Step '{step}' (replica 0) took longer than the step timeout of {self.step_timeout:g}s on batch "
            f"{seq_no}. Committed batches are kept and the next run resumes from them (raise "
            "EngineConfig.step_timeout if the step is just slow)."
        )

    def receive(self) -> TaskResult:
        return self._results.popleft()

    def stop(self) -> None:
        for iterator in self._generators.values():
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
        while self._loaded:
            step = self._loaded.pop()
            try:
                step.unload()
            except Exception:
                self.logger.exception("Step '%s' failed to unload.", step.name)
