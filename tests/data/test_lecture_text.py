"""Korean readings of numbers/formulas and the held-out sentence generator (no audio here)."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from soritune.data import lecture_reading as R
from soritune.data.lecture_text import (
    TEMPLATES,
    LectureTextGenerator,
    find_held_out_items,
    held_out_vocabulary,
    is_held_out_number,
    render,
    sample_sentences,
)


@pytest.mark.parametrize("n, spoken", [
    (0, "영"), (10, "십"), (11, "십일"), (250, "이백오십"), (1000, "천"), (2024, "이천이십사"),
    (10000, "만"), (12345, "만 이천삼백사십오"), (120000, "십이만"), (100000000, "일억"),
    (-3, "마이너스 삼"),
])
def test_sino(n, spoken):
    assert R.sino(n) == spoken


@pytest.mark.parametrize("written, spoken", [
    ("3.14", "삼 점 일사"), ("0.05", "영 점 영오"), ("12,000", "만 이천"), ("-2.5", "마이너스 이 점 오"),
])
def test_read_number(written, spoken):
    assert R.read_number(written) == spoken


def test_read_number_rejects_non_numbers():
    with pytest.raises(ValueError, match="not a number"):
        R.read_number("3x")


@pytest.mark.parametrize("n, prenominal, spoken", [
    (1, True, "한"), (2, True, "두"), (3, True, "세"), (20, True, "스무"), (21, True, "스물한"),
    (3, False, "셋"), (20, False, "스물"), (99, True, "아흔아홉"),
])
def test_native(n, prenominal, spoken):
    assert R.native(n, prenominal) == spoken


def test_native_range():
    with pytest.raises(ValueError):
        R.native(100)


@pytest.mark.parametrize("piece, text, pron", [
    (R.count(3, "개"), "3개", "세 개"), (R.count(2, "명"), "2명", "두 명"), (R.count(20, "살"), "20살", "스무 살"),
    (R.count(150, "개"), "150개", "백오십 개"), (R.sino_count(3, "장"), "3장", "삼 장"),
    (R.sino_count(15000, "원"), "15,000원", "만 오천 원"), (R.month(6), "6월", "유월"), (R.month(10), "10월", "시월"),
    (R.month(3), "3월", "삼월"), (R.fraction(1, 2), "1/2", "이분의 일"), (R.number(10000), "10,000", "만"),
    (R.power(R.symbol("x"), 2), "x^2", "엑스 제곱"), (R.power(R.symbol("x"), 3), "x^3", "엑스 세제곱"),
    (R.power(R.symbol("t"), 5), "t^5", "티의 오 승"), (R.power(R.symbol("x"), "n"), "x^n", "엑스의 엔 승"),
    (R.symbol("α"), "α", "알파"), (R.symbol("A"), "A", "에이"),
])
def test_pieces(piece, text, pron):
    assert (piece.text, piece.pron) == (text, pron)


def test_letters():
    assert R.letters("GPU") == "지피유"
    with pytest.raises(ValueError, match="letter name"):
        R.letters("x1")


@pytest.mark.parametrize("pron, key, expected", [
    ("엑스", "을", "를"), ("엑스 제곱", "을", "을"), ("일", "으로", "로"), ("삼", "으로", "으로"),
    ("이", "으로", "로"), ("퍼센트", "이라고", "라고"), ("육", "이", "이"), ("팔", "은", "은"), ("에이", "과", "와"),
    ("구", "의", "의"),
])
def test_josa_follows_the_spoken_form(pron, key, expected):
    assert R.josa(pron, key) == expected


def test_with_josa_attaches_to_both_forms():
    p = R.with_josa(R.Piece("2x", "이 엑스"), "을")
    assert (p.text, p.pron) == ("2x를", "이 엑스를")


def test_every_template_renders_speakable_sentences():
    gen = LectureTextGenerator(seed=1)
    for t in TEMPLATES:
        for _ in range(5):
            s = render(t, gen.rng)
            assert R.is_speakable(s.text_pron), (t.id, s.text_pron)
            assert s.text and s.text == " ".join(s.text.split())
            assert s.template == t.id and s.domain == t.domain


def test_deterministic_for_a_seed():
    assert sample_sentences(40, seed=7) == sample_sentences(40, seed=7)
    assert sample_sentences(40, seed=7) != sample_sentences(40, seed=8)
    assert sample_sentences(20, seed=7, held_out=True) != sample_sentences(20, seed=7)


def test_written_form_uses_digits_latin_and_symbols():
    pairs = sample_sentences(300, seed=2, domain="lecture")
    texts = " ".join(t for t, _ in pairs)
    for token in ("^2", "%", "=", "/"):
        assert token in texts
    assert re.search(r"\d", texts) and re.search(r"[A-Za-z]{3,}", texts)
    # the spoken side never carries what the written side does
    assert not any(re.search(r"[0-9A-Za-z^=%/]", p) for _, p in pairs)


def _parse_poly(written: str) -> dict[int, int]:
    """'3x^2 - x + 5' -> {2: 3, 1: -1, 0: 5} (the format the generator writes)."""
    out = {}
    for chunk in written.replace(" + ", " +").replace(" - ", " -").split(" "):
        sign = -1 if chunk.startswith("-") else 1
        m = re.fullmatch(r"(\d*)([a-z]?)(?:\^(\d+))?", chunk.lstrip("+-"))
        assert m and m.group(0), (written, chunk)
        coef, var, exp = m.groups()
        degree = int(exp) if exp else (1 if var else 0)
        out[degree] = sign * (int(coef) if coef else 1)
    return out


def test_derivatives_are_correct():
    gen = LectureTextGenerator(seed=3)
    template = next(t for t in TEMPLATES if t.source.startswith("{poly:을} {var:에} 대해 미분하면"))
    for _ in range(50):
        s = render(template, gen.rng)
        m = re.fullmatch(r"(.+?)[을를] ([a-z])에 대해 미분하면 (.+?)[이가] 됩니다", s.text)
        assert m, s.text
        poly, deriv = _parse_poly(m.group(1)), _parse_poly(m.group(3))
        assert deriv == {k - 1: c * k for k, c in poly.items() if k > 0}, s.text


def test_held_out_side_shares_no_template_vocabulary_or_number_with_train():
    def draw(held_out: bool, n: int) -> list:
        gens = [LectureTextGenerator(seed=s, held_out=held_out) for s in range(2)]
        return [g.next() for g in gens for _ in range(n)]

    train, test = draw(False, 1200), draw(True, 600)
    assert not {s.template for s in train} & {s.template for s in test}
    assert find_held_out_items(s.text for s in train) == []
    used = find_held_out_items(s.text for s in test)
    assert len(used) > 0.6 * len(held_out_vocabulary())
    number = re.compile(r"\d+/\d+|\d[\d,]*(?:\.\d+)?")

    def numbers(sentences):
        return {n for s in sentences for n in number.findall(s.text) if not (n.isdigit() and int(n) < 10)}

    train_numbers, test_numbers = numbers(train), numbers(test)
    assert test_numbers and not (train_numbers & test_numbers)
    assert all(is_held_out_number(n) for n in test_numbers)


def test_everyday_share_and_domains():
    all_lecture = LectureTextGenerator(seed=0, everyday_share=0.0)
    assert {all_lecture.next().domain for _ in range(50)} == {"lecture"}
    gen = LectureTextGenerator(seed=0, held_out=True, everyday_share=1.0)
    sentences = [gen.next() for _ in range(50)]
    assert {s.domain for s in sentences} == {"everyday"}
    assert all(s.template.startswith("day-test-") for s in sentences)
    mixed_gen = LectureTextGenerator(seed=0)
    mixed = Counter(mixed_gen.next().domain for _ in range(1000))
    assert 0.08 < mixed["everyday"] / 1000 < 0.25
    with pytest.raises(ValueError):
        LectureTextGenerator(everyday_share=1.5)
