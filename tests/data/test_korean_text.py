"""ETRI normalisation: every rule of DATA_SPEC.md, in its order, and the worked example."""

from __future__ import annotations

import unicodedata

import pytest

from soritune.data.korean_text import NORMALIZATION_VERSION, NormResult, normalize_basic, normalize_etri

WORKED_RAW = "b/ (70%)/(칠 십 퍼센트) 확률이라니 아/ (뭐+ 뭔)/(모+ 몬) 소리야 진짜 (100%)(백 프로)가 왜 안돼? n/"
WORKED_TEXT = "70% 확률이라니 아 뭐 뭔 소리야 진짜 100%가 왜 안돼?"
WORKED_PRON = "칠 십 퍼센트 확률이라니 아 모 몬 소리야 진짜 백 프로가 왜 안돼?"


def ok(raw: str, mode: str = "verbatim", **kw) -> tuple[str, str]:
    r = normalize_etri(raw, mode, **kw)
    assert r.ok and r.reason is None, (raw, r)
    return r.text, r.text_pron


def test_worked_example_verbatim():
    assert normalize_etri(WORKED_RAW) == NormResult(WORKED_TEXT, WORKED_PRON, True, None)


def test_worked_example_fluent_drops_fillers_and_repeated_words():
    assert ok(WORKED_RAW, "fluent") == ("70% 확률이라니 뭔 소리야 진짜 100%가 왜 안돼?",
                                        "칠 십 퍼센트 확률이라니 몬 소리야 진짜 백 프로가 왜 안돼?")


def test_version_and_mode_validation():
    assert isinstance(NORMALIZATION_VERSION, str) and NORMALIZATION_VERSION
    with pytest.raises(ValueError, match="mode"):
        normalize_etri("안녕", "clean")  # type: ignore[arg-type]


# 0. decode (caller), BOM / zero-width, NFC, whitespace
def test_step0_bom_zero_width_nfc_and_whitespace():
    decomposed = unicodedata.normalize("NFD", "한국어")
    assert len(decomposed) > 3
    assert ok(f"\ufeff{decomposed}\u200b 말\u200d\t\n  좋아  ") == ("한국어 말 좋아", "한국어 말 좋아")


# 1. noise tags at token start
@pytest.mark.parametrize("tag", ["b/", "l/", "o/", "n/", "u/"])
def test_step1_noise_tags_deleted(tag):
    assert ok(f"{tag} 그거 {tag}")[0] == "그거"
    assert ok(f"{tag}그거 좋아")[0] == "그거 좋아"  # a tag glued to the next word still starts a token


def test_step1_noise_tags_inside_duals_and_chained():
    assert ok("(b/ 뭐)/(b/ 모) 해 b/n/") == ("뭐 해", "모 해")


def test_step1_only_at_token_start():
    # 'club/' is a filler word ending in b, not a noise tag: the word stays (step 5 drops the slash)
    assert ok("club/ 좋아")[0] == "club 좋아"


# 2. '*' deleted, word kept
def test_step2_star_deleted():
    assert ok("*좋아 그거*")[0] == "좋아 그거"


# 3. repetitions
def test_step3_plus_verbatim_keeps_word():
    assert ok("그거+ 그거 좋아")[0] == "그거 그거 좋아"


def test_step3_space_plus_turned_into_plus_space():
    assert ok("그거 +그거 좋아")[0] == "그거 그거 좋아"
    assert ok("그거 +그거 좋아", "fluent")[0] == "그거 좋아"


def test_step3_fluent_drops_repeated_words():
    assert ok("그+ 그+ 그거 좋아", "fluent")[0] == "그거 좋아"


def test_step3_nested_plus_inside_duals():
    assert ok("(뭐+ 뭔)/(모+ 몬) 소리야") == ("뭐 뭔 소리야", "모 몬 소리야")
    assert ok("(뭐+ 뭔)/(모+ 몬) 소리야", "fluent") == ("뭔 소리야", "몬 소리야")


# 4. duals
def test_step4_dual_spelling_and_pronunciation():
    assert ok("(3)/(세) 개") == ("3 개", "세 개")
    assert ok("(SNS)/(에스엔에스)에 올렸어") == ("SNS에 올렸어", "에스엔에스에 올렸어")


def test_step4_spaces_around_slash_tolerated():
    assert ok("(3) / (세) 개") == ("3 개", "세 개")
    assert ok("( 3 )/ ( 세 ) 개") == ("3 개", "세 개")


def test_step4_malformed_dual_without_slash_is_resolved():
    assert ok("(100%)(백 프로)가 왜") == ("100%가 왜", "백 프로가 왜")
    assert ok("(2)(두) 시") == ("2 시", "두 시")


def test_step4_several_duals_and_pron_first():
    assert ok("(1)/(한) 시 (30)/(삼십) 분") == ("1 시 30 분", "한 시 삼십 분")
    assert ok("(세)/(3) 개", pron_first=True) == ("3 개", "세 개")


# 5. filler slash dropped only after duals are resolved
def test_step5_fillers():
    assert ok("아/ 그래 음/ 맞아") == ("아 그래 음 맞아", "아 그래 음 맞아")
    assert ok("아/ 그래 음/ 맞아", "fluent") == ("그래 맞아", "그래 맞아")
    assert ok("그래 음/?")[0] == "그래 음?"


def test_step5_after_step4_fillers_inside_duals():
    # resolving the dual first keeps its '/' from being read as a filler slash
    assert ok("(아/ 3)/(아/ 세) 개") == ("아 3 개", "아 세 개")


# 6. digit brackets
def test_step6_digit_brackets():
    assert ok("번호는 [공 일 공] 이야") == ("번호는 공 일 공 이야", "번호는 공 일 공 이야")


# 7. symbols
@pytest.mark.parametrize("sym", list("-@$^&=:;#"))
def test_step7_symbols_deleted(sym):
    assert ok(f"그거{sym}좋아")[0] == "그거좋아"


def test_step7_punctuation_kept():
    assert ok("그래. 진짜, 왜? 좋아!")[0] == "그래. 진짜, 왜? 좋아!"


def test_step7_percent_signs_kept():
    assert ok("(70%)/(칠 십 퍼센트) 확률")[0] == "70% 확률"
    assert ok("50% 할인 100%")[0] == "50% 할인 100%"


# 8. empty
@pytest.mark.parametrize("raw", ["", "   ", "b/ n/", "*", "o/ l/ u/", "[ ]", "- # @"])
def test_step8_empty(raw):
    r = normalize_etri(raw)
    assert (r.ok, r.reason) == (False, "empty")


def test_step8_empty_fluent_only_fillers():
    assert normalize_etri("아/ 음/ b/", "fluent").reason == "empty"
    assert normalize_etri("아/ 음/ b/", "verbatim").ok


# 9. quarantine what is still not plain text
@pytest.mark.parametrize("raw", [
    "(60)/)육십) 명",          # AI-Hub's malformed dual
    "(100%)/(백 프로 가",      # unclosed
    "그거) 좋아",              # stray ')'
    "(그거 좋아",              # stray '('
    "이거/저거 좋아",          # slash inside a word
    "((3))/(세) 개",           # nested parentheses
    "(SNS)/() 에",             # one side empty
])
def test_step9_malformed_lines_quarantined(raw):
    r = normalize_etri(raw)
    assert (r.ok, r.reason) == (False, "malformed")


def test_results_are_deterministic_and_independent():
    a = normalize_etri(WORKED_RAW, "fluent")
    b = normalize_etri(WORKED_RAW)
    assert normalize_etri(WORKED_RAW, "fluent") == a and normalize_etri(WORKED_RAW) == b != a


def test_basic_normalisation():
    assert normalize_basic("\ufeff 안녕  하세요 (웃음) ") == NormResult("안녕 하세요 (웃음)", "안녕 하세요 (웃음)", True, None)
    assert normalize_basic("\u200b ").reason == "empty"
