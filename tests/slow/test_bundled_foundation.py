"""Real-model tests on the bundled whisper-base (slow; the `ci` ones run in CI)."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

from soritune.audio import SAMPLE_RATE, write_wav
from soritune.data.synth import speak

pytestmark = pytest.mark.slow
HANGUL = re.compile(r"[\uac00-\ud7a3]")


@pytest.mark.ci
def test_cli_transcribes_synthesised_korean_to_hangul(tmp_path):
    wav = write_wav(tmp_path / "sample.wav", speak("오늘 날씨가 정말 좋네요. 감사합니다.", rate=140))
    res = subprocess.run([sys.executable, "-m", "soritune", "transcribe", str(wav), "--model", "bundled:whisper-base",
                          "--language", "ko"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert HANGUL.search(res.stdout), res.stdout


@pytest.mark.ci
def test_bundled_conversion_matches_ctranslate2():
    import ctranslate2
    import torch

    from soritune.models import bundled, load

    loaded = load("bundled:whisper-base")
    ct = ctranslate2.models.Whisper(str(bundled.ct2_dir()), device="cpu", compute_type="float32")
    audios = [speak(t, rate=150) for t in ("사과 세 개를 샀어요.", "대한민국의 수도는 서울입니다.")]
    feats = loaded.processor.feature_extractor(audios, sampling_rate=16000, return_tensors="np").input_features
    sv = ctranslate2.StorageView.from_array(np.ascontiguousarray(feats))
    enc_ct2 = np.array(ct.encode(sv))
    with torch.inference_mode():
        enc_hf = loaded.model.model.encoder(torch.from_numpy(feats)).last_hidden_state.numpy()
    # fp16 weights, fp32 compute on both sides: agreement at fp16 resolution of the activations
    assert np.abs(enc_ct2 - enc_hf).max() <= 2e-3 * np.abs(enc_hf).max()
    prompt = [50258, 50264, 50359, 50363]
    ct_ids = [r.sequences_ids[0] for r in ct.generate(sv, [prompt] * 2, beam_size=1, max_length=100)]
    with torch.inference_mode():
        hf = loaded.model.generate(input_features=torch.from_numpy(feats), language="ko", task="transcribe",
                                   max_new_tokens=50, num_beams=1, do_sample=False)
    tok = loaded.processor.tokenizer
    hf_text = tok.batch_decode(hf, skip_special_tokens=True)
    ct_text = tok.batch_decode(ct_ids, skip_special_tokens=True)
    assert [t.strip() for t in hf_text] == [t.strip() for t in ct_text]
    assert all(HANGUL.search(t) for t in hf_text)


SENTENCES = [
    "The quick brown fox jumps over the lazy dog.", "Seven students opened their notebooks at noon.",
    "A red bicycle stood beside the library door.", "Our professor explained the matrix equation twice.",
    "The river flows north through the quiet valley.", "Please send the final report before Friday.",
    "Twelve green apples rolled across the kitchen floor.", "The orchestra played a gentle song at midnight.",
    "My neighbour repaired the old wooden fence.", "Bright stars appeared above the snowy mountain.",
    "The engineer measured the voltage of the circuit.", "Children laughed while the puppy chased a ball.",
    "Fresh bread smells wonderful in the morning.", "The museum closes early on public holidays.",
    "Heavy rain delayed the train to the coast.", "She painted a yellow door on the blue house.",
    "The chef sliced onions with a sharp knife.",
]


# One word that occurs in exactly one sentence: each must be heard exactly once (synthetic speech
# makes a few recognition slips, so up to two anchors may be misheard, never doubled).
ANCHORS = ["fox", "students", "bicycle", "professor", "river", "report", "apples", "orchestra", "fence",
           "stars", "engineer", "puppy", "bread", "museum", "rain", "yellow", "knife"]


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


@pytest.mark.ci
def test_seventy_second_file_transcribes_every_sentence_once(tmp_path):
    from soritune.infer import load_backend
    from soritune.infer.transcribe import transcribe_files

    gap = np.zeros(int(0.7 * SAMPLE_RATE), np.float32)
    audio = np.concatenate([np.concatenate([speak(s, voice="en", rate=140), gap]) for s in SENTENCES])
    assert 60 < len(audio) / SAMPLE_RATE < 90
    wav = write_wav(tmp_path / "long.wav", audio)
    summary = transcribe_files([wav], load_backend("bundled:whisper-base", "ct2"), language="en")
    result = summary.files[0]
    assert len(result.segments) >= 3  # really chunked
    hyp = _words(result.text)
    counts = {a: hyp.count(a) for a in ANCHORS}
    assert max(counts.values()) == 1, ("a sentence was doubled at a seam", counts, result.text)
    assert sum(counts.values()) >= len(ANCHORS) - 2, ("sentences lost", counts, result.text)
    n_ref = sum(len(_words(s)) for s in SENTENCES)
    assert abs(len(hyp) - n_ref) <= 0.1 * n_ref, (len(hyp), n_ref, result.text)
