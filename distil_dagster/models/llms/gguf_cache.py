"""Load a GGUF model with transformers, keeping the dequantized model in a cache folder.

transformers dequantizes a GGUF file (with ``gguf`` and ``accelerate``) into a regular model,
which takes tens of seconds and, for the tokenizer, seconds more. The result is saved with
``save_pretrained`` under ``<cache_dir>/<file stem>-<key>``, where the key covers the file's path,
size and mtime, the dtype and the transformers version. The folder is written under a temporary
name and renamed into place, so concurrent workers never read half a folder: the first rename
wins and the others drop their copy. A cache that cannot be written costs speed, never the run;
a cached folder that cannot be read is removed and made again.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

__all__ = ["cached_model_folder", "load_gguf"]

_LOGGER = logging.getLogger("distil_dagster.models.gguf")


def cached_model_folder(gguf: Path, cache_dir: Path, dtype: Any) -> Path:
    """The folder that holds (or will hold) the dequantized model of ``gguf``."""
    import transformers

    stat = gguf.stat()
    text = "|".join(
        [str(gguf.resolve()), str(stat.st_size), str(stat.st_mtime_ns), str(dtype), transformers.__version__]
    )
    return cache_dir / f"{gguf.stem}-{hashlib.sha1(text.encode('utf-8')).hexdigest()[:16]}"


def load_gguf(gguf: Path, cache_dir: Path, dtype: Any, tokenizer_kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """The model and tokenizer of ``gguf``: from the cache, else dequantized and then cached.

    Args:
        gguf: the GGUF file.
        cache_dir: where dequantized models are kept.
        dtype: the torch dtype of the weights.
        tokenizer_kwargs: extra arguments of ``AutoTokenizer.from_pretrained``.
    """
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = cached_model_folder(gguf, cache_dir, dtype)
    if (folder / "config.json").is_file():
        _LOGGER.info("Loading the dequantized %s from %s", gguf.name, folder)
        try:
            model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype)
            return model, AutoTokenizer.from_pretrained(str(folder), **tokenizer_kwargs)
        except (OSError, ValueError, SafetensorError) as exc:  # a damaged cache is made again, never trusted
            _LOGGER.warning("The cached model %s is unreadable (%s); dequantizing %s again", folder, exc, gguf)
            shutil.rmtree(folder, ignore_errors=True)
    _LOGGER.info("Dequantizing %s (once; cached in %s)", gguf, folder)
    kwargs: dict[str, Any] = {}
    with contextlib.suppress(ImportError):  # transformers 5 keeps GGUF weights packed unless told
        from transformers import GgufConfig

        kwargs["quantization_config"] = GgufConfig(dequantize=True)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=dtype, **kwargs)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name, **tokenizer_kwargs)
    _save_into(folder, model, tokenizer)
    return model, tokenizer


def _save_into(folder: Path, model: Any, tokenizer: Any) -> None:
    """Save ``model`` and ``tokenizer`` into ``folder`` atomically (a temporary folder renamed)."""
    tmp = folder.parent / f".{folder.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"
    try:
        tmp.mkdir(parents=True)
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        os.rename(tmp, folder)
    except OSError as exc:
        if not (folder / "config.json").is_file():  # not merely another worker winning the race
            _LOGGER.warning(
                "Cannot cache the dequantized model in %s (%s); the next load dequantizes again", folder, exc
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
