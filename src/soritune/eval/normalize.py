"""Scoring normalisation, applied to reference and hypothesis alike before any metric.

Name `soritune-ko-score`, version in NORMALIZATION_VERSION; every report records both, so two
numbers are comparable only when they carry the same pair. Steps, in this order:

1. NFKC (full-width `ＡＩ` -> `AI`, `㎞` -> `km`, `℃` -> `°C`); Hangul syllables stay composed.
   Never NFKD (it splits syllables into jamo) and never Whisper's `BasicTextNormalizer` (it
   deletes parenthesised spans).
2. Delete format characters (Unicode category Cf: zero-width space/joiners, BOM, soft hyphen).
3. Lower-case Latin letters only (Greek, Cyrillic and Hangul are left as they are).
4. Inside numbers: delete a `,` between digits (`1,000` -> `1000`); keep `.` and `:` between
   digits (`3.5`, `3:30`), because they are part of the number, not punctuation.
5. Every other Unicode punctuation character (categories P*) becomes a space, except `%`.
   Symbols (categories S*: `$ ₩ + ° ~`) are kept.
6. Collapse whitespace (tabs and newlines included) to single spaces, strip the ends.

Then each metric tokenises the result: CER removes all spaces, CER-with-spaces keeps them,
WER splits on spaces.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

NORMALIZATION_NAME = "soritune-ko-score"
NORMALIZATION_VERSION = "1.0"
NORMALIZATION = {"name": NORMALIZATION_NAME, "version": NORMALIZATION_VERSION}

_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3})")
_NUMBER_PUNCT = re.compile(r"(?<=\d)[.:](?=\d)")
_PLACEHOLDER = {".": "\ue000", ":": "\ue001"}  # private-use code points survive step 5
_RESTORE = {v: k for k, v in _PLACEHOLDER.items()}
_WS = re.compile(r"\s+")


@cache
def _is_punct(ch: str) -> bool:
    return ch != "%" and unicodedata.category(ch).startswith("P")


@cache
def _is_format(ch: str) -> bool:
    return unicodedata.category(ch) == "Cf"


def _latin_lower_table() -> dict[int, str]:
    table = {}
    for cp in range(0x41, 0x250):  # Basic Latin .. Latin Extended-B
        ch = chr(cp)
        if ch.isupper() and "LATIN" in unicodedata.name(ch, ""):
            table[cp] = ch.lower()
    for cp in range(0x1E00, 0x1F00):  # Latin Extended Additional
        ch = chr(cp)
        if ch.isupper():
            table[cp] = ch.lower()
    return table


_LOWER = _latin_lower_table()


def normalize_text(text: str) -> str:
    """The scoring normalisation (steps above). Idempotent: normalize(normalize(x)) == normalize(x)."""
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch for ch in text if not _is_format(ch))
    text = text.translate(_LOWER)
    text = _THOUSANDS.sub("", text)
    text = _NUMBER_PUNCT.sub(lambda m: _PLACEHOLDER[m.group()], text)
    text = "".join(" " if _is_punct(ch) else ch for ch in text)
    text = "".join(_RESTORE.get(ch, ch) for ch in text)
    return _WS.sub(" ", text).strip()


def no_spaces(normalized: str) -> str:
    """The CER view of a normalised text: all spaces removed."""
    return normalized.replace(" ", "")


def words(normalized: str) -> list[str]:
    """The WER view of a normalised text: split on spaces."""
    return normalized.split()
