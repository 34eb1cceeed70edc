"""The exception hierarchy of distil_dagster.

Every error raised on purpose derives from :class:`DistilDagsterError`; subclasses also inherit
the matching builtin so that code written for distilabel (``except ValueError``) keeps working.
"""

from __future__ import annotations

__all__ = [
    "CacheCorruptedError",
    "CacheLockedError",
    "DistilDagsterError",
    "DistisetError",
    "GeneratorStepError",
    "GlobalStepError",
    "MissingRequirementsError",
    "PipelineValidationError",
    "RemoteError",
    "RemoteTraceback",
    "RunInterrupted",
    "StepExecutionError",
    "StepLoadError",
    "StepOutputError",
    "StepTimeoutError",
    "WorkerDiedError",
]


class DistilDagsterError(Exception):
    """Base class of every error raised by distil_dagster."""


class DistisetError(DistilDagsterError, ValueError):
    """A Distiset cannot be saved, loaded or pushed (missing folder, no Hub token, ...)."""


class PipelineValidationError(DistilDagsterError, ValueError):
    """The pipeline (or its runtime parameters) is invalid; raised before any work starts.

    Attributes:
        problems: every problem found, one message each, naming the step and column.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"Invalid pipeline ({len(self.problems)} problem(s)):\n{lines}")


class MissingRequirementsError(PipelineValidationError, ModuleNotFoundError):
    """Packages the pipeline or its steps declare are missing (or at another version); raised
    before any work. A ``ModuleNotFoundError`` too, as distilabel raises.

    Attributes:
        requirements: the unmet requirements, as ``pip install`` takes them.
    """

    def __init__(self, problems: list[str], requirements: list[str]) -> None:
        self.problems = list(problems)
        self.requirements = list(requirements)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        quoted = " ".join(f"'{r}'" for r in self.requirements)
        ImportError.__init__(self, f"Missing requirements:\n{lines}\nInstall them with: pip install {quoted}")


class StepLoadError(DistilDagsterError, RuntimeError):
    """A step's ``load()`` failed; the run stopped before data flowed."""


class StepExecutionError(DistilDagsterError, RuntimeError):
    """A step failed in a way that stops the run; the original error is the ``__cause__``."""


class GlobalStepError(StepExecutionError):
    """A global step raised; the run stopped with the cache consistent."""


class GeneratorStepError(StepExecutionError):
    """A generator step raised; the run stopped with the cache consistent."""


class StepOutputError(DistilDagsterError, ValueError):
    """A step produced output that cannot be stored (e.g. a column with mixed types)."""


class RemoteTraceback(Exception):
    """The formatted traceback of an exception raised in a worker process (set as ``__cause__``)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f'\n"""\n{self.text}"""'


class RemoteError(DistilDagsterError):
    """An error raised in a worker, carried as text: ``kind`` (class name), message, traceback."""

    def __init__(self, kind: str, message: str, traceback: str) -> None:
        super().__init__(kind, message, traceback)
        self.kind = kind
        self.message = message
        self.traceback = traceback

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


class WorkerDiedError(StepExecutionError):
    """A worker process died (killed, crashed, exited) while the run needed it."""


class StepTimeoutError(StepExecutionError):
    """A batch took longer than ``EngineConfig.step_timeout``; its worker was stopped."""


class CacheCorruptedError(DistilDagsterError, RuntimeError):
    """A cache file is unreadable; the message names the file and the way out."""


class RunInterrupted(DistilDagsterError, RuntimeError):
    """The run was stopped (signal or Dagster termination) with the cache consistent."""


class CacheLockedError(DistilDagsterError, RuntimeError):
    """Another run holds the lock of this pipeline's cache folder."""
