"""`soritune speechllm compare`: the lightening study's A/B table. Recipes that differ in ONE component
(`vary` = a field of the recipe or of its model, e.g. `projector` or `lora_targets`) are trained, scored
and measured on the same data with the same seeds; OUT/compare.{json,md,png} hold the table (ASR CER,
captioning CIDEr-D, TTFT, TPOT, train time, peak memory) and its plot. Each recipe runs in OUT/<value>/
and a finished one is reused.

    from soritune.speechllm.compare import CompareConfig, run_compare
    doc = run_compare(CompareConfig(train="t.jsonl", test="e.jsonl", out="ab", vary="projector",
                                    values=["salmonn", "slam"]))
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

from pydantic import Field

from soritune.config import StageConfig, apply_overrides, validate
from soritune.errors import ConfigError
from soritune.jsonio import atomic_write_text, write_json
from soritune.speechllm.config import SpeechLLMConfig
from soritune.speechllm.recipe import RecipeConfig, run_recipe

# (key, label, scale, lower is better)
METRICS = (("asr_cer", "ASR CER %", 100, True), ("cider_d", "CIDEr-D", 1, False), ("ttft_ms", "TTFT ms", 1, True),
           ("tpot_ms", "TPOT ms", 1, True), ("train_s", "train s", 1, True), ("peak_mem_gb", "peak mem GB", 1, True))


class CompareConfig(StageConfig):
    train: str = Field(..., description="Speech-LLM training JSONL (same for every recipe).")
    test: str = Field(..., description="Speech-LLM test JSONL (transcribe rows -> CER, caption rows -> CIDEr-D).")
    out: str = Field("sllm_compare", description="Output directory.")
    base: RecipeConfig = Field(default_factory=RecipeConfig, description="The recipe every variant starts from.")
    vary: str = Field(..., description="The one field that differs: a recipe field (stage2_steps) or a model "
                      "field (projector, lora_targets, llm, encoder, ...), dotted (model.projector) or bare.")
    values: list[Any] = Field(..., min_length=2, description="Its values, one recipe each.")


def resolve_key(key: str) -> str:
    """`projector` -> `model.projector`; recipe fields stay bare; unknown keys fail with the choices."""
    key = key.strip()
    if key.startswith("model.") and key.split(".", 1)[1] in SpeechLLMConfig.model_fields:
        return key
    if key in RecipeConfig.model_fields and key != "model":
        return key
    if key in SpeechLLMConfig.model_fields:
        return f"model.{key}"
    raise ConfigError(f"vary: unknown field {key!r}; recipe fields: {', '.join(f for f in RecipeConfig.model_fields if f != 'model')}"
                      f"; model fields: {', '.join(SpeechLLMConfig.model_fields)}")


def variants(cfg: CompareConfig) -> list[tuple[str, RecipeConfig]]:
    """(label, recipe) per value: the base with the one field changed (validated)."""
    key = resolve_key(cfg.vary)
    base = cfg.base.model_dump()
    out = []
    for value in cfg.values:
        data = apply_overrides(base, [])
        node = data
        *parents, last = key.split(".")
        for p in parents:
            node = node[p]
        node[last] = value
        label = ",".join(str(v) for v in value) if isinstance(value, list) else str(value)
        out.append((label, validate(RecipeConfig, data)))
    if len({lab for lab, _ in out}) != len(out):
        raise ConfigError(f"values: two of {cfg.values} are the same")
    return out


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_") or "variant"


def run_compare(cfg: CompareConfig, *, progress: Callable[[str, str, int, int], None] | None = None) -> dict:
    """Run every variant (reusing finished ones); write OUT/compare.json, compare.md and compare.png."""
    out = Path(cfg.out)
    rows = []
    for label, recipe in variants(cfg):
        tell = (lambda phase, done, total, lab=label: progress(lab, phase, done, total)) if progress else None
        row = run_recipe(recipe, train=cfg.train, test=cfg.test, out=out / _slug(label), name=label, progress=tell)
        rows.append({**row, "variant": label})
    doc = {"vary": resolve_key(cfg.vary), "rows": rows, "config": cfg.model_dump()}
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "compare.json", doc)
    plot = plot_compare(doc, out / "compare.png")
    doc["plot"] = str(plot) if plot else None
    atomic_write_text(out / "compare.md", render(doc))
    return doc


def _cell(value, scale: float, nd: int) -> str:
    return "-" if value is None else f"{value * scale:.{nd}f}"


def render(doc: dict) -> str:
    rows = doc["rows"]
    first = rows[0]
    lines = [f"# Speech-LLM A/B: {doc['vary']}", "",
             f"Same data and seeds; only `{doc['vary']}` differs. Base: {first['encoder']} + {first['projector']} + "
             f"{first['llm']}; stages {', '.join(str(s['steps']) for s in first['stages'])} steps; ASR test "
             f"{first['asr_n']} utterances, captioning test {first['caption_n']} clips.", "",
             "| " + doc["vary"] + " | ASR CER % | CIDEr-D | TTFT ms | TPOT ms | train s | peak mem GB | train peak GB | "
             "trainable params |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        trainable = max((s["trainable_params"] for s in r["stages"]), default=0)
        lines.append(f"| {r['variant']} | {_cell(r['asr_cer'], 100, 1)} | {_cell(r['cider_d'], 1, 3)} | "
                     f"{_cell(r['ttft_ms'], 1, 1)} | {_cell(r['tpot_ms'], 1, 1)} | {_cell(r['train_s'], 1, 0)} | "
                     f"{_cell(r['peak_mem_gb'], 1, 2)} | {_cell(r['train_peak_mem_gb'], 1, 2)} | {trainable:,} |")
    loads = "; ".join(f"{r['variant']}: {r['load_average_1_5_15']}" for r in rows)
    lines += ["", f"TTFT/TPOT: the study's protocol (batch 1, {doc['config']['base']['bench_audio_s']:g} s audio). "
              f"peak mem: {first['peak_mem_definition']}. Load average after each run: {loads}."]
    if doc.get("plot"):
        lines += ["", f"![A/B]({Path(doc['plot']).name})"]
    return "\n".join(lines) + "\n"


def plot_compare(doc: dict, path: Path) -> Path | None:
    """One bar panel per metric (matplotlib, Agg, as soritune.report's plots)."""
    from soritune.report.plots import _plt

    rows = doc["rows"]
    plt = _plt()
    fig, axes = plt.subplots(2, 3, figsize=(9.6, 5.2), dpi=110)
    labels = [r["variant"] for r in rows]
    for ax, (key, title, scale, lower) in zip(axes.flat, METRICS):
        vals = [(r.get(key) or 0) * scale for r in rows]
        ax.bar(range(len(rows)), vals, color=["#4c72b0", "#dd8452", "#55a868", "#c44e52"][: len(rows)] * 4)
        ax.set_xticks(range(len(rows)), labels, fontsize=7, rotation=15)
        ax.set_title(f"{title} ({'lower' if lower else 'higher'} is better)", fontsize=9)
        for i, v in enumerate(vals):
            ax.text(i, v, f"{v:.3g}", ha="center", va="bottom", fontsize=7)
    fig.suptitle(f"Speech LLM A/B: {doc['vary']}", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
