"""`prepare aihub-lecture`: prefixed JSON keys, audio paired by stem, metadata kept, defects accounted."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from soritune.audio import write_wav
from soritune.data.corpora.aihub import strip_prefixes
from soritune.data.manifest import read_manifest
from soritune.data.prepare_common import PrepareConfig, run


def label(text, uid: str, *, city="서울", speaker="SPK001") -> dict:
    return {
        "01_dataset": {"1_identifier": uid, "2_src_path": f"원천/{uid}.wav", "3_label_path": f"라벨/{uid}.json",
                       "4_category": "공학"},
        "02_lectureinfo": {"1_city": city, "2_university_type": "국립", "3_major_category": "공학",
                           "4_collection_type": "대면"},
        "03_speakerinfo": {"1_id": speaker, "2_gender": "F", "3_age": "30대", "4_role": "교수", "5_dialect": "표준어"},
        "04_transcription": {"1_text": text},
    }


def build(root: Path) -> dict[str, str | None]:
    """Training/Validation trees with labels and audio in separate folders. Returns {id: reason}."""
    truth: dict[str, str | None] = {}

    def utt(part: str, uid: str, text, seconds: float | None = 1.0, raw: bytes | None = None, reason=None, **kw):
        lab = root / part / "라벨링데이터" / "공학" / f"{uid}.json"
        lab.parent.mkdir(parents=True, exist_ok=True)
        lab.write_bytes(raw if raw is not None else json.dumps(label(text, uid, **kw), ensure_ascii=False).encode())
        if seconds is not None:
            write_wav(root / part / "원천데이터" / "공학" / f"{uid}.wav", np.zeros(int(seconds * 16000), np.float32) + 0.01)
        truth[uid] = reason

    utt("1.Training", "L001", "오늘은 (2)/(이) 차 방정식을 배웁니다")
    utt("1.Training", "L002", "(SNS)/(에스엔에스) 데이터 음/ 분석", speaker="SPK002", city="부산")
    utt("1.Training", "L003", "(60)/)육십) 점", reason="malformed")
    utt("1.Training", "L004", "소리 없음", seconds=None, reason="missing_audio")
    utt("1.Training", "L005", None, raw=b"{not json", reason="bad_label")
    utt("1.Training", "L006", None, reason="bad_label")  # transcription.text is null
    utt("1.Training", "L007", "짧다", seconds=0.1, reason="too_short")
    utt("2.Validation", "L101", "검증 세트 [공 일] 번")
    utt("2.Validation", "L102", "b/", reason="empty")
    write_wav(root / "1.Training" / "원천데이터" / "공학" / "L999.wav", np.zeros(16000, np.float32))  # no label
    return truth


def test_strip_prefixes_recursive():
    assert strip_prefixes({"01_a": {"1_b": [{"12_c": 1}]}, "d_1": 2}) == {"a": {"b": [{"c": 1}]}, "d_1": 2}


def test_aihub_lecture_prepared_and_accounted(tmp_path):
    truth = build(tmp_path / "root")
    result = run(PrepareConfig(corpus="aihub-lecture", root=str(tmp_path / "root"), out=str(tmp_path / "out"), shard_size=3))
    train = {r["id"]: r for r in read_manifest(tmp_path / "out" / "train.jsonl")}
    dev = {r["id"]: r for r in read_manifest(tmp_path / "out" / "dev.jsonl")}
    assert set(train) == {"L001", "L002"} and set(dev) == {"L101"}
    r = train["L001"]
    assert (r["text"], r["text_pron"]) == ("오늘은 2 차 방정식을 배웁니다", "오늘은 이 차 방정식을 배웁니다")
    assert r["audio"].endswith("원천데이터/공학/L001.wav") and r["duration"] == pytest.approx(1.0)
    assert r["lectureinfo"] == {"city": "서울", "university_type": "국립", "major_category": "공학", "collection_type": "대면"}
    assert r["speakerinfo"]["role"] == "교수" and r["speaker"] == "SPK001" and r["category"] == "공학"
    assert train["L002"]["speaker"] == "SPK002" and train["L002"]["lectureinfo"]["city"] == "부산"
    assert dev["L101"]["text"] == "검증 세트 공 일 번"
    quarantine = [json.loads(x) for x in (tmp_path / "out" / "quarantine.jsonl").read_text(encoding="utf-8").splitlines()]
    assert Counter(q["reason"] for q in quarantine) == Counter(v for v in truth.values() if v)
    assert {q["id"] for q in quarantine} | set(train) | set(dev) == set(truth)
    assert next(q for q in quarantine if q["id"] == "L003")["raw_text"] == "(60)/)육십) 점"
    assert result.inputs == len(truth) and result.notes["unpaired_audio"] == 1


def test_aihub_pron_first(tmp_path):
    root = tmp_path / "root"
    (root / "lab").mkdir(parents=True)
    (root / "lab" / "X1.json").write_text(json.dumps(label("(이)/(2) 차", "X1"), ensure_ascii=False), encoding="utf-8")
    write_wav(root / "wav" / "X1.wav", np.zeros(16000, np.float32))
    run(PrepareConfig(corpus="aihub-lecture", root=str(root), out=str(tmp_path / "out"), pron_first=True))
    (row,) = read_manifest(tmp_path / "out" / "train.jsonl")
    assert (row["text"], row["text_pron"]) == ("2 차", "이 차")
