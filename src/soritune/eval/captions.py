"""Caption metrics: corpus CIDEr-D (Vedantam et al. 2015) in pure Python, faithful to the COCO caption
evaluation code (`pycocoevalcap.cider`, which is CIDEr-D: clipped tf-idf n-gram vectors, Gaussian length
penalty sigma=6, mean over n=1..4 and over references, x10 scale), and a Korean caption score.

    from soritune.eval.captions import cider_d
    cider_d({"a": "a dog barks"}, {"a": ["a dog is barking", "dog barking loudly"]})

Faithful down to the COCO code's quirks, tested equal to pycocoevalcap on shared cases:
- document frequencies are counted over the references of the whole corpus (so a corpus of one clip
  scores 0: log(1) - log(1) = 0 for every n-gram, as in COCO);
- the length penalty compares *bigram* counts (COCO's `length` is accumulated at n-gram index 1), i.e.
  words - 1 for any caption of two or more words.

Tokenisation: COCO runs the Stanford PTB tokenizer (Java) first, which lowercases and drops
punctuation. `tokenize_en` does the same for plain text (lowercase, PTB's punctuation removed, split on
whitespace); pass `tokenizer=None` for text that is tokenised already.

`cider_d_ko` is soritune's own Korean caption score, not a published metric: CIDEr-D over characters
(spaces and punctuation removed, NFC), since Korean word spacing varies freely between annotators.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter, defaultdict
from typing import Callable, Mapping, Sequence

from soritune.errors import CaptionInputError

N_MAX = 4
SIGMA = 6.0
# The punctuation tokens pycocoevalcap's PTBTokenizer removes after tokenising.
_PTB_PUNCT = ("''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--",
              "...", ";")
_PUNCT_RE = re.compile(r"[\"'`.,?!:;\-()\[\]{}]+")
_KO_DROP_RE = re.compile(r"[\s\W_]+", re.UNICODE)

Tokenizer = Callable[[str], list[str]]


def tokenize_en(text: str) -> list[str]:
    """Lowercase, split off and drop punctuation as COCO's PTB tokenizer does, split on whitespace."""
    words = []
    for token in _PUNCT_RE.sub(" ", text.lower()).split():
        if token not in _PTB_PUNCT:
            words.append(token)
    return words


def tokenize_ko_chars(text: str) -> list[str]:
    """Characters of NFC text without spaces or punctuation (soritune's Korean caption units)."""
    return list(_KO_DROP_RE.sub("", unicodedata.normalize("NFC", text)))


def _ngrams(words: Sequence[str], n_max: int = N_MAX) -> Counter:
    counts: Counter = Counter()
    for k in range(1, n_max + 1):
        for i in range(len(words) - k + 1):
            counts[tuple(words[i:i + k])] += 1
    return counts


def _vector(counts: Counter, doc_freq: Mapping[tuple, float], log_n_clips: float, n_max: int):
    """tf-idf vector per n, its norm per n, and COCO's length (the bigram count)."""
    vec = [dict() for _ in range(n_max)]
    norm = [0.0] * n_max
    length = 0
    for ngram, tf in counts.items():
        n = len(ngram) - 1
        weight = float(tf) * (log_n_clips - math.log(max(1.0, doc_freq.get(ngram, 0.0))))
        vec[n][ngram] = weight
        norm[n] += weight * weight
        if n == 1:  # COCO's quirk, kept for parity: the penalty's "length" counts bigrams
            length += tf
    return vec, [math.sqrt(x) for x in norm], length


def _similarity(hyp, ref, sigma: float, n_max: int) -> list[float]:
    vec_h, norm_h, len_h = hyp
    vec_r, norm_r, len_r = ref
    penalty = math.exp(-((len_h - len_r) ** 2) / (2 * sigma ** 2))
    out = []
    for n in range(n_max):
        val = sum(min(w, vec_r[n].get(g, 0.0)) * vec_r[n].get(g, 0.0) for g, w in vec_h[n].items())
        if norm_h[n] != 0 and norm_r[n] != 0:
            val /= norm_h[n] * norm_r[n]
        out.append(val * penalty)
    return out


def _check(candidates: Mapping[str, str], references: Mapping[str, Sequence[str]]) -> list[str]:
    missing = sorted(set(references) - set(candidates))
    extra = sorted(set(candidates) - set(references))
    if missing or extra:
        raise CaptionInputError(f"candidates and references differ: {len(missing)} ids without a candidate "
                                f"(first {missing[:3]}), {len(extra)} without references (first {extra[:3]})")
    empty = [k for k, refs in references.items() if not refs]
    if empty:
        raise CaptionInputError(f"{len(empty)} clips have no reference caption (first {empty[:3]})")
    if not references:
        raise CaptionInputError("no clips to score")
    return list(references)


def cider_d_scores(candidates: Mapping[str, str], references: Mapping[str, Sequence[str]], *,
                   tokenizer: Tokenizer | None = tokenize_en, n_max: int = N_MAX,
                   sigma: float = SIGMA) -> dict[str, float]:
    """Per-clip CIDEr-D (COCO scale); see the module docstring. `tokenizer=None`: split on whitespace."""
    ids = _check(candidates, references)
    tok = tokenizer or str.split
    ref_counts = {k: [_ngrams(tok(r), n_max) for r in references[k]] for k in ids}
    doc_freq: dict[tuple, float] = defaultdict(float)
    for refs in ref_counts.values():
        for ngram in {g for r in refs for g in r}:
            doc_freq[ngram] += 1
    log_n = math.log(float(len(ids)))
    scores = {}
    for k in ids:
        hyp = _vector(_ngrams(tok(candidates[k]), n_max), doc_freq, log_n, n_max)
        total = [0.0] * n_max
        for ref in ref_counts[k]:
            sim = _similarity(hyp, _vector(ref, doc_freq, log_n, n_max), sigma, n_max)
            total = [a + b for a, b in zip(total, sim)]
        scores[k] = sum(total) / n_max / len(ref_counts[k]) * 10.0
    return scores


def cider_d(candidates: Mapping[str, str], references: Mapping[str, Sequence[str]], *,
            tokenizer: Tokenizer | None = tokenize_en) -> float:
    """Corpus CIDEr-D on the COCO scale: the mean of the per-clip scores (same ids on both sides)."""
    scores = cider_d_scores(candidates, references, tokenizer=tokenizer)
    return sum(scores.values()) / len(scores)


def cider_d_ko(candidates: Mapping[str, str], references: Mapping[str, Sequence[str]]) -> float:
    """soritune's Korean caption score: CIDEr-D over characters (see the module docstring)."""
    return cider_d(candidates, references, tokenizer=tokenize_ko_chars)


def unavailable_metrics() -> dict[str, str]:
    """METEOR / SPICE / SPIDEr need Java and their jars; say so instead of faking them."""
    import shutil

    reason = "needs Java and the Stanford CoreNLP / METEOR jars" + ("" if shutil.which("java") else " (no java here)")
    return {"meteor": reason, "spice": reason, "spider": "SPIDEr = (CIDEr-D + SPICE) / 2: " + reason}
