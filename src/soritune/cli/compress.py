"""CLI verbs of the compress stage: `prune` (with `prune sweep`), `distill`, `export`."""

from __future__ import annotations

from pathlib import Path

import typer

from soritune.cli.app import app, console, out
from soritune.cli.options import config_options
from soritune.compress.export import ExportConfig
from soritune.models.encoder import ENCODER_INPUT_HELP

prune_app = typer.Typer(no_args_is_help=False, add_completion=False)
app.add_typer(prune_app, name="prune")


def _given(**values) -> dict:
    return {k: v for k, v in values.items() if v is not None and v != []}


def _load(model_cls, config: Path | None, set_: list[str] | None, fields: dict, train_overrides: dict | None = None):
    """YAML file < flags given < --set; train_overrides from flags merge into the file's."""
    from soritune.config import apply_overrides, read_yaml, validate

    data = read_yaml(config) if config else {}
    data.update(fields)
    if train_overrides:
        data["train_overrides"] = {**dict(data.get("train_overrides") or {}), **train_overrides}
    return validate(model_cls, apply_overrides(data, set_ or None))


def _csv(text: str | None) -> list[str] | None:
    return [s.strip() for s in text.split(",") if s.strip()] if text else None


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


def _train_progress(bar, task, label: str):
    """A progress callback for runs that train (lottery rounds, distillation)."""
    def progress(ev: dict) -> None:
        kind = ev.get("event")
        if kind == "round":
            bar.update(task, description=f"{label}: {ev.get('kind')} round {ev.get('round')} ({ev.get('phase')})",
                       total=None, completed=0, info="")
        elif kind == "pseudo":
            bar.update(task, description=f"{label}: pseudo-labelling", total=ev["total"], completed=ev["done"], info="")
        elif kind == "start":
            bar.update(task, total=ev["total_steps"], completed=ev["step"])
        elif kind == "step":
            bar.update(task, completed=ev["step"], info=f"loss {ev['loss']:.3f}")
        elif kind == "point":
            bar.update(task, description=f"{label}: sparsity {ev['sparsity']:.0%}", total=ev["total"], completed=ev["done"])
    return progress


def _progress_bar():
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("{task.fields[info]}"), console=console, transient=True)


# ---- prune ------------------------------------------------------------------------------------

@prune_app.callback(invoke_without_command=True)
def prune(
    ctx: typer.Context,
    model: str | None = typer.Option(None, "--model", "-m", help="Model spec to prune, e.g. bundled:whisper-base."),
    adapter: str | None = typer.Option(None, help="PEFT adapter merged in first."),
    method: str | None = typer.Option(None, help="magnitude | lottery | structured  [default: magnitude]"),
    out_dir: Path | None = typer.Option(None, "--out", "-o", help="Output directory."),
    sparsity: float | None = typer.Option(None, help="magnitude/lottery: final fraction of prunable weights zeroed  [default: 0.5]"),
    scope: str | None = typer.Option(None, help="magnitude/lottery: global | layer  [default: global]"),
    modules: str | None = typer.Option(None, help="Prunable linear layers, comma-separated  [default: q,k,v,out_proj,fc1,fc2]"),
    side: str | None = typer.Option(None, help="encoder | decoder | both  [default: both]"),
    rounds: int | None = typer.Option(None, help="lottery: prune/retrain rounds  [default: 3]"),
    rate: float | None = typer.Option(None, help="lottery: fraction of the remaining weights pruned per round (instead of --sparsity)."),
    protect_adapted: bool | None = typer.Option(None, "--protect-adapted", help="lottery: never prune base weights of adapter-carrying modules."),
    rewind_step: int | None = typer.Option(None, help="lottery: 0 = rewind to pre-trained weights; k = to round 0's step k  [default: 0]"),
    control: bool | None = typer.Option(None, "--control/--no-control", help="lottery: train a random-mask control  [default: on]"),
    train: str | None = typer.Option(None, help="lottery: training manifest for each round's LoRA."),
    dev: str | None = typer.Option(None, help="lottery: dev manifest (training dev CER; default evaluation set)."),
    lora_r: int | None = typer.Option(None, help="lottery: LoRA rank  [default: 32]"),
    target_modules: str | None = typer.Option(None, "--lora-target", help="lottery: LoRA target: qv | attn | all-linear  [default: qv]"),
    max_steps: int | None = typer.Option(None, help="lottery: optimizer steps per round."),
    lr: float | None = typer.Option(None, help="lottery: LoRA learning rate  [default: 1e-3]"),
    batch_size: int | None = typer.Option(None, help="lottery: training batch size  [default: 8]"),
    target: str | None = typer.Option(None, help="structured: heads | ffn | layers  [default: ffn]"),
    fraction: float | None = typer.Option(None, help="structured: share removed per group  [default: 0.25]"),
    score: str | None = typer.Option(None, help="structured: magnitude | taylor; lottery: merged | base"),
    calib_manifest: str | None = typer.Option(None, help="structured taylor: calibration manifest."),
    eval_manifest: str | None = typer.Option(None, help="Manifest for CER (and timing) checks."),
    eval_limit: int | None = typer.Option(None, min=1, help="Utterances of the evaluation manifest used."),
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
    from soritune.compress.registry import PRUNE_METHODS, prune_method

    method = method or "magnitude"
    if method not in PRUNE_METHODS:
        fail(f"--method {method!r}; allowed: {', '.join(PRUNE_METHODS)}")
    if model is None and config is None:
        fail("--model is required (e.g. --model bundled:whisper-base); see `soritune prune --help`")
    common = _given(model=model, adapter=adapter, out=str(out_dir) if out_dir else None, side=side,
                    modules=_csv(modules), eval_manifest=eval_manifest, eval_limit=eval_limit)
    config_cls, run = prune_method(method)
    if method == "magnitude":
        cfg = _load(config_cls, config, set_, {**common, **_given(sparsity=sparsity, scope=scope)})
        with console.status("pruning"):
            r = run(cfg)
        _print_unstructured(r)
    elif method == "structured":
        common.pop("modules", None)
        cfg = _load(config_cls, config, set_, {**common, **_given(target=target, fraction=fraction, score=score,
                                                                  calib_manifest=calib_manifest)})
        with console.status(f"pruning {cfg.target} and measuring"):
            r = run(cfg)
        _print_structured(r)
    else:
        fields = {**common, **_given(sparsity=sparsity, scope=scope, rounds=rounds, rate=rate, protect_adapted=protect_adapted,
                                     rewind_step=rewind_step, control=control, train=train, dev=dev, score=score)}
        overrides = _given(lora_r=lora_r, target=target_modules, max_steps=max_steps, lr=lr, batch_size=batch_size)
        cfg = _load(config_cls, config, set_, fields, overrides)
        with _progress_bar() as bar:
            task = bar.add_task("lottery", total=None, info="")
            r = run(cfg, progress=_train_progress(bar, task, "lottery"))
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
def sweep(
    model: str | None = typer.Option(None, "--model", "-m", help="Model spec."),
    adapter: str | None = typer.Option(None, help="PEFT adapter merged in first."),
    sparsity: str | None = typer.Option(None, help="Comma-separated points  [default: 0.1,0.3,0.5,0.7,0.9]"),
    method: str | None = typer.Option(None, help="magnitude (one-shot) | lottery (retrain at each point)  [default: magnitude]"),
    eval_manifest: str | None = typer.Option(None, help="Manifest for CER and latency (default: synthetic clips)."),
    eval_limit: int | None = typer.Option(None, min=1, help="Utterances used  [default: 50]"),
    train: str | None = typer.Option(None, help="lottery: training manifest."),
    dev: str | None = typer.Option(None, help="lottery: dev manifest."),
    max_steps: int | None = typer.Option(None, help="lottery: optimizer steps per round."),
    tolerance: float | None = typer.Option(None, help="Knee: CER points above dense still intact  [default: 1.0]"),
    encoder_input: str | None = typer.Option(None, help=ENCODER_INPUT_HELP + "  [default: padded]"),
    out_dir: Path | None = typer.Option(None, "--out", "-o", help="Output directory (sweep.json, sweep.md, sweep.png)."),
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML with SweepConfig fields."),
    set_: list[str] | None = typer.Option(None, "--set", help="key=value overrides."),
) -> None:
    """CER, size and latency at each sparsity, as a table and a PNG curve, with the knee marked
    (the published LoRA + lottery-ticket knee is near 50%).

    Example: soritune prune sweep -m bundled:whisper-base --eval-manifest data/test.jsonl --sparsity 0.1,0.3,0.5,0.7,0.9 --out sweep/
    """
    from soritune.compress.sweep import SweepConfig, run

    points = [float(x) for x in _csv(sparsity)] if sparsity else None
    fields = _given(model=model, adapter=adapter, sparsity=points, method=method, eval_manifest=eval_manifest,
                    eval_limit=eval_limit, train=train, dev=dev, tolerance_points=tolerance, encoder_input=encoder_input,
                    out=str(out_dir) if out_dir else None)
    cfg = _load(SweepConfig, config, set_, fields, _given(max_steps=max_steps))
    with _progress_bar() as bar:
        task = bar.add_task("sweep", total=None, info="")
        r = run(cfg, progress=_train_progress(bar, task, "sweep"))
    out.print(Path(r.out, "sweep.md").read_text(encoding="utf-8"), highlight=False, markup=False)
    console.print(f"curve: {r.png}", highlight=False)


# ---- distill ----------------------------------------------------------------------------------

@app.command()
def distill(
    teacher: str | None = typer.Option(None, "--teacher", help="Teacher model spec."),
    teacher_adapter: str | None = typer.Option(None, help="PEFT adapter merged into the teacher."),
    decoder_layers: int | None = typer.Option(None, min=1, help="Student decoder layers K  [default: 2]"),
    train: str | None = typer.Option(None, help="Training manifest (pseudo-labelled by the teacher)."),
    dev: str | None = typer.Option(None, help="Dev manifest (student CER during training; default comparison set)."),
    eval_manifest: str | None = typer.Option(None, help="Manifest for the final student/teacher comparison."),
    eval_limit: int | None = typer.Option(None, min=1, help="Utterances of the comparison  [default: 100]"),
    out_dir: Path | None = typer.Option(None, "--out", "-o", help="Output directory."),
    max_steps: int | None = typer.Option(None, help="Optimizer steps."),
    epochs: float | None = typer.Option(None, help="Passes over the pseudo-labelled set  [default: 3]"),
    lr: float | None = typer.Option(None, help="Peak learning rate  [default: 1e-4]"),
    batch_size: int | None = typer.Option(None, help="Utterances per batch  [default: 8]"),
    alpha: float | None = typer.Option(None, help="Cross-entropy weight  [default: 0.8]"),
    temperature: float | None = typer.Option(None, help="KL temperature T (KL is scaled by T^2)  [default: 2]"),
    mse_weight: float | None = typer.Option(None, help="Hidden-state MSE weight  [default: 0 = off]"),
    freeze_encoder: bool | None = typer.Option(None, "--freeze-encoder/--train-encoder", help="Freeze the copied encoder  [default: freeze]"),
    filter_threshold: float | None = typer.Option(None, help="Drop pseudo-labels above this CER/WER vs the reference  [default: 0.1]"),
    filter_metric: str | None = typer.Option(None, help="cer | wer  [default: cer]"),
    encoder_input: str | None = typer.Option(None, help="Decoding input for pseudo-labels and the comparison: " + ENCODER_INPUT_HELP + "  [default: padded]"),
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML with DistillConfig fields."),
    set_: list[str] | None = typer.Option(None, "--set", help="key=value overrides (e.g. train_overrides.threads=2)."),
) -> None:
    """Distil a teacher into a student with the teacher's encoder and K decoder layers taken from
    evenly spaced teacher layers (as distil-whisper and large-v3-turbo), trained on the teacher's
    pseudo-labels (filtered against the references) with alpha*CE + KL*T^2 (+ hidden-state MSE).
    Reports student/teacher CER, parameters and decoding speed on the same clips.

    Example: soritune distill --teacher bundled:whisper-base --decoder-layers 2 --train data/train.jsonl --dev data/dev.jsonl --max-steps 500 --out distil/
    """
    from soritune.compress.distill import DistillConfig, run

    fields = _given(teacher=teacher, teacher_adapter=teacher_adapter, decoder_layers=decoder_layers, train=train, dev=dev,
                    eval_manifest=eval_manifest, eval_limit=eval_limit, out=str(out_dir) if out_dir else None,
                    max_steps=max_steps, epochs=epochs, lr=lr, batch_size=batch_size, alpha=alpha, temperature=temperature,
                    mse_weight=mse_weight, freeze_encoder=freeze_encoder, filter_threshold=filter_threshold,
                    filter_metric=filter_metric, encoder_input=encoder_input)
    cfg = _load(DistillConfig, config, set_, fields)
    with _progress_bar() as bar:
        task = bar.add_task("distill", total=None, info="")
        r = run(cfg, progress=_train_progress(bar, task, "distill"))
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

    cfg = _load(ExportConfig, config, set_, fields)
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
