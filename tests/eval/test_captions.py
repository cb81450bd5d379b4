"""CIDEr-D: parity with pycocoevalcap's Cider (COCO's CIDEr-D code) and the Korean character score."""

import random

import pytest

from soritune.eval.captions import (
    CaptionInputError,
    cider_d,
    cider_d_ko,
    cider_d_scores,
    tokenize_en,
    tokenize_ko_chars,
)

CANDS = {
    "1": "a dog barks loudly in the distance",
    "2": "rain falls on a metal roof",
    "3": "a man speaks while cars pass by",
    "4": "birds chirp",
}
REFS = {
    "1": ["a dog is barking far away", "dog barking loudly in the distance", "a distant dog barks"],
    "2": ["heavy rain falls on a tin roof", "rain drumming on a metal roof"],
    "3": ["a man is talking as traffic passes", "a person speaks while cars drive by", "man talking near a road"],
    "4": ["birds are chirping in the trees", "several birds chirp and sing"],
}


def _coco(cands, refs):
    from pycocoevalcap.cider.cider import Cider

    score, per = Cider().compute_score({k: list(v) for k, v in refs.items()}, {k: [c] for k, c in cands.items()})
    return float(score), [float(x) for x in per]


def test_parity_with_pycocoevalcap_on_shared_cases():
    ours = cider_d(CANDS, REFS, tokenizer=None)
    theirs, per = _coco(CANDS, REFS)
    assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-12)
    assert list(cider_d_scores(CANDS, REFS, tokenizer=None).values()) == pytest.approx(per, rel=1e-12)
    assert 0 < ours < 10


def test_parity_on_random_corpora():
    rng = random.Random(0)
    vocab = "a the dog cat rain wind car man woman speaks barks falls roof road bird sings loud quiet".split()
    for _trial in range(5):
        n = rng.randint(2, 12)
        cands = {str(i): " ".join(rng.choices(vocab, k=rng.randint(1, 9))) for i in range(n)}
        refs = {str(i): [" ".join(rng.choices(vocab, k=rng.randint(1, 10))) for _ in range(rng.randint(1, 5))]
                for i in range(n)}
        assert cider_d(cands, refs, tokenizer=None) == pytest.approx(_coco(cands, refs)[0], rel=1e-10, abs=1e-12)


def test_perfect_match_beats_unrelated_and_clipping_caps_repetition():
    perfect = {k: v[0] for k, v in REFS.items()}
    unrelated = {k: "zebra xylophone quantum" for k in REFS}
    assert cider_d(perfect, REFS) > cider_d(CANDS, REFS) > cider_d(unrelated, REFS) == 0.0
    repeated = dict(CANDS, **{"1": "dog dog dog dog dog dog dog"})
    assert cider_d_scores(repeated, REFS)["1"] < cider_d_scores(CANDS, REFS)["1"]


def test_single_clip_corpus_scores_zero_as_coco():
    # idf over a one-clip corpus is log(1) - log(1) = 0 for every n-gram: COCO gives 0 too.
    assert cider_d({"a": "dog"}, {"a": ["dog"]}) == _coco({"a": "dog"}, {"a": ["dog"]})[0] == 0.0


def test_tokenizer_matches_ptb_conventions():
    assert tokenize_en("A Dog, barking -- loudly!") == ["a", "dog", "barking", "loudly"]
    assert cider_d({k: v.upper() + "." for k, v in CANDS.items()}, REFS) == pytest.approx(cider_d(CANDS, REFS))


def test_mismatched_ids_and_empty_references_are_named():
    with pytest.raises(CaptionInputError, match="differ"):
        cider_d({"1": "x"}, {"2": ["x"]})
    with pytest.raises(CaptionInputError, match="no reference"):
        cider_d({"1": "x", "2": "y"}, {"1": ["x"], "2": []})


def test_korean_character_score():
    refs = {"1": ["개가 멀리서 짖는다", "멀리서 개 짖는 소리"], "2": ["비가 양철 지붕에 떨어진다", "지붕 위로 비가 내린다"],
            "3": ["남자가 말하고 차가 지나간다", "차 소리 속에 남자가 말한다"]}
    good = {"1": "개가멀리서 짖는다.", "2": "비가 지붕에 떨어진다", "3": "남자가 말한다"}
    bad = {"1": "새가 노래한다", "2": "음악이 흐른다", "3": "조용하다"}
    assert tokenize_ko_chars("개가 짖는다!") == list("개가짖는다")
    assert cider_d_ko(good, refs) > cider_d_ko(bad, refs) >= 0
    # Spacing does not matter in the Korean score.
    assert cider_d_ko({"1": "개가 멀리서 짖는다", "2": good["2"], "3": good["3"]}, refs) == pytest.approx(
        cider_d_ko(good, refs))
