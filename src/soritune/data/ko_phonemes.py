"""Hangul reading (`text_pron`) -> IPA phonemes for the Kokoro voice (`soritune.data.kokoro_tts`).

Not a full Korean G2P: a jamo -> IPA table plus the few sound rules that decide intelligibility
(measured: with them, zero-shot Whisper-base reads Kokoro's Korean at CER ~0.3, as with a full G2P).
The rules apply inside a word (between syllables written without a space):

- liaison: a coda moves onto a following null onset (먹어 -> 머거); of a complex coda only the
  second consonant moves (읽어 -> 일거, 넋이 -> 넉시); ㅎ drops before a vowel (좋아 -> 조아);
  ㄷ/ㅌ + 이 palatalise (같이 -> 가치);
- aspiration: ㄱㄷㅂㅈ next to ㅎ become ㅋㅌㅍㅊ (좋다 -> 조타, 축하 -> 추카);
- seven coda classes: k n t l m p ŋ (꽃 -> 꼳, 닭 -> 닥, 앉다 -> 안다);
- obstruent nasalisation before ㄴ/ㅁ: k t p -> ŋ n m (합니다 -> 함니다, 국물 -> 궁물);
- ㄴㄹ and ㄹㄴ -> ㄹㄹ (신라 -> 실라, 설날 -> 설랄); ㄹ after another coda -> ㄴ (심리 -> 심니);
- lenis ㄱㄷㅂㅈ voiced between voiced sounds (아기 -> [aɡi]), plain at the start of a word;
- ㅅ/ㅆ palatalised before i or j (시 -> [ɕi]).

Kokoro's phoneme vocabulary has no mark for Korean tense consonants, so ㄲㄸㅃㅆㅉ are rendered
as the plain ones (k t p s ʨ), and post-obstruent tensing (학교 -> 학꾜) is invisible too.
Aspirated consonants carry ʰ. Only characters of Kokoro's vocabulary are emitted.
"""

from __future__ import annotations

from itertools import pairwise

_INITIALS = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"
_VOWELS = "ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ"
_FINALS = ("", "ㄱ", "ㄲ", "ㄳ", "ㄴ", "ㄵ", "ㄶ", "ㄷ", "ㄹ", "ㄺ", "ㄻ", "ㄼ", "ㄽ", "ㄾ", "ㄿ", "ㅀ", "ㅁ", "ㅂ",
           "ㅄ", "ㅅ", "ㅆ", "ㅇ", "ㅈ", "ㅊ", "ㅋ", "ㅌ", "ㅍ", "ㅎ")
_COMPLEX = {"ㄳ": "ㄱㅅ", "ㄵ": "ㄴㅈ", "ㄶ": "ㄴㅎ", "ㄺ": "ㄹㄱ", "ㄻ": "ㄹㅁ", "ㄼ": "ㄹㅂ", "ㄽ": "ㄹㅅ",
            "ㄾ": "ㄹㅌ", "ㄿ": "ㄹㅍ", "ㅀ": "ㄹㅎ", "ㅄ": "ㅂㅅ"}
# which consonant of a complex coda is heard before a consonant or a pause
_COMPLEX_HEARD = {"ㄳ": "ㄱ", "ㄵ": "ㄴ", "ㄶ": "ㄴ", "ㄺ": "ㄱ", "ㄻ": "ㅁ", "ㄼ": "ㄹ", "ㄽ": "ㄹ", "ㄾ": "ㄹ",
                  "ㄿ": "ㅂ", "ㅀ": "ㄹ", "ㅄ": "ㅂ"}
# the seven coda classes
_CODA_CLASS = {"ㄱ": "k", "ㄲ": "k", "ㅋ": "k", "ㄴ": "n", "ㄷ": "t", "ㅅ": "t", "ㅆ": "t", "ㅈ": "t", "ㅊ": "t",
               "ㅌ": "t", "ㅎ": "t", "ㄹ": "l", "ㅁ": "m", "ㅂ": "p", "ㅍ": "p", "ㅇ": "ŋ"}
_NASALISED = {"k": "ŋ", "t": "n", "p": "m"}
_ASPIRATED = {"ㄱ": "ㅋ", "ㄲ": "ㅋ", "ㄷ": "ㅌ", "ㅅ": "ㅌ", "ㅈ": "ㅊ", "ㅂ": "ㅍ"}
_ONSET_IPA = {"ㄱ": "k", "ㄲ": "k", "ㅋ": "kʰ", "ㄷ": "t", "ㄸ": "t", "ㅌ": "tʰ", "ㅂ": "p", "ㅃ": "p", "ㅍ": "pʰ",
              "ㅈ": "ʨ", "ㅉ": "ʨ", "ㅊ": "ʨʰ", "ㅅ": "s", "ㅆ": "s", "ㅎ": "h", "ㄴ": "n", "ㅁ": "m", "ㄹ": "ɾ",
              "ㅇ": ""}
_LENIS_VOICED = {"ㄱ": "ɡ", "ㄷ": "d", "ㅂ": "b", "ㅈ": "ʥ"}
_VOWEL_IPA = {"ㅏ": "a", "ㅐ": "ɛ", "ㅑ": "ja", "ㅒ": "jɛ", "ㅓ": "ʌ", "ㅔ": "e", "ㅕ": "jʌ", "ㅖ": "je", "ㅗ": "o",
              "ㅘ": "wa", "ㅙ": "wɛ", "ㅚ": "we", "ㅛ": "jo", "ㅜ": "u", "ㅝ": "wʌ", "ㅞ": "we", "ㅟ": "wi",
              "ㅠ": "ju", "ㅡ": "ɯ", "ㅢ": "ɰi", "ㅣ": "i"}
_VOICED_CODA = ("", "n", "m", "ŋ", "l")  # a preceding open syllable or sonorant coda voices a lenis onset
_PUNCTUATION = ".,?!"


class _Syllable:
    __slots__ = ("coda", "coda_class", "onset", "vowel")

    def __init__(self, onset: str, vowel: str, coda: str):
        self.onset, self.vowel, self.coda = onset, vowel, coda  # onset "ㅇ" = no consonant
        self.coda_class = ""

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"{self.onset}{self.vowel}{self.coda}"


def decompose(syllable: str) -> tuple[str, str, str]:
    """'각' -> ('ㄱ', 'ㅏ', 'ㄱ'); the coda is '' for an open syllable."""
    code = ord(syllable) - 0xAC00
    if not 0 <= code < 11172:
        raise ValueError(f"not a Hangul syllable: {syllable!r}")
    return _INITIALS[code // 588], _VOWELS[(code % 588) // 28], _FINALS[code % 28]


def _split(coda: str) -> tuple[str, str]:
    """(kept, last) consonants of a coda: 'ㄺ' -> ('ㄹ', 'ㄱ'), 'ㄱ' -> ('', 'ㄱ')."""
    pair = _COMPLEX.get(coda)
    return (pair[0], pair[1]) if pair else ("", coda)


def _join(a: _Syllable, b: _Syllable) -> None:
    """Apply the sound rules at the boundary between two syllables of one word."""
    if a.coda and b.onset == "ㅇ" and a.coda != "ㅇ":  # liaison
        kept, moving = _split(a.coda)
        a.coda = kept
        if moving != "ㅎ":
            b.onset = {"ㄷ": "ㅈ", "ㅌ": "ㅊ"}.get(moving, moving) if b.vowel == "ㅣ" else moving
    elif a.coda and b.onset == "ㅎ":
        kept, last = _split(a.coda)
        if last in _ASPIRATED:
            a.coda, b.onset = kept, _ASPIRATED[last]
    elif a.coda and _split(a.coda)[1] == "ㅎ":
        kept = _split(a.coda)[0]
        if b.onset in ("ㄱ", "ㄷ", "ㅈ"):
            a.coda, b.onset = kept, _ASPIRATED[b.onset]
        elif b.onset == "ㅅ":
            a.coda, b.onset = kept, "ㅆ"
        elif b.onset == "ㄴ":
            a.coda = kept or "ㄴ"
    heard = _COMPLEX_HEARD.get(a.coda, a.coda)
    cls = _CODA_CLASS.get(heard, "")
    if b.onset == "ㄹ" and cls == "n":
        cls = "l"  # ㄴㄹ -> ㄹㄹ
    elif b.onset == "ㄹ" and cls not in ("", "l"):
        b.onset = "ㄴ"  # 심리 -> 심니, 국립 -> 궁닙 (then nasalised below)
    elif b.onset == "ㄴ" and cls == "l":
        b.onset = "ㄹ"  # ㄹㄴ -> ㄹㄹ
    if b.onset in ("ㄴ", "ㅁ") and cls in _NASALISED:
        cls = _NASALISED[cls]
    a.coda_class = cls


def _render(syllables: list[_Syllable]) -> str:
    out = []
    prev_class = None  # None: word start
    for s in syllables:
        vowel = _VOWEL_IPA[s.vowel]
        if s.onset == "ㄹ":
            onset = "l" if prev_class == "l" else "ɾ"
        elif s.onset in _LENIS_VOICED and prev_class in _VOICED_CODA:
            onset = _LENIS_VOICED[s.onset]
        elif s.onset in ("ㅅ", "ㅆ") and vowel[0] in "ij":
            onset = "ɕ"
        else:
            onset = _ONSET_IPA[s.onset]
        if onset and vowel == "ɰi":
            vowel = "i"  # 희 -> hi
        if onset and onset[0] in "ʨʥɕ" and vowel[0] == "j":
            vowel = vowel[1:]  # 져 -> ʨʌ, 셔 -> ɕʌ
        out.append(onset + vowel + s.coda_class)
        prev_class = s.coda_class
    return "".join(out)


def word_to_ipa(word: str) -> str:
    """One word of Hangul syllables -> IPA (rules applied across its syllables)."""
    syllables = [_Syllable(*decompose(ch)) for ch in word]
    for a, b in pairwise(syllables):
        _join(a, b)
    if syllables:  # the last coda, before a pause
        last = syllables[-1]
        last.coda_class = _CODA_CLASS.get(_COMPLEX_HEARD.get(last.coda, last.coda), "")
    return _render(syllables)


def hangul_to_ipa(text: str, final_stop: bool = True) -> str:
    """A Hangul reading (words separated by spaces, optional . , ? !) -> IPA for Kokoro.

    Anything else (digits, Latin, symbols) has no reading here and raises ValueError: pass
    `text_pron`, which soritune's reading code makes Hangul-only. With `final_stop`, a sentence
    without closing punctuation gets a '.' (Kokoro's falling sentence-final intonation).
    """
    words = []
    for raw in text.split():
        core = raw.rstrip(_PUNCTUATION)
        tail = raw[len(core):]
        bad = [ch for ch in core if not 0xAC00 <= ord(ch) < 0xAC00 + 11172]
        if bad:
            raise ValueError(f"no Hangul reading for {''.join(bad)!r} in {text!r}: pass the Hangul reading (text_pron)")
        words.append(word_to_ipa(core) + tail)
    ipa = " ".join(w for w in words if w)
    if final_stop and ipa and ipa[-1] not in _PUNCTUATION:
        ipa += "."
    return ipa
