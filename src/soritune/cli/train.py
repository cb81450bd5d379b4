"""`soritune train`: fine-tune Whisper on a manifest (LoRA / DoRA / QLoRA / full)."""

from __future__ import annotations

from pathlib import Path

import typer

from soritune.cli.app import app, console, out


def _flags(**values) -> dict:
    return {k: v for k, v in values.items() if v is not None}


@app.command()
def train(
    model: str | None = typer.Option(None, "--model", "-m", help="Model spec, e.g. bundled:whisper-base (see `soritune --help`)."),
    train_manifest: Path | None = typer.Option(None, "--train", help="Training manifest (JSONL)."),
    dev: Path | None = typer.Option(None, help="Dev manifest: CER during training, early stopping, best checkpoint."),
    out_dir: Path | None = typer.Option(None, "--out", "-o", help="Run directory."),
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML config file with the same fields (flags override it)."),
    preset: str | None = typer.Option(None, help="Named preset (see --list-presets), e.g. paper-lecture-8bit."),
    set_: list[str] | None = typer.Option(None, "--set", help="Override any field: --set key=value (repeatable)."),
    method: str | None = typer.Option(None, help="Preset of --adapter + --quantization: full | lora | dora | qlora8 | qlora4  [default: lora]"),
    adapter: str | None = typer.Option(None, help="What trains: full | lora | dora | rslora ... (soritune.train.methods.ADAPTERS)  [default: lora]"),
    quantization: str | None = typer.Option(None, help="Frozen base under the adapter: 8bit | 4bit (bitsandbytes)  [default: none]"),
    lora_r: int | None = typer.Option(None, help="LoRA rank  [default: 32]"),
    lora_alpha: float | None = typer.Option(None, help="LoRA alpha  [default: 64]"),
    lora_dropout: float | None = typer.Option(None, help="LoRA dropout  [default: 0.05]"),
    target: str | None = typer.Option(None, help="qv | attn | all-linear, or module names q_proj,v_proj,fc1,...  [default: qv]"),
    target_side: str | None = typer.Option(None, help="encoder | decoder | both  [default: both]"),
    batch_size: int | None = typer.Option(None, help="Utterances per device per micro-batch  [default: 8]"),
    grad_accum: int | None = typer.Option(None, help="Micro-batches per optimizer step  [default: 1]"),
    lr: float | None = typer.Option(None, help="Peak learning rate  [default: 1e-3 adapters, 1e-5 full]"),
    epochs: float | None = typer.Option(None, help="Passes over the data  [default: 3]"),
    max_steps: int | None = typer.Option(None, help="Optimizer steps (overrides --epochs)."),
    language: str | None = typer.Option(None, help="Whisper language code  [default: ko]"),
    seed: int | None = typer.Option(None, help="Seed  [default: 0]"),
    eval_every: int | None = typer.Option(None, help="Dev CER every N steps  [default: once an epoch]"),
    early_stopping: int | None = typer.Option(None, "--early-stopping", help="Stop after N evaluations without a better dev CER."),
    optimizer: str | None = typer.Option(None, help="adamw | adamw8bit | paged_adamw8bit | paged_adamw  [default: adamw]"),
    mixed_precision: str | None = typer.Option(None, help="auto | no | bf16 | fp16  [default: auto]"),
    gradient_checkpointing: bool | None = typer.Option(None, "--gradient-checkpointing/--no-gradient-checkpointing", help="Recompute activations in backward."),
    dynamic_length: bool | None = typer.Option(None, "--dynamic-length/--no-dynamic-length", help="Pad batches to their longest clip, not 30 s  [default: on]"),
    fit_gpu: str | None = typer.Option(None, "--fit-gpu", help="Set --batch-size to the largest `soritune plan` predicts fits this card (8GB, 24GB, a6000, ...)."),
    auto_batch: bool | None = typer.Option(None, "--auto-batch", help="On CUDA out-of-memory, halve micro-batches and retry."),
    resume: bool | None = typer.Option(None, "--resume", help="Continue the run in --out from its latest checkpoint."),
    overwrite: bool | None = typer.Option(None, "--overwrite", help="Start over in an --out that holds a run."),
    merge: bool | None = typer.Option(None, "--merge", help="Also write RUN_DIR/merged/ (adapter merged into the base)."),
    tensorboard: bool | None = typer.Option(None, "--tensorboard", help="Write TensorBoard logs to RUN_DIR/tb/."),
    threads: int | None = typer.Option(None, help="Torch CPU threads."),
    augment: str | None = typer.Option(None, help="Augment training batches (seeded, on the fly): comma list of NAME "
                                          "or NAME=P from speed, reverb, noise, telephone, specaugment (see above).  "
                                          "[default: off]"),
    list_presets: bool = typer.Option(False, "--list-presets", help="List the presets and exit."),
) -> None:
    """Fine-tune a Whisper model on a manifest and write RUN_DIR/adapter/ (PEFT; use with --adapter
    in transcribe/eval/serve) or RUN_DIR/model/ (full FT), metrics.jsonl and summary.json.

    Precedence: --preset < --config < flags < --set. The resolved config is RUN_DIR/config.yaml.
    `--resume` after a crash or kill continues exactly where the last checkpoint left off.
    Multi-GPU / multi-process: `accelerate launch --multi_gpu --num_processes N -m soritune.cli.train --model ...` (the same flags;
    --multi_gpu also gives several CPU processes, gloo).

    Augmentation (--augment, training batches only, never dev; deterministic for --seed and on resume):
    speed (0.9-1.1x), reverb (synthetic room, RT60 0.2-0.8 s), noise (white/pink/brown at SNR 10-30 dB,
    or clips of augment.noise_manifest), telephone (8 kHz, 300-3400 Hz, mu-law), specaugment (2 time
    masks up to 0.4 s, 2 frequency masks up to 27 mel bins). A bare NAME applies with probability 0.5,
    0.3, 0.5, 0.2, 1.0 respectively; ranges via --set, e.g. --set augment.noise_snr_db=[5,20].

    Example: soritune train -m bundled:whisper-base --train data/train.jsonl --dev data/dev.jsonl
    --out runs/lora --method lora --lora-r 32 --target qv --epochs 3

    Example (call-centre audio): soritune train -m bundled:whisper-base --train data/train.jsonl
    --out runs/phone --augment telephone=0.5,noise,specaugment
    """
    from soritune.cli.app import fail
    from soritune.data.augment import parse_switches
    from soritune.train.config import load_train_config
    from soritune.train.presets import describe_preset
    from soritune.train.presets import list_presets as names

    if list_presets:
        for name in names():
            out.print(f"[bold]{name}[/]  {describe_preset(name)}", highlight=False)
        return
    if resume and config is None and out_dir is not None and (out_dir / "config.yaml").exists():
        config = out_dir / "config.yaml"
    fields = _flags(model=model, train=str(train_manifest) if train_manifest else None, dev=str(dev) if dev else None,
                    out=str(out_dir) if out_dir else None, method=method, adapter=adapter,
                    quantization=quantization, lora_r=lora_r, lora_alpha=lora_alpha,
                    lora_dropout=lora_dropout, target=target, target_side=target_side, batch_size=batch_size,
                    grad_accum=grad_accum, lr=lr, epochs=epochs, max_steps=max_steps, language=language, seed=seed,
                    eval_every=eval_every, early_stopping_patience=early_stopping, optimizer=optimizer,
                    mixed_precision=mixed_precision, gradient_checkpointing=gradient_checkpointing,
                    dynamic_length=dynamic_length, fit_gpu=fit_gpu, auto_batch=auto_batch, resume=resume, overwrite=overwrite,
                    merge=merge, tensorboard=tensorboard, threads=threads)
    switches = parse_switches(augment) if augment else {}
    overrides = [f"augment.{k}={v}" for k, v in switches.items()] + list(set_ or [])
    cfg = load_train_config(config, overrides or None, preset, fields)
    result = _run_with_progress(cfg)
    if _is_main_process():
        _print_result(result)
    if result.status == "nan":
        fail(result.message, code=1)


def _is_main_process() -> bool:
    import os

    return int(os.environ.get("RANK", "0")) == 0


def _run_with_progress(cfg):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from soritune.plan.fit import run_fitted

    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), TextColumn("{task.fields[info]}"), console=console, transient=True) as bar:
        task = bar.add_task("loading", total=None, info="")

        def progress(ev: dict) -> None:
            if ev["event"] == "start":
                bar.update(task, description="training", total=ev["total_steps"], completed=ev["step"])
            elif ev["event"] == "step":
                bar.update(task, completed=ev["step"], info=f"loss {ev['loss']:.3f} lr {ev['lr']:.2e}")
            elif ev["event"] == "fit":
                console.print(ev["message"], highlight=False)
            elif ev["event"] == "eval" and ev.get("dev_cer") is not None:
                console.print(f"step {ev['step']}: dev CER {100 * ev['dev_cer']:.2f}%", highlight=False)

        return run_fitted(cfg, progress=progress)


def _print_result(r) -> None:
    from rich.table import Table

    t = Table(title=f"{r.run_dir}: {r.status} after {r.steps}/{r.total_steps} steps")
    t.add_column("")
    t.add_column("", justify="right")

    def pct(x):
        return "-" if x is None else f"{100 * x:.2f}%"

    rows = [("samples/s", f"{r.samples_per_s:.2f}"), ("train wall", f"{r.train_wall_s:.1f} s"),
            ("peak memory", f"{r.peak_mem_gb:.2f} GB"), ("final loss", "-" if r.final_loss is None else f"{r.final_loss:.4f}"),
            ("dev CER start", pct(r.initial_dev_cer)), ("dev CER best", f"{pct(r.best_dev_cer)} (step {r.best_step})"),
            ("trainable / total params", f"{r.trainable_params:,} / {r.total_params:,}"),
            ("train utterances (skipped)", f"{r.n_train} ({r.n_skipped})"), ("weights", f"{r.weights_dir} (step {r.exported_step})")]
    if r.merged_dir:
        rows.append(("merged", r.merged_dir))
    for k, v in rows:
        t.add_row(k, v)
    out.print(t)
    if r.message:
        console.print(r.message, highlight=False)


if __name__ == "__main__":  # `accelerate launch ... -m soritune.cli.train --model ...`
    import sys

    from soritune.cli import main

    main(["train", *sys.argv[1:]])
