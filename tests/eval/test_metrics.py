"""Metrics equal jiwer's after the documented normalisation; sWER on hand-worked examples."""

import jiwer
import pytest

from soritune.eval import metrics as M
from soritune.eval.normalize import no_spaces, normalize_text

PAIRS = [
    ("안녕하세요 반갑습니다", "안녕하세요 반갑 습니다"),
    ("오늘 날씨가 정말 좋네요.", "오늘 날씨가 참 좋네요"),
    ("나는 학교에 간다", "나는학교에 갔다"),
    ("GPU 메모리가 24GB입니다", "gpu 메모리가 24 GB 입니다"),
    ("Transformer 모델의 attention 계산", "트랜스포머 모델에 attention 계산을"),
    ("확률이 70%입니다", "확률이 70 퍼센트입니다"),
    ("사과 세 개 주세요", "사과 네 개"),
    ("서울에서 부산까지", "서울에서 부산까지 부산까지 부산까지"),
    ("배가 고파요", ""),
]


def _norm(texts):
    return [normalize_text(t) for t in texts]


def test_cer_wer_equal_jiwer():
    refs, hyps = _norm([r for r, _ in PAIRS]), _norm([h for _, h in PAIRS])
    raw_refs, raw_hyps = [r for r, _ in PAIRS], [h for _, h in PAIRS]
    ref_ns, hyp_ns = [no_spaces(r) for r in refs], [no_spaces(h) for h in hyps]
    assert M.cer(raw_refs, raw_hyps) == pytest.approx(jiwer.cer(ref_ns, hyp_ns))
    assert M.cer_spaced(raw_refs, raw_hyps) == pytest.approx(jiwer.cer(refs, hyps))
    # jiwer's default WER transform also strips and splits on whitespace; empty hyp must stay a sentence
    assert M.wer(raw_refs, raw_hyps) == pytest.approx(jiwer.wer(refs, hyps))


def test_counts_equal_jiwer_per_pair():
    for r, h in PAIRS:
        rn, hn = normalize_text(r), normalize_text(h)
        jc = jiwer.process_characters(no_spaces(rn), no_spaces(hn))
        c = M.char_counts(rn, hn)
        assert (c.hits, c.sub, c.dele, c.ins) == (jc.hits, jc.substitutions, jc.deletions, jc.insertions)
        jw = jiwer.process_words(rn, hn)
        w = M.word_counts(rn, hn)
        assert (w.hits, w.sub, w.dele, w.ins) == (jw.hits, jw.substitutions, jw.deletions, jw.insertions)


def test_sdi_sums():
    for r, h in PAIRS:
        rn, hn = normalize_text(r), normalize_text(h)
        views = (
            (M.char_counts, len(no_spaces(rn)), len(no_spaces(hn))),
            (M.char_counts_spaced, len(rn), len(hn)),
            (M.word_counts, len(rn.split()), len(hn.split())),
            (M.sword_counts, len(rn.split()), len(M.respace(rn, hn).split())),
        )
        for fn, n_ref, n_hyp in views:
            c = fn(rn, hn)
            assert c.hits + c.sub + c.dele == n_ref
            assert c.hits + c.sub + c.ins == n_hyp
            assert c.errors == c.sub + c.dele + c.ins


@pytest.mark.parametrize("ref,hyp,respaced,errors", [
    # spacing alone: WER 2/3, sWER 0
    ("나는 학교에 간다", "나는학교에 간다", "나는 학교에 간다", 0),
    # over-split hypothesis is re-joined
    ("학습합니다", "학습 합니다", "학습합니다", 0),
    # one substituted character: one word wrong after re-spacing
    ("나는 학교에 간다", "나는학교애 간다", "나는 학교애 간다", 1),
    # a deleted word-initial character: the boundary moves to the next aligned character
    ("오늘 날씨 좋다", "오늘씨좋다", "오늘 씨 좋다", 1),
    # inserted characters at a boundary stay with the preceding word
    ("ab cd", "abxcd", "abx cd", 1),
    ("나는 간다", "", "", 2),
])
def test_swer_hand_worked(ref, hyp, respaced, errors):
    assert M.respace(ref, hyp) == respaced
    c = M.sword_counts(ref, hyp)
    assert c.errors == errors
    assert c.n_ref == len(ref.split())


def test_swer_vs_wer_on_spacing_only_set():
    refs = ["나는 학교에 간다", "오늘 날씨 좋다"]
    hyps = ["나는학교에 간다", "오늘날씨 좋다"]
    assert M.swer(refs, hyps) == 0.0
    assert M.wer(refs, hyps) == pytest.approx(4 / 6)
    assert M.cer(refs, hyps) == 0.0
    assert M.cer_spaced(refs, hyps) > 0


def test_empty_reference_counts_insertions():
    assert M.cer(["", "가나"], ["다", "가나"]) == pytest.approx(1 / 2)
    assert M.cer([""], [""]) == 0.0
    assert M.cer([""], ["다"]) == float("inf")


def test_loop_detection():
    assert M.has_ngram_loop(normalize_text("감사합니다 " * 6))
    assert M.has_ngram_loop("이 주인사 수입 이 주인사 수입 이 주인사 수입 이 주인사 수입")  # period 3
    assert M.has_ngram_loop("하하하하하하하하")
    assert M.has_ngram_loop("미어너미어너미어너미어너")
    assert not M.has_ngram_loop("감사합니다 감사합니다 감사합니다")
    assert not M.has_ngram_loop("오늘은 날씨가 좋아서 공원에 산책을 갔습니다 오늘은 날씨가 좋아서 집에 왔습니다")
    assert not M.has_ngram_loop("")
