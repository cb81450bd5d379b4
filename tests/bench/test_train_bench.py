"""`bench train`: the step clock, ratios, reports, and (slow) a real run on tiny: with the recipe peer."""

from __future__ import annotations

import json

import pytest

from soritune.bench.train_measure import BudgetReached, StepClock


def test_step_clock_counts_steps_after_warmup(monkeypatch):
    import soritune.bench.train_measure as tm

    ticks = iter([0.0, 1.0, 3.0, 4.0, 5.5])
    monkeypatch.setattr(tm, "clock", lambda device: next(ticks))
    c = StepClock("cpu", warmup=1, steps=3, seconds=None)
    c({"event": "start"})
    c({"event": "step"})  # warm-up step ends at 1.0
    c({"event": "step"})
    c({"event": "step"})
    with pytest.raises(BudgetReached):
        c({"event": "step"})  # third timed step ends the window
    s = c.summary(batch_size=2)
    assert s["steps_timed"] == 3
    assert s["samples_per_s"] == pytest.approx(6 / 4.5)
    assert s["step_s"]["median"] == pytest.approx(1.5) and s["step_s"]["min"] == pytest.approx(1.0)


def test_step_clock_time_budget(monkeypatch):
    import soritune.bench.train_measure as tm

    ticks = iter([0.0, 2.0, 3.0, 5.0])
    monkeypatch.setattr(tm, "clock", lambda device: next(ticks))
    c = StepClock("cpu", warmup=0, steps=None, seconds=4.0, raise_at_end=False)
    c.mark_start()
    assert c.mark_step() is False and c.mark_step() is False
    assert c.mark_step() is True  # 5 s after the start
    assert c.summary(4)["samples_per_s"] == pytest.approx(12 / 5)


def _row(method, runner, sps, mem):
    from soritune.bench.train_bench import TrainRow

    return TrainRow(method=method, runner=runner, steps_timed=3, samples_per_s=sps, step_s={}, peak_mem_mb=mem,
                    memory_kind="cpu rss", memory={}, trainable_params=1, total_params=2, encoder_frames="x",
                    settings={})


def test_ratios_against_the_recipe():
    from soritune.bench.train_bench import add_ratios

    rows = [_row("lora", "soritune", 4.0, 500.0), _row("lora on 8-bit base", "hf-peft-recipe", 2.0, 1000.0)]
    add_ratios(rows)
    assert rows[0].vs_recipe_samples_per_s == pytest.approx(2.0)
    assert rows[0].vs_recipe_memory == pytest.approx(0.5)
    assert rows[1].vs_recipe_samples_per_s is None


def test_train_report_keeps_the_infer_section(tmp_path):
    from soritune.bench.report import render_markdown, write_section
    from soritune.bench.train_bench import TrainBenchResult, add_ratios
    from soritune.jsonio import write_json

    write_json(tmp_path / "bench.json", {"schema_version": 1, "infer": {"rows": [], "config": {"model": "m"}}})
    rows = [_row("full", "soritune", 1.0, 900.0), _row("lora on 8-bit base", "hf-peft-recipe", 0.5, 1200.0)]
    add_ratios(rows)
    result = TrainBenchResult(kind="train", config={"model": "tiny:", "batch_size": 2, "warmup_steps": 1},
                              environment={"device": "cpu", "versions": {}}, data={"source": "synthetic:4", "n_clips": 4},
                              rows=rows, errors=[{"method": "qlora4 (soritune)", "error": "boom"}], notes=["n"],
                              wall_s=1.0, command="soritune bench train")
    write_section("train", result, tmp_path)
    doc = json.loads((tmp_path / "bench.json").read_text())
    assert "infer" in doc and doc["train"]["rows"][0]["vs_recipe_samples_per_s"] == pytest.approx(2.0)
    md = (tmp_path / "bench.md").read_text()
    assert md == render_markdown(doc)
    assert "## Inference" in md and "## Training" in md and "not measured: qlora4 (soritune): boom" in md
    assert (tmp_path / "train_peak_memory.png").stat().st_size > 1000


@pytest.mark.slow
def test_bench_train_on_tiny_with_recipe(tmp_path):
    from soritune.bench.train_bench import run

    result = run({"model": "tiny:", "methods": ["full", "lora"], "batch_size": 2, "steps": 2, "warmup_steps": 1,
                  "synthetic": 4, "threads": 1, "out": str(tmp_path)})
    assert result.errors == []
    by = {(r.method, r.runner): r for r in result.rows}
    assert set(by) == {("full", "soritune"), ("lora", "soritune"), ("lora on 8-bit base", "hf-peft-recipe")}
    for r in result.rows:
        assert r.steps_timed == 2 and r.samples_per_s > 0 and r.peak_mem_mb > 0
        assert r.step_s["min"] > 0 and r.trainable_params > 0
    assert by[("full", "soritune")].trainable_params > by[("lora", "soritune")].trainable_params
    assert by[("lora", "soritune")].vs_recipe_samples_per_s is not None
    recipe = by[("lora on 8-bit base", "hf-peft-recipe")]
    assert recipe.settings["r"] == 32 and recipe.settings["target_modules"] == ["q_proj", "v_proj"]
    doc = json.loads((tmp_path / "bench.json").read_text())
    assert len(doc["train"]["rows"]) == 3
