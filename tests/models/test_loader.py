"""Model specs and the one loader: tiny:, random:, ct2:, hf dirs, quantisation, bad specs."""

from __future__ import annotations

import pytest
import torch

from soritune.errors import ModelSpecError
from soritune.models import load, parse_spec


def test_tiny_model_has_real_vocabulary_and_generates(tiny):
    model, processor = tiny
    assert model.config.vocab_size == 51865 and model.config.decoder_layers == 2
    tok = processor.tokenizer
    assert tok.convert_tokens_to_ids("<|ko|>") == 50264
    assert tok.decode(tok("안녕하세요 3개").input_ids, skip_special_tokens=True) == "안녕하세요 3개"
    feats = processor.feature_extractor([torch.zeros(16000).numpy()], sampling_rate=16000, return_tensors="pt").input_features
    out = model.generate(input_features=feats, language="ko", task="transcribe", max_new_tokens=5)
    assert 1 <= out.shape[1] <= 5  # generate() returns the new tokens only
    assert 50264 not in out[0].tolist()


def test_tiny_is_deterministic_for_a_seed():
    a, _ = load("tiny:", seed=3)
    b, _ = load("tiny:", seed=3)
    assert torch.equal(a.model.decoder.layers[0].fc1.weight, b.model.decoder.layers[0].fc1.weight)


@pytest.mark.parametrize("arch,d_model,mels,dec", [("large-v3", 1280, 128, 32), ("large-v3-turbo", 1280, 128, 4)])
def test_random_arch_configs(arch, d_model, mels, dec):
    from soritune.models.architectures import whisper_config

    cfg = whisper_config(arch)
    assert (cfg.d_model, cfg.num_mel_bins, cfg.decoder_layers) == (d_model, mels, dec)


def test_random_base_loads_with_matching_size():
    loaded = load("random:base")
    assert 70e6 < loaded.info["params"] < 75e6  # whisper-base has 72.6M parameters


@pytest.mark.parametrize("spec", ["", "foo", "random:huge", "ct2:/does/not/exist", "bundled:whisper-large", "hf:"])
def test_bad_specs_name_the_accepted_forms(spec):
    with pytest.raises(ModelSpecError) as e:
        parse_spec(spec)
    assert "accepted model specs" in str(e.value)
    assert "\n" not in str(e.value)


def test_bare_directory_is_an_hf_spec(tmp_path, tiny):
    tiny.model.save_pretrained(tmp_path)
    tiny.processor.save_pretrained(tmp_path)
    assert parse_spec(str(tmp_path)).kind == "hf"
    loaded = load(str(tmp_path))
    assert torch.equal(loaded.model.proj_out.weight, tiny.model.proj_out.weight)


def test_missing_hf_model_offline_is_a_clear_error(tmp_path):
    with pytest.raises(ModelSpecError) as e:
        load("hf:nobody/no-such-whisper-model")
    assert "hf:nobody/no-such-whisper-model" in str(e.value)


@pytest.mark.parametrize("quantization,cls", [("8bit", "Linear8bitLt"), ("4bit", "Linear4bit")])
def test_quantized_load_on_cpu(quantization, cls):
    loaded = load("tiny:", quantization=quantization)
    fc2 = loaded.model.model.decoder.layers[0].fc2  # 64 -> 32: one whole NF4 block per row
    assert type(fc2).__name__ == cls
    assert type(loaded.model.proj_out).__name__ == "Linear"  # tied output projection kept in full precision
    feats = torch.randn(1, 80, 3000)
    with torch.no_grad():  # inference: bitsandbytes' packed CPU path where the CPU has AVX512-BF16
        out = loaded.model.generate(input_features=feats, language="ko", task="transcribe", max_new_tokens=3)
    assert out.shape[0] == 1
    if quantization == "4bit":
        assert fc2.weight.quant_state.quant_type == "nf4"


def test_4bit_keeps_layers_narrower_than_a_block_in_full_precision(caplog):
    """tiny:'s d_model is 32 < the 64-value NF4 block: those layers stay nn.Linear, said in the log."""
    with caplog.at_level("WARNING", logger="soritune.models.quantize"):
        loaded = load("tiny:", quantization="4bit")
    layer = loaded.model.model.decoder.layers[0]
    assert type(layer.fc1).__name__ == "Linear" and type(layer.self_attn.q_proj).__name__ == "Linear"
    assert "model.decoder.layers.0.fc1" in loaded.model.soritune_full_precision_linears
    assert "model.decoder.layers.0.fc2" not in loaded.model.soritune_full_precision_linears
    assert "keeping" in caplog.text and "NF4 block" in caplog.text


def test_4bit_packed_cpu_inference_matches_dequantized_weights():
    """A layer a block wide runs bitsandbytes' inference path (packed on AVX512-BF16 CPUs) correctly."""
    import bitsandbytes as bnb
    from bitsandbytes.functional import dequantize_4bit, has_avx512bf16

    torch.manual_seed(0)
    dense = torch.nn.Linear(128, 64)
    q = bnb.nn.Linear4bit(128, 64, compute_dtype=torch.float32, quant_type="nf4")
    q.weight = bnb.nn.Params4bit(dense.weight.data.clone(), requires_grad=False, quant_type="nf4")
    q.bias = torch.nn.Parameter(dense.bias.data.clone(), requires_grad=False)
    q = q.to("cpu")  # quantises
    w = dequantize_4bit(q.weight.data, q.weight.quant_state).float()
    x = torch.randn(3, 128)
    q.eval()
    with torch.no_grad():
        got = q(x)
    assert getattr(q.weight.quant_state, "packing_format_for_cpu", False) == has_avx512bf16()
    expected = x @ w.T + dense.bias
    assert torch.allclose(got.float(), expected, atol=0.1, rtol=0.05)  # bf16 kernel on the packed path