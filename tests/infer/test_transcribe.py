"""Backends, file transcription, formats and the `transcribe` CLI on the tiny model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from soritune.audio import SAMPLE_RATE, write_wav
from soritune.cli import app
from soritune.infer import load_backend
from soritune.infer.formats import to_srt, to_vtt
from soritune.infer.transcribe import transcribe_files


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(0)
    good = [write_wav(d / f"c{i}.wav", rng.normal(0, 0.1, SAMPLE_RATE * (i + 1)).astype(np.float32)) for i in range(2)]
    long = write_wav(d / "long.wav", np.concatenate([rng.normal(0, 0.1, SAMPLE_RATE * 20).astype(np.float32),
                                                      np.zeros(SAMPLE_RATE, np.float32)] * 3))
    (d / "empty.wav").write_bytes(b"")
    (d / "text.wav").write_text("hello, not audio")
    return {"good": good, "long": long, "empty": d / "empty.wav", "text": d / "text.wav", "missing": d / "nope.wav"}


@pytest.fixture(scope="module")
def torch_backend():
    return load_backend("tiny:", "torch")


def test_torch_and_ct2_backends_agree_on_tiny(torch_backend):
    ct2 = load_backend("tiny:", "ct2")
    rng = np.random.default_rng(1)
    audios = [rng.normal(0, 0.1, SAMPLE_RATE * 2).astype(np.float32) for _ in range(3)]
    a = torch_backend.transcribe(audios, max_new_tokens=8, batch_size=2)
    b = ct2.transcribe(audios, max_new_tokens=8, batch_size=3)
    assert [x.tokens for x in a] == [x.tokens for x in b]
    assert all(x.n_tokens <= 8 for x in a)
    assert ct2.describe()["backend"] == "ct2" and "decoding" not in torch_backend.describe()  # per call: DecodeOptions


def test_batching_does_not_change_results(torch_backend):
    rng = np.random.default_rng(2)
    audios = [rng.normal(0, 0.1, SAMPLE_RATE).astype(np.float32) for _ in range(3)]
    one = torch_backend.transcribe(audios, batch_size=1, max_new_tokens=6)
    three = torch_backend.transcribe(audios, batch_size=3, max_new_tokens=6)
    assert [x.tokens for x in one] == [x.tokens for x in three]


def test_bad_files_are_reported_and_others_transcribed(clips, torch_backend):
    paths = [clips["good"][0], clips["empty"], clips["text"], clips["missing"], clips["good"][1]]
    s = transcribe_files(paths, torch_backend, max_new_tokens=4)
    assert [f.ok for f in s.files] == [True, False, False, False, True]
    assert [f.error for f in s.files if not f.ok] == ["empty", "not_audio", "missing"]
    assert s.n_failed == 3 and s.audio_s == pytest.approx(3.0, abs=0.01)


def test_long_audio_is_chunked_into_timed_segments(clips, torch_backend):
    s = transcribe_files([clips["long"]], torch_backend, max_new_tokens=3)
    segs = s.files[0].segments
    assert len(segs) == 3
    assert segs[0]["start"] == 0 and segs[-1]["end"] == pytest.approx(63.0, abs=0.01)
    assert all(a["end"] == b["start"] for a, b in zip(segs, segs[1:]))


def test_adapter_is_applied_on_load(tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model

    from soritune.models import load

    fresh = load("tiny:").model  # get_peft_model wraps in place: never the shared session fixture
    peft_model = get_peft_model(fresh, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    peft_model.save_pretrained(tmp_path / "adapter")
    base = load_backend("tiny:", "torch")
    adapted = load_backend("tiny:", "torch", adapter=str(tmp_path / "adapter"))
    q_base = base.model.model.decoder.layers[0].self_attn.q_proj.weight
    q_adapted = adapted.model.model.decoder.layers[0].self_attn.q_proj.weight
    assert not torch.equal(q_base, q_adapted)  # merged LoRA changed the weights


def test_srt_and_vtt():
    segs = [{"start": 0.0, "end": 29.5, "text": "첫 문장"}, {"start": 29.5, "end": 3725.25, "text": "둘째"}]
    srt = to_srt(segs)
    assert "1\n00:00:00,000 --> 00:00:29,500\n첫 문장" in srt and "01:02:05,250" in srt
    assert to_vtt(segs).startswith("WEBVTT") and "00:00:29.500 --> 01:02:05.250" in to_vtt(segs)


def test_cli_transcribe_formats_and_failures(clips, tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["transcribe", str(clips["good"][0]), str(clips["text"]), "--model", "tiny:",
                              "--max-new-tokens", "3", "--format", "json", "--output-dir", str(tmp_path)])
    assert res.exit_code == 1, res.output
    data = json.loads((tmp_path / "c0.json").read_text())
    assert {"text", "segments", "duration_s"} <= set(data)
    assert "1 transcribed, 1 failed" in res.output and "not_audio" in res.output
    ok = runner.invoke(app, ["transcribe", str(clips["long"]), "--model", "tiny:", "--max-new-tokens", "2", "-f", "srt"])
    assert ok.exit_code == 0 and "00:00:00,000 -->" in ok.output


def test_cli_user_errors_are_one_line(capsys):
    from soritune.cli import main

    with pytest.raises(SystemExit) as e:
        main(["transcribe", "x.wav", "--model", "nonsense"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown model spec 'nonsense'") and "\n" not in err and "Traceback" not in err
    runner = CliRunner()
    res = runner.invoke(app, ["transcribe", "x.wav", "--model", "tiny:", "--format", "docx"])
    assert res.exit_code == 2 and "--format" in res.output
