"""How Korean lecture speech reads numbers, letters and formulas: the spoken side (`text_pron`)
of what a transcript writes with digits, Latin letters and symbols.

Conventions (one reading per written form, so a model can learn the mapping):
- Sino-Korean numbers: 250 -> 이백오십, 10000 -> 만, 12,345 -> 만 이천삼백사십오 (space per 10^4 group),
  3.14 -> 삼 점 일사, -3 -> 마이너스 삼, 1/2 -> 이분의 일.
- Native numbers before counters, 1-99: 3개 -> 세 개, 20살 -> 스무 살, 21명 -> 스물한 명; 100 and
  above fall back to Sino-Korean (120개 -> 백이십 개).
- Formulas are written in ASCII with a caret for powers (`x^2 + 2x`) and read term by term:
  엑스 제곱 더하기 이 엑스; ^2 제곱, ^3 세제곱, ^4 네제곱, other exponents `의 N 승`.
- Latin letters use their Korean names (GPU -> 지피유), Greek letters theirs (α -> 알파).
Every reading is Hangul and spaces only (espeak-ng speaks it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DIGITS = "영일이삼사오육칠팔구"
_SMALL_PLACES = ("", "십", "백", "천")
_BIG_PLACES = ("", "만", "억", "조", "경")
_NATIVE_ONES = ("", "하나", "둘", "셋", "넷", "다섯", "여섯", "일곱", "여덟", "아홉")
_NATIVE_ONES_PRENOMINAL = ("", "한", "두", "세", "네", "다섯", "여섯", "일곱", "여덟", "아홉")
_NATIVE_TENS = ("", "열", "스물", "서른", "마흔", "쉰", "예순", "일흔", "여든", "아흔")

LETTERS = {
    "a": "에이", "b": "비", "c": "씨", "d": "디", "e": "이", "f": "에프", "g": "지", "h": "에이치",
    "i": "아이", "j": "제이", "k": "케이", "l": "엘", "m": "엠", "n": "엔", "o": "오", "p": "피",
    "q": "큐", "r": "알", "s": "에스", "t": "티", "u": "유", "v": "브이", "w": "더블유", "x": "엑스",
    "y": "와이", "z": "제트",
}
GREEK = {
    "α": "알파", "β": "베타", "γ": "감마", "δ": "델타", "ε": "엡실론", "ζ": "제타", "η": "에타",
    "θ": "세타", "κ": "카파", "λ": "람다", "μ": "뮤", "ν": "뉴", "ξ": "크사이", "π": "파이",
    "σ": "시그마", "τ": "타우", "φ": "파이", "χ": "카이", "ψ": "프사이", "ω": "오메가",
    "Δ": "델타", "Σ": "시그마", "Ω": "오메가",
}


@dataclass(frozen=True)
class Piece:
    """One stretch of a sentence in its written form and its spoken (Hangul) form."""

    text: str
    pron: str

    def __add__(self, other: Piece) -> Piece:
        return Piece(self.text + other.text, self.pron + other.pron)


def _sino_group(n: int) -> str:
    """0 < n < 10000 -> 이천삼백사십오 (1 before 십/백/천 is silent)."""
    out = []
    for pos in (3, 2, 1, 0):
        d = n // 10**pos % 10
        if d:
            out.append(("" if d == 1 and pos else _DIGITS[d]) + _SMALL_PLACES[pos])
    return "".join(out)


def sino(n: int) -> str:
    """Sino-Korean reading of an integer: 0 -> 영, 250 -> 이백오십, 10000 -> 만, 120000 -> 십이만."""
    if n < 0:
        return "마이너스 " + sino(-n)
    if n == 0:
        return "영"
    if n >= 10**20:
        raise ValueError(f"sino(): {n} is too large to read")
    groups = []
    for i in range(len(_BIG_PLACES)):
        g = n // 10 ** (4 * i) % 10000
        if g:
            word = "" if (g == 1 and i == 1) else _sino_group(g)  # 만, not 일만; but 일억
            groups.append(word + _BIG_PLACES[i])
    return " ".join(reversed(groups))


def digits(s: str, zero: str = "영") -> str:
    """Digit by digit: '14' -> 일사, '010' with zero='공' -> 공일공."""
    return "".join(zero if c == "0" else _DIGITS[int(c)] for c in s)


def native(n: int, prenominal: bool = True) -> str:
    """Native Korean numeral, 1-99: 3 -> 세 (before a counter) or 셋; 20 -> 스무 / 스물; 21 -> 스물한."""
    if not 1 <= n <= 99:
        raise ValueError(f"native(): {n} has no native reading (1-99)")
    tens, ones = divmod(n, 10)
    if prenominal:
        if ones == 0 and tens == 2:
            return "스무"
        return _NATIVE_TENS[tens] + _NATIVE_ONES_PRENOMINAL[ones]
    return _NATIVE_TENS[tens] + _NATIVE_ONES[ones]


def group_thousands(n: int) -> str:
    """Written form of an integer: plain below 10000 (2024), comma-grouped from 10000 (12,000)."""
    return f"{n:,}" if abs(n) >= 10000 else str(n)


def read_number(written: str) -> str:
    """Read a written number: '250' -> 이백오십, '12,000' -> 만 이천, '3.14' -> 삼 점 일사, '-0.5'."""
    s = written.replace(",", "")
    if not re.fullmatch(r"-?\d+(\.\d+)?", s):
        raise ValueError(f"read_number(): not a number: {written!r}")
    sign = ""
    if s.startswith("-"):
        sign, s = "마이너스 ", s[1:]
    whole, _, frac = s.partition(".")
    out = sino(int(whole))
    if frac:
        out += " 점 " + digits(frac)
    return sign + out


def number(value: int | float | str) -> Piece:
    """A number in both forms: number(12000) -> Piece('12,000', '만 이천')."""
    written = group_thousands(value) if isinstance(value, int) else str(value)
    return Piece(written, read_number(written))


def count(n: int, counter: str) -> Piece:
    """Native count with a counter: count(3, '개') -> Piece('3개', '세 개'); 150 -> 백오십 개."""
    spoken = native(n) if 1 <= n <= 99 else sino(n)
    return Piece(f"{group_thousands(n)}{counter}", f"{spoken} {counter}")


def sino_count(n: int, counter: str) -> Piece:
    """Sino-Korean number with a counter: sino_count(3, '장') -> Piece('3장', '삼 장')."""
    return Piece(f"{group_thousands(n)}{counter}", f"{sino(n)} {counter}")


def month(m: int) -> Piece:
    """6월 -> 유월, 10월 -> 시월 (the two irregular months), else sino: 3월 -> 삼월."""
    spoken = {6: "유월", 10: "시월"}.get(m, sino(m) + "월")
    return Piece(f"{m}월", spoken)


def fraction(num: int, den: int) -> Piece:
    """1/2 -> 이분의 일 (the denominator is read first)."""
    return Piece(f"{num}/{den}", f"{sino(den)}분의 {sino(num)}")


def letters(word: str) -> str:
    """Spell Latin letters by their Korean names: GPU -> 지피유, x -> 엑스."""
    try:
        return "".join(LETTERS[c] for c in word.lower())
    except KeyError as e:
        raise ValueError(f"letters(): no Korean letter name for {e.args[0]!r} in {word!r}") from None


def symbol(sym: str) -> Piece:
    """A variable, function letter or Greek letter: 'x' -> 엑스, 'λ' -> 람다, 'A' -> 에이."""
    if sym in GREEK:
        return Piece(sym, GREEK[sym])
    return Piece(sym, letters(sym))


def power_suffix(exponent: int | str) -> str:
    """Spoken exponent after its base: 2 -> ' 제곱', 3 -> ' 세제곱', 4 -> ' 네제곱', 5 -> '의 오 승'."""
    special = {2: " 제곱", 3: " 세제곱", 4: " 네제곱"}
    if isinstance(exponent, int):
        return special.get(exponent, f"의 {sino(exponent)} 승")
    return f"의 {letters(exponent)} 승"


def power(base: Piece, exponent: int | str) -> Piece:
    """base^exponent: power(symbol('x'), 2) -> Piece('x^2', '엑스 제곱')."""
    if exponent == 1:
        return base
    return Piece(f"{base.text}^{exponent}", base.pron + power_suffix(exponent))


# ---- Korean particles chosen by the spoken form's final syllable -------------------------------

# key -> (after a final consonant, after a vowel); 으로 takes 로 after ㄹ too.
_JOSA = {
    "을": ("을", "를"), "이": ("이", "가"), "은": ("은", "는"), "과": ("과", "와"), "으로": ("으로", "로"),
    "이라고": ("이라고", "라고"), "이고": ("이고", "고"), "이면": ("이면", "면"), "이랑": ("이랑", "랑"),
    "이나": ("이나", "나"), "이에요": ("이에요", "예요"), "이었어요": ("이었어요", "였어요"),
    "이라서": ("이라서", "라서"), "이지만": ("이지만", "지만"), "이죠": ("이죠", "죠"),
}
_RIEUL = 8  # index of final ㄹ among the 28 final-consonant slots


def final_consonant(pron: str) -> int:
    """Index (0 = none) of the final consonant of the last Hangul syllable of `pron`."""
    for ch in reversed(pron):
        if "가" <= ch <= "힣":
            return (ord(ch) - 0xAC00) % 28
    raise ValueError(f"final_consonant(): no Hangul syllable in {pron!r}")


def josa(pron: str, key: str) -> str:
    """The particle form that fits after `pron`: josa('엑스', '을') -> '를'; unknown keys pass as is."""
    if key not in _JOSA:
        return key
    jong = final_consonant(pron)
    if key == "으로" and jong == _RIEUL:
        return "로"
    with_final, after_vowel = _JOSA[key]
    return with_final if jong else after_vowel


def with_josa(piece: Piece, key: str | None) -> Piece:
    """Attach a particle (written and spoken alike): with_josa(Piece('2x', '이 엑스'), '을') -> 2x를."""
    if not key:
        return piece
    p = josa(piece.pron, key)
    return Piece(piece.text + p, piece.pron + p)


_HANGUL_ONLY = re.compile(r"[가-힣 ]+")


def is_speakable(pron: str) -> bool:
    """True when `pron` is Hangul syllables and single spaces only (what espeak-ng is given)."""
    return bool(_HANGUL_ONLY.fullmatch(pron)) and "  " not in pron and pron == pron.strip()
