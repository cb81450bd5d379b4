"""`prepare manifest`: CSV / TSV / JSONL lists and a folder of audio + .txt."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from soritune.audio import write_wav
from soritune.data.manifest import read_manifest
from soritune.data.prepare_common import PrepareConfig, run
from soritune.errors import SoritunError


def wav(path: Path, seconds: float = 1.0) -> Path:
    return write_wav(path, np.full(int(seconds * 16000), 0.01, np.float32))


def prepare(src: Path, out: Path, **kw):
    return run(PrepareConfig(corpus="manifest", root=str(src), out=str(out), **kw))


def quarantine(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "quarantine.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("sep,suffix", [(",", "csv"), ("\t", "tsv")])
def test_table_lists(tmp_path, sep, suffix):
    wav(tmp_path / "a" / "one.wav")
    wav(tmp_path / "a" / "two.wav", 2.0)
    wav(tmp_path / "a" / "short.wav", 0.1)
    rows = [["path", "sentence", "speaker", "room"],
            ["a/one.wav", "  안녕  하세요 ", "s1", "A"],
            ["a/two.wav", "두 번째", "s2", "B"],
            ["a/short.wav", "짧다", "s1", "A"],
            ["a/missing.wav", "없는 파일", "s3", "C"],
            ["a/one.wav", "", "s1", "A"]]  # empty text; also a duplicate id
    (tmp_path / f"list.{suffix}").write_text("\n".join(sep.join(r) for r in rows) + "\n", encoding="utf-8")
    result = prepare(tmp_path / f"list.{suffix}", tmp_path / "out")
    kept = {r["id"]: r for r in read_manifest(tmp_path / "out" / "train.jsonl")}
    assert set(kept) == {"a/one", "a/two"}
    assert kept["a/one"]["text"] == "안녕 하세요" and kept["a/one"]["speaker"] == "s1" and kept["a/one"]["room"] == "A"
    assert kept["a/two"]["duration"] == pytest.approx(2.0) and "text_pron" not in kept["a/two"]
    assert Counter(q["reason"] for q in quarantine(tmp_path / "out")) == {"too_short": 1, "missing_audio": 1, "duplicate_id": 1}
    assert result.inputs == 5


def test_table_cp949_and_split_column(tmp_path):
    wav(tmp_path / "x.wav")
    wav(tmp_path / "y.wav")
    text = "audio,text,split\nx.wav,첫째,train\ny.wav,둘째,dev\nx.wav,셋째,../evil\n"
    (tmp_path / "l.csv").write_bytes(text.encode("cp949"))
    result = prepare(tmp_path / "l.csv", tmp_path / "out")
    assert result.kept_by_split == {"train": 1, "dev": 1}
    assert [q["reason"] for q in quarantine(tmp_path / "out")] == ["bad_row"]


def test_table_without_text_column_is_a_clear_error(tmp_path):
    (tmp_path / "l.csv").write_text("audio,words\nx.wav,hi\n", encoding="utf-8")
    with pytest.raises(SoritunError, match="no text column"):
        prepare(tmp_path / "l.csv", tmp_path / "out")
    (tmp_path / "s.csv").write_text("audio,text,offset\nx.wav,hi,3.0\n", encoding="utf-8")
    with pytest.raises(SoritunError, match="offset"):
        prepare(tmp_path / "s.csv", tmp_path / "out")


def test_jsonl_list_with_bad_lines(tmp_path):
    wav(tmp_path / "w" / "1.wav")
    wav(tmp_path / "w" / "2.wav")
    lines = [json.dumps({"id": "u1", "audio": str(tmp_path / "w" / "1.wav"), "text": "절대 경로", "lang": "ko"}, ensure_ascii=False),
             json.dumps({"id": "u2", "audio": "w/2.wav", "text": "(SNS)/(에스엔에스) 좋아"}, ensure_ascii=False),
             "{broken",
             json.dumps({"id": "u3", "text": "소리 경로 없음"}, ensure_ascii=False),
             json.dumps({"id": "u4", "audio": "w/1.wav"})]
    (tmp_path / "l.jsonl").write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    result = prepare(tmp_path / "l.jsonl", tmp_path / "out", norm="etri")
    kept = {r["id"]: r for r in read_manifest(tmp_path / "out" / "train.jsonl")}
    assert kept["u1"]["lang"] == "ko" and kept["u1"]["audio"] == str(tmp_path / "w" / "1.wav")
    assert (kept["u2"]["text"], kept["u2"]["text_pron"]) == ("SNS 좋아", "에스엔에스 좋아")
    assert Counter(q["reason"] for q in quarantine(tmp_path / "out")) == {"bad_row": 2, "missing_text": 1}
    assert result.inputs == 5


def test_folder_of_audio_and_txt(tmp_path):
    src = tmp_path / "rec"
    wav(src / "a.wav")
    (src / "a.txt").write_bytes("\ufeff첫 번째 녹음\n".encode("utf-8"))
    wav(src / "sub" / "b.flac.wav")
    (src / "sub" / "b.flac.txt").write_bytes("둘째".encode("cp949"))
    wav(src / "sub" / "c.wav")  # no transcript
    (src / "orphan.txt").write_text("소리 없음", encoding="utf-8")
    (src / "bad.wav").write_bytes(b"RIFF0000WAVEjunk")
    (src / "bad.txt").write_text("망가진 파일", encoding="utf-8")
    result = prepare(src, tmp_path / "out", convert="flac")
    kept = {r["id"]: r for r in read_manifest(tmp_path / "out" / "train.jsonl")}
    assert kept["a"]["text"] == "첫 번째 녹음" and kept["sub/b.flac"]["text"] == "둘째"
    assert Path(kept["a"]["audio"]).suffix == ".flac" and Path(kept["a"]["audio"]).exists()
    assert Counter(q["reason"] for q in quarantine(tmp_path / "out")) == {
        "missing_text": 1, "missing_audio": 1, "unreadable_audio": 1}
    assert result.inputs == 5
