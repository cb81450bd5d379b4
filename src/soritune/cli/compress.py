"""CLI verbs of the compress stage: `prune` (with `prune sweep`), `distill`, `export`."""

from __future__ import annotations

from pathlib import Path

import typer

from soritune.cli.app import app, console, out
from soritune.cli.options import ConfigOpt, SetOpt, config_options, merge_config
from soritune.cli.progress import progress_bar
from soritune.compress.distill import DistillConfig
from soritune.compress.export import ExportConfig
from soritune.compress.registry import PRUNE_METHODS, prune_method
from soritune.compress.sweep import SweepConfig
from soritune.train.config import TrainConfig

prune_app = typer.Typer(no_args_is_help=False, add_completion=False)
app.add_typer(prune_app, name="prune")

PRUNE_CONFIGS = {name: prune_method(name)[0] for name in PRUNE_METHODS}
# train_overrides flags of the lottery rounds (prune --method lottery, prune sweep --method lottery)
ROUND_TRAINING = {"train_overrides": (TrainConfig, {
    "include": ("lora_r", "target", "max_steps", "lr", "batch_size"), "label": "lottery rounds: ",
    "rename": {"target": "--lora-target", "batch_size": "--train-batch-size"}})}


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def _table(title: str, rows: list[tuple[str, str]]) -> None:
    from rich.table import Table

    t = Table(title=title)
    t.add_column("")
    t.add_column("", justify="right")
    for k, v in rows:
        t.add_row(k, v)
    out.print(t)


def _train_progress(bar, label: str):
    """A progress callback for runs that train (lottery rounds, distillation, sweep points)."""
    def progress(ev: dict) -> None:
        kind = ev.get("event")
        if kind == "round":
            bar.update(f"{label}: {ev.get('kind')} round {ev.get('round')} ({ev.get('phase')})", "", total=None, completed=0)
        elif kind == "pseudo":
            bar.update(f"{label}: pseudo-labelling", "", total=ev["total"], completed=ev["done"])
        elif kind == "start":
            bar.update(total=ev["total_steps"], completed=ev["step"])
        elif kind == "step":
            bar.update(info=f"loss {ev['loss']:.3f}", completed=ev["step"])
        elif kind == "point":
            bar.update(f"{label}: sparsity {ev['sparsity']:.0%}", total=ev["total"], completed=ev["done"])
    return progress


# ---- prune ------------------------------------------------------------------------------------

@prune_app.callback(invoke_without_command=True)
@config_options(PRUNE_CONFIGS, short={"model": "-m", "out": "-o"}, csv=("modules", "schedule"), nested=ROUND_TRAINING)
def prune(
    fields: dict,
    ctx: typer.Context,
    method: str = typer.Option("magnitude", help="Prune method (soritune.compress.registry): " + " | ".join(PRUNE_METHODS)
                               + "; a flag whose help starts with method names belongs to those methods only."),
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML with the method's config fields."),
    set_: list[str] | None = typer.Option(None, "--set", help="key=value overrides (e.g. train_overrides.max_steps=100)."),
) -> None:
    """Prune a Whisper model and write a Hugging Face directory with the masks or the smaller model.

    magnitude: unstructured, exact sparsity (global or per matrix); tied embedding/proj_out never pruned; OUT/masks.safetensors.

    lottery: LoRA + lottery ticket: train LoRA on the frozen base, prune p% of the remaining base weights by magnitude, rewind the survivors, retrain, --rounds times, with a random-mask control; OUT/merged = ticket, masks re-applied.

    structured: remove heads, FFN channels or layers ranked by magnitude or Taylor importance; the model really shrinks.

    Unstructured sparsity claims no speed-up: zeros are still multiplied by dense kernels.

    Examples:

      soritune prune -m bundled:whisper-base --method magnitude --sparsity 0.5 --out pruned/

      soritune prune -m bundled:whisper-base --method lottery --train data/train.jsonl --dev data/dev.jsonl --sparsity 0.5 --rounds 3 --max-steps 200 --out lth/

      soritune prune -m bundled:whisper-base --method structured --target ffn --fraction 0.25 --out ffn25/

      soritune prune sweep -m bundled:whisper-base --eval-manifest data/test.jsonl --out sweep/
    """
    if ctx.invoked_subcommand is not None:
        return
    from soritune.cli.app import fail

    if method not in PRUNE_METHODS:
        fail(f"--method {method!r}; allowed: {', '.join(PRUNE_METHODS)}")
    config_cls, run = prune_method(method)
    foreign = sorted(set(fields) - set(config_cls.model_fields))
    if foreign:
        fail(f"--method {method} has no option {', '.join('--' + k.replace('_', '-') for k in foreign)} "
             f"(see the method names in `soritune prune --help`)")
    cfg = merge_config(config_cls, config, set_, fields)
    if method == "magnitude":
        with console.status("pruning"):
            r = run(cfg)
        _print_unstructured(r)
    elif method == "structured":
        with console.status(f"pruning {cfg.target} and measuring"):
            r = run(cfg)
        _print_structured(r)
    else:
        with progress_bar("lottery") as bar:
            r = run(cfg, progress=_train_progress(bar, "lottery"))
        _print_lottery(r)


def _print_unstructured(r) -> None:
    _table(f"{r.out}: magnitude pruning", [
        ("target sparsity", f"{r.target_sparsity:.2%}"), ("mask sparsity (exact)", f"{r.mask_sparsity:.4%}"),
        ("weight zeros measured", f"{r.weight_sparsity:.4%}"), ("of all parameters", f"{r.model_sparsity:.2%}"),
        ("pruned / prunable", f"{r.n_pruned:,} / {r.n_prunable:,}"), ("file MB (dense)", f"{r.file_mb:.1f}"),
        ("as CSR (estimate) MB", f"{r.sparse_storage_mb:.1f}"), ("CER before / after", f"{_pct(r.cer_before)} / {_pct(r.cer_after)}")])
    console.print(r.sparsity_note, highlight=False)


def _print_structured(r) -> None:
    t_b, t_a = r.timing_before or {}, r.timing_after or {}
    _table(f"{r.out}: structured pruning of {r.target} ({r.score})", [
        ("parameters", f"{r.params_before:,} -> {r.params_after:,}"), ("weight file MB", f"{r.file_mb_before:.1f} -> {r.file_mb_after:.1f}"),
        ("decode median s", f"{t_b.get('median_s', '-')} -> {t_a.get('median_s', '-')}"),
        ("speed-up (measured)", f"{r.speedup}x" if r.speedup else "-"), ("CER", f"{_pct(r.cer_before)} -> {_pct(r.cer_after)}"),
        ("loads as plain HF", "yes" if r.loads_as_standard_hf else "no (structure.json; soritune eval/serve and soritune.models.load read it)")])


def _print_lottery(r) -> None:
    rows = [(f"round {x.round} ({x.kind})", f"sparsity {x.mask_sparsity:.2%}  CER {_pct(x.cer)}") for x in r.rounds]
    rows += [("CER delta vs unpruned LoRA", "-" if r.cer_delta_points is None else f"{r.cer_delta_points:+.2f} points"),
             ("ticket (merged, masks re-applied)", r.merged_dir)]
    _table(f"{r.out}: LoRA + lottery ticket", rows)
    console.print(r.note, highlight=False)


@prune_app.command("sweep")
@config_options(SweepConfig, short={"model": "-m", "out": "-o"}, csv=("sparsity",),
                rename={"tolerance_points": "--tolerance"}, nested=ROUND_TRAINING)
def sweep(fields: dict, config: Path | None = ConfigOpt, set_: list[str] | None = SetOpt) -> None:
    """CER, size and latency at each sparsity, as a table and a PNG curve, with the knee marked
    (the published LoRA + lottery-ticket knee is near 50%).

    Example: soritune prune sweep -m bundled:whisper-base --eval-manifest data/test.jsonl --sparsity 0.1,0.3,0.5,0.7,0.9 --out sweep/
    """
    from soritune.compress.sweep import run

    cfg = merge_config(SweepConfig, config, set_, fields)
    with progress_bar("sweep") as bar:
        r = run(cfg, progress=_train_progress(bar, "sweep"))
    out.print(Path(r.out, "sweep.md").read_text(encoding="utf-8"), highlight=False, markup=False)
    console.print(f"curve: {r.png}", highlight=False)


# ---- distill ----------------------------------------------------------------------------------

@app.command()
@config_options(DistillConfig, short={"out": "-o"}, rename={"freeze_encoder": "--freeze-encoder/--train-encoder"})
def distill(
    fields: dict, config: Path | None = ConfigOpt,
    set_: list[str] | None = typer.Option(None, "--set", help="key=value overrides (e.g. train_overrides.threads=2)."),
) -> None:
    """Distil a teacher into a student with the teacher's encoder and K decoder layers taken from
    evenly spaced teacher layers (as distil-whisper and large-v3-turbo), trained on the teacher's
    pseudo-labels (filtered against the references) with alpha*CE + KL*T^2 (+ hidden-state MSE).
    Reports student/teacher CER, parameters and decoding speed on the same clips.

    Example: soritune distill --teacher bundled:whisper-base --decoder-layers 2 --train data/train.jsonl --dev data/dev.jsonl --max-steps 500 --out distil/
    """
    from soritune.compress.distill import run

    cfg = merge_config(DistillConfig, config, set_, fields)
    with progress_bar("distill") as bar:
        r = run(cfg, progress=_train_progress(bar, "distill"))
    tt, st = r.teacher_timing or {}, r.student_timing or {}
    _table(f"{r.out}: student with {len(r.layer_map)} decoder layers (teacher layers {r.layer_map})", [
        ("pseudo-labels kept / rejected", f"{r.n_pseudo_kept} / {r.n_pseudo_rejected} {r.rejected_by_reason or ''}"),
        ("steps, final loss", f"{r.steps}, {r.final_loss if r.final_loss is None else round(r.final_loss, 4)}"),
        ("CER teacher / student", f"{_pct(r.teacher_cer)} / {_pct(r.student_cer)} ({r.cer_delta_points:+.2f} points)"
         if r.cer_delta_points is not None else "-"),
        ("parameters teacher / student", f"{r.teacher_params:,} / {r.student_params:,}"),
        ("RTFx teacher / student", f"{tt.get('rtfx')} / {st.get('rtfx')} ({r.speedup_rtfx}x)"),
        ("student", r.student_dir)])


# ---- export -----------------------------------------------------------------------------------

@app.command()
@config_options(ExportConfig, exclude=("gate_thresholds",), short={"model": "-m", "out": "-o"},
                rename={"float_convs": "--float-convs/--int8-convs", "measure_speed": "--speed/--no-speed"})
def export(
    fields: dict,
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML with ExportConfig fields."),
    set_: list[str] | None = typer.Option(None, "--set", help="key=value overrides (gate_thresholds.loop_rate=0.2)."),
) -> None:
    """Export a model for deployment: hf (adapter merged into a plain Hugging Face model), ct2
    (CTranslate2 via its own converter, tokenizer and preprocessor copied: faster-whisper loads it),
    torch-int8 (PyTorch dynamic int8 for CPU), ggml (whisper.cpp's ggml-model.bin). Every export transcribes a few utterances with the
    source and the export and records parity (equal transcripts, CER between) and timing in
    OUT/summary.json. soritune eval and serve load every export directory as it is. (`soritune export-data` is the dataset exporter.)

    Example: soritune export -m bundled:whisper-base --adapter runs/lora/adapter --to ct2 --quantization int8 --out export/ct2-int8

    Example: soritune export -m bundled:whisper-base --adapter runs/lora/adapter --to ct2 --out export/ct2 --gate refuse
    """
    from soritune.compress.export import run

    cfg = merge_config(ExportConfig, config, set_, fields)
    with console.status(f"exporting to {cfg.to} and checking parity"):
        r = run(cfg)
    p = r.parity
    _table(f"{r.out}: export {r.target}{' ' + r.quantization if r.quantization else ''}", [
        ("files MB", f"{r.files_mb:.1f}"),
        ("parity: equal transcripts", f"{p['n_equal']} / {p['n_utts']} ({p['source']})"),
        ("CER between source and export", _pct(p["cer_between"])),
        ("CER source / export (vs references)", f"{_pct(p['cer_source'])} / {_pct(p['cer_exported'])}"),
        ("decode median s source / export", f"{(r.timing_source or {}).get('median_s', '-')} / {(r.timing_export or {}).get('median_s', '-')}"),
        ("speed-up (measured)", f"{r.speedup}x" if r.speedup else "-")])
    g = r.details.get("hallucination_gate")
    if g and g["warning"]:
        console.print(f"[yellow]warning:[/] {g['warning']} (see {g['report']})", highlight=False)
    elif g:
        console.print(f"hallucination gate passed ({g['report']})", highlight=False)
