"""The run's log: ``pipeline.log`` in the signature folder, and the console when nothing else logs."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from distil_dagster.cache.atomic import make_private_dirs

__all__ = ["LOGGER_NAME", "run_logging"]

LOGGER_NAME = "distil_dagster"
_FORMAT = "%(asctime)s %(levelname)s [%(processName)s] %(message)s"


@contextmanager
def run_logging(
    log_file: Path | None, console: bool = True, extra: Sequence[logging.Handler] = ()
) -> Iterator[logging.Logger]:
    """Attach the run's handlers to the ``distil_dagster`` logger for the duration of a run.

    The console gets the log only when ``console`` and nothing else (the root logger) prints it.
    ``extra`` handlers (the caller's, e.g. ``Pipeline.run(logging_handlers=...)``) are attached as
    they are and left open.
    """
    logger = logging.getLogger(LOGGER_NAME)
    handlers: list[logging.Handler] = []
    if log_file is not None:
        make_private_dirs(log_file.parent)
        os.close(os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))  # user-only, as the cache
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    if console and not logging.getLogger().handlers:
        handlers.append(logging.StreamHandler(sys.stderr))
    previous_level = logger.level
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    for handler in handlers:
        handler.setFormatter(logging.Formatter(_FORMAT))
        logger.addHandler(handler)
    for handler in extra:
        logger.addHandler(handler)
    try:
        yield logger
    finally:
        for handler in extra:
            logger.removeHandler(handler)
        for handler in handlers:
            logger.removeHandler(handler)
            handler.close()
        logger.setLevel(previous_level)
