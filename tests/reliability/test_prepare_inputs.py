"""Defects 4, 6 and 8 (prepare): a relative ROOT gives rows that read back; a directory named like
audio, and a UTF-16 mark inside a script line, are quarantined; a full disk is one line."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import numpy as np
import pytest

from soritune.audio import write_wav
from soritune.data.manifest import read_manifest
from soritune.data.prepare_common import PrepareConfig, PrepareError, run


def _quarantine(out: Path) -> dict[str, str]:
    return {q["id"]: q["reason"] for q in map(json.loads, (out / "quarantine.jsonl").read_text().splitlines())}


def test_relative_root_writes_paths_that_resolve_from_the_manifest(tmp_path, monkeypatch, tiny):
    from soritune.data.dataset import ManifestDataset

    src = tmp_path / "work" / "corpus"
    write_wav(src / "a.wav", np.full(16000, 0.01, np.float32))
    (src / "list.csv").write_text("audio,text\na.wav,안녕하세요\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path / "work")
    run(PrepareConfig(corpus="manifest", root="corpus/list.csv", out="../out", workers=1))
    rows = read_manifest(tmp_path / "out" / "train.jsonl")
    assert Path(rows[0]["audio"]).is_file()
    monkeypatch.chdir(tmp_path)  # elsewhere: a reader resolves against the manifest's folder, not the cwd
    ds = ManifestDataset(tmp_path / "out" / "train.jsonl", tiny.processor.tokenizer)
    assert len(ds) == 1 and not ds.skipped


def _kspon(root: Path, script_lines: list[bytes]) -> None:
    part = root / "KsponSpeech_01" / "KsponSpeech_0001"
    part.mkdir(parents=True)
    for i in (1, 2):
        (part / f"KsponSpeech_00000{i}.pcm").write_bytes(b"\x01\x00" * 16000)
    (part / "KsponSpeech_000003.pcm").mkdir()  # a directory named like an utterance
    (root / "KsponSpeech_scripts").mkdir()
    (root / "KsponSpeech_scripts" / "train.trn").write_bytes(b"\n".join(script_lines) + b"\n")


def test_directory_named_pcm_and_utf16_line_are_quarantined(tmp_path):
    lines = [b"KsponSpeech_01/KsponSpeech_0001/KsponSpeech_000001.pcm :: " + "안녕하세요".encode(),
             b"KsponSpeech_01/KsponSpeech_0001/KsponSpeech_000002.pcm :: \xff\xfe" + "abc".encode("utf-16-le"),
             b"KsponSpeech_01/KsponSpeech_0001/KsponSpeech_000003.pcm :: " + "디렉터리".encode()]
    _kspon(tmp_path / "k", lines)
    result = run(PrepareConfig(corpus="kspon", root=str(tmp_path / "k"), out=str(tmp_path / "out"), workers=1))
    assert result.kept == 1 and result.quarantined == 2
    assert _quarantine(tmp_path / "out") == {"KsponSpeech_000002": "bad_encoding",
                                             "KsponSpeech_000003": "unreadable_audio"}


def test_disk_full_is_one_line(tmp_path, monkeypatch):
    from soritune.data import prepare_common

    write_wav(tmp_path / "a.wav", np.full(16000, 0.01, np.float32))
    (tmp_path / "list.csv").write_text("audio,text\na.wav,안녕하세요\n", encoding="utf-8")

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(prepare_common, "write_json", full)
    with pytest.raises(PrepareError) as e:
        run(PrepareConfig(corpus="manifest", root=str(tmp_path / "list.csv"), out=str(tmp_path / "out"), workers=1))
    assert "disk full" in str(e.value) and str(tmp_path / "out") in str(e.value) and "\n" not in str(e.value)
