"""ETRI transcript normalisation (KsponSpeech, AI-Hub): marks -> a spelling and a pronunciation side.

The rules are those of /shared/DATA_SPEC.md, applied in this order:

0. decode (done by the caller, see `soritune.data.encoding`); strip BOM / zero-width / control
   characters, NFC, collapse whitespace;
1. delete the noise tags `b/ l/ o/ n/ u/` where they start a token (after whitespace, `(` or at
   the start of the line);
2. delete `*` (unclear word: the word is kept);
3. turn ` +` into `+ `; verbatim mode deletes `+` and keeps the word, fluent mode deletes the
   repeated word (`그거+ 그거` -> `그거 그거` | `그거`);
4. resolve every dual transcription `(spelling)/(pronunciation)`, tolerating spaces around `/`
   and a missing `/` between `)(`: spelling -> `text`, pronunciation -> `text_pron`
   (`pron_first=True` for sets that write the pronunciation first);
5. drop the filler slash `아/` -> `아` (fluent mode drops the word);
6. delete `[` and `]` (spoken digit strings);
7. delete `- @ $ ^ & = : ; #`; `. , ? !` and `%` are kept;
8. collapse whitespace; nothing left -> not ok, reason `empty`;
9. anything still holding `(`, `)` or `/` -> not ok, reason `malformed` (never guessed at).
   A dual with one side empty and the other not (`(SNS)/()`) is `malformed` too.

`normalize_etri` is pure, allocation-light and uses compiled regexes (~10 us a line), so every
module (prepare, eval, synthetic corpus) can call it per utterance. When `ok` is False, `text`
and `text_pron` hold what normalisation reached (for the quarantine report), not usable labels.
"""

from __future__ import annotations

import re
from typing import Literal, NamedTuple

from soritune.data.encoding import clean_text

NORMALIZATION_VERSION = "soritune-etri-1"
Mode = Literal["verbatim", "fluent"]
MODES = ("verbatim", "fluent")

_WS = re.compile(r"\s+")
_NOISE = re.compile(r"(?:(?<=[\s(])|^)(?:[blonu]/)+")
_SPACE_PLUS = re.compile(r"\s+\+")
_REPEATED_WORD = re.compile(r"[^\s()/+]*\+")
_DUAL = re.compile(r"\(([^()]*)\)\s*/?\s*\(([^()]*)\)")
_FILLER = re.compile(r"([^\s/()]+)/(?=[\s.,?!]|$)")
_FILLER_WORD = re.compile(r"[^\s/()]+/(?=[\s.,?!]|$)")
_DROP = str.maketrans("", "", "[]-@$^&=:;#")
_MALFORMED = re.compile(r"[()/]")


class NormResult(NamedTuple):
    """`text` (spelling side), `text_pron` (pronunciation side); `reason` is set when not ok."""

    text: str
    text_pron: str
    ok: bool
    reason: str | None


def collapse(text: str) -> str:
    """Collapse runs of whitespace to one space and strip the ends."""
    return _WS.sub(" ", text).strip()


def _split_duals(s: str, pron_first: bool) -> tuple[str, str, bool]:
    """Step 4: one string with duals -> (spelling side, pronunciation side, a side was empty)."""
    if "(" not in s:
        return s, s, False
    spell, pron = [], []
    pos = 0
    lopsided = False
    for m in _DUAL.finditer(s):
        before = s[pos : m.start()]
        a, b = m.group(1).strip(), m.group(2).strip()
        lopsided = lopsided or (not a) != (not b)
        if pron_first:
            a, b = b, a
        spell += (before, a)
        pron += (before, b)
        pos = m.end()
    rest = s[pos:]
    spell.append(rest)
    pron.append(rest)
    return "".join(spell), "".join(pron), lopsided


def _finish(side: str, mode: Mode) -> str:
    """Steps 5-8 on one side."""
    if "/" in side:
        side = _FILLER.sub(r"\1", side) if mode == "verbatim" else _FILLER_WORD.sub("", side)
    return collapse(side.translate(_DROP))


def normalize_etri(raw: str, mode: Mode = "verbatim", *, pron_first: bool = False) -> NormResult:
    """Normalise one ETRI-marked transcript line (see the module docstring for the rules).

    >>> normalize_etri("b/ (70%)/(칠 십 퍼센트) 확률이라니 아/ n/")
    NormResult(text='70% 확률이라니 아', text_pron='칠 십 퍼센트 확률이라니 아', ok=True, reason=None)
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    s = collapse(clean_text(raw))  # 0
    if "/" in s:
        s = _NOISE.sub("", s)  # 1
    s = s.replace("*", "")  # 2
    if "+" in s:  # 3
        s = _SPACE_PLUS.sub("+ ", s)
        if mode == "fluent":
            s = _REPEATED_WORD.sub("", s)
        s = s.replace("+", "")
    spell, pron, lopsided = _split_duals(s, pron_first)  # 4
    text = _finish(spell, mode)  # 5-8
    text_pron = text if pron is spell else _finish(pron, mode)
    if not text and not text_pron:
        return NormResult("", "", False, "empty")
    if lopsided or not text or not text_pron or _MALFORMED.search(text) or _MALFORMED.search(text_pron):  # 9
        return NormResult(text, text_pron, False, "malformed")
    return NormResult(text, text_pron, True, None)


def normalize_basic(raw: str) -> NormResult:
    """For transcripts without ETRI marks: clean (BOM, zero-width, NFC) and collapse whitespace.

    `text_pron` equals `text`; an empty result is reason `empty`.
    """
    text = collapse(clean_text(raw))
    if not text:
        return NormResult("", "", False, "empty")
    return NormResult(text, text, True, None)
