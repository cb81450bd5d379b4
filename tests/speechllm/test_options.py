"""Optional parts: LoRA on the speech encoder (trained in stage 2 only, saved and restored), and the LLM
loaded 8-bit / 4-bit through bitsandbytes with LoRA training on top."""

import json

import pytest
import torch

from soritune.audio import write_wav

from .conftest import tiny_config, tone


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    d = tmp_path_factory.mktemp("opt")
    rows = []
    for i, resp in enumerate(["안녕하세요", "반갑습니다"]):
        path = write_wav(d / f"c{i}.wav", tone(1.0, 300 + 500 * i, seed=i))
        rows.append({"id": f"c{i}", "audio": str(path), "duration": 1.0, "text": resp, "task": "transcribe",
                     "response": resp})
    (d / "d.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return d / "d.jsonl"


def _stage(model, data, out, stage, steps=3):
    from soritune.speechllm import StageTrainConfig
    from soritune.speechllm.train import run_stage

    cfg = StageTrainConfig(data=str(data), out=str(out), stage=stage, steps=steps, batch_size=2, lr=3e-3,
                           model=model.config)
    return run_stage(cfg, model=model)


def test_encoder_lora_trains_in_stage2_only_and_round_trips(toy, tmp_path):
    from soritune.speechllm import SpeechLLM

    model = SpeechLLM(tiny_config(encoder_input="trimmed", encoder_lora_r=4))
    lora0 = {k: v.clone() for k, v in model.encoder.lora_state().items()}
    base0 = {k: v.clone() for k, v in model.encoder.module.state_dict().items() if "lora_" not in k}
    assert lora0 and all(".q_proj." in k or ".v_proj." in k for k in lora0)
    _stage(model, toy, tmp_path / "s1", 1)
    assert all(torch.equal(v, model.encoder.lora_state()[k]) for k, v in lora0.items())
    res = _stage(model, toy, tmp_path / "s2", 2)
    moved = [k for k, v in lora0.items() if not torch.equal(v, model.encoder.lora_state()[k])]
    assert moved  # lora_B starts at zero: stage 2 moved it
    state = model.encoder.module.state_dict()
    assert all(torch.equal(v, state[k]) for k, v in base0.items())  # the encoder's own weights never move
    llm_lora = sum(p.numel() for n, p in model.llm.named_parameters() if "lora_" in n)
    enc_lora = sum(v.numel() for v in lora0.values())
    proj = sum(p.numel() for p in model.projector.parameters())
    assert res.trainable_params == llm_lora + enc_lora + proj
    again = SpeechLLM.load(res.model_dir)
    clip = [tone(1.0, 300)]
    model.train(False), again.train(False)
    with torch.no_grad():
        assert torch.allclose(model.loss(clip, ["Transcribe."], ["안녕하세요"]),
                              again.loss(clip, ["Transcribe."], ["안녕하세요"]), atol=1e-5)


@pytest.mark.parametrize("bits", ["8bit", "4bit"])
def test_quantised_llm_trains_lora_and_generates(toy, tmp_path, bits):
    pytest.importorskip("bitsandbytes")
    import bitsandbytes as bnb

    from soritune.speechllm import SpeechLLM

    model = SpeechLLM(tiny_config(encoder_input="trimmed", llm_quantization=bits))
    kind = bnb.nn.Linear8bitLt if bits == "8bit" else bnb.nn.Linear4bit
    quantised = [n for n, m in model.llm.named_modules() if isinstance(m, kind)]
    assert any(n.endswith("q_proj") for n in quantised) and not any("lm_head" in n for n in quantised)
    assert model.llm_info["quantization"] == bits
    res = _stage(model, toy, tmp_path / "s2", 2, steps=4)
    assert all(torch.isfinite(torch.tensor(res.losses)))
    assert res.last_loss < res.first_loss
    model.train(False)
    assert isinstance(model.generate(tone(1.0, 300), max_new_tokens=4), str)
    again = SpeechLLM.load(res.model_dir)
    assert again.config.llm_quantization == bits
