"""Decode transcript bytes whose encoding is not known in advance (CP949 / EUC-KR / UTF-8).

KsponSpeech's per-utterance `.txt` files are CP949; its `.trn` scripts are UTF-8 or CP949
depending on who re-packed them; AI-Hub labels are UTF-8. Nothing here assumes: each file (or
line) is decoded by the first encoding that decodes it *strictly*, in the order

    BOM (UTF-8 / UTF-16)  ->  UTF-8  ->  EUC-KR  ->  CP949

(UTF-8 first because CP949 text is practically never valid UTF-8, while the reverse is often
true for short byte strings; EUC-KR before CP949 only to report the narrower name). Bytes that
no encoding decodes raise `EncodingError` (reason `bad_encoding`) rather than being guessed at.

`clean_text` removes what never belongs in a transcript: BOMs, zero-width characters, C0/C1
control characters (whitespace excepted); and composes to NFC.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from soritune.errors import EncodingError

ENCODINGS = ("utf-8", "euc-kr", "cp949")
_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))
# BOM / zero-width space, joiners, word joiner, soft hyphen, and control characters but \t \n \r
_INVISIBLE = re.compile("[\ufeff\u200b\u200c\u200d\u2060\u00ad\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def clean_text(text: str) -> str:
    """Strip BOMs, zero-width and control characters; NFC. Whitespace is left to the caller."""
    return unicodedata.normalize("NFC", _INVISIBLE.sub("", text))


def _order(prefer: str | None) -> tuple[str, ...]:
    if prefer is None or prefer not in ENCODINGS:
        return ENCODINGS
    return (prefer,) + tuple(e for e in ENCODINGS if e != prefer)


def decode_text(data: bytes, prefer: str | None = None, where: str = "<bytes>") -> tuple[str, str]:
    """Decode `data` strictly; returns (text, encoding name). `prefer` is tried first (a hint).

    The text is not cleaned (see `clean_text`); a BOM is consumed.
    """
    for bom, name in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(name), name
            except UnicodeDecodeError as e:
                raise EncodingError(where, f"{name} BOM but {e.reason} at byte {e.start}") from None
    for name in _order(prefer):
        try:
            return data.decode(name), name
        except UnicodeDecodeError:
            continue
    raise EncodingError(where)


def detect_encoding(sample: bytes) -> str:
    """Best encoding for a file from a sample of its first bytes (a cut multi-byte tail is allowed).

    Returns 'utf-8' or 'cp949' (the two seen in the wild for Korean scripts); 'utf-8' for ASCII.
    """
    if sample.startswith(b"\xef\xbb\xbf"):
        return "utf-8"
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as e:
        if e.start >= len(sample) - 3 and e.reason == "unexpected end of data":
            return "utf-8"
    try:
        sample.decode("cp949")
        return "cp949"
    except UnicodeDecodeError as e:
        if e.start >= len(sample) - 1:
            return "cp949"
    return "utf-8"  # neither decodes the sample: lines are decoded one by one and reported


def read_text_file(path: str | Path) -> tuple[str, str]:
    """Read and decode a small text file; returns (text, encoding). OSError propagates."""
    data = Path(path).read_bytes()
    return decode_text(data, where=str(path))
