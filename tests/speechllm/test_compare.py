"""`speechllm compare` on tiny random models: one field varies, every other setting is shared; the A/B
table, its JSON and its plot are written; bad fields fail with the choices."""

from __future__ import annotations

import json

import pytest

from soritune.audio import write_wav

from .conftest import TINY_OPTIONS, tone


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("ab")
    rows = []
    for i in range(4):
        path = write_wav(root / f"c{i}.wav", tone(1.0, 250 + 150 * i, seed=i))
        rows.append({"id": f"a{i}", "audio": str(path), "duration": 1.0, "text": f"소리 {i}", "task": "transcribe",
                     "response": f"소리 {i}"})
        rows.append({"id": f"c{i}", "audio": str(path), "duration": 1.0, "text": "", "task": "caption",
                     "response": "a low beep", "references": ["a low beep", "one low tone", "a short low beep"]})
    (root / "d.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return root / "d.jsonl"


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
