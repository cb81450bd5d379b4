"""Training stages on a toy set: loss falls, stages freeze the right parts, save/load round trip,
greedy generation with the KV cache equals recomputation without it."""

import json
from pathlib import Path

import pytest
import torch

from soritune.audio import write_wav

from .conftest import cached_greedy, tiny_config, tone

STEPS = 20


@pytest.fixture(scope="module")
def toy_jsonl(tmp_path_factory):
    d = tmp_path_factory.mktemp("toy")
    rows = []
    for i, (freq, resp, task) in enumerate([(440, "안녕하세요", "transcribe"), (1200, "a bird sings", "caption")]):
        path = write_wav(d / f"c{i}.wav", tone(1.5, freq, seed=i))
        rows.append({"id": f"c{i}", "audio": str(path), "duration": 1.5, "text": resp if task == "transcribe" else "",
                     "task": task, "response": resp})
    (d / "toy.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return d / "toy.jsonl"


@pytest.fixture(scope="module")
def stage1(toy_jsonl, tmp_path_factory):
    from soritune.speechllm import SpeechLLM, StageTrainConfig
    from soritune.speechllm.train import run_stage

    model = SpeechLLM(tiny_config(encoder_input="trimmed"))
    llm_before = {k: v.clone() for k, v in model.llm.state_dict().items()}
    enc_before = {k: v.clone() for k, v in model.encoder.module.state_dict().items()}
    out = tmp_path_factory.mktemp("runs") / "s1"
    cfg = StageTrainConfig(data=str(toy_jsonl), out=str(out), stage=1, steps=STEPS, batch_size=2, lr=3e-3,
                           model=model.config)
    result = run_stage(cfg, model=model)
    return model, result, llm_before, enc_before


def test_stage1_loss_falls_on_a_toy_overfit(stage1):
    _, result, _, _ = stage1
    assert result.last_loss < 0.75 * result.first_loss, result.losses
    assert result.truncated_audio_s == 0.0 and result.audio_chunks == 2 * STEPS
    summary = json.loads((Path(result.run_dir) / "summary.json").read_text())
    assert summary["stage"] == 1 and len(summary["losses"]) == STEPS
    assert len((Path(result.run_dir) / "metrics.jsonl").read_text().splitlines()) == STEPS


def test_stage1_trains_only_the_projector(stage1):
    model, result, llm_before, enc_before = stage1
    assert all(torch.equal(v, model.llm.state_dict()[k]) for k, v in llm_before.items())
    assert all(torch.equal(v, model.encoder.module.state_dict()[k]) for k, v in enc_before.items())
    assert result.trainable_params == sum(p.numel() for p in model.projector.parameters())


def test_stage2_trains_projector_and_lora_only(stage1, toy_jsonl, tmp_path):
    from soritune.speechllm import SpeechLLM, StageTrainConfig
    from soritune.speechllm.train import run_stage

    _, s1, _, _ = stage1
    cfg = StageTrainConfig(data=str(toy_jsonl), out=str(tmp_path / "s2"), stage=2, init=s1.run_dir, steps=3,
                           batch_size=2, lr=1e-3, replay=str(toy_jsonl), replay_fraction=0.5)
    model = SpeechLLM.load(s1.model_dir)
    base_before = {k: v.clone() for k, v in model.llm.state_dict().items()}
    result = run_stage(cfg, model=model)
    names = [n for n, p in model.llm.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n for n in names)
    targets = {n.split(".lora_")[0].split(".")[-1] for n in names}
    assert targets == {"q_proj", "v_proj"}
    after = model.llm.get_base_model().state_dict()
    changed = [k for k, v in base_before.items() if k in after and not torch.equal(v, after[k])]
    assert changed == []  # the base LLM never moves in stage 2
    assert result.stage == 2 and (tmp_path / "s2" / "model" / "lora" / "adapter_config.json").is_file()


def test_save_load_round_trip_gives_identical_outputs(stage1, tmp_path):
    from soritune.speechllm import SpeechLLM

    model, _, _, _ = stage1
    model.save(tmp_path / "m")
    again = SpeechLLM.load(tmp_path / "m")
    clip = [tone(1.5, 440)]
    with torch.no_grad():
        a = model.loss(clip, ["Transcribe."], ["안녕하세요"])
        b = again.loss(clip, ["Transcribe."], ["안녕하세요"])
    assert torch.allclose(a, b)
    assert again.config == model.config


def test_generate_equals_the_kv_cached_greedy_loop(stage1):
    from soritune.speechllm.config import DEFAULT_PROMPTS

    model, _, _, _ = stage1
    audio, prompt = tone(1.5, 1200, seed=1), DEFAULT_PROMPTS["caption"]
    text = model.generate(audio, prompt, max_new_tokens=6)
    assert text == cached_greedy(model, audio, prompt, 6)


def test_cached_decoding_equals_recomputation(tiny_model):
    from soritune.speechllm.bench import decode_step, prefill

    m = tiny_model
    audio = tone(2.0)
    logits, past, pos = prefill(m, audio, "Transcribe.")
    batch = m.build_inputs([audio], ["Transcribe."])
    embeds = batch["inputs_embeds"]
    table = m.llm.get_input_embeddings()
    cached, full = [], []
    tok = int(logits.argmax(-1))
    for _ in range(5):
        cached.append(tok)
        logits, past = decode_step(m, tok, past, pos)
        pos += 1
        tok = int(logits.argmax(-1))
    seq = embeds
    with torch.no_grad():
        for _ in range(5):
            nxt = int(m.llm(inputs_embeds=seq, use_cache=False).logits[0, -1].argmax())
            full.append(nxt)
            seq = torch.cat([seq, table(torch.tensor([[nxt]]))], dim=1)
    assert cached == full


def test_failure_flags():
    from soritune.speechllm.evaluate import failure_flags

    assert failure_flags("")["empty"]
    assert failure_flags("I'm sorry, I cannot transcribe this audio.")["refusal"]
    assert failure_flags("죄송합니다. 음성을 인식할 수 없습니다.")["refusal"]
    assert failure_flags("네 네 네 네 네 네 네 네 네 네 네 네")["loop"]
    assert not any(failure_flags("오늘은 미분 방정식을 배웁니다").values())


def test_evaluate_scores_asr_and_captions(stage1, toy_jsonl, tmp_path):
    from soritune.speechllm.evaluate import evaluate

    model, _, _, _ = stage1
    report = evaluate(model, toy_jsonl, out_dir=tmp_path, max_new_tokens=6)
    assert report["n"] == 2 and report["asr"]["n"] == 1 and report["captions"]["n"] == 1
    assert report["asr"]["cer"] is not None and report["captions"]["cider_d"] >= 0
    assert report["truncated_audio_s"] == 0.0 and report["audio_s"] == 3.0
    assert set(report["failures"]) == {"empty", "refusal", "loop", "loop_stopped", "hit_max_tokens"}
    hyps = (tmp_path / "hyps.jsonl").read_text().splitlines()
    assert len(hyps) == 2 and (tmp_path / "report.json").is_file()
