"""LLM tasks: the ``Task`` base and the built-in generation tasks."""

from distil_dagster.steps.tasks.base import Task
from distil_dagster.steps.tasks.chat_generation import ChatGeneration
from distil_dagster.steps.tasks.text_generation import TextGeneration

__all__ = ["ChatGeneration", "Task", "TextGeneration"]
