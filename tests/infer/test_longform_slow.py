"""Long-form options on the bundled whisper-base (slow; the first also runs in CI).

A recording of two English sentences (espeak, read exactly by whisper-base) separated by silence and
noise, at known offsets: VAD, word and segment times, the JSON contract of `soritune transcribe`,
language detection, and a stereo 8-kHz call split by channel."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from soritune.audio import SAMPLE_RATE, write_wav
from soritune.cli import app

pytestmark = pytest.mark.slow
SENTENCES = ("Hello world. This is a test of long recordings.", "The weather is nice today and we go to the park.")


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """(path, [(start_s, end_s)] of the two sentences): 1 s silence, A, 4 s silence, 3 s noise, B, 3 s silence."""
    from soritune.data.synth import speak

    rng = np.random.default_rng(0)
    a, b = (speak(s, voice="en", lead_silence_s=0.0, tail_silence_s=0.0) for s in SENTENCES)
    parts = [np.zeros(SAMPLE_RATE, np.float32), a, np.zeros(4 * SAMPLE_RATE, np.float32),
             (0.01 * rng.standard_normal(3 * SAMPLE_RATE)).astype(np.float32), b, np.zeros(3 * SAMPLE_RATE, np.float32)]
    a_start = 1.0
    b_start = (SAMPLE_RATE + len(a) + 7 * SAMPLE_RATE) / SAMPLE_RATE
    path = write_wav(tmp_path_factory.mktemp("longform") / "lecture.wav", np.concatenate(parts))
    return path, [(a_start, a_start + len(a) / SAMPLE_RATE), (b_start, b_start + len(b) / SAMPLE_RATE)]


def _contract(path, *extra):
    out = CliRunner().invoke(app, ["transcribe", str(path), "--format", "json", "--vad", "--word-timestamps",
                                   "--language", "en", *extra])
    assert out.exit_code == 0, out.output
    return json.loads(out.stdout[out.stdout.index("{"):out.stdout.rindex("}") + 1])


@pytest.mark.ci
def test_transcribe_json_contract_vad_words_ct2(recording):
    path, spans = recording
    body = _contract(path, "--backend", "ct2")
    assert set(body) >= {"text", "segments"} and "hello world" in body["text"].lower()
    segs = body["segments"]
    assert len(segs) == 2  # one per sentence: the pause between them is cut out by VAD
    for seg, (start, end) in zip(segs, spans):
        assert {"start", "end", "text", "words"} <= set(seg)
        assert abs(seg["start"] - start) < 0.5 and abs(seg["end"] - end) < 0.7
        assert all({"start", "end", "word"} <= set(w) for w in seg["words"])
        assert all(start - 0.5 <= w["start"] <= w["end"] <= end + 0.7 for w in seg["words"])
    assert "weather" in segs[1]["text"].lower()


def test_transcribe_json_contract_torch_long_form(recording):
    path, spans = recording
    body = _contract(path, "--backend", "torch", "--long-form")
    segs = body["segments"]
    assert "weather" in body["text"].lower() and len(segs) >= 2
    assert abs(segs[0]["start"] - spans[0][0]) < 0.5
    assert abs(next(s for s in segs if "weather" in s["text"].lower())["start"] - spans[1][0]) < 0.5


@pytest.mark.parametrize("backend", ["ct2", "torch"])
def test_language_detection_and_no_words_in_the_gap(recording, backend):
    from soritune.infer import load_backend
    from soritune.infer.options import DecodeOptions
    from soritune.infer.transcribe import transcribe_files

    path, spans = recording
    s = transcribe_files([path], load_backend("bundled:whisper-base", backend),
                         DecodeOptions(language=None, vad=True, word_timestamps=True))
    f = s.files[0]
    assert f.language == "en"
    words = [w for seg in f.segments for w in seg["words"]]
    gap = (spans[0][1] + 0.3, spans[1][0] - 0.3)
    assert words and not [w for w in words if gap[0] < (w["start"] + w["end"]) / 2 < gap[1]]


def test_stereo_8khz_call_split_by_channel(tmp_path):
    import soundfile as sf

    from soritune.audio import resample
    from soritune.data.synth import speak

    agent, customer = speak("Hello, how can I help you?", voice="en"), speak("My bill is wrong this month.", voice="en")
    c_start = len(agent) + SAMPLE_RATE
    n = c_start + len(customer) + SAMPLE_RATE
    left, right = np.zeros(n, np.float32), np.zeros(n, np.float32)
    left[:len(agent)], right[c_start:c_start + len(customer)] = agent, customer
    path = tmp_path / "call.wav"
    sf.write(path, np.stack([resample(left, 16000, 8000), resample(right, 16000, 8000)], 1), 8000, subtype="PCM_16")
    out = CliRunner().invoke(app, ["transcribe", str(path), "--diarize", "channels", "--language", "en",
                                   "--backend", "ct2", "--format", "json"])
    assert out.exit_code == 0, out.output
    body = json.loads(out.stdout[out.stdout.index("{"):out.stdout.rindex("}") + 1])
    turns = [(s["speaker"], s["text"].lower()) for s in body["segments"]]
    assert turns[0][0] == "agent" and "help" in turns[0][1]
    assert turns[-1][0] == "customer" and turns[-1][1].startswith("my")  # the rest suffers from the 4-kHz band
    assert body["segments"][-1]["start"] == pytest.approx(c_start / SAMPLE_RATE, abs=0.5)
