"""Reading-aware CER: count an error only where the readings differ.

`3개` and `세 개`, `AI` and `에이아이`, `50%` and `오십 퍼센트` are the same speech written two ways.
Each number, Latin token, unit and currency sign in a (normalised) text becomes a span with a set
of readings (`soritune.eval.readings_ko`); the reading of a text is one choice per span. We pick
the hypothesis reading closest to the reference, then the reference reading closest to that
hypothesis (the kocer approach, https://pypi.org/project/kocer/, re-implemented on rapidfuzz so
no alignment runs in Python). Where the manifest carries a pronunciation transcript
(`text_pron`, e.g. KsponSpeech `(3개)/(세 개)`), it is tried as a second reference and the one
with fewer errors counts.

The denominator stays the CER denominator (spelling side, spaces removed), so it does not depend
on which readings were chosen: `cer_reading <= cer` is not guaranteed, but the two share a scale.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import product
from typing import Callable, Sequence

from soritune.eval import readings_ko as ko
from soritune.eval.metrics import EditCounts, edit_counts
from soritune.eval.normalize import no_spaces, normalize_text

_UNIT_KEYS = sorted(ko.UNITS, key=len, reverse=True)
_UNIT_ALT = "|".join(re.escape(u) for u in _UNIT_KEYS)
_TIME = re.compile(r"(?<![\d.:])(\d{1,2}):(\d{2})(?![\d.:])")
_CURRENCY = re.compile(r"([$₩€£¥]) ?(\d+(?:\.\d+)?)")
_UNIT = re.compile(r"(?<=\d) ?(" + _UNIT_ALT + r")(?![a-z])")
_UNIT_AT_START = re.compile(r"^ ?(" + _UNIT_ALT + r")(?![a-z])")
_GLUED_DIGITS = re.compile(
    r"(?<=[a-z])\d+(?![.\d])|(?<![\d.])\d+(?!(?:" + _UNIT_ALT + r")(?![a-z]))(?=[a-z])"
)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_LATIN = re.compile(r"[a-z]+")
_PERCENT = re.compile(r"%")

Span = tuple[int, int, list[str]]


def _unit_options(symbol: str) -> list[str]:
    out = [symbol, *ko.UNITS[symbol]]
    if symbol.isalpha():
        out += ko.spell_latin(symbol)
    return list(dict.fromkeys(out))


def _following(text: str, end: int) -> str:
    """The few characters after a number, with a unit symbol replaced by its reading."""
    after = text[end:end + 8]
    return _UNIT_AT_START.sub(lambda m: ko.UNITS[m.group(1)][0], after, count=1)


def find_spans(text: str) -> list[Span]:
    """(start, end, readings) for every number / Latin / unit / currency span, first rule wins on
    overlap (3:30 is a time, not 3 and 30). Readings always include the text as written."""
    found: list[Span] = []

    def add(start: int, end: int, options: list[str]) -> None:
        if len(options) > 1 and not any(start < e and s < end for s, e, _ in found):
            found.append((start, end, options))

    for m in _TIME.finditer(text):
        add(m.start(), m.end(), ko.time_readings(m.group(1), m.group(2)))
    for m in _CURRENCY.finditer(text):
        word, num = ko.CURRENCY[m.group(1)], m.group(2)
        add(m.start(), m.end(), list(dict.fromkeys([m.group(), num + word, ko.sino(num) + word])))
    for m in _UNIT.finditer(text):
        add(m.start(1), m.end(1), _unit_options(m.group(1)))
    for m in _GLUED_DIGITS.finditer(text):
        add(m.start(), m.end(), ko.english_digit_readings(m.group()))
    for m in _NUMBER.finditer(text):
        add(m.start(), m.end(), ko.number_readings(m.group(), _following(text, m.end())))
    for m in _LATIN.finditer(text):
        add(m.start(), m.end(), ko.latin_readings(m.group()))
    for m in _PERCENT.finditer(text):
        add(m.start(), m.end(), ["%", *ko.UNITS["%"]])
    return sorted(found)


def _build(text: str, spans: list[Span], choice: list[str]) -> str:
    for (start, end, _), rep in sorted(zip(spans, choice), key=lambda x: x[0][0], reverse=True):
        text = text[:start] + rep + text[end:]
    return text


def best_reading(text: str, score: Callable[[str], float], limit: int = 64) -> str:
    """The reading of `text` with the lowest score. All combinations when there are at most
    `limit`; otherwise each span is chosen on its own, the others kept as written."""
    spans = find_spans(text)
    if not spans:
        return text
    n_combos = 1
    for _, _, opts in spans:
        n_combos *= len(opts)
        if n_combos > limit:
            break
    if n_combos <= limit:
        candidates = (_build(text, spans, list(c)) for c in product(*(o for _, _, o in spans)))
        return min(candidates, key=score)
    base = [o[0] for _, _, o in spans]
    choice = [min(opts, key=lambda opt, i=i: score(_build(text, spans, base[:i] + [opt] + base[i + 1:])))
              for i, (_, _, opts) in enumerate(spans)]
    return _build(text, spans, choice)


@dataclass(frozen=True)
class ReadingMatch:
    """The chosen readings (spaces removed) and their edit counts."""

    ref_reading: str
    hyp_reading: str
    counts: EditCounts
    used_pron: bool


def match_readings(ref_norm: str, hyp_norm: str, pron_norm: str | None = None) -> ReadingMatch:
    """Choose readings of reference (spelling side, and pronunciation side when given) and
    hypothesis that minimise the character edit distance; return their counts."""
    from rapidfuzz.distance import Levenshtein

    refs = [ref_norm] + ([pron_norm] if pron_norm and pron_norm != ref_norm else [])
    best: ReadingMatch | None = None
    for k, ref in enumerate(refs):
        ref_ns = no_spaces(ref)
        hyp = best_reading(hyp_norm, lambda c: Levenshtein.distance(ref_ns, no_spaces(c)))  # noqa: B023 - called now
        hyp_ns = no_spaces(hyp)
        ref_r = no_spaces(best_reading(ref, lambda c: Levenshtein.distance(no_spaces(c), hyp_ns)))  # noqa: B023 - called now
        counts = edit_counts(ref_r, hyp_ns)
        if best is None or counts.errors < best.counts.errors:
            best = ReadingMatch(ref_r, hyp_ns, counts, used_pron=k == 1)
    assert best is not None
    return best


def reading_counts(ref_norm: str, hyp_norm: str, pron_norm: str | None = None) -> EditCounts:
    """Edit counts between the best-matching readings (see match_readings)."""
    return match_readings(ref_norm, hyp_norm, pron_norm).counts


def cer_reading(refs: Sequence[str], hyps: Sequence[str], prons: Sequence[str | None] | None = None) -> float:
    """Micro-averaged reading-aware CER; denominator = the CER denominator (spelling side)."""
    prons = prons if prons is not None else [None] * len(refs)
    errors = n_ref = 0
    for r, h, p in zip(refs, hyps, prons, strict=True):
        rn = normalize_text(r)
        counts = reading_counts(rn, normalize_text(h), normalize_text(p) if p else None)
        errors += counts.errors
        n_ref += len(no_spaces(rn))
    if n_ref == 0:
        return 0.0 if errors == 0 else float("inf")
    return errors / n_ref
