"""``TransformersLLM``: a local Hugging Face causal LM (a model folder, a hub id, or a GGUF file).

``load()`` runs in the worker: it reads the weights onto ``device`` (CPU, CUDA or ``auto``) and
prepares the tokenizer for batched chat generation (left padding, the model's chat template,
else ChatML). A GGUF file is dequantized by transformers (``gguf`` + ``accelerate``), which takes
tens of seconds; the dequantized model and its tokenizer are then saved under ``cache_dir``
(renamed into place, so concurrent workers never see half a folder) and later loads read that
folder in seconds. ``cache_dir``, ``device`` and ``num_threads`` do not change the generations
and are left out of the cache signature.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, PrivateAttr

from distil_dagster.mixins.runtime_parameters import OptionalRuntimeParameter, RuntimeParameter
from distil_dagster.models.devices import gpus_for_device, set_torch_threads, torch_device
from distil_dagster.models.llms.base import LLM
from distil_dagster.models.llms.gguf_cache import load_gguf
from distil_dagster.models.llms.typing import ChatType, GenerateOutput
from distil_dagster.models.packaged import ModelNotFoundError, smollm2_gguf_path

__all__ = ["DEFAULT_MODELS_CACHE_DIR", "TransformersLLM", "smollm2_gguf_path"]

DEFAULT_MODELS_CACHE_DIR = "~/.cache/distil_dagster/models"
_CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


class TransformersLLM(LLM):
    """A local causal LM run with ``transformers``, batched, with the tokenizer's chat template.

    Attributes:
        model: a hub id or a local model folder (with ``gguf_file``: the folder holding it).
        gguf_file: a GGUF file name inside ``model`` (or an absolute path) to dequantize and load.
        revision: the hub revision of ``model``.
        torch_dtype: ``"auto"`` or a torch dtype name (``"float32"``, ``"bfloat16"``, ...).
        trust_remote_code: allow the model's own code from its repository.
        model_kwargs: extra keyword arguments of ``from_pretrained``.
        tokenizer: a tokenizer id or folder (default: the model's).
        use_fast: use the fast tokenizer.
        chat_template: a Jinja chat template (default: the tokenizer's, else ChatML).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``.
        cache_dir: where dequantized GGUF models are kept.
        num_threads: torch CPU threads in the worker (``None``: torch's default).

    Examples:
        >>> from distil_dagster.models.llms.transformers import smollm2_gguf_path
        >>> path = smollm2_gguf_path()
        >>> llm = TransformersLLM(model=str(path.parent), gguf_file=path.name)
    """

    model: str
    gguf_file: str | None = None
    revision: str = "main"
    torch_dtype: str = "auto"
    trust_remote_code: bool = False
    model_kwargs: dict[str, Any] | None = None
    tokenizer: str | None = None
    use_fast: bool = True
    chat_template: str | None = None
    device: RuntimeParameter[str] = Field(default="cpu", description="cpu, cuda, cuda:N or auto.")
    cache_dir: RuntimeParameter[str] = Field(
        default=DEFAULT_MODELS_CACHE_DIR, description="Where dequantized GGUF models are kept."
    )
    num_threads: OptionalRuntimeParameter[int] = Field(
        default=None, description="Torch CPU threads in the worker (default: torch's choice)."
    )

    signature_exclude: ClassVar[frozenset[str]] = frozenset({"cache_dir", "device", "num_threads"})

    _model: Any = PrivateAttr(default=None)
    _tokenizer: Any = PrivateAttr(default=None)
    _device: str = PrivateAttr(default="cpu")

    @property
    def model_name(self) -> str:
        """The GGUF file's stem, else ``model``."""
        return Path(self.gguf_file).stem if self.gguf_file else self.model

    def required_gpus(self) -> int:
        return gpus_for_device(self.device)

    def load(self) -> None:
        """Load the tokenizer and the weights (a GGUF file through the dequantized-model cache)."""
        if self.structured_output:
            raise ValueError("TransformersLLM does not support structured_output; use an OpenAI-compatible server.")
        from transformers import AutoModelForCausalLM

        set_torch_threads(self.num_threads)
        self._device = torch_device(self.device)
        if self.gguf_file:
            cache_dir = Path(self.cache_dir or DEFAULT_MODELS_CACHE_DIR).expanduser()
            tokenizer_kwargs = {"use_fast": self.use_fast}
            self._model, self._tokenizer = load_gguf(self._gguf_path(), cache_dir, self._dtype(), tokenizer_kwargs)
        else:
            self._model = AutoModelForCausalLM.from_pretrained(
                self.model,
                revision=self.revision,
                dtype=self._dtype(),
                trust_remote_code=self.trust_remote_code,
                **(self.model_kwargs or {}),
            )
            self._tokenizer = self._load_tokenizer(self.tokenizer or self.model)
        self._model.to(self._device)
        self._model.eval()
        self._prepare_tokenizer()

    def unload(self) -> None:
        """Drop the weights (and the CUDA cache when on a GPU)."""
        self._model = self._tokenizer = None
        gc.collect()
        if self._device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()

    def _dtype(self) -> Any:
        import torch

        if self.torch_dtype == "auto":
            return torch.float32 if self.gguf_file else "auto"
        dtype = getattr(torch, self.torch_dtype, None)
        if not isinstance(dtype, torch.dtype):
            raise ValueError(f"TransformersLLM: unknown torch_dtype {self.torch_dtype!r} (e.g. 'float32', 'bfloat16').")
        return dtype

    def _load_tokenizer(self, source: str) -> Any:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(
            source, revision=self.revision, trust_remote_code=self.trust_remote_code, use_fast=self.use_fast
        )

    def _gguf_path(self) -> Path:
        assert self.gguf_file is not None
        path = Path(self.gguf_file)
        path = path if path.is_absolute() else Path(self.model).expanduser() / path
        if not path.is_file():
            raise ModelNotFoundError(f"TransformersLLM: GGUF file {path} does not exist.")
        return path

    def _prepare_tokenizer(self) -> None:
        tokenizer = self._tokenizer
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        if self.chat_template is not None:
            tokenizer.chat_template = self.chat_template
        elif not getattr(tokenizer, "chat_template", None):
            tokenizer.chat_template = _CHATML_TEMPLATE

    def prepare_input(self, input: ChatType) -> str:
        """The prompt of one conversation, rendered with the chat template."""
        prompt: str = self._tokenizer.apply_chat_template(input, tokenize=False, add_generation_prompt=True)
        return prompt

    def generate(  # type: ignore[override]  # named generation kwargs, as distilabel's TransformersLLM
        self,
        inputs: list[ChatType],
        num_generations: int = 1,
        max_new_tokens: int = 128,
        temperature: float = 0.1,
        repetition_penalty: float = 1.1,
        top_p: float = 1.0,
        top_k: int = 0,
        do_sample: bool = True,
    ) -> list[GenerateOutput]:
        """Generate ``num_generations`` texts per conversation, all inputs in one padded batch.

        Args:
            inputs: the conversations.
            num_generations: the texts to generate per conversation.
            max_new_tokens: the most tokens a generation may have.
            temperature: the sampling temperature.
            repetition_penalty: penalise tokens already in the prompt or the generation (1.0: none).
            top_p: nucleus sampling: keep the tokens within this probability mass.
            top_k: keep the ``top_k`` most likely tokens (0: all).
            do_sample: sample; otherwise decode greedily (one text, repeated ``num_generations`` times).
        """
        if self._model is None:
            raise RuntimeError("TransformersLLM.generate() called before load().")
        import torch

        if not inputs:
            return []
        tokenizer = self._tokenizer
        encoded = tokenizer(
            [self.prepare_input(c) for c in inputs], return_tensors="pt", padding=True, add_special_tokens=False
        ).to(self._device)
        # Greedy decoding gives one answer per input: generate it once and repeat it.
        returns = num_generations if do_sample else 1
        options: dict[str, Any] = {"max_new_tokens": max_new_tokens, "do_sample": do_sample}
        if do_sample:
            options.update(temperature=temperature, top_p=top_p, top_k=top_k)
        with torch.inference_mode():
            output = self._model.generate(
                **encoded,
                **options,
                repetition_penalty=repetition_penalty,
                num_return_sequences=returns,
                pad_token_id=tokenizer.pad_token_id,
            )
        generated = output[:, encoded["input_ids"].shape[1] :].tolist()
        texts = tokenizer.batch_decode(generated, skip_special_tokens=True)
        stops = self._stop_ids()
        prompt_tokens = encoded["attention_mask"].sum(dim=1).tolist()
        results: list[GenerateOutput] = []
        for i, input_tokens in enumerate(prompt_tokens):
            rows = [i * returns + (g if do_sample else 0) for g in range(num_generations)]
            results.append(
                {
                    "generations": [texts[r] for r in rows],
                    "statistics": {
                        "input_tokens": [int(input_tokens)] * num_generations,
                        "output_tokens": [_until_stop(generated[r], stops) for r in rows],
                    },
                }
            )
        return results

    def _stop_ids(self) -> set[int]:
        eos = self._model.generation_config.eos_token_id
        ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if self._tokenizer.pad_token_id is not None:
            ids.add(self._tokenizer.pad_token_id)
        return ids


def _until_stop(tokens: list[int], stops: set[int]) -> int:
    """Generated tokens before the first end-of-sequence (or padding) token."""
    return next((i for i, token in enumerate(tokens) if token in stops), len(tokens))
