"""The `transcribe` contract, Silero VAD chunk planning and channel split on the tiny model (fast)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from soritune.audio import SAMPLE_RATE, write_wav
from soritune.cli import app
from soritune.infer.formats import render
from soritune.infer.options import DecodeOptions
from soritune.infer.vad import pack_regions, plan_chunks, speech_regions


@pytest.fixture(scope="module")
def speech():
    from soritune.data.synth import speak

    return speak("안녕하세요. 오늘 수업은 미분입니다.", lead_silence_s=0.0, tail_silence_s=0.0)


@pytest.fixture(scope="module")
def lecture(speech, tmp_path_factory):
    """3 s silence, speech, 5 s noise-free pause, speech, 2 s silence: (path, [(start_s, end_s)])."""
    gap = np.zeros(5 * SAMPLE_RATE, np.float32)
    audio = np.concatenate([np.zeros(3 * SAMPLE_RATE, np.float32), speech, gap, speech,
                            np.zeros(2 * SAMPLE_RATE, np.float32)])
    d = len(speech) / SAMPLE_RATE
    path = write_wav(tmp_path_factory.mktemp("lecture") / "lecture.wav", audio)
    return path, [(3.0, 3.0 + d), (8.0 + d, 8.0 + 2 * d)]


def test_vad_finds_speech_and_maps_chunk_times_back(lecture):
    from soritune.audio import load_audio

    path, spans = lecture
    audio = load_audio(path)
    regions = speech_regions(audio, DecodeOptions(vad=True))
    assert len(regions) == 2
    for r, (start, end) in zip(regions, spans):
        assert abs(r["start"] / SAMPLE_RATE - start) < 0.35 and abs(r["end"] / SAMPLE_RATE - end) < 0.35
    (chunk,) = plan_chunks(audio, DecodeOptions(vad=True))  # both regions fit one chunk, the pause cut out
    assert len(chunk.audio) == sum(r["end"] - r["start"] for r in regions)
    first_len = (regions[0]["end"] - regions[0]["start"]) / SAMPLE_RATE
    assert chunk.file_time(0.0) == pytest.approx(regions[0]["start"] / SAMPLE_RATE, abs=1e-3)
    assert chunk.file_time(first_len + 0.5) == pytest.approx(regions[1]["start"] / SAMPLE_RATE + 0.5, abs=1e-2)
    assert plan_chunks(np.zeros(10 * SAMPLE_RATE, np.float32), DecodeOptions(vad=True)) == []


def test_pack_regions_respects_the_chunk_length():
    audio = np.zeros(100 * SAMPLE_RATE, np.float32)
    regions = [{"start": i * 10 * SAMPLE_RATE, "end": (i * 10 + 8) * SAMPLE_RATE} for i in range(10)]
    chunks = pack_regions(audio, regions, 30.0)
    assert [len(c.regions) for c in chunks] == [3, 3, 3, 1]
    assert all(len(c.audio) <= 30 * SAMPLE_RATE for c in chunks)


def _json(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout[result.stdout.index("{"):result.stdout.rindex("}") + 1])


@pytest.mark.parametrize("backend", ["torch", "ct2"])
def test_contract_json_vad_words(lecture, backend):
    path, spans = lecture
    body = _json(CliRunner().invoke(app, ["transcribe", str(path), "-m", "tiny:", "--backend", backend, "--format",
                                          "json", "--vad", "--word-timestamps", "--max-new-tokens", "8"]))
    assert isinstance(body["text"], str) and body["segments"]
    for seg in body["segments"]:
        assert {"start", "end", "text", "words"} <= set(seg) and seg["start"] <= seg["end"]
        for w in seg["words"]:
            assert {"start", "end", "word"} <= set(w)
            # times are seconds of the file: every word lies in a speech region, none in the silences
            assert any(s - 0.5 <= w["start"] and w["end"] <= e + 0.5 for s, e in spans)
    assert body["segments"][0]["start"] >= spans[0][0] - 0.5
    assert body["text"] == " ".join(s["text"] for s in body["segments"])


def test_contract_without_vad_starts_at_zero(lecture):
    path, _spans = lecture
    body = _json(CliRunner().invoke(app, ["transcribe", str(path), "-m", "tiny:", "--format", "json",
                                          "--max-new-tokens", "4"]))
    assert body["segments"][0]["start"] == 0.0 and body["segments"][0]["words"] == []


def test_channel_split_cli_on_a_synthetic_8khz_stereo_call(speech, tmp_path):
    import soundfile as sf

    from soritune.audio import resample

    n = len(speech)
    c_start = SAMPLE_RATE + n + SAMPLE_RATE
    left, right = np.zeros(c_start + n + SAMPLE_RATE, np.float32), np.zeros(c_start + n + SAMPLE_RATE, np.float32)
    left[SAMPLE_RATE:SAMPLE_RATE + n], right[c_start:c_start + n] = speech, speech
    path = tmp_path / "call.wav"
    sf.write(path, np.stack([resample(left, 16000, 8000), resample(right, 16000, 8000)], 1), 8000, subtype="PCM_16")
    body = _json(CliRunner().invoke(app, ["transcribe", str(path), "-m", "tiny:", "--diarize", "channels",
                                          "--format", "json", "--max-new-tokens", "4"]))
    assert [s["speaker"] for s in body["segments"]] == ["agent", "customer"]
    assert body["segments"][0]["start"] == pytest.approx(1.0, abs=0.4)
    assert body["segments"][1]["start"] == pytest.approx(c_start / SAMPLE_RATE, abs=0.4)
    txt = CliRunner().invoke(app, ["transcribe", str(path), "-m", "tiny:", "--diarize", "channels",
                                   "--max-new-tokens", "4"])
    lines = [ln for ln in txt.stdout.splitlines() if ln.startswith("[")]
    assert lines[0].startswith("[00:00:0") and " agent: " in lines[0] and " customer: " in lines[1]


def test_speaker_in_subtitles_and_text():
    segs = [{"start": 1.0, "end": 2.0, "text": "안녕하세요", "speaker": "agent"},
            {"start": 3.0, "end": 4.0, "text": "네", "speaker": "customer"}]
    assert "[agent] 안녕하세요" in render("srt", "", segs)
    assert "<v customer>네" in render("vtt", "", segs)
    assert render("txt", "안녕하세요 네", segs) == "[00:00:01] agent: 안녕하세요\n[00:00:03] customer: 네\n"
    assert render("txt", "안녕하세요 네", [{k: v for k, v in s.items() if k != "speaker"} for s in segs]) == "안녕하세요 네\n"
