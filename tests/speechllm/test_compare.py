"""`speechllm compare` on tiny random models: one field varies, every other setting is shared; the A/B
table, its JSON and its plot are written; bad fields fail with the choices."""

from __future__ import annotations

import json

import pytest

from .conftest import TINY_OPTIONS, toy_examples


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return toy_examples(tmp_path_factory.mktemp("ab"), 4, captions=True)


def _base(**kw):
    from soritune.speechllm import SpeechLLMConfig
    from soritune.speechllm.recipe import RecipeConfig

    model = SpeechLLMConfig(encoder="tiny:", llm="random:tiny", projector="slam", encoder_input="trimmed",
                            projector_options=TINY_OPTIONS["slam"])
    return RecipeConfig(model=model, stage1_steps=2, stage2_steps=1, batch_size=2, max_new_tokens=3,
                        bench_audio_s=1.0, bench_repeats=1, threads=1, **kw)


def test_variants_change_only_the_named_field():
    from soritune.speechllm.compare import CompareConfig, variants

    cfg = CompareConfig(train="t", test="e", base=_base(), vary="lora_targets",
                        values=[["q_proj", "v_proj"], ["q_proj", "v_proj", "gate_proj"]])
    (la, a), (lb, b) = variants(cfg)
    assert (la, lb) == ("q_proj,v_proj", "q_proj,v_proj,gate_proj")
    assert b.model.lora_targets == ["q_proj", "v_proj", "gate_proj"]
    da, db = a.model_dump(), b.model_dump()
    da["model"].pop("lora_targets"), db["model"].pop("lora_targets")
    assert da == db


def test_unknown_field_and_bad_value_fail_clearly():
    from soritune.errors import ConfigError
    from soritune.speechllm.compare import CompareConfig, variants

    with pytest.raises(ConfigError, match="unknown field 'projektor'.*projector"):
        variants(CompareConfig(train="t", test="e", base=_base(), vary="projektor", values=["a", "b"]))
    with pytest.raises(ConfigError, match="projector"):
        variants(CompareConfig(train="t", test="e", base=_base(), vary="projector", values=["salmonn", "perceiver"]))


def test_compare_writes_the_ab_table_and_plot(data, tmp_path):
    from soritune.speechllm.compare import CompareConfig, run_compare

    base = _base()
    opts = {"projector_options": {}}
    cfg = CompareConfig(train=str(data), test=str(data), out=str(tmp_path / "ab"),
                        base=base.model_copy(update={"model": base.model.model_copy(update=opts)}),
                        vary="projector", values=["slam", "ultravox"])
    doc = run_compare(cfg)
    assert [r["variant"] for r in doc["rows"]] == ["slam", "ultravox"]
    assert [r["projector"] for r in doc["rows"]] == ["slam", "ultravox"]
    for r in doc["rows"]:
        assert r["asr_n"] == 4 and r["caption_n"] == 4 and r["ttft_ms"] > 0 and r["tpot_ms"] > 0
    md = (tmp_path / "ab" / "compare.md").read_text()
    assert "| model.projector | ASR CER % | CIDEr-D |" in md and "| ultravox |" in md
    assert (tmp_path / "ab" / "compare.png").stat().st_size > 10_000
    assert json.loads((tmp_path / "ab" / "compare.json").read_text())["vary"] == "model.projector"


def test_recipe_can_skip_stage_1_but_not_both_stages(data, tmp_path):
    from pydantic import ValidationError

    from soritune.speechllm.recipe import run_recipe

    with pytest.raises(ValidationError, match="stage1_steps and stage2_steps are both 0"):
        _base().model_validate({**_base().model_dump(), "stage1_steps": 0, "stage2_steps": 0})
    cfg = _base().model_copy(update={"stage1_steps": 0, "stage2_steps": 2})
    row = run_recipe(cfg.model_validate(cfg.model_dump()), train=data, test=data, out=tmp_path / "s2")
    assert [s["stage"] for s in row["stages"]] == [2] and row["lora_targets"]
    assert not (tmp_path / "s2" / "stage1").exists() and (tmp_path / "s2" / "stage2").is_dir()
    assert row["asr_n"] == 4 and row["ttft_ms"] > 0
