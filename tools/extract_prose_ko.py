"""Extract Korean technical prose from the LibreOffice help (Debian `libreoffice-help-ko`, MPL-2.0)
into `src/soritune/data/text/prose_ko.tsv`: `text<TAB>text_pron` per sentence, for the synthetic
corpus (`soritune.data.lecture_prose`).

    apt-get update && apt-get install -y libreoffice-help-ko      # or: apt-get download + dpkg-deb -x
    PYTHONPATH=src python tools/extract_prose_ko.py [--help-dir /usr/share/libreoffice/help/ko]

Reproducible: same package version, same file. Steps: every <p> of every help page (sorted paths) ->
sentences -> keep declarative Korean sentences of 12-80 characters whose digits, units, % and short
Latin terms (at most 4 letters, e.g. PDF, URL) soritune's reading code can read (eval.reading.find_spans:
the readings the reading-aware CER forgives; the first spoken reading is taken) and whose other
characters are Hangul, spaces and plain punctuation -> de-duplicated -> a fixed, hash-ordered sample.
"""

from __future__ import annotations

import argparse
import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path

from soritune.data.lecture_reading import is_speakable, month, native, read_number
from soritune.eval.reading import find_spans
from soritune.eval.readings_ko import counter_kind

OUT = Path(__file__).resolve().parents[1] / "src" / "soritune" / "data" / "text" / "prose_ko.tsv"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_ALLOWED = re.compile(r"[가-힣0-9A-Za-z %.,?!'\"()·:\-]+")
_PUNCT = re.compile(r"[.,?!'\"()·:\-]+")
_LATIN = re.compile(r"[A-Za-z]+")
_GROUPED = re.compile(r"(?<![\d.,])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\d,])|(?<![\d.,])\d+\.\d+(?![\d.])")


class _Paragraphs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.depth, self.buf, self.out = 0, [], []

    def handle_starttag(self, tag, attrs):
        if tag == "p":
            self.depth += 1

    def handle_endtag(self, tag):
        if tag == "p" and self.depth:
            self.depth -= 1
            if not self.depth:
                self.out.append(" ".join("".join(self.buf).split()))
                self.buf = []

    def handle_data(self, data):
        if self.depth:
            self.buf.append(data)


def _number(written: str, following: str) -> str:
    """Sino-Korean (read_number), native before a native counter (3개 -> 세), 6월 -> 유월."""
    n = int(written)
    if following.startswith("월") and 1 <= n <= 12:
        return month(n).pron[:-1]
    if counter_kind(following) == "native" and 1 <= n <= 99:
        return native(n)
    return read_number(written)


def reading(text: str) -> str | None:
    """The spoken (Hangul) form of a sentence, or None when some part has no reading. Latin terms must
    be acronyms (capitals, at most 4 letters): spelled by letter names, as Korean speakers read them."""
    if not _ALLOWED.fullmatch(text) or any(len(w) > 4 or not w.isupper() for w in _LATIN.findall(text)):
        return None
    low = _GROUPED.sub(lambda m: read_number(m.group()), text).lower()
    out, pos = [], 0
    for start, end, options in find_spans(low):
        written = low[start:end]
        if written.isdigit():
            spoken = _number(written, low[end:end + 8].lstrip())
        else:
            spoken = next((o for o in options if o != written and is_speakable(o.replace(" ", "") or "x")), None)
        if spoken is None:
            return None
        out += [low[pos:start], spoken]
        pos = end
    out.append(low[pos:])
    pron = " ".join(_PUNCT.sub(" ", "".join(out)).split())
    return pron if pron and is_speakable(pron) else None


def sentences(help_dir: Path):
    for page in sorted(help_dir.rglob("*.html")):
        parser = _Paragraphs()
        parser.feed(page.read_text(encoding="utf-8", errors="replace"))
        for para in parser.out:
            for s in _SENTENCE_END.split(para):
                s = s.strip()
                hangul = sum("가" <= c <= "힣" for c in s)
                if 12 <= len(s) <= 80 and s.endswith("다.") and hangul >= 0.6 * len(s.replace(" ", "")):
                    yield s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--help-dir", type=Path, default=Path("/usr/share/libreoffice/help/ko"))
    ap.add_argument("--n", type=int, default=3000, help="sentences to keep")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    if not args.help_dir.is_dir():
        raise SystemExit(f"{args.help_dir} not found: apt-get install -y libreoffice-help-ko")
    pairs, seen, candidates = [], set(), 0
    for s in sentences(args.help_dir):
        candidates += 1
        if s in seen:
            continue
        seen.add(s)
        pron = reading(s)
        if pron:
            pairs.append((s, pron))
    pairs.sort(key=lambda p: hashlib.sha1(p[0].encode()).hexdigest())
    kept = pairs[:args.n]
    header = [
        "# Korean technical prose: sentences of the LibreOffice help (Debian package libreoffice-help-ko),",
        "# Copyright 2000, 2010 Oracle and/or its affiliates; LibreOffice contributors. License: MPL-2.0",
        "# (https://mozilla.org/MPL/2.0/); see prose_ko.LICENSE. Made by tools/extract_prose_ko.py:",
        f"# {candidates} candidate sentences, {len(seen)} unique, {len(pairs)} readable, {len(kept)} kept.",
        "# text<TAB>text_pron (Hangul reading from soritune's reading code)",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(header + [f"{t}\t{p}" for t, p in kept]) + "\n", encoding="utf-8")
    print(f"{args.out}: {len(kept)} sentences ({candidates} candidates, {len(seen)} unique, {len(pairs)} readable), "
          f"{args.out.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
