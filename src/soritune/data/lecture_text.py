"""Sentence generator for synthetic Korean engineering/maths lecture speech and everyday speech.

Every sentence comes in two forms: `text`, as a Korean lecture transcript writes it (digits,
Latin terms, formulas in ASCII with `^` for powers: `x^2 + 2x`), and `text_pron`, how it is read
(Hangul only: 엑스 제곱 더하기 이 엑스), which is what gets spoken.

    >>> gen = LectureTextGenerator(seed=0)
    >>> s = gen.lecture()          # Sentence(text, text_pron, template, domain)

`held_out=True` draws from the templates and vocabulary reserved for the test split (see
`soritune.data.lecture_vocab`), and from numbers (10 and above) that the train side never uses,
so the two sides share no template, held-out term, variable or such number. Deterministic for a seed.
"""

from __future__ import annotations

import math
import random
import re
import zlib
from dataclasses import dataclass
from typing import Callable, Literal

from soritune.data import lecture_vocab as V
from soritune.data.lecture_reading import (
    Piece,
    count,
    digits,
    fraction,
    group_thousands,
    is_speakable,
    letters,
    month,
    number,
    power,
    read_number,
    sino,
    sino_count,
    symbol,
    with_josa,
)


@dataclass(frozen=True)
class Sentence:
    """A generated sentence: written form, spoken form, the template it came from, its domain."""

    text: str
    text_pron: str
    template: str
    domain: Literal["lecture", "everyday"]


@dataclass(frozen=True)
class Template:
    id: str
    domain: Literal["lecture", "everyday"]
    held_out: bool
    source: str


def _templates(group: tuple[str, ...], prefix: str, domain, held_out: bool) -> tuple[Template, ...]:
    return tuple(Template(f"{prefix}{i:02d}", domain, held_out, src) for i, src in enumerate(group))


TEMPLATES = (
    _templates(V.TRAIN_LECTURE, "lec-train-", "lecture", False)
    + _templates(V.TEST_LECTURE, "lec-test-", "lecture", True)
    + _templates(V.TRAIN_EVERYDAY, "day-train-", "everyday", False)
    + _templates(V.TEST_EVERYDAY, "day-test-", "everyday", True)
)
_TOKEN = re.compile(r"\{([\w.]+)(?::([^}]+))?\}|\[([^|\]]*)\|([^\]]*)\]")


def is_held_out_number(written: str) -> bool:
    """Numbers reserved for the test side: a fixed quarter of all values but 0-9 (decimals and
    fractions included), chosen by a hash of the written form, so the split never depends on a seed."""
    s = written.replace(",", "").lstrip("-")
    if s.isdigit() and int(s) < 10:
        return False
    return zlib.crc32(s.encode()) % 4 == 0


class _Render:
    """State for one sentence: the RNG, which side (held out or not), and the symbols in use."""

    def __init__(self, rng: random.Random, held_out: bool):
        self.rng = rng
        self.held_out = held_out
        self.used: set = set()
        self.var = self.pick(V.VARS)
        self.func = self.pick(V.FUNCS)
        self.mat = self.pick(V.MATRICES)
        self.poly: list[tuple[int, int]] | None = None
        self.dim = (3, 3)
        self.last_percent = 0

    def pick(self, pool: V.Pool, distinct: bool = True):
        items = pool.items(self.held_out)
        if not items:
            raise ValueError("empty vocabulary pool for this split")
        fresh = [x for x in items if x not in self.used] if distinct else []
        item = self.rng.choice(fresh or items)
        self.used.add(item)
        return item

    # -- numbers ------------------------------------------------------------------------------------
    def accept(self, written: str) -> bool:
        """0-9 belong to both sides; any other number to exactly one."""
        s = written.replace(",", "").lstrip("-")
        if s.isdigit() and int(s) < 10:
            return True
        return is_held_out_number(written) == self.held_out

    def draw(self, make: Callable[[], str]) -> str:
        """Draw a written number from `make` that belongs to this side (held-out or not)."""
        for _ in range(200):
            s = make()
            if self.accept(s):
                return s
        raise ValueError(f"no number of this split found among draws like {s!r}")

    def value(self, make: Callable[[], int]) -> int:
        """An integer from `make` (e.g. a price) whose written form belongs to this side."""
        return int(self.draw(lambda: str(make())))

    def int_(self, lo: int, hi: int) -> int:
        return self.value(lambda: self.rng.randint(lo, hi))

    def magnitude_int(self) -> int:
        """2-999, weighted toward small numbers."""
        hi = self.rng.choice((9, 99, 99, 999))
        return self.int_(2, hi)

    def decimal(self, whole_hi: int = 99) -> str:
        def make() -> str:
            places = self.rng.choice((1, 1, 2))
            frac = "".join(str(self.rng.randint(0, 9)) for _ in range(places - 1)) + str(self.rng.randint(1, 9))
            return f"{self.rng.randint(0, whole_hi)}.{frac}"

        return self.draw(make)

    def quantity_value(self) -> str:
        return self.decimal(99) if self.rng.random() < 0.3 else str(self.magnitude_int())

    # -- formulas -----------------------------------------------------------------------------------
    def new_poly(self) -> list[tuple[int, int]]:
        """(coefficient, degree) terms; redrawn until every coefficient, and every coefficient of the
        derivative, is a number of this side."""
        for _ in range(200):
            top = self.rng.choice((2, 2, 3, 3, 4))
            n_terms = self.rng.choice((2, 3, 3))
            degrees = [top] + sorted(self.rng.sample(range(top), n_terms - 1), reverse=True)
            lead = self.rng.choice((1, 1, 2, 3, 4, 5, -1, -2))
            rest = [self.rng.choice((-1, 1)) * self.rng.randint(1, 9) for _ in degrees[1:]]
            terms = list(zip([lead] + rest, degrees))
            if all(self.accept(str(abs(c * k))) for c, k in terms if k > 0):
                return terms
        raise ValueError("no polynomial of this split found")  # pragma: no cover

    def term(self, coef: int, degree: int, first: bool) -> Piece:
        c = abs(coef)
        if degree == 0:
            body = number(c)
        else:
            x = power(symbol(self.var), degree)
            body = x if c == 1 else Piece(f"{c}{x.text}", f"{sino(c)} {x.pron}")
        if first:
            return Piece("-", "마이너스 ") + body if coef < 0 else body
        return Piece(" - ", " 빼기 ") + body if coef < 0 else Piece(" + ", " 더하기 ") + body

    def poly_piece(self, terms: list[tuple[int, int]]) -> Piece:
        out = Piece("", "")
        for i, (c, k) in enumerate(terms):
            out = out + self.term(c, k, i == 0)
        return out


def _slot_var(r: _Render, arg):
    return symbol(r.var)


def _slot_poly(r: _Render, arg):
    r.poly = r.new_poly()
    return r.poly_piece(r.poly)


def _slot_dpoly(r: _Render, arg):
    if r.poly is None:
        r.poly = r.new_poly()
    return r.poly_piece([(c * k, k - 1) for c, k in r.poly if k > 0])


def _slot_mono(r: _Render, arg):
    return r.term(r.rng.choice((1, 2, 3, 4, 5, 6)), r.rng.choice((1, 2, 2, 3)), True)


def _slot_eq(r: _Render, arg):
    return r.poly_piece(r.new_poly()) + Piece(" = ", " 이퀄 ") + number(r.int_(0, 20))


def _slot_func(r: _Render, arg):
    return Piece(f"{r.func}({r.var})", f"{letters(r.func)} {letters(r.var)}")


def _slot_funcd(r: _Render, arg):
    return Piece(f"{r.func}'({r.var})", f"{letters(r.func)} 프라임 {letters(r.var)}")


def _slot_dydx(r: _Render, arg):
    dep = "z" if r.var == "y" else "y"
    return Piece(f"d{dep}/d{r.var}", f"디{letters(dep)} 디{letters(r.var)}")


def _slot_integral(r: _Render, arg):
    body = _slot_mono(r, None) if r.rng.random() < 0.6 else _slot_trigf(r, None)
    return Piece("∫ ", "인테그랄 ") + body + Piece(f" d{r.var}", f" 디{letters(r.var)}")


def _slot_interval(r: _Render, arg):
    lo = r.int_(0, 5)
    hi = r.int_(lo + 1, lo + 10)
    a, b = number(lo), number(hi)
    return Piece(f"{a.text}부터 {b.text}까지", f"{a.pron}부터 {b.pron}까지")


def _slot_trigf(r: _Render, arg):
    written, spoken = r.pick(V.TRIG)
    k = r.rng.choice((1, 1, 2, 3))
    x = symbol(r.var)
    arg_piece = x if k == 1 else Piece(f"{k}{x.text}", f"{sino(k)} {x.pron}")
    return Piece(f"{written} ", f"{spoken} ") + arg_piece


def _slot_exp(r: _Render, arg):
    return power(Piece("e", "이"), r.var)


def _slot_sqrt(r: _Render, arg):
    n = r.value(lambda: r.rng.choice((2, 3, 5, 6, 7, 10, 11, 13, 15, 17)))
    return Piece(f"√{n}", f"루트 {sino(n)}")


def _slot_mat(r: _Render, arg):
    return symbol(r.mat)


def _slot_matT(r: _Render, arg):
    return Piece(f"{r.mat}^T", f"{letters(r.mat)} 트랜스포즈")


def _slot_matinv(r: _Render, arg):
    return Piece(f"{r.mat}^-1", f"{letters(r.mat)} 인버스")


def _slot_dim(r: _Render, arg):
    a = r.rng.choice((2, 3, 3, 4, 5))
    b = a if r.rng.random() < 0.7 else r.rng.choice((2, 3, 4, 5))
    r.dim = (a, b)
    return Piece(f"{a}×{b}", f"{sino(a)} 바이 {sino(b)}")


def _slot_rank(r: _Render, arg):
    """A rank that fits the sentence's matrix size (at most min(rows, columns))."""
    return number(r.rng.randint(1, min(r.dim)))


def _slot_acr(r: _Render, arg):
    a = r.pick(V.ACRONYMS)
    return Piece(a, V.ACRONYM_SPOKEN.get(a) or letters(a))


def _slot_pool(name: str):
    def fill(r: _Render, arg):
        item = r.pick(V.POOLS[name])
        if isinstance(item, tuple):
            return Piece(*item)
        return symbol(item) if name == "greek" else Piece(item, item)

    return fill


def _slot_quantity(family: str):
    def fill(r: _Render, arg):
        written, pattern = r.pick(V.UNITS[family], distinct=False)
        value = r.quantity_value()
        return Piece(f"{group_thousands(int(value)) if '.' not in value else value}{written}",
                     pattern.replace("#", read_number(value)))

    return fill


# Plausible ranges for counted things (default: small counts / 1-300).
_COUNT_RANGES = {"살": (1, 90), "명": (1, 40), "시간": (1, 12), "번": (1, 20), "가지": (2, 10), "병": (1, 10),
                 "잔": (1, 5), "마리": (1, 12), "그릇": (1, 6)}
_SINO_RANGES = {"호선": (1, 9), "층": (1, 60), "분": (1, 59), "도": (1, 40), "장": (1, 20), "페이지": (1, 400),
                "번": (1, 999)}


def _slot_count(r: _Render, arg):
    lo, hi = _COUNT_RANGES.get(arg, (1, r.rng.choice((5, 10, 30))))
    return count(r.int_(lo, hi), arg)


def _slot_sino_count(r: _Render, arg):
    lo, hi = _SINO_RANGES.get(arg, (1, r.rng.choice((10, 50, 300))))
    return sino_count(r.int_(lo, hi), arg)


def _slot_learning_rate(r: _Render, arg):
    return number(r.draw(lambda: r.rng.choice(("0.1", "0.01", "0.001", "0.0001", "0.0003", "0.003", "0.005", "0.05"))))


def _slot_big_count(r: _Render, arg):
    n = r.value(lambda: r.rng.randint(1, 999) * r.rng.choice((100, 1000, 10000, 100000)))
    return sino_count(n, arg)


def _slot_time(r: _Render, arg):
    hour = count(r.int_(1, 12), "시")
    if r.rng.random() < 0.4:
        return hour
    minute = sino_count(r.value(lambda: r.rng.choice(range(5, 60, 5))), "분")
    return Piece(f"{hour.text} {minute.text}", f"{hour.pron} {minute.pron}")


def _slot_date(r: _Render, arg):
    m = month(r.int_(1, 12))
    d = sino_count(r.int_(1, 28), "일")
    return Piece(f"{m.text} {d.text}", f"{m.pron} {d.pron}")


def _slot_money(r: _Render, arg):
    n = r.value(lambda: r.rng.randint(1, 99) * r.rng.choice((100, 500, 1000, 1000, 10000)))
    return sino_count(n, "원")


def _slot_fraction(r: _Render, arg):
    def make() -> str:
        while True:
            a, b = sorted(r.rng.sample(range(1, 13), 2))
            if math.gcd(a, b) == 1:
                return f"{a}/{b}"

    a, b = r.draw(make).split("/")
    return fraction(int(a), int(b))


def _slot_percent(r: _Render, arg):
    r.last_percent = r.int_(1, 90)
    v = str(r.last_percent)
    return Piece(f"{v}%", f"{read_number(v)} 퍼센트")


def _slot_percent_higher(r: _Render, arg):
    """A percentage above the sentence's previous one ("from 70% to 85%")."""
    v = str(r.int_(r.last_percent + 1, 100))
    return Piece(f"{v}%", f"{read_number(v)} 퍼센트")


def _slot_phone(r: _Render, arg):
    parts = ["010", f"{r.rng.randint(0, 9999):04d}", f"{r.rng.randint(0, 9999):04d}"]
    return Piece("-".join(parts), " ".join(digits(p, zero="공") for p in parts))


SLOTS: dict[str, Callable[[_Render, str | None], Piece]] = {
    "var": _slot_var, "poly": _slot_poly, "dpoly": _slot_dpoly, "mono": _slot_mono, "eq": _slot_eq,
    "func": _slot_func, "funcd": _slot_funcd, "dydx": _slot_dydx, "integral": _slot_integral,
    "interval": _slot_interval, "trigf": _slot_trigf, "exp": _slot_exp, "sqrt": _slot_sqrt,
    "mat": _slot_mat, "matT": _slot_matT, "matinv": _slot_matinv, "dim": _slot_dim, "rank": _slot_rank,
    "acr": _slot_acr,
    "vec": lambda r, a: symbol(r.pick(V.VECTORS)), "rv": lambda r, a: symbol(r.pick(V.RANDOM_VARS)),
    "small": lambda r, a: number(r.rng.randint(0, 9)), "die": lambda r, a: number(r.rng.randint(1, 6)),
    "int": lambda r, a: number(r.magnitude_int()), "neg": lambda r, a: number(-r.int_(1, 20)),
    "dec": lambda r, a: number(r.decimal()), "pow2": lambda r, a: number(r.value(lambda: 2 ** r.rng.randint(3, 12))),
    "frac": _slot_fraction, "pct": _slot_percent, "pcthi": _slot_percent_higher,
    "year": lambda r, a: sino_count(r.int_(1980, 2035), "년"),
    "lr": _slot_learning_rate, "cnt": _slot_count, "sn": _slot_sino_count, "bign": _slot_big_count,
    "time": _slot_time, "date": _slot_date, "money": _slot_money, "phone": _slot_phone,
    **{name: _slot_pool(name) for name in V.POOLS},
    **{f"q.{family}": _slot_quantity(family) for family in V.UNITS},
}
_COUNTER_SLOTS = {"cnt", "sn", "bign"}


def render(template: Template, rng: random.Random) -> Sentence:
    """Fill one template with vocabulary from its side (held out or not)."""
    r = _Render(rng, template.held_out)
    out = Piece("", "")
    pos = 0
    for m in _TOKEN.finditer(template.source):
        literal = template.source[pos : m.start()]
        out = out + Piece(literal, literal)
        pos = m.end()
        slot, arg, fixed_text, fixed_pron = m.groups()
        if slot is None:
            out = out + Piece(fixed_text, fixed_pron)
            continue
        if slot not in SLOTS:
            raise KeyError(f"template {template.id}: unknown slot {{{slot}}}")
        piece = SLOTS[slot](r, arg)
        out = out + (piece if slot in _COUNTER_SLOTS else with_josa(piece, arg))
    tail = template.source[pos:]
    out = out + Piece(tail, tail)
    text, pron = " ".join(out.text.split()), " ".join(out.pron.split())
    if not is_speakable(pron):
        raise ValueError(f"template {template.id}: spoken form is not plain Hangul: {pron!r}")
    return Sentence(text, pron, template.id, template.domain)


class LectureTextGenerator:
    """Seeded stream of sentences from one side: train/dev (held_out=False) or test (held_out=True).

    `everyday_share` of `next()` sentences are everyday speech, the rest lecture speech.
    """

    def __init__(self, seed: int | str = 0, held_out: bool = False, everyday_share: float = 0.15):
        if not 0.0 <= everyday_share <= 1.0:
            raise ValueError(f"everyday_share must be in [0, 1], got {everyday_share}")
        self.rng = random.Random(f"soritune-lecture-text:{seed}:{int(held_out)}")
        self.held_out = held_out
        self.everyday_share = everyday_share
        self._lecture = [t for t in TEMPLATES if t.domain == "lecture" and t.held_out == held_out]
        self._everyday = [t for t in TEMPLATES if t.domain == "everyday" and t.held_out == held_out]

    def lecture(self) -> Sentence:
        return render(self.rng.choice(self._lecture), self.rng)

    def everyday(self) -> Sentence:
        return render(self.rng.choice(self._everyday), self.rng)

    def next(self) -> Sentence:
        return self.everyday() if self.rng.random() < self.everyday_share else self.lecture()


def sample_sentences(
    n: int,
    seed: int = 0,
    held_out: bool = False,
    domain: Literal["mixed", "lecture", "everyday"] = "mixed",
    everyday_share: float = 0.15,
) -> list[tuple[str, str]]:
    """`n` (text, text_pron) pairs, deterministic for `seed`; held_out=True gives test-side sentences."""
    gen = LectureTextGenerator(seed, held_out=held_out, everyday_share=everyday_share)
    draw = {"mixed": gen.next, "lecture": gen.lecture, "everyday": gen.everyday}[domain]
    out = []
    for _ in range(n):
        s = draw()
        out.append((s.text, s.text_pron))
    return out


def held_out_vocabulary() -> list[str]:
    """Written forms of the vocabulary reserved for the test side: terms, acronyms, methods,
    concepts, Greek letters, unit symbols, everyday words (single Latin letters left out: they are
    too short to search for in text)."""
    items: list[str] = []
    pools = list(V.POOLS.values()) + [V.ACRONYMS, V.GREEK_LETTERS, V.TRIG] + list(V.UNITS.values())
    for pool in pools:
        for item in pool.test:
            written = item[0] if isinstance(item, tuple) else item
            if len(written) > 1 or written in V.GREEK_LETTERS.test:
                items.append(written)
    return sorted(set(items))


def find_held_out_items(texts) -> list[str]:
    """The held-out vocabulary items that occur in `texts` (Latin items as whole tokens)."""
    found = []
    joined = "\n".join(texts)
    for item in held_out_vocabulary():
        pattern = re.escape(item)
        if re.search(r"[A-Za-z]", item):
            pattern = rf"(?<![A-Za-z]){pattern}(?![A-Za-z])"
        if re.search(pattern, joined):
            found.append(item)
    return found
