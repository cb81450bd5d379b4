"""CTranslate2 -> transformers conversion: exact weights round trip, int8 de-quantisation, CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from soritune.infer.ct2_backend import convert_to_ct2
from soritune.models import load
from soritune.models.ct2_import import import_ct2, load_ct2_as_hf, read_ct2_variables


@pytest.fixture(scope="module")
def ct2_tiny(tmp_path_factory, tiny):
    out = tmp_path_factory.mktemp("ct2")
    convert_to_ct2(tiny.model, tiny.processor, out)
    return out


def test_float32_round_trip_is_exact(ct2_tiny, tiny):
    model, processor = load_ct2_as_hf(ct2_tiny)
    ref = tiny.model.state_dict()
    got = model.state_dict()
    for name, tensor in ref.items():
        if name.endswith("k_proj.bias"):
            continue
        assert torch.equal(got[name], tensor), name
    assert processor.tokenizer.convert_tokens_to_ids("<|ko|>") == 50264


def test_converted_model_transcribes_like_ctranslate2(ct2_tiny):
    import ctranslate2

    model, processor = load_ct2_as_hf(ct2_tiny)
    rng = np.random.default_rng(0)
    feats = processor.feature_extractor([rng.normal(0, 0.1, 16000 * 2).astype(np.float32)], sampling_rate=16000,
                                        return_tensors="np").input_features
    ct = ctranslate2.models.Whisper(str(ct2_tiny), device="cpu", compute_type="float32")
    sv = ctranslate2.StorageView.from_array(np.ascontiguousarray(feats))
    enc_ct2 = np.array(ct.encode(sv))
    enc_hf = model.model.encoder(torch.from_numpy(feats)).last_hidden_state.detach().numpy()
    assert np.abs(enc_ct2 - enc_hf).max() < 1e-3 * max(1.0, np.abs(enc_hf).max())
    prompt = [50258, 50264, 50359, 50363]
    ids_ct2 = ct.generate(sv, [prompt], beam_size=1, max_length=20,  # ct2: max_length // 2 new tokens
                           suppress_blank=False,
                          suppress_tokens=[])[0].sequences_ids[0]
    model.generation_config.suppress_tokens = []
    model.generation_config.begin_suppress_tokens = []
    out = model.generate(input_features=torch.from_numpy(feats), decoder_input_ids=torch.tensor([prompt]),
                         max_new_tokens=10, do_sample=False, num_beams=1)[0].tolist()  # new tokens only
    out = [t for t in out if t != 50257]
    ids_ct2 = [t for t in ids_ct2 if t != 50257]
    assert out == ids_ct2 and len(out) >= 1


def test_int8_weights_are_dequantized_with_warning(tmp_path, tiny, caplog):
    convert_to_ct2(tiny.model, tiny.processor, tmp_path, quantization="int8")
    variables, _ = read_ct2_variables(tmp_path / "model.bin")
    assert any(v.dtype == np.int8 for v in variables.values())
    with caplog.at_level("WARNING"):
        model, _ = load_ct2_as_hf(tmp_path)
    assert "de-quantised" in caplog.text
    w, ref = model.model.decoder.layers[0].fc1.weight, tiny.model.model.decoder.layers[0].fc1.weight
    assert torch.allclose(w, ref, atol=float(ref.abs().max()) / 100)


def test_import_ct2_writes_a_loadable_hf_directory(ct2_tiny, tmp_path):
    out = import_ct2(ct2_tiny, tmp_path / "hf")
    assert (out / "config.json").exists()
    loaded = load(str(out))
    assert loaded.model.config.decoder_layers == 2
    spec_loaded = load(f"ct2:{ct2_tiny}")
    assert torch.equal(spec_loaded.model.proj_out.weight, loaded.model.proj_out.weight)
