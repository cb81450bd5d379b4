"""`soritune train`: fine-tune Whisper on a manifest (LoRA / DoRA / QLoRA / full)."""

from __future__ import annotations

from pathlib import Path

import typer

from soritune.cli.app import app, console, out
from soritune.cli.options import config_options
from soritune.cli.progress import progress_bar
from soritune.train.config import TrainConfig


@app.command()
@config_options(TrainConfig, short={"model": "-m", "out": "-o"}, rename={"early_stopping_patience": "--early-stopping"})
def train(
    fields: dict,
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML config file with the same fields (flags override it)."),
    preset: str | None = typer.Option(None, help="Named preset (see --list-presets), e.g. paper-lecture-8bit."),
    set_: list[str] | None = typer.Option(None, "--set", help="Override any field: --set key=value (repeatable)."),
    augment: str | None = typer.Option(None, help="Augment training batches (seeded, on the fly): comma list of NAME "
                                          "or NAME=P from speed, reverb, noise, telephone, specaugment (see above).  "
                                          "\\[default: off]"),
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
    out_dir = Path(fields["out"]) if fields.get("out") else None
    if fields.get("resume") and config is None and out_dir is not None and (out_dir / "config.yaml").exists():
        config = out_dir / "config.yaml"
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
    from soritune.plan.fit import run_fitted

    with progress_bar("loading", remaining=True) as bar:
        def progress(ev: dict) -> None:
            if ev["event"] == "start":
                bar.update("training", total=ev["total_steps"], completed=ev["step"])
            elif ev["event"] == "step":
                bar.update(info=f"loss {ev['loss']:.3f} lr {ev['lr']:.2e}", completed=ev["step"])
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
