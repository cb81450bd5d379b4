"""The NeMo-manifest reader, added as one module (data/corpora/nemo.py) plus one registry line: its
`soritune prepare nemo` command comes from the registry; splits from file names; relative paths
resolved against the manifest; segments (offset) quarantined with their reason; counts add up."""

from __future__ import annotations

import json

import numpy as np
import pytest

from soritune.audio import write_wav
from soritune.cli import main
from soritune.data.corpora import REGISTRY, get_corpus
from soritune.data.corpora.nemo import split_name
from soritune.rundir import read_run


def _wav(path, seconds: float):
    return write_wav(path, (0.1 * np.sin(np.arange(int(16000 * seconds)) / 5)).astype("float32"))


def _lines(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows) + "not json\n", encoding="utf-8")


@pytest.fixture
def nemo_dir(tmp_path):
    root = tmp_path / "nemo"
    (root / "wav").mkdir(parents=True)
    for name, s in (("a", 1.5), ("b", 2.0), ("c", 1.0), ("long", 3.0)):
        _wav(root / "wav" / f"{name}.wav", s)
    _lines(root / "train_manifest.json", [
        {"audio_filepath": "wav/a.wav", "duration": 1.5, "text": "안녕하세요 여러분", "lang": "ko"},
        {"audio_filepath": str(root / "wav" / "b.wav"), "duration": 2.0, "text": "오늘은 미분을 배웁니다"},
        {"audio_filepath": "wav/long.wav", "offset": 1.0, "duration": 1.0, "text": "구간"},
        {"audio_filepath": "wav/missing.wav", "duration": 1.0, "text": "없는 파일"},
    ])
    _lines(root / "dev_manifest.jsonl", [{"audio_filepath": "wav/c.wav", "duration": 1.0, "text": "감사합니다"}])
    return root


def test_split_names_come_from_the_file_names(tmp_path):
    from pathlib import Path

    assert [split_name(Path(n)) for n in ("train_manifest.json", "manifest_dev.jsonl", "test_other.json",
                                          "manifest.json")] == ["train", "dev", "test_other", "train"]
    assert REGISTRY["nemo"].endswith(".nemo") and get_corpus("nemo").name == "nemo"


def test_prepare_nemo_from_the_cli(nemo_dir, tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as e:
        main(["prepare", "nemo", str(nemo_dir), "--out", str(out), "--workers", "1"])
    assert e.value.code == 0, capsys.readouterr().err
    train = [json.loads(x) for x in (out / "train.jsonl").read_text().splitlines()]
    dev = [json.loads(x) for x in (out / "dev.jsonl").read_text().splitlines()]
    assert [r["text"] for r in train] == ["안녕하세요 여러분", "오늘은 미분을 배웁니다"]
    assert train[0]["audio"] == str(nemo_dir / "wav" / "a.wav") and train[0]["lang"] == "ko"
    assert train[0]["nemo_duration"] == 1.5 and abs(train[0]["duration"] - 1.5) < 0.01  # measured again
    assert [r["text"] for r in dev] == ["감사합니다"]
    quarantine = {r["reason"] for r in map(json.loads, (out / "quarantine.jsonl").read_text().splitlines())}
    assert quarantine == {"segment", "missing_audio", "bad_row"}
    run = read_run(out)
    assert run.stage == "prepare" and run.config["corpus"] == "nemo"
    assert run.summary["inputs"] == 7 and run.summary["kept"] == 3 and run.summary["accounted"]


def test_prepare_nemo_help_is_generated_from_the_registry(capsys):
    with pytest.raises(SystemExit) as e:
        main(["prepare", "nemo", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "NeMo" in text and "--out" in text and "--split" in text
