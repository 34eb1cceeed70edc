"""``TruncateTextColumn``: cut a text column to a number of characters or of tokens."""

from __future__ import annotations

from typing import Any

from pydantic import PrivateAttr

from distil_dagster.steps.base import Step, StepInput
from distil_dagster.steps.typing import StepOutput

__all__ = ["TruncateTextColumn"]


class TruncateTextColumn(Step):
    """Truncate ``column`` to ``max_length`` characters, or tokens when ``tokenizer`` is given.

    With a tokenizer, the text is encoded without special tokens, cut to ``max_length`` tokens and
    decoded back, so the result is the tokenizer's rendering of those tokens (an uncased tokenizer
    lowercases it). The tokenizer is loaded with ``transformers.AutoTokenizer`` in ``load()``.

    Attributes:
        column: the text column to truncate (default ``text``).
        max_length: the maximum number of characters, or of tokens with a tokenizer (default 8192).
        tokenizer: a Hugging Face tokenizer name or local folder; ``None`` truncates by characters.

    Examples:
        >>> step = TruncateTextColumn(max_length=10)
        >>> next(step.process([{"text": "This is a sample text"}]))
        [{'text': 'This is a '}]
    """

    column: str = "text"
    max_length: int = 8192
    tokenizer: str | None = None

    _tokenizer: Any = PrivateAttr(default=None)

    @property
    def inputs(self) -> list[str]:
        return [self.column]

    @property
    def outputs(self) -> list[str]:
        return [self.column]

    def load(self) -> None:
        """Load the tokenizer, if any (``transformers`` is imported only then)."""
        super().load()
        if self.tokenizer is None:
            return
        try:
            from transformers import AutoTokenizer
        except ImportError as exc:
            raise ImportError(
                f"Step '{self.name}': truncating by tokens needs `transformers`; install it with "
                "`pip install transformers`, or leave `tokenizer` unset to truncate by characters."
            ) from exc
        self._tokenizer = AutoTokenizer.from_pretrained(self.tokenizer)

    def unload(self) -> None:
        self._tokenizer = None
        super().unload()

    def truncate(self, text: Any) -> str:
        """``text`` cut to ``max_length`` characters or tokens."""
        if not isinstance(text, str):
            raise ValueError(
                f"Step '{self.name}': column '{self.column}' must hold strings to truncate, got {type(text).__name__}."
            )
        if self.tokenizer is None:
            return text[: self.max_length]
        if self._tokenizer is None:
            raise RuntimeError(f"Step '{self.name}': call load() before process() to load the tokenizer.")
        ids = self._tokenizer.encode(text, add_special_tokens=False, max_length=self.max_length, truncation=True)
        return str(self._tokenizer.decode(ids))

    def process(self, inputs: StepInput) -> StepOutput:  # type: ignore[override]  # one input, as distilabel
        column = self.column
        yield [{**row, column: self.truncate(row[column])} for row in inputs]
