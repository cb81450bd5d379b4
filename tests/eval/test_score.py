"""score_texts, reading inputs, the report directory, and id checks."""

import csv
import json

import pytest

from soritune.errors import SoritunError
from soritune.eval import metrics as M
from soritune.eval.io import read_hyps, read_refs, read_utterances
from soritune.eval.score import score_texts
from soritune.eval.scoring import ScoreConfig, run_score

REQUIRED = {"cer", "cer_spaced", "wer", "swer", "cer_reading", "n_utts", "n_ref_chars", "n_ref_words", "sub", "del",
            "ins", "ci95", "hallucination", "normalization"}
REFS = [
    {"id": "a", "text": "사과 3개 주세요.", "source": "x", "duration": 2.0},
    {"id": "b", "text": "나는 학교에 간다", "source": "y", "duration": 12.0},
    {"id": "c", "text": "(70%)/(칠 십 퍼센트) 확률", "source": "x", "duration": 3.0},
    {"id": "d", "text": "", "source": "y", "duration": 1.0},
]
REFS[2] = {**REFS[2], "text": "70% 확률", "text_pron": "칠 십 퍼센트 확률"}
HYPS = {"a": "사과 세 개 주세요", "b": "나는학교에 갔다", "c": "칠십 퍼센트 확률", "d": "음"}


def test_report_keys_and_values():
    rep = score_texts(REFS, HYPS, n_boot=100)
    js = rep.to_json()
    assert REQUIRED <= set(js)
    assert set(js["ci95"]) == {"cer", "wer"}
    assert js["normalization"]["name"] and js["normalization"]["version"]
    refs, hyps = [r["text"] for r in REFS], [HYPS[r["id"]] for r in REFS]
    assert js["cer"] == pytest.approx(M.cer(refs, hyps))
    assert js["wer"] == pytest.approx(M.wer(refs, hyps))
    assert js["swer"] == pytest.approx(M.swer(refs, hyps))
    assert js["cer_reading"] < js["cer"]
    assert js["n_utts"] == 4 and js["n_empty_refs"] == 1
    pm = js["per_metric"]["cer"]
    assert pm["errors"] == js["sub"] + js["del"] + js["ins"]
    assert pm["hits"] + js["sub"] + js["del"] == js["n_ref_chars"] == pm["n_ref"]
    assert js["cer"] == pytest.approx(pm["errors"] / pm["n_ref"])
    assert js["per_metric"]["cer_reading"]["n_with_pron"] == 1
    h = js["hallucination"]
    assert h["n_insertions"] == js["ins"] and h["max_tokens_rate"] is None and h["n_empty_outputs"] == 0


def test_pronunciation_side_counts():
    refs = [{"id": "p", "text": "뭐 뭔 소리야", "text_pron": "모 몬 소리야"}, {"id": "q", "text": "네"}]
    js = score_texts(refs, {"p": "모 몬 소리야", "q": "네"}, n_boot=20).to_json()
    assert js["cer_reading"] == 0.0 and js["cer"] == pytest.approx(2 / 6)
    assert js["per_metric"]["cer_reading"]["n_with_pron"] == 1
    assert js["per_metric"]["cer_reading"]["n_used_pron"] == 1


def test_hallucination_indicators_from_meta():
    hyps = {**HYPS, "a": "", "b": "감사합니다 " * 10}
    meta = {k: {"n_tokens": 5, "hit_max_tokens": k == "b"} for k in HYPS}
    h = score_texts(REFS, hyps, hyp_meta=meta, n_boot=50).to_json()["hallucination"]
    assert h["n_empty_outputs"] == 1 and h["empty_output_rate"] == 0.25
    assert h["n_loops"] == 1 and h["n_hit_max_tokens"] == 1 and h["max_tokens_rate"] == 0.25


def test_mismatched_ids_are_rejected_with_a_clear_message():
    hyps = {k: v for k, v in HYPS.items() if k != "b"} | {"zz": "x", "yy": "y"}
    with pytest.raises(SoritunError) as e:
        score_texts(REFS, hyps)
    msg = str(e.value)
    assert "1 reference ids have no hypothesis (first: b)" in msg
    assert "2 hypothesis ids are not in the references (first: zz, yy)" in msg


def _write(tmp_path):
    refs = tmp_path / "refs.jsonl"
    refs.write_text("".join(json.dumps({**r, "audio": f"{r['id']}.wav"}, ensure_ascii=False) + "\n" for r in REFS),
                    encoding="utf-8")
    hyps = tmp_path / "hyps.tsv"
    hyps.write_text("id\ttext\n" + "".join(f"{k}\t{v}\n" for k, v in HYPS.items()), encoding="utf-8")
    return refs, hyps


def test_readers(tmp_path):
    refs, hyps = _write(tmp_path)
    assert [r["id"] for r in read_refs(refs)] == ["a", "b", "c", "d"]
    texts, meta = read_hyps(hyps)
    assert texts == HYPS and meta == {}
    j = tmp_path / "h.jsonl"
    j.write_text('{"id": "a", "text": "x", "hit_max_tokens": true, "n_tokens": 3}\n\n{"id": "b", "text": null}\n')
    texts, meta = read_hyps(j)
    assert texts == {"a": "x", "b": ""} and meta == {"a": {"n_tokens": 3, "hit_max_tokens": True}}
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "x"}\n{"text": "y"}\n')
    with pytest.raises(SoritunError, match=r"bad.jsonl:2"):
        read_hyps(bad)
    dup = tmp_path / "dup.tsv"
    dup.write_text("a\tx\na\ty\n")
    with pytest.raises(SoritunError, match="duplicate"):
        read_hyps(dup)


def test_run_score_writes_report_dir(tmp_path):
    refs, hyps = _write(tmp_path)
    rep = run_score(ScoreConfig(refs=refs, hyps=hyps, out=tmp_path / "out", slice_by=["source", "duration_bucket"],
                                n_boot=100))
    js = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert REQUIRED <= set(js) and js["cer"] == rep.rate("cer")
    assert set(js["slices"]["source"]) == {"x", "y"}
    assert js["slices"]["source"]["x"]["n_utts"] == 2
    assert set(js["slices"]["duration_bucket"]) == {"0-5s", "10-20s"}
    assert "CER" in (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    rows = read_utterances(tmp_path / "out" / "utterances.tsv")
    assert [r["id"] for r in rows] == ["a", "b", "c", "d"]
    assert sum(r["cer_errors"] for r in rows) == js["sub"] + js["del"] + js["ins"]
    assert sum(r["n_ref_chars"] for r in rows) == js["n_ref_chars"]
    with open(tmp_path / "out" / "utterances.tsv", encoding="utf-8") as f:
        header = next(csv.reader(f, delimiter="\t"))
    assert header[:8] == ["id", "ref", "hyp", "cer", "n_ref_chars", "sub", "del", "ins"]


def test_unknown_slice_field(tmp_path):
    refs, hyps = _write(tmp_path)
    with pytest.raises(SoritunError, match="speaker"):
        run_score(ScoreConfig(refs=refs, hyps=hyps, out=tmp_path / "o", slice_by=["speaker"]))
