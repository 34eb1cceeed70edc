"""``ConversationTemplate``: turn an instruction and its response into a two-message chat."""

from __future__ import annotations

from distil_dagster.steps.base import Step, StepInput
from distil_dagster.steps.typing import StepOutput

__all__ = ["ConversationTemplate"]


class ConversationTemplate(Step):
    """Write ``conversation = [user: instruction, assistant: response]`` to each row.

    Input columns: ``instruction``, ``response``. Output column: ``conversation`` (a list of
    ``{"role", "content"}`` dicts). Values are copied as they are, ``None`` included.

    Examples:
        >>> step = ConversationTemplate()
        >>> next(step.process([{"instruction": "Hello", "response": "Hi"}]))[0]["conversation"]
        [{'role': 'user', 'content': 'Hello'}, {'role': 'assistant', 'content': 'Hi'}]
    """

    @property
    def inputs(self) -> list[str]:
        return ["instruction", "response"]

    @property
    def outputs(self) -> list[str]:
        return ["conversation"]

    def process(self, inputs: StepInput) -> StepOutput:  # type: ignore[override]  # one input, as distilabel
        yield [
            {
                **row,
                "conversation": [
                    {"role": "user", "content": row["instruction"]},
                    {"role": "assistant", "content": row["response"]},
                ],
            }
            for row in inputs
        ]
