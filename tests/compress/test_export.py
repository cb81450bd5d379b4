"""Export: merged HF, CTranslate2 (faster-whisper loads it), torch int8; each with a parity report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from soritune.compress.export import REPORT_FILE, ExportConfig, run

from .conftest import make_adapter

SMALL = dict(max_new_tokens=6, repeats=1, parity_n=2)


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    from soritune.models import load

    return make_adapter(load("tiny:").model, tmp_path_factory.mktemp("exp") / "adapter")


def test_hf_export_merges_the_adapter_into_a_plain_model(tmp_path, adapter, corpus):
    out = tmp_path / "hf"
    r = run(ExportConfig(model="tiny:", adapter=str(adapter), to="hf", out=out,
                         parity_manifest=str(corpus / "train.jsonl"), **SMALL))
    assert not (out / "adapter_config.json").exists() and (out / "config.json").exists()
    assert r.parity["all_equal"] and r.parity["cer_between"] == 0.0 and r.parity["n_utts"] == 2
    assert r.details["merge_logits_max_abs_diff"] < 1e-4  # unmerged PEFT model == merged model
    report = json.loads((out / REPORT_FILE).read_text())
    assert report["parity"]["n_equal"] == 2 and report["timing_export"]["repeats"] == 1
    from soritune.models import load

    merged = load(f"hf:{out}").model
    base = load("tiny:").model
    q = "model.encoder.layers.0.self_attn.q_proj.weight"
    assert not np.allclose(dict(merged.named_parameters())[q].detach(), dict(base.named_parameters())[q].detach())


def test_ct2_export_loads_in_soritune_and_faster_whisper(tmp_path):
    out = tmp_path / "ct2"
    r = run(ExportConfig(model="tiny:", to="ct2", out=out, **SMALL))
    assert {"model.bin", "tokenizer.json", "preprocessor_config.json", REPORT_FILE} <= {p.name for p in out.iterdir()}
    assert r.parity["source"] == "synthetic" and r.parity["all_equal"]  # float32 CTranslate2 == PyTorch
    from soritune.infer import load_backend

    backend = load_backend(f"ct2:{out}", "ct2")
    assert len(backend.transcribe([np.zeros(16000, np.float32)], max_new_tokens=4)) == 1
    from faster_whisper import WhisperModel

    fw = WhisperModel(str(out), device="cpu", compute_type="float32")
    segments, info = fw.transcribe(np.zeros(16000, np.float32), language="ko", beam_size=1,
                                   without_timestamps=True, max_new_tokens=4, condition_on_previous_text=False)
    list(segments)
    assert info.language == "ko"


def test_ct2_int8_export_reports_parity_and_is_smaller(tmp_path):
    f32 = run(ExportConfig(model="tiny:", to="ct2", out=tmp_path / "f32", measure_speed=False, **{**SMALL, "parity_n": 1}))
    i8 = run(ExportConfig(model="tiny:", to="ct2", quantization="int8", out=tmp_path / "i8", **{**SMALL, "parity_n": 1}))
    assert (tmp_path / "i8" / "model.bin").stat().st_size < 0.5 * (tmp_path / "f32" / "model.bin").stat().st_size
    p = i8.parity
    assert p["n_equal"] + sum(not u["equal"] for u in p["utterances"]) == p["n_utts"] == 1
    assert p["cer_between"] is not None and i8.speedup is not None and f32.timing_export is None


def test_torch_int8_export_quantises_linears_and_reloads(tmp_path):
    out = tmp_path / "int8"
    r = run(ExportConfig(model="tiny:", to="torch-int8", out=out, **SMALL))
    assert (out / "int8_model.pt").exists() and r.parity["n_utts"] == 2
    from soritune.models import load

    back = load(str(out))
    dynamic = [m for m in back.model.modules() if type(m).__module__.startswith("torch.ao.nn.quantized.dynamic")]
    assert len(dynamic) == 32 + 1  # every attention/FFN linear and proj_out
    assert r.details["export_backend"]["spec"] == str(out)


def test_quantization_only_for_ct2():
    from soritune.config import validate
    from soritune.errors import ConfigError

    with pytest.raises(ConfigError, match="quantization"):
        validate(ExportConfig, {"model": "tiny:", "to": "hf", "quantization": "int8", "out": "x"})
    with pytest.raises(ConfigError, match="allowed"):
        validate(ExportConfig, {"model": "tiny:", "to": "ct2", "quantization": "int3", "out": "x"})


def test_head_pruned_model_cannot_go_to_ct2(tmp_path):
    from soritune.compress.prune_structured import StructuredConfig
    from soritune.compress.prune_structured import run as prune
    from soritune.errors import CompressError

    prune(StructuredConfig(model="tiny:", target="heads", fraction=0.5, out=tmp_path / "h", measure_speed=False,
                           max_new_tokens=2))
    with pytest.raises(CompressError, match="CTranslate2 cannot"):
        run(ExportConfig(model=str(tmp_path / "h"), to="ct2", out=tmp_path / "x", **SMALL))


def test_int8_ct2_keeps_the_encoder_input_convolutions_float(tmp_path):
    from soritune.infer.ct2_backend import CT2Backend, convert_to_ct2
    from soritune.models import load

    loaded = load("tiny:")
    kept = convert_to_ct2(loaded.model, loaded.processor, tmp_path / "kept", "int8") / "model.bin"
    full = convert_to_ct2(loaded.model, loaded.processor, tmp_path / "all", "int8", float_convs=False) / "model.bin"
    enc = loaded.model.model.encoder
    conv_weights = enc.conv1.weight.numel() + enc.conv2.weight.numel()
    scales = 4 * (enc.conv1.out_channels + enc.conv2.out_channels)  # int8 stores a float scale per channel
    grown = kept.stat().st_size - full.stat().st_size
    assert abs(grown - (3 * conv_weights - scales)) < 200  # float32 (4 bytes) instead of int8 (1 byte): convs only
    audio = [np.zeros(16000, np.float32)]
    for d in (kept.parent, full.parent):  # both load and decode with int8 compute
        assert len(CT2Backend(d, loaded.processor, compute_type="int8").transcribe(audio, max_new_tokens=4)) == 1
    # ctranslate2's "default" would run the float-conv model in float32: the recorded compute type is int8
    assert CT2Backend(kept.parent, loaded.processor).model.compute_type == "int8_float32"
    f32 = convert_to_ct2(loaded.model, loaded.processor, tmp_path / "f32")
    assert CT2Backend(f32, loaded.processor).model.compute_type == "float32"
    from faster_whisper import WhisperModel

    fw = WhisperModel(str(kept.parent), device="cpu", compute_type="int8")
    segments, _ = fw.transcribe(audio[0], language="ko", beam_size=1, without_timestamps=True, max_new_tokens=4)
    list(segments)


def test_parity_and_timing_can_run_on_trimmed_input(tmp_path):
    r = run(ExportConfig(model="tiny:", to="ct2", out=tmp_path / "ct2", encoder_input="trimmed", **SMALL))
    assert r.details["source_backend"]["encoder_input"] == r.details["export_backend"]["encoder_input"] == "trimmed"
    assert r.parity["all_equal"]  # float32 CTranslate2 == PyTorch on trimmed input too
