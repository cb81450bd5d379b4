"""How Korean reads numbers, Latin letters and unit symbols: the tables and spell-out functions
behind reading-aware CER (`soritune.eval.reading`). Pure functions, no alignment here.

Numbers have several readings, chosen by the counter that follows (3개 = 세 개, 3층 = 삼 층):
sino-Korean (`sino`), native (`native_forms`, 1-99), digit by digit (`digitwise`, for codes,
phone numbers and years).
"""

from __future__ import annotations

from soritune.data.lecture_reading import sino as read_sino

_DIGITS = "영일이삼사오육칠팔구"
_NATIVE_TENS = ("", "열", "스물", "서른", "마흔", "쉰", "예순", "일흔", "여든", "아흔")
_NATIVE_ONES = ("", "한", "두", "세", "네", "다섯", "여섯", "일곱", "여덟", "아홉")
_NATIVE_ONES_ALONE = ("", "하나", "둘", "셋", "넷", "다섯", "여섯", "일곱", "여덟", "아홉")

# Counters read with native numerals (세 개, 두 명, 다섯 시). Twenty and above also take
# sino-Korean (삼십오 명); numbers without a native reading (100개) take sino-Korean.
NATIVE_COUNTERS = (
    "개", "명", "시간", "시", "살", "마리", "잔", "병", "권", "장", "채", "벌", "켤레", "송이",
    "그루", "가지", "군데", "곳", "줄", "척", "통", "쌍", "봉지", "자루", "그릇", "접시", "걸음",
    "사람", "달", "번째", "째", "분들", "배",
)
# Counters read with sino-Korean numerals (삼 층, 이천이십사 년).
SINO_COUNTERS = (
    "년", "월", "일", "분", "초", "원", "층", "호", "학년", "회", "퍼센트", "프로", "도", "미터",
    "킬로", "센티", "밀리", "그램", "리터", "달러", "유로", "엔", "위안", "주", "개월", "인분",
    "세", "차", "등", "점", "쪽", "페이지", "교시", "동", "편", "위", "기", "억", "조", "만", "천",
    "백", "십", "번지", "단계", "퍼", "바이트", "헤르츠", "와트", "볼트",
)
# Word-like acronyms (read as a word, not letter by letter); letter-by-letter is always tried too.
ACRONYMS = {
    "nasa": "나사", "unesco": "유네스코", "nato": "나토", "fifa": "피파", "opec": "오펙",
    "aids": "에이즈", "covid": "코비드", "unicef": "유니세프", "asean": "아세안", "sars": "사스",
    "mers": "메르스", "kospi": "코스피", "kosdaq": "코스닥", "nasdaq": "나스닥", "ram": "램",
    "lan": "랜", "wifi": "와이파이", "unist": "유니스트", "kaist": "카이스트", "postech": "포스텍",
}
# Letter names; the first is the usual reading, the others common variants.
LETTERS = {
    "a": ("에이",), "b": ("비",), "c": ("씨", "시"), "d": ("디",), "e": ("이",), "f": ("에프",),
    "g": ("지", "쥐"), "h": ("에이치", "에치"), "i": ("아이",), "j": ("제이",), "k": ("케이",),
    "l": ("엘",), "m": ("엠",), "n": ("엔",), "o": ("오",), "p": ("피",), "q": ("큐",),
    "r": ("알", "아르"), "s": ("에스",), "t": ("티",), "u": ("유",), "v": ("브이", "비"),
    "w": ("더블유", "더블류"), "x": ("엑스",), "y": ("와이",), "z": ("지", "제트", "즈"),
}
# English digit names, tried only for digits glued to Latin letters (mp3, c4, 5g).
ENGLISH_DIGITS = {
    "0": ("제로", "공"), "1": ("원",), "2": ("투",), "3": ("쓰리",), "4": ("포",), "5": ("파이브",),
    "6": ("식스",), "7": ("세븐",), "8": ("에잇", "에이트"), "9": ("나인",),
}
# Unit symbols right after a number (the text is lower-cased already).
UNITS = {
    "%": ("퍼센트", "프로"), "km": ("킬로미터", "킬로"), "kg": ("킬로그램", "킬로"),
    "cm": ("센티미터", "센티"), "mm": ("밀리미터", "밀리"), "ml": ("밀리리터", "미리"), "m": ("미터",),
    "g": ("그램",), "l": ("리터",), "kb": ("킬로바이트",), "mb": ("메가바이트", "메가"),
    "gb": ("기가바이트", "기가"), "tb": ("테라바이트", "테라"), "hz": ("헤르츠",), "khz": ("킬로헤르츠",),
    "mhz": ("메가헤르츠",), "ghz": ("기가헤르츠",), "kw": ("킬로와트",), "w": ("와트",), "v": ("볼트",),
    "ms": ("밀리초",), "°c": ("도",), "°": ("도",),
}
CURRENCY = {"$": "달러", "₩": "원", "€": "유로", "£": "파운드", "¥": "엔"}
# A numeral of one of these words starts the next group: 1만 = 만 = 일만.
BIG_WORDS = ("천", "만", "억", "조")


def digitwise(digits: str, zero: str = "공") -> str:
    """010 -> 공일공 (or 영일영 with zero="영"); codes, phone numbers, years read digit by digit."""
    return "".join(zero if c == "0" else _DIGITS[int(c)] for c in digits if c.isdigit())


def sino(number: str) -> str:
    """Sino-Korean reading: 2024 -> 이천이십사, 15000 -> 만오천, 3.5 -> 삼점오, 010 -> 공일공."""
    if "." in number:
        whole, frac = number.split(".", 1)
        return sino(whole or "0") + "점" + digitwise(frac, "영")
    if len(number) > 1 and number.startswith("0"):
        return digitwise(number)
    n = int(number)
    if n >= 10**20:
        return digitwise(number, "영")
    return read_sino(n).replace(" ", "")  # the synthetic corpus's reader, unspaced (scoring drops spaces)


def native_forms(number: str) -> list[str]:
    """Native readings of 1-99: attributive (세, 스무, 스물한) and standalone (셋, 스물, 스물하나)."""
    if not number.isdigit() or not 1 <= int(number) <= 99:
        return []
    n = int(number)
    attributive = "스무" if n == 20 else _NATIVE_TENS[n // 10] + _NATIVE_ONES[n % 10]
    alone = _NATIVE_TENS[n // 10] + _NATIVE_ONES_ALONE[n % 10]
    return list(dict.fromkeys([attributive, alone]))


def counter_kind(following: str) -> str | None:
    """'native', 'sino' or None (unknown) for the text right after a number (spaces stripped)."""
    following = following.lstrip()
    best: tuple[int, str | None] = (0, None)
    for kind, table in (("native", NATIVE_COUNTERS), ("sino", SINO_COUNTERS)):
        for c in table:
            if following.startswith(c) and len(c) > best[0]:
                best = (len(c), kind)
    return best[1]


def number_readings(number: str, following: str) -> list[str]:
    """All readings of one number written in digits (the digits themselves included), given the
    text after it. Digit-by-digit readings are offered for leading zeros, 4+ digits, or numbers
    with no known counter after them (34일 is not 삼 사 일)."""
    kind = counter_kind(following)
    out = [number]
    nat = native_forms(number) if kind != "sino" else []
    out += nat
    if kind != "native" or not nat or int(number.split(".")[0] or 0) >= 20:
        if following.lstrip().startswith("월") and number in ("6", "10"):
            out.append({"6": "유", "10": "시"}[number])
        else:
            out.append(sino(number))
    after = following.lstrip()
    if number == "1" and (after.startswith("번째") or after.startswith("째")):
        out.append("첫")
    if number == "1" and after[:1] in BIG_WORDS:
        out.append("")
    if number == "0":
        out.append("공")
    if number.isdigit() and len(number) >= 2 and (number.startswith("0") or len(number) >= 4 or kind is None):
        out += [digitwise(number), digitwise(number, "영")]
    return list(dict.fromkeys(out))


def spell_latin(token: str, limit: int = 4) -> list[str]:
    """Letter-by-letter readings of a Latin token (ai -> 에이아이), up to `limit` variants."""
    from itertools import islice, product

    choices = [LETTERS.get(c, (c,)) for c in token]
    return ["".join(combo) for combo in islice(product(*choices), limit)]


def latin_readings(token: str) -> list[str]:
    """A Latin token as written, spelled out, and as a word-like acronym where known."""
    out = [token] + spell_latin(token)
    if token in ACRONYMS:
        out.append(ACRONYMS[token])
    return list(dict.fromkeys(out))


def english_digit_readings(digits: str) -> list[str]:
    """Readings of digits glued to Latin letters: sino (삼), English (쓰리) for one digit."""
    out = [digits, sino(digits)]
    if len(digits) == 1:
        out += list(ENGLISH_DIGITS[digits])
    return list(dict.fromkeys(out))


def time_readings(hour: str, minute: str) -> list[str]:
    """3:30 -> 세 시 삼십 분 (hours 0-23, two-digit minutes); anything else a:b -> a 대 b."""
    orig = f"{hour}:{minute}"
    if len(minute) == 2 and int(hour) <= 23 and int(minute) <= 59:
        hours = list(dict.fromkeys([hour, *native_forms(hour)[:1], sino(hour)]))
        m = int(minute)
        mins = list(dict.fromkeys([str(m), sino(str(m))])) if m else []
        out = [orig]
        for h in hours:
            out += [f"{h}시 {x}분" for x in mins] or [f"{h}시"]
            if m == 30:
                out.append(f"{h}시 반")
        return list(dict.fromkeys(out))
    sides = dict.fromkeys([hour, sino(hour)]), dict.fromkeys([minute, sino(minute)])
    return [orig] + [f"{a} 대 {b}" for a in sides[0] for b in sides[1]]
