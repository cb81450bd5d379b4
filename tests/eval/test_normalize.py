"""Scoring normalisation: NFKC without jamo splitting, Latin lower-casing, punctuation rules."""

import unicodedata

from soritune.eval.normalize import NORMALIZATION, no_spaces, normalize_text, words


def test_hangul_stays_composed_and_fullwidth_folds():
    out = normalize_text("ＡＩ 모델, 학습합니다!")
    assert out == "ai 모델 학습합니다"
    assert all(not (0x1100 <= ord(c) <= 0x11FF) for c in out)  # no conjoining jamo (NFKD would make them)
    assert out == unicodedata.normalize("NFC", out)


def test_only_latin_is_lowercased():
    assert normalize_text("GPU와 Σ, Ω") == "gpu와 Σ Ω"
    assert normalize_text("ÉCOLE") == "école"


def test_punctuation_removed_percent_and_symbols_kept():
    assert normalize_text("확률은 (70%)입니다.") == "확률은 70% 입니다"
    assert normalize_text("“인용” — 그리고… 끝?") == "인용 그리고 끝"
    assert normalize_text("$100 + ₩5") == "$100 + ₩5"


def test_parenthesised_spans_are_kept():
    # Whisper's BasicTextNormalizer would delete "(세 개)"; we keep the words.
    assert normalize_text("사과 (세 개) 주세요") == "사과 세 개 주세요"


def test_numbers_keep_decimal_and_time_drop_thousands_comma():
    assert normalize_text("3.5% 증가, 1,000원, 3:30에") == "3.5% 증가 1000원 3:30에"
    assert normalize_text("하나, 둘. 셋") == "하나 둘 셋"


def test_format_chars_and_whitespace():
    assert normalize_text("\ufeff안\u200b녕  하\t세요\n") == "안녕 하 세요"
    assert normalize_text("") == ""


def test_idempotent_and_views():
    texts = ["Hello, World! 3.5%", "사과 3개, 배 2개.", "ＡＢＣ  ㎞"]
    for t in texts:
        once = normalize_text(t)
        assert normalize_text(once) == once
    n = normalize_text("나는 학교에 간다.")
    assert no_spaces(n) == "나는학교에간다"
    assert words(n) == ["나는", "학교에", "간다"]


def test_normalization_is_versioned():
    assert NORMALIZATION["name"] and NORMALIZATION["version"]
