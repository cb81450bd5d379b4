"""Slow: the hallucination suite on the bundled whisper-base (CTranslate2), one clip per kind."""

from __future__ import annotations

import math

import pytest


@pytest.mark.slow
@pytest.mark.ci
def test_suite_on_whisper_base(tmp_path):
    from soritune.eval.hallucination import (
        HallucinationConfig,
        markdown_table,
        run_suite,
    )
    from soritune.eval.hallucination_clips import KINDS

    report = run_suite(HallucinationConfig(model="bundled:whisper-base", backend="ct2", out=tmp_path / "suite",
                                           clips_per_kind=1, max_new_tokens=128, n_boot=200)).to_json()
    print("\n" + markdown_table({"whisper-base (ct2)": report}))
    print({k: (v["n_with_output"], v["example"]) for k, v in report["per_kind"].items()})
    m = report["metrics"]
    assert report["suite"]["n_clips"] == len(KINDS) and report["model"]["backend"] == "ct2"
    for name in ("nonspeech_chars_per_min", "pause_chars_per_min", "nonspeech_output_rate", "loop_rate", "speech_missed"):
        assert math.isfinite(m[name]["value"]) and m[name]["value"] >= 0
    # the speech clips are Korean sentences whisper-base reads in part: it writes Korean there
    speech = [c for c in report["clips"] if c["speech"]]
    assert all(any("\uac00" <= ch <= "\ud7a3" for ch in c["output"]) for c in speech), speech
    assert m["speech_missed"]["value"] < 0.9
    checks = {c["metric"]: c for c in report["gate"]["checks"]}
    assert report["gate"]["passed"] == all(c["ok"] for c in checks.values())
    assert checks["loop_rate"]["ok"] == (m["loop_rate"]["value"] <= 0.1)
