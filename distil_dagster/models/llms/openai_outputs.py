"""What an OpenAI-compatible server answers, as ``GenerateOutput``: generations, token statistics,
per-generation errors and log probabilities, from chat and (legacy) completion responses."""

from __future__ import annotations

from typing import Any

from distil_dagster.models.llms.typing import GenerateOutput, Logprob

__all__ = ["completion_output", "concatenated_outputs"]


def _split(total: int, parts: int) -> list[int]:
    """``total`` split over ``parts`` as evenly as integers allow (the first ones get the rest)."""
    share, rest = divmod(total, parts)
    return [share + (1 if i < rest else 0) for i in range(parts)]


def _chat_logprobs(choice: dict[str, Any]) -> list[list[Logprob]] | None:
    """Per generated token, its top candidates, from a chat completion choice."""
    content = (choice.get("logprobs") or {}).get("content")
    if content is None:
        return None
    return [
        [{"token": c["token"], "logprob": c["logprob"]} for c in position.get("top_logprobs") or []]
        for position in content
    ]


def _completion_logprobs(choice: dict[str, Any]) -> list[list[Logprob]] | None:
    """Per token, its top candidates, from a (legacy) completion choice (none for an echoed first token)."""
    top = (choice.get("logprobs") or {}).get("top_logprobs")
    if top is None:
        return None
    return [[{"token": t, "logprob": p} for t, p in (position or {}).items()] for position in top]


def completion_output(completion: Any, num_generations: int, chat: bool = True) -> GenerateOutput:
    """One ``GenerateOutput`` from a (chat) completion (parsed JSON); missing choices become errors.

    ``output_tokens`` splits the request's completion tokens over its choices (the API counts them
    per request only), so that summing the statistics of the generations gives the tokens used.
    ``logprobs`` is there when the server returned log probabilities (``None`` for a choice without).
    """
    if not isinstance(completion, dict):
        raise ValueError(f"expected a chat completion (a JSON object), got {str(completion)[:200]!r}")
    choices = sorted(completion.get("choices") or [], key=lambda c: c.get("index", 0))[:num_generations]
    if chat:
        generations: list[str | None] = [(c.get("message") or {}).get("content") for c in choices]
    else:
        generations = [c.get("text") for c in choices]
    errors: list[str | None] = [
        None if text is not None else f"empty content (finish_reason={c.get('finish_reason')})"
        for text, c in zip(generations, choices)
    ]
    missing = num_generations - len(generations)
    generations += [None] * missing
    errors += [f"the server returned {len(choices)} of {num_generations} generations"] * missing
    usage = completion.get("usage") or {}
    prompt = int(usage.get("prompt_tokens") or 0)
    output_tokens = _split(int(usage.get("completion_tokens") or 0), max(len(choices), 1))[: len(choices)]
    output: GenerateOutput = {
        "generations": generations,
        "statistics": {"input_tokens": [prompt] * num_generations, "output_tokens": output_tokens + [0] * missing},
    }
    if any(e is not None for e in errors):
        output["errors"] = errors
    logprobs = [(_chat_logprobs if chat else _completion_logprobs)(c) for c in choices]
    if any(lp is not None for lp in logprobs):
        output["logprobs"] = logprobs + [None] * missing
    return output


def concatenated_outputs(outputs: list[GenerateOutput]) -> GenerateOutput:
    """One ``GenerateOutput`` holding the generations of several one-generation outputs, in order."""
    merged: dict[str, Any] = {
        "generations": [g for o in outputs for g in o["generations"]],
        "statistics": {
            "input_tokens": [t for o in outputs for t in o["statistics"]["input_tokens"]],
            "output_tokens": [t for o in outputs for t in o["statistics"]["output_tokens"]],
        },
    }
    if any("errors" in o for o in outputs):
        merged["errors"] = [e for o in outputs for e in o.get("errors") or [None] * len(o["generations"])]
    if any("logprobs" in o for o in outputs):
        merged["logprobs"] = [lp for o in outputs for lp in o.get("logprobs") or [None] * len(o["generations"])]
    return merged  # type: ignore[return-value]  # the keys of a GenerateOutput
