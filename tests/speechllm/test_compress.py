"""LLM layer dropping by measured sensitivity: the skipped-layer losses, the drop itself (config, KV-cached
generation, save/load with LoRA) and the report with the recipes' figures, on a tiny random model."""

import json

import pytest
import torch

from .conftest import cached_greedy, tiny_config, tone, toy_examples


def _rows(path):
    from soritune.speechllm.data import read_examples

    return read_examples(path)


def test_sensitivity_ranks_layers_and_the_drop_matches_the_measured_loss(tmp_path):
    from soritune.speechllm import SpeechLLM
    from soritune.speechllm.compress import (
        decoder_of,
        layer_sensitivity,
        least_sensitive,
        response_loss_on,
    )

    model = SpeechLLM(tiny_config(encoder_input="trimmed", llm="random:tiny-llama"))
    rows = _rows(toy_examples(tmp_path, 3, captions=True))
    report = layer_sensitivity(model, rows)
    assert report["n_layers"] == 2 and len(report["layers"]) == 2
    assert all(abs(r["delta"]) > 1e-4 for r in report["layers"])  # skipping a layer changes the loss
    assert len(decoder_of(model.llm).layers) == 2  # restored after measuring
    assert response_loss_on(model, rows) == pytest.approx(report["base_loss"], abs=1e-4)
    (drop,) = least_sensitive(report, 1)
    assert drop == min(report["layers"], key=lambda r: r["delta"])["layer"]
    model.drop_llm_layers([drop])
    assert len(decoder_of(model.llm).layers) == 1 and model.llm.config.num_hidden_layers == 1
    assert model.config.llm_drop_layers == [drop]
    assert response_loss_on(model, rows) == pytest.approx(report["layers"][drop]["loss"], abs=1e-4)
    with pytest.raises(Exception, match="leaves none"):
        model.drop_llm_layers([0])


def test_dropped_model_generates_with_the_cache_and_round_trips_with_lora(tmp_path):
    from soritune.speechllm import SpeechLLM
    from soritune.speechllm.layers import decoder_of

    model = SpeechLLM(tiny_config(encoder_input="trimmed"))  # Qwen2 layout: per-layer attention types
    model.drop_llm_layers([0])
    model.enable_lora()
    with torch.no_grad():
        for name, p in model.llm.named_parameters():
            if "lora_B" in name:
                p.add_(0.05)  # a LoRA that changes the outputs
    assert not model.llm.training  # enabling LoRA keeps inference mode (no LoRA dropout)
    audio = tone(1.5, 700)
    text = model.generate(audio, "Transcribe.", max_new_tokens=5)
    assert text == cached_greedy(model, audio, "Transcribe.", 5)
    model.save(tmp_path / "m")
    again = SpeechLLM.load(tmp_path / "m")
    assert len(decoder_of(again.llm).layers) == 1 and again.config.llm_drop_layers == [0]
    assert not again.llm.training
    with torch.no_grad():
        a = model.loss([audio], ["Transcribe."], ["소리"])
        b = again.loss([audio], ["Transcribe."], ["소리"])
    assert torch.allclose(a, b, atol=1e-6)


def test_run_drop_layers_reports_before_and_after(tmp_path):
    from soritune.speechllm import SpeechLLM
    from soritune.speechllm.compress import run_drop_layers
    from soritune.speechllm.recipe import RecipeConfig

    data = toy_examples(tmp_path, 2, captions=True)
    model = SpeechLLM(tiny_config(encoder_input="trimmed"))
    model.save(tmp_path / "run" / "model")
    recipe = RecipeConfig(model=model.config, max_new_tokens=4, bench_audio_s=1.0, bench_repeats=1, threads=1)
    doc = run_drop_layers(tmp_path / "run", data=data, test=data, out=tmp_path / "drop", n_drop=1, recipe=recipe)
    assert [r["name"] for r in doc["rows"]] == ["whole LLM", "1 layers dropped"]
    before, after = doc["rows"]
    assert after["llm_params"] < before["llm_params"]
    assert before["asr_n"] == after["asr_n"] == 2 and before["caption_n"] == 2
    assert after["ttft_ms"] > 0 and after["peak_mem_gb"] > 0
    saved = json.loads((tmp_path / "drop" / "drop.json").read_text())
    assert saved["dropped"] == doc["dropped"] and "| layer |" in (tmp_path / "drop" / "drop.md").read_text()
    assert SpeechLLM.load(tmp_path / "drop" / "model").config.llm_drop_layers == doc["dropped"]
