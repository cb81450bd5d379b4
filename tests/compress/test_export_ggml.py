"""GGML export for whisper.cpp users, added as one module (models/ggml.py) plus one TARGETS line and one
loader row: the file has whisper.cpp's layout (checked against the loader's expectations, and loaded by
whisper.cpp itself through pywhispercpp when it is installed), reads back to the same model within f16
rounding, and goes through `soritune export` (parity record, summary.json), eval and serve."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from soritune.compress.export import ExportConfig, run
from soritune.errors import ModelSpecError
from soritune.models import formats, load
from soritune.models.ggml import GGML_FILE, MAGIC, read_ggml, write_ggml

LAYERS = 2


@pytest.fixture(scope="module")
def cpp_shaped(tmp_path_factory):
    """A tiny random Whisper with whisper.cpp's shape (feed-forward 4 * d_model), saved as HF."""
    from soritune.compress.modelio import save_model
    from soritune.models import _finish, _random_model
    from soritune.models.architectures import whisper_config
    from soritune.models.tokenizer import build_processor

    config = whisper_config("tiny", d_model=64, encoder_layers=LAYERS, decoder_layers=LAYERS,
                            encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=256,
                            decoder_ffn_dim=256)
    processor = build_processor(80)
    model = _finish(_random_model(config, 0), processor)
    return save_model(model, processor, tmp_path_factory.mktemp("cpp") / "hf")


@pytest.fixture(scope="module")
def exported(cpp_shaped, tmp_path_factory):
    out = tmp_path_factory.mktemp("ggml") / "out"
    result = run(ExportConfig(model=str(cpp_shaped), to="ggml", out=out, parity_n=2, measure_speed=False,
                              max_new_tokens=6))
    return out, result


def _expected_tensors(n_enc: int, n_dec: int) -> set[str]:
    """The names whisper.cpp's whisper_model_load maps (and requires: every one must be loaded)."""
    names = {"encoder.positional_embedding", "encoder.conv1.weight", "encoder.conv1.bias", "encoder.conv2.weight",
             "encoder.conv2.bias", "encoder.ln_post.weight", "encoder.ln_post.bias", "decoder.positional_embedding",
             "decoder.token_embedding.weight", "decoder.ln.weight", "decoder.ln.bias"}
    block = ["mlp_ln.weight", "mlp_ln.bias", "mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias",
             "attn_ln.weight", "attn_ln.bias", "attn.query.weight", "attn.query.bias", "attn.key.weight",
             "attn.value.weight", "attn.value.bias", "attn.out.weight", "attn.out.bias"]
    cross = [n.replace("attn", "cross_attn", 1) for n in block if n.startswith("attn")]
    names |= {f"encoder.blocks.{i}.{n}" for i in range(n_enc) for n in block}
    names |= {f"decoder.blocks.{i}.{n}" for i in range(n_dec) for n in block + cross}
    return names


def test_the_file_has_whisper_cpp_layout(exported, cpp_shaped):
    out, _ = exported
    raw = (out / GGML_FILE).read_bytes()
    header = struct.unpack_from("<12i", raw, 0)
    assert header == (MAGIC, 51865, 1500, 64, 2, LAYERS, 448, 64, 2, LAYERS, 80, 1)
    hp, filters, vocab, tensors = read_ggml(out / GGML_FILE)
    assert filters.shape == (80, 201) and filters.dtype == np.float32 and filters.max() > 0
    assert len(vocab) >= 50257 and vocab[0] == b"!" and vocab[220] == b" "  # byte-level BPE undone
    assert set(tensors) == _expected_tensors(LAYERS, LAYERS)  # nothing missing, nothing whisper.cpp rejects
    n = 64  # whisper.cpp's ggml_new_tensor shapes, innermost first (numpy shapes are their reverse)
    assert tensors["encoder.conv1.weight"].shape[::-1] == (3, 80, n)
    assert tensors["encoder.conv1.bias"].shape[::-1] == (1, n) and tensors["encoder.conv1.bias"].dtype == np.float32
    assert tensors["encoder.blocks.0.mlp.0.weight"].shape[::-1] == (n, 4 * n)
    assert tensors["decoder.token_embedding.weight"].shape[::-1] == (n, 51865)
    assert tensors["encoder.positional_embedding"].shape[::-1] == (n, 1500)
    assert tensors["decoder.blocks.0.attn.query.weight"].dtype == np.float16
    assert tensors["decoder.blocks.0.attn_ln.weight"].dtype == np.float32


def test_export_records_parity_and_reads_back(exported, cpp_shaped):
    out, result = exported
    assert result.target == "ggml" and result.parity["n_utts"] == 2 and result.files_mb > 0
    assert (out / "summary.json").exists() and (out / "config.yaml").exists()
    assert formats.detect(out).name == "ggml"
    source, back = load(str(cpp_shaped)), load(str(out))
    feats = torch.randn(1, 80, 3000)
    dec = torch.tensor([[50258, 50264, 50359, 50363]])
    with torch.no_grad():
        a = source.model(input_features=feats, decoder_input_ids=dec).logits
        b = back.model(input_features=feats, decoder_input_ids=dec).logits
    assert torch.allclose(a, b, atol=2e-2), float((a - b).abs().max())  # f16 matrices


def test_eval_and_serve_load_the_ggml_export(exported):
    from soritune.serve.app import ServeConfig, ServerState

    out, _ = exported
    backend = ServerState(ServeConfig(model=str(out), max_new_tokens=4)).load()
    audio = np.zeros(16000, dtype=np.float32)
    assert len(backend.transcribe([audio], max_new_tokens=4)) == 1


def test_shapes_whisper_cpp_cannot_hold_are_refused(tiny, tmp_path):
    model, processor = tiny  # tiny: has a feed-forward of 2 * d_model
    with pytest.raises(ModelSpecError, match=r"encoder_ffn_dim 64 != 4 \* d_model \(128\)"):
        write_ggml(model, processor, tmp_path / GGML_FILE)
    assert not (tmp_path / GGML_FILE).exists()


def test_whisper_cpp_itself_loads_and_runs_the_file(exported):
    """In a child process: whisper.cpp aborts the process on a malformed file rather than raising."""
    import subprocess
    import sys

    pytest.importorskip("pywhispercpp", reason="pywhispercpp (whisper.cpp's Python binding) not installed")
    out, _ = exported
    code = ("import numpy as np, sys; from pywhispercpp.model import Model; "
            "m = Model(sys.argv[1], redirect_whispercpp_logs_to=None, n_threads=1); "
            "s = m.transcribe(np.zeros(32000, dtype=np.float32), language='ko', max_len=4); print('SEGMENTS', len(s))")
    r = subprocess.run([sys.executable, "-c", code, str(out / GGML_FILE)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "SEGMENTS" in r.stdout, r.stderr[-2000:]
