"""Real Korean technical prose for the synthetic corpus: sentences from the Korean LibreOffice help
(MPL-2.0; see `text/prose_ko.LICENSE`), explanatory "~합니다" prose with numbers, units and short
English terms, beside the template sentences of `lecture_text`.

`text/prose_ko.tsv` holds `text<TAB>text_pron` pairs, made by `tools/extract_prose_ko.py` from the
Debian package `libreoffice-help-ko`, with readings of digits, symbols and Latin from soritune's
reading code (the same conventions the reading-aware CER forgives).

Train/test discipline, as for templates: a sentence is on the test side when a hash of its text
says so (a fixed quarter), or when it contains held-out vocabulary or a held-out number of
`lecture_text`; so the two sides share no sentence and the train side never sees held-out items.

    >>> prose = ProseSentences(seed=0, held_out=False)
    >>> s = prose.next()   # Sentence(text, text_pron, 'prose-train-libreoffice', 'lecture')
"""

from __future__ import annotations

import functools
import random
import re
import zlib
from importlib import resources

from soritune.data.lecture_text import Sentence, held_out_vocabulary, is_held_out_number

_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


def _held_out_pattern() -> re.Pattern:
    parts = []
    for item in held_out_vocabulary():
        p = re.escape(item)
        parts.append(rf"(?<![A-Za-z]){p}(?![A-Za-z])" if re.search(r"[A-Za-z]", item) else p)
    return re.compile("|".join(parts))


def is_held_out(text: str, pattern: re.Pattern | None = None) -> bool:
    """True when a prose sentence belongs to the test side."""
    if zlib.crc32(text.encode("utf-8")) % 4 == 0:
        return True
    if any(is_held_out_number(m.rstrip(",")) for m in _NUMBER.findall(text)):
        return True
    return bool((pattern or _held_out_pattern()).search(text))


@functools.lru_cache(maxsize=1)
def load_pairs() -> tuple[tuple[str, str], ...]:
    """(text, text_pron) of every sentence in the committed prose file, in file order."""
    path = resources.files("soritune.data") / "text" / "prose_ko.tsv"
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            text, pron = line.split("\t")
            pairs.append((text, pron))
    return tuple(pairs)


@functools.lru_cache(maxsize=2)
def sides() -> dict[bool, tuple[tuple[str, str], ...]]:
    """{held_out: pairs}: the sentences of each side."""
    pattern = _held_out_pattern()
    out: dict[bool, list] = {False: [], True: []}
    for text, pron in load_pairs():
        out[is_held_out(text, pattern)].append((text, pron))
    return {k: tuple(v) for k, v in out.items()}


class ProseSentences:
    """A seeded stream of prose sentences from one side (train/dev or test), without repeats until
    the side is used up (then a new pass in a new order)."""

    def __init__(self, seed: int | str = 0, held_out: bool = False):
        self.seed, self.held_out = seed, held_out
        self._rng = random.Random(f"soritune-prose:{seed}:{int(held_out)}")
        self._queue: list[tuple[str, str]] = []

    def next(self) -> Sentence:
        if not self._queue:
            self._queue = list(sides()[self.held_out])
            self._rng.shuffle(self._queue)
        text, pron = self._queue.pop()
        return Sentence(text, pron, f"prose-{'test' if self.held_out else 'train'}-libreoffice", "lecture")
