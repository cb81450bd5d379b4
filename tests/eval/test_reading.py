"""Reading-aware CER: errors only where readings differ (kocer's documented examples)."""

import pytest

from soritune.eval.metrics import cer
from soritune.eval.normalize import normalize_text
from soritune.eval.reading import cer_reading, find_spans, match_readings


def errors(ref, hyp, pron=None):
    pron = normalize_text(pron) if pron else None
    return match_readings(normalize_text(ref), normalize_text(hyp), pron).counts.errors


def test_issue_examples():
    assert cer_reading(["사과 3개"], ["사과 세 개"]) == 0.0
    assert cer_reading(["사과 3개"], ["사과 네 개"]) > 0
    assert cer(["사과 3개"], ["사과 세 개"]) > 0  # plain CER counts it


@pytest.mark.parametrize("ref,hyp", [
    ("사과 세 개 주세요", "사과 3개 주세요"),
    ("세 시 삼십 분", "3시 30분"),
    ("이천이십사 년 십이 월", "2024년 12월"),
    ("에이아이 모델", "AI 모델"),
    ("오십 퍼센트", "50%"),
    ("엘지 트윈스", "LG 트윈스"),
    ("케이비오 리그", "KBO 리그"),
    ("삼십오 명", "35명"),
    ("서른다섯 명", "35명"),
    ("공일공", "010"),
    ("영일영", "010"),
    ("유월", "6월"),
    ("시월", "10월"),
    ("첫 번째", "1번째"),
    ("만 원", "1만 원"),
    ("오 미터", "5m"),
    ("씨포", "C4"),
    ("나사", "NASA"),
    ("백 달러", "$100"),
    ("삼 점 오 퍼센트", "3.5%"),
])
def test_same_reading_is_not_an_error(ref, hyp):
    assert errors(ref, hyp) == 0
    assert errors(hyp, ref) == 0  # either side may carry the digits


@pytest.mark.parametrize("ref,hyp,n", [
    ("사과 세 개 주세요", "사과 네 개 주세요", 1),
    ("세 시 삼십 분", "3시 13분", 2),
    ("사과 3개", "사과 삼 개", 1),   # 개 takes native numerals: 삼 개 is a misreading
    ("34일", "삼 사 일", 1),         # 3~4 days is not the 34th
])
def test_different_reading_is_an_error(ref, hyp, n):
    assert errors(ref, hyp) == n


def test_kocer_documented_rate():
    # kocer README: "세 시 삼십 분" / "3시 13분" -> 0.4 (2 errors / 5 reference characters)
    assert cer_reading(["세 시 삼십 분"], ["3시 13분"]) == pytest.approx(0.4)
    assert cer_reading(["사과 세 개 주세요"], ["사과 네 개 주세요"]) == pytest.approx(1 / 7)


def test_pronunciation_reference_is_used():
    # KsponSpeech dual transcription: (70%)/(칠 십 퍼센트) -> text / text_pron
    ref, pron = "70% 확률", "칠 십 퍼센트 확률"
    assert errors(ref, "칠십 퍼센트 확률", pron) == 0
    m = match_readings(normalize_text("(뭐+ 뭔)"), normalize_text("모 몬"), normalize_text("모 몬"))
    assert m.counts.errors == 0 and m.used_pron
    # with the pronunciation side available, a different word is still an error
    assert errors(ref, "팔십 퍼센트 확률", pron) > 0


def test_denominator_is_spelling_side():
    # 5 reference characters without spaces: "70%확률"
    assert cer_reading(["70% 확률"], ["칠십 퍼센트 학률"], prons=["칠 십 퍼센트 확률"]) == pytest.approx(1 / 5)


def test_spans_keep_written_form_first():
    for _, _, opts in find_spans(normalize_text("3:30에 5kg, AI 10%")):
        assert len(opts) > 1
    assert [o[0] for _, _, o in find_spans("3:30")] == ["3:30"]


def test_many_spans_fall_back_to_per_span_choice():
    ref = " ".join(["일 이 삼 사 오 육 칠 팔 구"] * 2)
    hyp = " ".join(["1 2 3 4 5 6 7 8 9"] * 2)
    assert errors(ref, hyp) == 0
