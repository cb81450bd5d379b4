"""`eval` end to end on a random tiny Whisper, and eval == score for the same hypotheses."""

import json

import numpy as np
import pytest

from soritune.audio import SAMPLE_RATE, write_wav
from soritune.data.synth import speak
from soritune.eval.evaluate import EvalConfig, run_eval, transcribe_rows
from soritune.eval.scoring import ScoreConfig, run_score
from soritune.infer.base import Transcription

TEXTS = ["안녕하세요 반갑습니다", "사과 세 개 주세요", "오늘 회의는 세 시입니다"]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    """u0: a file of its own; u1, u2: segments (offset, duration) of one longer file."""
    d = tmp_path_factory.mktemp("evalset")
    a0 = speak(TEXTS[0], rate=220)
    write_wav(d / "a0.wav", a0)
    a1, a2 = speak(TEXTS[1], rate=220), speak(TEXTS[2], voice="ko-f1", rate=220)
    write_wav(d / "long.wav", np.concatenate([a1, a2]))
    rows = [
        {"id": "u0", "audio": "a0.wav", "duration": len(a0) / SAMPLE_RATE, "text": TEXTS[0], "source": "solo"},
        {"id": "u1", "audio": "long.wav", "offset": 0.0, "duration": len(a1) / SAMPLE_RATE, "text": TEXTS[1],
         "source": "seg"},
        {"id": "u2", "audio": "long.wav", "offset": len(a1) / SAMPLE_RATE, "duration": len(a2) / SAMPLE_RATE,
         "text": TEXTS[2], "source": "seg"},
    ]
    path = d / "test.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tiny_eval(manifest, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval_out")
    cfg = EvalConfig(model="tiny:", manifest=manifest, out=out, batch_size=2, max_new_tokens=12,
                     slice_by=["source"], n_boot=50)
    seen = []
    report = run_eval(cfg, progress=lambda done, total: seen.append((done, total)))
    return out, report, seen


def test_eval_runs_end_to_end(tiny_eval):
    out, report, seen = tiny_eval
    js = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert js["n_utts"] == 3 and js["cer"] is not None and js["cer"] >= 0
    assert js["model"]["spec"] == "tiny:" and js["model"]["backend"] == "torch"
    assert js["decoding"]["language"] == "ko" and js["decoding"]["task"] == "transcribe"
    assert js["decoding"]["num_beams"] == 1 and js["decoding"]["max_new_tokens"] == 12
    assert js["timing"]["rtfx"] > 0 and js["timing"]["audio_s"] > 1
    assert js["hallucination"]["n_max_tokens_known"] == 3
    assert set(js["slices"]["source"]) == {"solo", "seg"}
    assert seen[-1] == (3, 3)
    hyps = [json.loads(line) for line in (out / "hypotheses.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [h["id"] for h in hyps] == ["u0", "u1", "u2"]
    assert all(0 < h["n_tokens"] <= 12 for h in hyps)
    assert (out / "report.md").exists() and (out / "utterances.tsv").exists() and (out / "config.yaml").exists()


def test_eval_and_score_agree(tiny_eval, manifest, tmp_path):
    out, _, _ = tiny_eval
    run_score(ScoreConfig(refs=manifest, hyps=out / "hypotheses.jsonl", out=tmp_path, slice_by=["source"], n_boot=50))
    a = json.loads((out / "report.json").read_text(encoding="utf-8"))
    b = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    for key in b:
        if key not in ("inputs", "stage"):  # stage: which verb wrote the run dir (eval, score)
            assert a[key] == b[key], key
    tsv = "utterances.tsv"
    assert (out / tsv).read_text(encoding="utf-8") == (tmp_path / tsv).read_text(encoding="utf-8")


class FakeBackend:
    """Echoes the clip length; marks clips longer than 20 s as having hit the token limit."""

    def __init__(self):
        self.calls = []

    def transcribe(self, audios, *, language, task, batch_size, max_new_tokens):
        self.calls.append((len(audios), language, task))
        return [Transcription(text=f"c{len(a) // SAMPLE_RATE}", n_tokens=2, hit_max_tokens=len(a) > 20 * SAMPLE_RATE)
                for a in audios]


def test_transcribe_rows_long_audio_and_unreadable_files(tmp_path):
    rng = np.random.default_rng(0)
    write_wav(tmp_path / "long.wav", (0.1 * rng.standard_normal(45 * SAMPLE_RATE)).astype(np.float32))
    write_wav(tmp_path / "short.wav", (0.1 * rng.standard_normal(2 * SAMPLE_RATE)).astype(np.float32))
    rows = [{"id": "long", "audio": str(tmp_path / "long.wav"), "duration": 45.0, "text": "x"},
            {"id": "gone", "audio": str(tmp_path / "missing.wav"), "duration": 1.0, "text": "y"},
            {"id": "short", "audio": str(tmp_path / "short.wav"), "duration": 2.0, "text": "z"}]
    cfg = EvalConfig(model="tiny:", manifest=tmp_path / "m.jsonl", out=tmp_path / "o", load_block=2)
    be = FakeBackend()
    hyps = transcribe_rows(rows, be, cfg)
    assert set(hyps.texts) == {"long", "short"}
    assert len(hyps.texts["long"].split()) == 2  # cut into two pieces, joined
    assert hyps.meta["long"] == {"n_tokens": 4, "hit_max_tokens": True}
    assert hyps.audio_errors == [{"id": "gone", "audio": str(tmp_path / "missing.wav"), "reason": "missing",
                                  "detail": ""}]
    assert hyps.audio_s == pytest.approx(47.0, abs=0.01)
    assert all(lang == "ko" and task == "transcribe" for _, lang, task in be.calls)


def test_eval_decodes_with_decode_options(manifest, tmp_path):
    """`decode:` (DecodeOptions) reaches the backend: beam search and the ladder are recorded and used."""
    from soritune.infer.options import DecodeOptions

    cfg = EvalConfig(model="tiny:", manifest=manifest, out=tmp_path, batch_size=2, max_new_tokens=8, n_boot=20,
                     decode=DecodeOptions(beam_size=2, temperatures=[0.0, 0.5], no_repeat_ngram_size=1))
    run_eval(cfg)
    js = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert js["decoding"]["strategy"] == "beam 2" and js["decoding"]["num_beams"] == 2
    assert js["decoding"]["temperatures"] == [0.0, 0.5] and js["decoding"]["max_new_tokens"] == 8
    hyps = [json.loads(line) for line in (tmp_path / "hypotheses.jsonl").read_text(encoding="utf-8").splitlines()]
    for h in hyps:  # no_repeat_ngram_size=1: no word (token) repeats
        words = h.get("hyp", h.get("text", "")).split()
        assert len(words) == len(set(words))
