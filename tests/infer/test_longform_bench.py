"""benchmarks/longform.py's paired CER difference (soritune vs faster-whisper) on known per-sentence outputs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[2] / "benchmarks" / "longform.py"


@pytest.fixture(scope="module")
def longform():
    spec = importlib.util.spec_from_file_location("longform_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_paired_cer(longform, tmp_path):
    refs = ["오늘은 미분을 배웁니다", "다음 시간에는 적분입니다", "창문을 조금 열어 주세요", "버스가 곧 도착합니다"]
    sentences = [{"text": r, "pron": r} for r in refs]
    fw = ["오늘은 미분을 배웁니다", "다음 시간에는 적분", "창문을 열어 주세요", "버스가 곧 도착"]
    ours = ["오늘은 미분을 배웁니다", "다음 시간에는 적분입니다", "창문을 조금 열어 주세요", "버스가 곧 도착"]
    for name, hyps in (("faster-whisper", fw), ("soritune", ours)):
        rows = [{"i": i, "ref": r, "hyp": h} for i, (r, h) in enumerate(zip(refs, hyps))]
        (tmp_path / f"{name}.sentences.json").write_text(json.dumps(rows, ensure_ascii=False))
    pair = longform.paired_cer(tmp_path, sentences)
    n_ref = sum(len(r.replace(" ", "")) for r in refs)
    assert pair["cer_a"] == pytest.approx(100 * 8 / n_ref, abs=0.01) and pair["cer_b"] == pytest.approx(100 * 3 / n_ref, abs=0.01)
    assert pair["diff"] == pytest.approx(pair["cer_b"] - pair["cer_a"], abs=0.02)
    assert pair["ci95"][0] <= pair["diff"] <= pair["ci95"][1] <= 0 and pair["p_b_better"] > 0.5
    assert longform.paired_cer(tmp_path, sentences, b="plain-30s") is None  # no such system's file
