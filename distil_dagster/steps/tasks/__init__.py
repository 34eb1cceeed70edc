"""LLM tasks: the ``Task`` and ``GeneratorTask`` bases, the ``@task`` decorator and the built-in tasks."""

from distil_dagster.models.llms.typing import ChatItem, ChatType
from distil_dagster.steps.tasks.base import GeneratorTask, Task
from distil_dagster.steps.tasks.chat_generation import ChatGeneration
from distil_dagster.steps.tasks.decorator import task
from distil_dagster.steps.tasks.structured_generation import StructuredGeneration
from distil_dagster.steps.tasks.text_generation import TextGeneration
from distil_dagster.steps.tasks.text_generation_with_image import TextGenerationWithImage

__all__ = [
    "ChatGeneration",
    "ChatItem",
    "ChatType",
    "GeneratorTask",
    "StructuredGeneration",
    "Task",
    "TextGeneration",
    "TextGenerationWithImage",
    "task",
]
