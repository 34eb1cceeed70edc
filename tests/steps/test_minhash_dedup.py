"""MinHashDedup: MinHash signatures, LSH banding, tokenizers, and the step in a pipeline."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest

from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts, MinHashDedup
from distil_dagster.steps.filtering import minhash as minhash_module
from distil_dagster.steps.filtering.minhash import (
    KEEP_COLUMN,
    minhash_signatures,
    optimal_lsh_params,
    tokenize_words,
)

VOCABULARY = [f"word{i}" for i in range(2000)]


def text(seed: int, words: int = 100) -> str:
    """A text of ``words`` distinct random words."""
    return " ".join(random.Random(seed).sample(VOCABULARY, words)) + "."


def changed(source: str, count: int, seed: int = 0) -> str:
    """``source`` with ``count`` of its words replaced by words it does not contain."""
    words = source.rstrip(".").split()
    rng = random.Random(seed)
    fresh = [w for w in VOCABULARY if w not in set(words)]
    for position, word in zip(rng.sample(range(len(words)), count), rng.sample(fresh, count)):
        words[position] = word
    return " ".join(words) + "."


def keep(step: MinHashDedup, texts: Sequence[Any]) -> list[bool]:
    rows = next(step.process_applying_mappings([{"id": i, "text": t} for i, t in enumerate(texts)]))
    assert [r["id"] for r in rows] == list(range(len(texts)))  # every row, in input order
    return [r[KEEP_COLUMN] for r in rows]


def reference_keep(texts: list[str], threshold: float, num_perm: int = 128) -> list[bool]:
    """The rule, row by row in plain Python: kept unless a band equals that band of an earlier kept row."""
    bands, rows = optimal_lsh_params(threshold, num_perm)
    signatures = minhash_signatures([tokenize_words(t) for t in texts], num_perm).tolist()
    kept: list[list[int]] = []
    result = []
    for signature in signatures:
        duplicate = any(
            signature[b * rows : (b + 1) * rows] == other[b * rows : (b + 1) * rows]
            for other in kept
            for b in range(bands)
        )
        if not duplicate:
            kept.append(signature)
        result.append(not duplicate)
    return result


def mixed_texts() -> list[str]:
    """33 texts, shuffled: 10 originals and 1 to 4 variants of each, with 0 to 12 words changed."""
    texts = []
    for seed in range(10):
        base = text(seed)
        texts.append(base)
        texts.extend(changed(base, count, seed=count) for count in (0, 1, 4, 12)[: seed % 4 + 1])
    rng = random.Random(5)
    rng.shuffle(texts)
    return texts


# -- MinHash and banding -------------------------------------------------------------------------


def test_signatures_equal_datasketch_bit_for_bit() -> None:
    # datasketch.MinHash(num_perm=8, seed=...).update_batch([t.encode() for t in tokens]).hashvalues
    tokens = {"minhash", "dedup", "δέλτα"}

    signatures = minhash_signatures([tokens, set()], num_perm=8, seed=1)

    assert signatures.dtype == np.uint32
    assert signatures[0].tolist() == [
        523474554, 836813260, 1566333014, 1176349439, 1735256, 1103258017, 249258812, 1214753187,
    ]  # fmt: skip
    assert signatures[1].tolist() == [2**32 - 1] * 8  # an empty set, as datasketch's
    assert minhash_signatures([tokens], num_perm=8, seed=42)[0].tolist() == [
        371087710, 1242258491, 480298225, 344113733, 743303459, 935104993, 455995652, 818505764,
    ]  # fmt: skip


def test_signature_agreement_estimates_the_jaccard_similarity() -> None:
    a, b = {f"t{i}" for i in range(300)}, {f"t{i}" for i in range(100, 400)}  # Jaccard 200/400
    unrelated = {f"u{i}" for i in range(300)}

    first, second, third = minhash_signatures([a, b, unrelated], num_perm=512)

    assert abs(float(np.mean(first == second)) - 0.5) < 0.1
    assert float(np.mean(first == third)) < 0.05


def test_token_blocks_do_not_change_the_signatures(monkeypatch: pytest.MonkeyPatch) -> None:
    sets = [tokenize_words(t) for t in mixed_texts()] + [set()]
    expected = minhash_signatures(sets)

    for block in (1, 3, 97):
        monkeypatch.setattr(minhash_module, "_TOKENS_PER_BLOCK", block)
        assert np.array_equal(minhash_signatures(sets), expected), block


def test_banding_parameters_are_datasketchs() -> None:
    bands, rows = MinHashDedup().lsh_params

    assert (bands, rows) == (5, 25)
    assert bands * rows <= 128
    # datasketch's MinHashLSH(threshold, num_perm).b, .r
    assert optimal_lsh_params(0.5, 128) == (25, 5)
    assert optimal_lsh_params(0.7, 256) == (25, 10)
    assert optimal_lsh_params(0.8, 64) == (5, 11)


# -- tokenizers ----------------------------------------------------------------------------------


def test_words_tokenizer_splits_words_and_punctuation_as_nltk_does() -> None:
    tokens = tokenize_words("Don't stop! It's 3.14, 1,000 well-known U.S. sites... (really)")

    assert tokens == {
        "Do", "n't", "stop", "!", "It", "'s", "3.14", ",", "1,000", "well-known", "U.S.", "sites", "...", "(",
        "really", ")",
    }  # fmt: skip


def test_words_tokenizer_ignores_word_order_and_ngrams_do_not() -> None:
    texts = ["This is a test document.", "This document is a test.", "This is a test document."]

    assert keep(MinHashDedup(tokenizer="words"), texts) == [True, False, False]  # the same set of words
    assert keep(MinHashDedup(tokenizer="ngrams", n=5), texts) == [True, True, False]


def test_ngrams_of_a_text_shorter_than_n_are_the_text_itself() -> None:
    assert keep(MinHashDedup(tokenizer="ngrams", n=5), ["yes", "no", "yes", "", ""]) == [True, True, False, True, False]


# -- decisions -----------------------------------------------------------------------------------


def test_exact_and_near_duplicates_are_marked_keeping_the_first() -> None:
    a, b, c = text(1, 200), text(2, 200), text(3, 200)
    texts = [a, b, a, changed(a, 1), c, changed(b, 1, seed=7), b]

    assert keep(MinHashDedup(), texts) == [True, True, False, False, True, False, False]


def test_a_few_changed_words_are_near_duplicates_at_a_lower_threshold() -> None:
    a, b = text(10), text(11)
    texts = [a, changed(a, 3), b, changed(b, 3, seed=1), changed(a, 2, seed=2)]

    assert keep(MinHashDedup(threshold=0.7), texts) == [True, False, True, False, False]


def test_a_lower_threshold_flags_more_rows() -> None:
    base = text(20)
    texts = [base] + [changed(base, count, seed=count) for count in range(2, 40, 2)]

    kept = {threshold: sum(keep(MinHashDedup(threshold=threshold), texts)) for threshold in (0.9, 0.7, 0.5, 0.3)}

    assert kept[0.9] > kept[0.7] > kept[0.5] > kept[0.3]
    assert kept[0.3] < len(texts) // 2 < kept[0.9]


def test_decisions_follow_the_band_rule_across_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = mixed_texts()
    expected = reference_keep(texts, 0.7)

    assert keep(MinHashDedup(threshold=0.7), texts) == expected
    monkeypatch.setattr(minhash_module, "_ROWS_PER_CHUNK", 3)
    assert keep(MinHashDedup(threshold=0.7), texts) == expected
    assert 10 <= sum(expected) < len(texts)


def test_the_seed_decides_the_permutations_and_the_result_is_deterministic() -> None:
    texts = mixed_texts()
    sets = [tokenize_words(t) for t in texts]

    assert keep(MinHashDedup(seed=3), texts) == keep(MinHashDedup(seed=3), texts)
    assert np.array_equal(minhash_signatures(sets, seed=3), minhash_signatures(sets, seed=3))
    assert not np.array_equal(minhash_signatures(sets, seed=3), minhash_signatures(sets, seed=4))


def test_none_is_kept_and_empty_texts_are_one_group() -> None:
    a = text(30)

    assert keep(MinHashDedup(), [None, a, None, "", a, "  "]) == [True, True, True, True, False, False]


def test_a_non_text_value_is_an_error_naming_the_step_and_the_column() -> None:
    with pytest.raises(ValueError, match=r"Step 'near': column 'text' of row 1 is a int, not a str"):
        keep(MinHashDedup(name="near"), ["fine", 3])


def test_disk_storage_works_as_dict_and_settings_are_validated() -> None:
    texts = mixed_texts()

    assert keep(MinHashDedup(storage="disk"), texts) == keep(MinHashDedup(storage="dict"), texts)
    with pytest.raises(ValueError, match=r"threshold=1.0 with num_perm=128 gives a single LSH band"):
        MinHashDedup(threshold=1.0)
    with pytest.raises(ValueError, match=r"tokenizer='ngrams' needs the n-gram size"):
        MinHashDedup(tokenizer="ngrams", n=None)
    with pytest.raises(ValueError, match=r"storage"):
        MinHashDedup(storage="redis")


# -- in a pipeline -------------------------------------------------------------------------------


def build(
    cache_dir: Path, data: list[dict[str, Any]], batch_size: int, storage: Literal["dict", "disk"] = "dict"
) -> Pipeline:
    with Pipeline(name="minhash", cache_dir=cache_dir) as pipeline:
        load = LoadDataFromDicts(name="load", data=data, batch_size=batch_size)
        load >> MinHashDedup(name="dedup", threshold=0.7, storage=storage)
    return pipeline


def pipeline_data() -> list[dict[str, Any]]:
    return [{"i": i, "text": t} for i, t in enumerate(mixed_texts())]


def test_in_a_pipeline_the_column_equals_a_direct_call(tmp_path: Path, rows, executor: str) -> None:
    data = pipeline_data()
    expected = keep(MinHashDedup(threshold=0.7), [d["text"] for d in data])

    result = rows(build(tmp_path, data, batch_size=3).run(executor=executor))

    assert [r["i"] for r in result] == [d["i"] for d in data]
    assert [r[KEEP_COLUMN] for r in result] == expected


def test_the_result_does_not_depend_on_batch_size_or_storage(tmp_path: Path, rows) -> None:
    data = pipeline_data()
    small, large = build(tmp_path / "small", data, 2), build(tmp_path / "large", data, 50)

    assert small.dag.step("dedup").is_global
    assert rows(small.run(executor="inline")) == rows(large.run(executor="inline"))
    assert build(tmp_path, data, 2, storage="disk").signature == build(tmp_path, data, 2).signature


def test_a_resumed_run_gives_the_uninterrupted_result(tmp_path: Path, rows, cache) -> None:
    data = pipeline_data()
    uninterrupted = rows(build(tmp_path / "reference", data, 4).run(executor="inline"))
    pipeline = build(tmp_path / "crashed", data, 4)
    pipeline.run(executor="inline")
    folder = cache(pipeline)
    generator_lines = [i for i, r in enumerate(folder.journal()) if r["step"] == "load"]
    folder.keep_journal_lines(generator_lines[3] + 1)  # "crash" after four of the nine batches

    resumed = rows(build(tmp_path / "crashed", data, 4).run(executor="inline"))

    assert resumed == uninterrupted
    assert [r[KEEP_COLUMN] for r in resumed] == reference_keep([d["text"] for d in data], 0.7)
