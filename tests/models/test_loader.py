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
    fc1 = loaded.model.model.decoder.layers[0].fc1
    assert type(fc1).__name__ == cls
    assert type(loaded.model.proj_out).__name__ == "Linear"  # tied output projection kept in full precision
    feats = torch.randn(1, 80, 3000)
    out = loaded.model.generate(input_features=feats, language="ko", task="transcribe", max_new_tokens=3)
    assert out.shape[0] == 1
    if quantization == "4bit":
        assert fc1.weight.quant_state.quant_type == "nf4"
