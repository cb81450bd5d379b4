"""`soritune demo --quick` end to end through the CLI: every fixed output path and report key."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.ci]

SYSTEM_KEYS = {"cer", "cer_ci95", "wer", "cer_reading", "train_wall_s", "peak_mem_gb", "rtfx", "size_mb",
               "trainable_params"}


def test_demo_quick_writes_every_output(tmp_path):
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "soritune", "demo", "--quick", "--out", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=1500)
    assert res.returncode == 0, res.stderr[-3000:]
    for split in ("train", "dev", "test", "everyday", "eval", "eval_kokoro"):
        assert (out / "data" / f"{split}.jsonl").stat().st_size > 0
    for run in ("lora", "qlora4"):
        assert (out / "runs" / run / "summary.json").exists()
        assert (out / "runs" / run / "adapter" / "adapter_config.json").exists()
    for f in ("report.json", "report.md", "report.html", "plots/cer.png", "plots/pareto.png"):
        assert (out / f).stat().st_size > 0, f
    rep = json.loads((out / "report.json").read_text())
    # one row per system and held-out voice family; zero-shot only on the Kokoro voice
    peers = ()  # vosk runs in --full only
    assert set(rep["systems"]) == {f"{n} · {f}" for n in ("lora", "qlora4", "ct2-int8", *peers)
                                   for f in ("kokoro", "espeak")} | {"zero-shot · kokoro"}
    for name, s in rep["systems"].items():
        assert SYSTEM_KEYS <= set(s), (name, SYSTEM_KEYS - set(s))
        assert 0 <= s["cer"] and len(s["cer_ci95"]) == 2 and s["rtfx"] > 0 and s["cer_everyday"] is not None
    lora = rep["systems"]["lora · kokoro"]
    assert lora["trainable_params"] > 0 and lora["train_wall_s"] > 0 and lora["voice"] == "kokoro:jf_tebukuro"
    assert set(rep["test_sets"]) == {"lecture-kokoro", "lecture-espeak", "everyday-kokoro", "everyday-espeak"}
    assert rep["held_out_voices"][0] not in rep["train_voices"] and rep["held_out_voices"][1] not in rep["train_voices"]
    assert set(rep["step_cpu_s"]) >= {"data", "lora", "eval-ct2-int8"} and "lora_cer_at_most_15" in rep["targets"]
    # the hallucination suite ran on zero-shot, the better fine-tuned run and its int8 export; its table is in
    # both reports
    suite = rep["hallucination_suite"]
    best = min(("lora", "qlora4"), key=lambda n: rep["systems"][f"{n} · kokoro"]["cer"] or 1e9)
    assert set(suite) == {"zero-shot", best, "ct2-int8", *peers}
    for r in suite.values():
        assert {"nonspeech_chars_per_min", "loop_rate", "speech_missed"} <= set(r["metrics"]) and "passed" in r["gate"]
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "<table>" in html and "Hallucination suite" in html
    assert "| ct2-int8 |" in (out / "report.md").read_text()
    # resumable: a second run skips every finished step
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "done before" in again.stderr
