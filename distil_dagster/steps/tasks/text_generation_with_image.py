"""``TextGenerationWithImage``: a ``TextGeneration`` whose user message also carries the row's image.

The user message is OpenAI content parts: the rendered template as a ``text`` part, then an
``image_url`` part whose URL comes from the row's ``image`` column: the URL itself, a
``data:image/<type>;base64,`` URL around a base64 string, or a PIL image encoded into one. An
image that cannot be turned into a URL fails its row alone (``error_<task>``).

A system message is sent as text, as in distilabel, but ``raw_input_<task>`` records its text as
one text part, the same message in the user message's form: Parquet cannot store a field that
holds text in some messages and a list of parts in others.

Only LLMs that send the conversation as it is to an OpenAI-compatible chat API (``OpenAILLM`` and
the LLMs built on it) can pass the image on; ``TransformersLLM``, which renders the conversation
into a text prompt itself, is refused when the task is created.
"""

from __future__ import annotations

import base64
import binascii
import importlib
import io
import re
from collections.abc import Sequence
from typing import Any, Literal, cast

from pydantic import Field, model_validator

from distil_dagster.models.llms.base import LLM
from distil_dagster.models.llms.typing import ChatItem, ChatType, GenerateOutput
from distil_dagster.steps.tasks.text_generation import TextGeneration
from distil_dagster.steps.typing import StepColumns

__all__ = ["TextGenerationWithImage", "image_data_url", "takes_content_parts"]

ImageType = Literal["url", "base64", "PIL"]

_URL_SCHEME = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]+:")  # two letters at least: not a Windows drive
#: Leading bytes of the image formats a data URL names; anything else is called JPEG, as distilabel
#: calls every base64 image.
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"\xff\xd8\xff", "jpeg"),
)
#: Pillow modes the JPEG encoder writes; other images (alpha, palette, 16-bit) are sent as PNG.
_JPEG_MODES = frozenset({"1", "L", "RGB", "RGBX", "CMYK", "YCbCr"})
_PLACEHOLDER = "<PLACEHOLDER_IMAGE>"


def takes_content_parts(llm: LLM) -> bool:
    """Whether ``llm`` can pass a message made of content parts (text and images) to its model.

    ``TransformersLLM`` cannot: it renders the conversation into a text prompt with the
    tokenizer's chat template, and its model reads text only. The OpenAI-compatible LLMs send
    the conversation as it is; an LLM of one's own is trusted to handle the parts.
    """
    from distil_dagster.models.llms.transformers import TransformersLLM  # no torch at import

    return not isinstance(llm, TransformersLLM)


def image_data_url(image: Any, image_type: ImageType) -> str:
    """The URL of the ``image_url`` part for a row's ``image`` of ``image_type``.

    Raises ``ValueError`` (``ImportError`` for a PIL image without Pillow) naming what is wrong.
    """
    if image is None:
        raise ValueError("the row has no `image`.")
    if image_type == "url":
        if not isinstance(image, str) or not _URL_SCHEME.match(image.strip()):
            raise ValueError(f"`image` must be a URL (http(s)://... or data:...), got {image!r:.100}.")
        return image.strip()
    if image_type == "base64":
        return _base64_url(image)
    return _pil_url(image)


def _base64_url(image: Any) -> str:
    if not isinstance(image, str):
        raise ValueError(f"`image` must be a base64 string, got {type(image).__name__}.")
    if image.startswith("data:"):  # already a data URL
        return image
    text = "".join(image.split())  # line breaks of MIME-style base64
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"`image` is not valid base64 ({exc}): {image!r:.60}.") from exc
    if not data:
        raise ValueError("`image` is an empty base64 string.")
    kind = next((name for magic, name in _SIGNATURES if data.startswith(magic)), None)
    if kind is None and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        kind = "webp"
    return f"data:image/{kind or 'jpeg'};base64,{text}"


def _pil_url(image: Any) -> str:
    try:  # imported by name: Pillow is optional, and its types need not be installed
        image_module = importlib.import_module("PIL.Image")
    except ImportError as exc:
        raise ImportError(
            "image_type='PIL' needs Pillow to encode the image: `pip install pillow`, or send the "
            "images as URLs or base64 strings."
        ) from exc
    if not isinstance(image, image_module.Image):
        raise ValueError(f"`image` must be a PIL image, got {type(image).__name__}.")
    kind = "jpeg" if image.mode in _JPEG_MODES else "png"
    buffer = io.BytesIO()
    image.save(buffer, format=kind.upper())
    return f"data:image/{kind};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


def _with_image(messages: ChatType, url: str) -> ChatType:
    """``messages`` with the last (user) message's text turned into a text part and an image part."""
    *head, user = messages
    parts = [{"type": "text", "text": user["content"]}, {"type": "image_url", "image_url": {"url": url}}]
    # ChatItem types text content; OpenAI's chat API also takes a list of content parts.
    return [*head, cast(ChatItem, {"role": user["role"], "content": parts})]


def _as_parts(message: ChatItem) -> ChatItem:
    """``message`` with text content as a list of one text part (content parts left as they are)."""
    content = message.get("content")
    if not isinstance(content, str):
        return message
    return cast(ChatItem, {**message, "content": [{"type": "text", "text": content}]})


class TextGenerationWithImage(TextGeneration):
    """Generate text from a prompt rendered from the row's columns and the row's image.

    Input columns: ``columns`` (default ``instruction``); ``image``; ``system_prompt`` when present.
    Output columns: ``generation``, ``model_name``.

    Attributes:
        image_type: what the ``image`` column holds: ``"url"`` (sent as it is), ``"base64"`` (an
            encoded image file, sent as a ``data:image/<type>;base64,`` URL; a ``data:`` URL is
            sent as it is) or ``"PIL"`` (a PIL image, encoded as JPEG, or PNG when JPEG cannot
            hold it; needs Pillow).

    The template, ``columns`` and the system prompt are ``TextGeneration``'s.

    Examples:
        >>> TextGenerationWithImage(llm=OpenAILLM(model="gpt-4o-mini"), image_type="base64")  # doctest: +SKIP
    """

    image_type: ImageType = Field(default="url", description="What the `image` column holds: url, base64 or PIL.")

    @model_validator(mode="after")
    def _check_llm_takes_images(self) -> TextGenerationWithImage:
        if not takes_content_parts(self.llm):
            raise ValueError(
                f"TextGenerationWithImage '{self.name}': {type(self.llm).__name__} cannot pass images to its "
                "model (it renders the conversation into a text prompt). Use an LLM of an "
                "OpenAI-compatible server that serves a vision model, such as OpenAILLM, ClientvLLM, "
                "OllamaLLM or InferenceEndpointsLLM."
            )
        return self

    @property
    def inputs(self) -> StepColumns:
        columns = super().inputs
        return {**(columns if isinstance(columns, dict) else dict.fromkeys(columns, True)), "image": True}

    def format_input(self, input: dict[str, Any]) -> ChatType:
        """The (system and) user messages of one row, the user's as a text part and an image part."""
        messages = super().format_input(input)
        return _with_image(messages, image_data_url(input.get("image"), self.image_type))

    def _format_generation(
        self,
        row: dict[str, Any],
        conversation: ChatType | None,
        output: GenerateOutput,
        index: int,
        extra_keys: Sequence[str] = (),
    ) -> dict[str, Any]:
        """``Task``'s, with every message of the recorded conversation in content parts (see the module)."""
        recorded = None if conversation is None else [_as_parts(message) for message in conversation]
        return super()._format_generation(row, recorded, output, index, extra_keys)

    def _sample_input(self) -> ChatType:
        """The prompt of a placeholder row (its image left as a placeholder), for ``print()``."""
        row = {column: f"<PLACEHOLDER_{column.upper()}>" for column in super().inputs}
        return _with_image(super().format_input(row), _PLACEHOLDER)
