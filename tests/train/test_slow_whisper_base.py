"""Slow: LoRA on the real bundled whisper-base with a small synthetic Korean lecture set; the dev
CER (30-s padded decoding, as deployed) falls well below zero-shot."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_lora_on_whisper_base_beats_zero_shot(tmp_path_factory):
    from soritune.data.synth_corpus import SynthCorpusConfig, build_synth_corpus
    from soritune.train import TrainConfig, run

    data = tmp_path_factory.mktemp("synth_base")
    # templates only (prose_share=0): the thresholds below were measured on the template corpus
    build_synth_corpus(SynthCorpusConfig(out=data, n=200, n_dev=20, n_test=1, n_everyday=1, seed=0, prose_share=0.0))
    cfg = TrainConfig(model="bundled:whisper-base", train=str(data / "train.jsonl"), dev=str(data / "dev.jsonl"),
                      out=str(tmp_path_factory.mktemp("run") / "lora"), method="lora", lora_r=32, lora_alpha=64,
                      target="qv", batch_size=8, max_steps=25, lr=1e-3, eval_every=25, eval_at_start=True,
                      threads=2)
    res = run(cfg)
    print(f"whisper-base LoRA, 25 steps x 8: dev CER {res.initial_dev_cer:.4f} -> {res.best_dev_cer:.4f}; "
          f"{res.samples_per_s:.2f} samples/s, peak RSS {res.peak_rss_gb:.2f} GB")
    assert res.status == "completed"
    assert res.best_dev_cer < 0.5 * res.initial_dev_cer
    assert res.best_dev_cer < 0.7
