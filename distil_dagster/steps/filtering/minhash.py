"""``MinHashDedup``: mark near-duplicate texts with MinHash and LSH, keeping the first of each group.

Data flow, ``_ROWS_PER_CHUNK`` rows at a time: each text becomes a set of tokens (words or
character n-grams); each token a 32-bit hash (the first 4 bytes of its SHA-1, little-endian);
each row a signature of ``num_perm`` minima of ``((a * h + b) mod (2**61 - 1)) & (2**32 - 1)``
over its token hashes, computed with numpy ``_TOKENS_PER_BLOCK`` tokens at a time. The
signature is cut into ``b`` bands of ``r`` values (``b * r <= num_perm``, chosen for the
threshold as datasketch does); a row is a near-duplicate when one of its bands equals the same
band of an earlier kept row. Only kept rows enter the index, as in distilabel, so the index
holds ``b`` band keys per kept row and nothing else outlives a chunk.

The hash, the ``a``/``b`` draws from ``numpy.random.RandomState(seed)`` and the uint64
arithmetic (wrap-around included) are datasketch's ``MinHash``, so the signatures equal
datasketch's bit for bit and the decisions equal those of distilabel's step run over the same
rows in the same order, with the differences listed in the docstring of ``MinHashDedup``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, PositiveInt, model_validator

from distil_dagster.steps.base import GlobalStep, StepInput
from distil_dagster.steps.typing import StepOutput

__all__ = ["KEEP_COLUMN", "MinHashDedup", "minhash_signatures", "optimal_lsh_params", "tokenize_words"]

KEEP_COLUMN = "keep_row_after_minhash_filtering"

_MERSENNE_PRIME = np.uint64((1 << 61) - 1)
_MAX_HASH = np.uint64((1 << 32) - 1)
_ROWS_PER_CHUNK = 1024
_TOKENS_PER_BLOCK = 4096  # a block's permuted hashes: 4096 x num_perm uint64 (4 MiB at 128)
_PARAM_GRID_VALUES = 1 << 18  # (r, node) pairs evaluated at once when choosing the LSH parameters

# Close to nltk's Treebank rules without its sentence model: negations and clitics split off
# ("don't" -> "do", "n't"; "it's" -> "it", "'s"), numbers keep their separators, abbreviations,
# hyphenated and dotted words stay whole, every other punctuation mark is a token of its own.
_WORD_TOKEN = re.compile(
    r"""
      (?:[^\W\d_]\.){2,}(?!\w)             # abbreviations: e.g., U.S.
    | \w+?(?=n't\b)                        # the stem of a negation: "do" of "don't"
    | n't\b | '(?:s|m|d|ll|re|ve)\b        # negations and clitics
    | \d+(?:[.,:]\d+)+                     # 3.14, 1,000, 12:30
    | \w+(?:[-./]\w+)*                     # words, well-known, example.com, v1.2
    | \.\.\. | --                          # ellipsis, dash
    | [^\w\s]                              # any other punctuation mark
    """,
    re.VERBOSE | re.IGNORECASE,
)


def tokenize_words(text: str) -> set[str]:
    """The set of words and punctuation marks of ``text`` (see ``MinHashDedup`` for how it
    differs from nltk's ``word_tokenize``)."""
    return set(_WORD_TOKEN.findall(text))


def _char_ngrams(text: str, n: int) -> set[str]:
    """The set of ``n``-character substrings of ``text``; the text itself when shorter than ``n``."""
    if len(text) < n:
        return {text} if text else set()
    return {text[i : i + n] for i in range(len(text) - n + 1)}


def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``a`` (in ``[1, p)``) and ``b`` (in ``[0, p)``) of each permutation, drawn as datasketch
    draws them: interleaved, one ``randint`` call each (drawing all ``a`` then all ``b`` at once would
    give other values). The step draws them once per run, not per row."""
    generator = np.random.RandomState(seed)
    pairs = [
        (generator.randint(1, _MERSENNE_PRIME, dtype=np.uint64), generator.randint(0, _MERSENNE_PRIME, dtype=np.uint64))
        for _ in range(num_perm)
    ]
    a, b = np.array(pairs, dtype=np.uint64).T
    return a, b


def _token_hash(token: str) -> int:
    return int.from_bytes(hashlib.sha1(token.encode("utf-8")).digest()[:4], "little")


def minhash_signatures(token_sets: Sequence[set[str]], num_perm: int = 128, seed: int = 1) -> np.ndarray:
    """The MinHash signature of each token set: a ``(len(token_sets), num_perm)`` uint32 array.

    Equal to ``datasketch.MinHash(num_perm, seed)`` updated with the tokens encoded as UTF-8; an
    empty set gives ``2**32 - 1`` everywhere. Memory: one block of ``_TOKENS_PER_BLOCK`` tokens
    by ``num_perm`` uint64 at a time, whatever the number of tokens.
    """
    return _signatures(token_sets, *_permutations(num_perm, seed))


def _signatures(token_sets: Sequence[set[str]], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    num_perm = len(a)
    counts = np.fromiter((len(tokens) for tokens in token_sets), dtype=np.int64, count=len(token_sets))
    hashes = np.fromiter(
        (_token_hash(token) for tokens in token_sets for token in tokens), dtype=np.uint64, count=int(counts.sum())
    )
    owner = np.repeat(np.arange(len(token_sets)), counts)
    signatures = np.full((len(token_sets), num_perm), _MAX_HASH, dtype=np.uint64)
    for start in range(0, len(hashes), _TOKENS_PER_BLOCK):
        # uint64 products wrap around modulo 2**64 before the modulo, exactly as in datasketch.
        permuted = (hashes[start : start + _TOKENS_PER_BLOCK, None] * a + b) % _MERSENNE_PRIME & _MAX_HASH
        rows = owner[start : start + _TOKENS_PER_BLOCK]
        firsts = np.flatnonzero(np.concatenate(([True], rows[1:] != rows[:-1])))
        mins = np.minimum.reduceat(permuted, firsts, axis=0)
        ids = rows[firsts]  # distinct: a row's tokens are contiguous
        signatures[ids] = np.minimum(signatures[ids], mins)
    return signatures.astype(np.uint32)


def optimal_lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """The bands ``b`` and rows per band ``r`` (``b * r <= num_perm``) that minimise the false-positive
    plus false-negative probability mass (weights 0.5/0.5) around ``threshold``, as datasketch's
    ``MinHashLSH`` chooses them (ties go to the smallest ``b``, then ``r``).

    The probability that two sets of Jaccard similarity ``s`` share a band is ``1 - (1 - s**r)**b``,
    a polynomial of degree ``b * r <= num_perm``: Gauss-Legendre quadrature with
    ``num_perm // 2 + 1`` nodes integrates it exactly (up to rounding).
    """
    nodes, weights = np.polynomial.legendre.leggauss(num_perm // 2 + 1)

    def mapped(low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
        half = (high - low) / 2
        return low + half * (nodes + 1), half * weights

    below_s, below_w = mapped(0.0, threshold)
    above_s, above_w = mapped(threshold, 1.0)
    best, best_error = (0, 0), np.inf
    step = max(1, _PARAM_GRID_VALUES // len(nodes))  # values of r evaluated at once
    for bands in range(1, num_perm + 1):
        for first in range(1, num_perm // bands + 1, step):
            r = np.arange(first, min(first + step, num_perm // bands + 1), dtype=np.float64)[:, None]
            false_positive = (1 - (1 - below_s**r) ** bands) @ below_w
            false_negative = (1 - above_s**r) ** bands @ above_w
            error = 0.5 * false_positive + 0.5 * false_negative
            i = int(np.argmin(error))  # the first minimum: the smallest r, as datasketch's strict `<`
            if error[i] < best_error:
                best, best_error = (bands, first + i), float(error[i])
    return best


class _BandIndex:
    """The band keys of the kept rows, one set per band; a row is kept when none of its keys is there."""

    def __init__(self, bands: int, rows: int) -> None:
        self.rows = rows
        self.tables: list[set[bytes]] = [set() for _ in range(bands)]

    def keep(self, signatures: np.ndarray) -> list[bool]:
        """Decide the rows of ``signatures`` in order, adding the kept ones to the index."""
        keys = [
            np.ascontiguousarray(signatures[:, i * self.rows : (i + 1) * self.rows]).view(f"V{4 * self.rows}")
            for i in range(len(self.tables))
        ]
        columns = [band.ravel().tolist() for band in keys]
        decisions = []
        for row_keys in zip(*columns):
            kept = not any(key in table for key, table in zip(row_keys, self.tables))
            if kept:
                for key, table in zip(row_keys, self.tables):
                    table.add(key)
            decisions.append(kept)
        return decisions


class MinHashDedup(GlobalStep):
    """Mark near-duplicate texts with MinHash and LSH (a global step; distilabel's ``MinHashDedup``).

    Every row gets ``keep_row_after_minhash_filtering``: ``True`` for the first row of each group
    of near-duplicates in input order, ``False`` for the later ones (rows are marked, not
    dropped, as in distilabel). A row is compared with the earlier *kept* rows only: it is a
    near-duplicate when one LSH band of its MinHash signature equals that of a kept row, which
    happens with high probability when the Jaccard similarity of their token sets is above
    ``threshold`` and rarely below it.

    Unlike distilabel's, this is a global step: it sees every row once, in order, and keeps its
    index only while it runs. distilabel's step keeps the index across batches of a normal step,
    so after a crash the resumed run starts from an empty index (duplicates across the resume
    point are kept) and each replica has its own index. Here the result is the same whether the
    run was interrupted or not, and does not depend on batch sizes. For the same rows in the same
    order, the decisions are those of one distilabel replica, except where noted below.

    Differences from distilabel:
        - ``tokenizer="words"`` uses a regular expression close to nltk's ``word_tokenize``
          (which needs a downloaded model): words, numbers and each punctuation mark are tokens,
          ``"don't"`` gives ``"do"``, ``"n't"``. Unlike nltk, straight double quotes stay ``"``
          (nltk writes opening/closing quotes as two tokens) and no sentence model decides which
          periods end a sentence: ``"U.S."`` stays whole even at the end of a sentence, where
          nltk splits off the period. Signatures can so differ from distilabel's on such texts.
        - ``tokenizer="ngrams"``: a non-empty text shorter than ``n`` is its own single token
          (distilabel gives it no token at all, so every such text was a duplicate of the first).
        - ``storage="disk"`` works as ``"dict"``: the index lives in memory, while the step runs.
          distilabel's ``"disk"`` keeps it in a ``diskcache`` folder to bound memory; here the
          index holds only the band keys of the kept rows (``b`` keys of ``4 * r`` bytes each,
          640 bytes at the defaults) and signatures are computed ``1024`` rows at a time.
          ``storage`` is left out of the cache signature.

    A ``None`` text is kept and compared with nothing. A text without any token (``""``, or
    blanks with ``"words"``) has the all-``2**32 - 1`` signature, as in distilabel: the first is
    kept and later ones are its duplicates. Any other non-``str`` value is an error.

    Attributes:
        num_perm: permutations, i.e. values in each MinHash signature (at least 2).
        seed: seed of the permutations.
        tokenizer: ``"words"`` (words and punctuation) or ``"ngrams"`` (character ``n``-grams).
        n: the n-gram size, in characters; used with ``tokenizer="ngrams"`` only.
        threshold: the Jaccard similarity from which texts count as near-duplicates; lower
            values flag more rows. Sets the LSH bands and rows per band (``lsh_params``).
        storage: ``"dict"`` or ``"disk"``; both keep the index in memory (see above).

    Input columns:
        - text (``str``): the texts to deduplicate.

    Output columns:
        - keep_row_after_minhash_filtering (``bool``): whether the row is the first of its group.

    Examples:
        >>> dedup = MinHashDedup(tokenizer="ngrams", n=5, threshold=0.8)  # doctest: +SKIP
    """

    num_perm: int = Field(default=128, ge=2)
    seed: int = 1
    tokenizer: Literal["words", "ngrams"] = "words"
    n: PositiveInt | None = 5
    threshold: float = Field(default=0.9, ge=0.0, le=1.0)
    storage: Literal["dict", "disk"] = "dict"

    signature_exclude: ClassVar[frozenset[str]] = frozenset({"storage"})

    @model_validator(mode="after")
    def _check_banding(self) -> MinHashDedup:
        step = f"Step '{self.name}'" if self.name else type(self).__name__  # named after validation
        if self.tokenizer == "ngrams" and self.n is None:
            raise ValueError(f"{step}: tokenizer='ngrams' needs the n-gram size `n` (got None).")
        bands, _ = self.lsh_params
        if bands < 2:
            raise ValueError(
                f"{step}: threshold={self.threshold} with num_perm={self.num_perm} gives a single LSH band; "
                "lower the threshold or raise num_perm."
            )
        return self

    @property
    def lsh_params(self) -> tuple[int, int]:
        """The LSH bands and rows per band for ``threshold`` and ``num_perm`` (computed on each access)."""
        return optimal_lsh_params(self.threshold, self.num_perm)

    @property
    def inputs(self) -> list[str]:
        return ["text"]

    @property
    def outputs(self) -> list[str]:
        return [KEEP_COLUMN]

    def _tokens(self, text: Any, position: int) -> set[str] | None:
        if text is None:
            return None
        if not isinstance(text, str):
            raise ValueError(
                f"Step '{self.name}': column 'text' of row {position} is a {type(text).__name__}, "
                "not a str; MinHashDedup hashes texts (map a text column with input_mappings)."
            )
        return tokenize_words(text) if self.tokenizer == "words" else _char_ngrams(text, self.n or 5)

    def process(self, inputs: StepInput) -> StepOutput:  # type: ignore[override]  # one input, as distilabel
        """Mark every row with whether it is the first of its group of near-duplicates."""
        bands, rows_per_band = self.lsh_params
        index = _BandIndex(bands, rows_per_band)
        a, b = _permutations(self.num_perm, self.seed)
        for offset in range(0, len(inputs), _ROWS_PER_CHUNK):
            chunk = inputs[offset : offset + _ROWS_PER_CHUNK]
            tokens = [self._tokens(row.get("text"), offset + i) for i, row in enumerate(chunk)]
            hashed = [(row, t) for row, t in zip(chunk, tokens) if t is not None]
            for row in chunk:
                row[KEEP_COLUMN] = True  # None texts are compared with nothing
            if hashed:
                signatures = _signatures([t for _, t in hashed], a, b)
                for (row, _), kept in zip(hashed, index.keep(signatures)):
                    row[KEEP_COLUMN] = kept
        yield inputs
