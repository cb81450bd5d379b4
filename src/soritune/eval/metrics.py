"""Korean-first ASR metrics, micro-averaged over a set: sum of errors / sum of reference units.

All edit distances come from rapidfuzz's Levenshtein opcodes (the same call jiwer makes), so the
counts equal jiwer's for the same token sequences. Inputs to the per-utterance functions are
texts already passed through `soritune.eval.normalize.normalize_text`.

- `cer`: characters, spaces removed (primary for Korean).
- `cer_spaced`: characters, a space counts as a character.
- `wer`: words split on spaces.
- `swer`: the hypothesis is re-spaced like the reference before WER (KsponSpeech paper's
  space-normalised WER): both sides are aligned character by character without spaces, and a
  space is put into the hypothesis wherever the aligned reference has one.
- `cer_reading`: in `soritune.eval.reading` (it builds on the counts here, so it lives there).

The set-level functions (`cer`, `wer`, ...) take raw texts and normalise them; an empty
reference adds 0 to the denominator and its insertions to the numerator (never dropped).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Sequence

from soritune.eval.normalize import no_spaces, normalize_text, words


@dataclass(frozen=True)
class EditCounts:
    """Hits, substitutions, deletions, insertions; n_ref = hits + sub + del (reference units)."""

    hits: int = 0
    sub: int = 0
    dele: int = 0
    ins: int = 0

    @property
    def n_ref(self) -> int:
        return self.hits + self.sub + self.dele

    @property
    def errors(self) -> int:
        return self.sub + self.dele + self.ins

    def __add__(self, other: EditCounts) -> EditCounts:
        return EditCounts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def rate(self, denominator: int | None = None) -> float | None:
        """errors / denominator (default n_ref); None where the denominator is 0 and errors > 0."""
        n = self.n_ref if denominator is None else denominator
        if n == 0:
            return 0.0 if self.errors == 0 else None
        return self.errors / n

    def as_dict(self) -> dict:
        return {"hits": self.hits, "sub": self.sub, "del": self.dele, "ins": self.ins,
                "errors": self.errors, "n_ref": self.n_ref}


def _as_ints(ref: Sequence[str], hyp: Sequence[str]) -> tuple[list[int], list[int]]:
    """Map tokens to ints (as jiwer does) so rapidfuzz compares exact tokens, not hashes."""
    ids: dict[str, int] = {}
    return ([ids.setdefault(t, len(ids)) for t in ref], [ids.setdefault(t, len(ids)) for t in hyp])


def edit_counts(ref: Sequence[str] | str, hyp: Sequence[str] | str) -> EditCounts:
    """Levenshtein alignment counts between two token sequences (a str is a sequence of chars)."""
    from rapidfuzz.distance import Levenshtein

    if not isinstance(ref, str) or not isinstance(hyp, str):
        ref, hyp = _as_ints(list(ref), list(hyp))
    hits = sub = dele = ins = 0
    for tag, i1, i2, j1, j2 in Levenshtein.opcodes(ref, hyp):
        if tag == "equal":
            hits += i2 - i1
        elif tag == "replace":
            sub += i2 - i1
        elif tag == "delete":
            dele += i2 - i1
        else:
            ins += j2 - j1
    return EditCounts(hits, sub, dele, ins)


def char_counts(ref_norm: str, hyp_norm: str) -> EditCounts:
    """CER counts: characters with all spaces removed."""
    return edit_counts(no_spaces(ref_norm), no_spaces(hyp_norm))


def char_counts_spaced(ref_norm: str, hyp_norm: str) -> EditCounts:
    """CER-with-spaces counts: a space is a character."""
    return edit_counts(ref_norm, hyp_norm)


def word_counts(ref_norm: str, hyp_norm: str) -> EditCounts:
    """WER counts: words split on spaces."""
    return edit_counts(words(ref_norm), words(hyp_norm))


def respace(ref_norm: str, hyp_norm: str) -> str:
    """Re-space the hypothesis like the reference (sWER): align both without spaces, character by
    character, and put a space before every hypothesis character aligned to a reference character
    that starts a word. A reference word boundary at a deleted span maps to the next aligned
    hypothesis character; characters inserted at a boundary stay with the preceding word."""
    from rapidfuzz.distance import Levenshtein

    ref_ns, hyp_ns = no_spaces(ref_norm), no_spaces(hyp_norm)
    if not hyp_ns:
        return ""
    starts: set[int] = set()  # indices into ref_ns that begin a word (except the first)
    pos = 0
    for w in words(ref_norm):
        if pos:
            starts.add(pos)
        pos += len(w)
    cuts: set[int] = set()  # indices into hyp_ns that get a space before them
    for tag, i1, i2, j1, _j2 in Levenshtein.opcodes(ref_ns, hyp_ns):
        if tag in ("equal", "replace"):
            cuts.update(j1 + (i - i1) for i in range(i1, i2) if i in starts)
        elif tag == "delete":
            if any(i in starts for i in range(i1, i2)):
                cuts.add(j1)
        # insert: hypothesis-only characters carry no reference boundary
    cuts.discard(0)
    cuts.discard(len(hyp_ns))
    out = []
    for j, ch in enumerate(hyp_ns):
        if j in cuts:
            out.append(" ")
        out.append(ch)
    return "".join(out)


def sword_counts(ref_norm: str, hyp_norm: str) -> EditCounts:
    """sWER counts: WER after re-spacing the hypothesis like the reference."""
    return word_counts(ref_norm, respace(ref_norm, hyp_norm))


# --- hallucination indicators --------------------------------------------------------------

_CHAR_LOOP = re.compile(r"(.{2,10}?)\1{3,}")
LOOP_DEFINITION = ("a word 4-gram occurring 3+ times, or a 2-10 character unit (spaces removed) "
                   "repeated 4+ times back to back")


def has_ngram_loop(hyp_norm: str, n: int = 4, min_count: int = 3) -> bool:
    """True when the output loops (LOOP_DEFINITION): some word n-gram occurs `min_count`+ times,
    or a short character unit repeats back to back (catches loops written without spaces)."""
    from collections import Counter

    ws = words(hyp_norm)
    if len(ws) >= n + min_count - 1:
        grams = Counter(tuple(ws[i:i + n]) for i in range(len(ws) - n + 1))
        if grams.most_common(1)[0][1] >= min_count:
            return True
    return bool(_CHAR_LOOP.search(no_spaces(hyp_norm)))


# --- set-level conveniences (raw texts in, micro-averaged rate out) -------------------------

def _total(refs: Sequence[str], hyps: Sequence[str], fn) -> EditCounts:
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    total = EditCounts()
    for r, h in zip(refs, hyps):
        total = total + fn(normalize_text(r), normalize_text(h))
    return total


def _rate(counts: EditCounts) -> float:
    rate = counts.rate()
    return float("inf") if rate is None else rate


def cer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Micro-averaged CER (spaces removed) after scoring normalisation."""
    return _rate(_total(refs, hyps, char_counts))


def cer_spaced(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Micro-averaged CER counting spaces as characters."""
    return _rate(_total(refs, hyps, char_counts_spaced))


def wer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Micro-averaged WER (split on spaces) after scoring normalisation."""
    return _rate(_total(refs, hyps, word_counts))


def swer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Micro-averaged space-normalised WER (hypothesis re-spaced like the reference)."""
    return _rate(_total(refs, hyps, sword_counts))

