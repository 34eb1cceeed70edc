"""LLM tasks: the ``Task`` and ``GeneratorTask`` bases and the built-in generation tasks."""

from distil_dagster.steps.tasks.base import GeneratorTask, Task
from distil_dagster.steps.tasks.chat_generation import ChatGeneration
from distil_dagster.steps.tasks.text_generation import TextGeneration

__all__ = ["ChatGeneration", "GeneratorTask", "Task", "TextGeneration"]
