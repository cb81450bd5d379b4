"""Defect 3: training survives undecodable or directory audio (skipped, counted, bounded) and takes a
clip's duration from its audio, not from the row."""

from __future__ import annotations

import json

import numpy as np
import pytest

from soritune.audio import write_wav
from soritune.data.manifest import write_manifest
from soritune.errors import ConfigError


def _corpus(root, n_good: int, bad: bool = True):
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n_good):
        write_wav(root / f"g{i}.wav", (0.1 * rng.standard_normal(16000)).astype(np.float32))
        rows.append({"id": f"g{i}", "audio": f"g{i}.wav", "duration": 1.0, "text": "안녕하세요"})
    if bad:
        (root / "garbage.wav").write_bytes(b"this is not audio at all" * 100)
        (root / "folder.wav").mkdir()
        write_wav(root / "long.wav", np.zeros(40 * 16000, dtype=np.float32))
        rows += [{"id": "garbage", "audio": "garbage.wav", "duration": 2.0, "text": "가"},
                 {"id": "folder", "audio": "folder.wav", "duration": 1.15, "text": "나"},
                 {"id": "long", "audio": "long.wav", "duration": 5.0, "text": "다"}]
    write_manifest(root / "train.jsonl", rows)
    return root / "train.jsonl"


def test_dataset_skips_unreadable_and_directory_audio_and_reads_durations(tmp_path, tiny):
    from soritune.data.dataset import ManifestDataset

    ds = ManifestDataset(_corpus(tmp_path / "c", 4), tiny.processor.tokenizer)
    reasons = {s["id"]: s["reason"] for s in ds.skipped}
    assert reasons == {"garbage": "unreadable_audio", "folder": "unreadable_audio", "long": "too_long_audio"}
    assert "40.00 s in the file (row says 5.0)" in next(s["detail"] for s in ds.skipped if s["id"] == "long")
    assert len(ds) == 4 and all(len(ds[i]["audio"]) == 16000 for i in range(len(ds)))


def test_train_skips_bad_files_and_reports_them(tmp_path):
    from soritune.train import run
    from soritune.train.config import TrainConfig

    manifest = _corpus(tmp_path / "c", 12)  # 3 bad of 15 rows; 2 of them audio faults: 13% <= 20%
    cfg = TrainConfig(model="tiny:", train=str(manifest), out=str(tmp_path / "run"), batch_size=4, max_steps=2,
                      threads=1, log_every=1, eval_at_start=False, warmup_steps=0, max_skip_fraction=0.2)
    res = run(cfg)
    assert res.status == "completed" and res.n_train == 12 and res.n_skipped == 3
    assert res.skipped_by_reason == {"unreadable_audio": 2, "too_long_audio": 1}
    skipped = [json.loads(line) for line in (cfg.run_dir() / "skipped.jsonl").read_text().splitlines()]
    assert {s["id"] for s in skipped} == {"garbage", "folder", "long"}
    assert json.loads((cfg.run_dir() / "summary.json").read_text())["n_skipped"] == 3


def test_train_stops_when_too_many_files_are_unreadable(tmp_path):
    from soritune.train import run
    from soritune.train.config import TrainConfig

    manifest = _corpus(tmp_path / "c", 4)  # 2 of 7 rows unreadable: 29% > 10%
    cfg = TrainConfig(model="tiny:", train=str(manifest), out=str(tmp_path / "run"), batch_size=2, max_steps=1,
                      threads=1, eval_at_start=False)
    with pytest.raises(ConfigError) as e:
        run(cfg)
    assert "29%" in str(e.value) and "max_skip_fraction" in str(e.value) and "\n" not in str(e.value)
