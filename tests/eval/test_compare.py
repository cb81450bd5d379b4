"""Paired comparison of two report directories."""

import json

import pytest

from soritune.errors import SoritunError
from soritune.eval.compare import run_compare, write_compare
from soritune.eval.io import write_report_dir
from soritune.eval.score import score_texts

REFS = [{"id": f"u{i}", "text": t} for i, t in enumerate(
    ["오늘 날씨가 좋네요", "사과 세 개 주세요", "나는 학교에 간다", "회의는 세 시에 시작합니다", "감사합니다",
     "서울에서 부산까지 기차로 갑니다", "점심 메뉴는 김치찌개입니다", "내일 다시 연락드리겠습니다"])]
A = ["오늘 날씨가 좋내요", "사과 네 개 주세요", "나는 학교 간다", "회의는 세시에 시작합니다", "감사합니다",
     "서울에서 부산가지 기차로 감니다", "점심 메뉴는 김치찌게입니다", "내일 다시 연락 드리겠습니다"]
B = ["오늘 날씨가 좋네요", "사과 세 개 주세요", "나는 학교에 간다", "회의는 세시에 시작합니다", "감사합니다",
     "서울에서 부산까지 기차로 갑니다", "점심 메뉴는 김치찌개입니다", "내일 다시 연락 드리겠습니다"]


def _dir(tmp_path, name, hyps, refs=REFS):
    rep = score_texts(refs, {r["id"]: h for r, h in zip(refs, hyps)}, n_boot=50)
    write_report_dir(tmp_path / name, rep)
    return tmp_path / name


def test_b_better_than_a(tmp_path):
    a, b = _dir(tmp_path, "a", A), _dir(tmp_path, "b", B)
    res = run_compare(a, b / "report.json", n_boot=300, seed=0)
    ja, jb = (json.loads((d / "report.json").read_text()) for d in (a, b))
    assert res.n_shared == 8 and res.n_only_a == 0
    cer = res.metrics["cer"]
    assert cer["a"] == pytest.approx(ja["cer"]) and cer["b"] == pytest.approx(jb["cer"])
    assert cer["diff"] < 0 and cer["ci95"][1] <= 0 and cer["p_b_better"] > 0.9
    assert res.changed and all(c["delta"] < 0 for c in res.changed)
    deltas = [abs(c["delta"]) for c in res.changed]
    assert deltas == sorted(deltas, reverse=True)
    assert res == run_compare(a, b, n_boot=300, seed=0)  # deterministic
    paths = write_compare(res, tmp_path / "cmp")
    assert "P(B better)" in paths["compare_md"].read_text(encoding="utf-8")
    assert json.loads(paths["compare_json"].read_text())["metrics"]["wer"]["n_ref"] == ja["n_ref_words"]


def test_only_shared_utterances(tmp_path):
    a = _dir(tmp_path, "a", A)
    b = _dir(tmp_path, "b", B[:5], refs=REFS[:5])
    res = run_compare(a, b, n_boot=50)
    assert (res.n_shared, res.n_only_a, res.n_only_b) == (5, 3, 0)


def test_incomparable_reports(tmp_path):
    a = _dir(tmp_path, "a", A)
    other = [{"id": r["id"], "text": r["text"] + " 끝"} for r in REFS]
    b = _dir(tmp_path, "b", B, refs=other)
    with pytest.raises(SoritunError, match="different reference"):
        run_compare(a, b)
    c = _dir(tmp_path, "c", ["x"], refs=[{"id": "zzz", "text": "y"}])
    with pytest.raises(SoritunError, match="share no utterance"):
        run_compare(a, c)
    js = json.loads((b / "report.json").read_text())
    js["normalization"]["version"] = "0.0"
    (b / "report.json").write_text(json.dumps(js))
    with pytest.raises(SoritunError, match="normalisation"):
        run_compare(a, b)
    with pytest.raises(SoritunError, match="no report"):
        run_compare(a, tmp_path / "missing")
