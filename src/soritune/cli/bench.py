"""`soritune bench infer` and `soritune bench train`: speed and memory against named peers."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer

from soritune.cli.app import app, console, out

bench_app = typer.Typer(help="Benchmarks: transcription speed (vs faster-whisper, HF generate) and training "
                             "memory / throughput (vs the HF + PEFT int8 recipe). Writes bench.json, bench.md, plots.",
                        no_args_is_help=True)
app.add_typer(bench_app, name="bench")


def _csv(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def _ints(value: str, flag: str) -> list[int]:
    from soritune.cli.app import fail

    try:
        return [int(v) for v in _csv(value) or []]
    except ValueError:
        fail(f"{flag} expects comma-separated integers such as 1,4,8, got {value!r}")
        raise  # unreachable


def _command() -> str:
    return "soritune " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _progress_bar(total: int):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    bar = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), console=console, transient=True)
    return bar, bar.add_task("benchmarking", total=total)


@bench_app.command("infer")
def infer(
    model: str = typer.Option("bundled:whisper-base", "--model", "-m", help="Model spec (see `soritune --help`)."),
    adapter: Path | None = typer.Option(None, help="PEFT adapter directory merged into the model of every row (soritune, faster-whisper via the converted model, HF generate via peft)."),
    manifest: Path | None = typer.Option(None, help="Manifest of clips to decode (<= 30 s each)."),
    limit: int | None = typer.Option(None, min=1, help="Use the first N manifest rows."),
    synthetic: int | None = typer.Option(None, min=1, help="N synthetic Korean clips (default 8 without --manifest)."),
    backend: str = typer.Option("all", help="torch | ct2 | all (soritune backends; peers run regardless)."),
    dtype: str | None = typer.Option(None, help="Compute types, comma-separated (torch: float32,bfloat16,float16,int8; "
                                                   "ct2: float32,int8,float16,int8_float16). Default: CPU torch float32 + "
                                                   "ct2 float32,int8; GPU torch float32,bfloat16,float16 + ct2 float16,int8_float16."),
    attn: str = typer.Option("sdpa,eager", help="Attention kernels of torch and HF rows."),
    encoder_input: str = typer.Option("padded", help="soritune rows: padded (30-s input, as the peers), trimmed (each "
                                                      "batch's own length: for models fine-tuned by soritune), or both: padded,trimmed."),
    peers: str = typer.Option("faster-whisper,hf-generate", help="Peers to run in the same session ('' for none)."),
    batch_sizes: str = typer.Option("1,4,8", help="Batch sizes, comma-separated."),
    repeats: int = typer.Option(5, min=1, help="Measured rounds (median and min reported)."),
    warmup: int = typer.Option(1, min=0, help="Warm-up runs per system and batch size."),
    max_new_tokens: int = typer.Option(224, min=2, max=224, help="Token cap per clip, the same for every system."),
    threads: int | None = typer.Option(None, min=1, help="CPU threads for every system (default: all cores)."),
    device: str = typer.Option("auto", help="auto | cpu | cuda | cuda:N."),
    language: str = typer.Option("ko", help="Whisper language code (forced)."),
    out_dir: Path = typer.Option(Path("bench"), "--out", "-o", help="Output directory (bench.json, bench.md, PNG)."),
) -> None:
    """Time transcription: latency, TTFT, TPOT, tokens/s, RTFx and peak memory of soritune's backends
    next to faster-whisper (same CTranslate2 weights, greedy, no temperature fallback, no VAD, same
    token cap and threads) and Hugging Face generate (same weights), with ratio columns.

    Example: soritune bench infer --model bundled:whisper-base --synthetic 8 --backend all --batch-sizes 1 --out bench/cpu
    """
    import logging

    from soritune.bench.infer_bench import InferBenchConfig, run
    from soritune.config import validate

    # bitsandbytes logs one line per 8-bit matmul call on CPU ("inputs will be cast to float16")
    logging.getLogger("bitsandbytes.autograd._functions").setLevel(logging.ERROR)
    backends = ["torch", "ct2"] if backend == "all" else _csv(backend)
    cfg = validate(InferBenchConfig, {
        "model": model, "adapter": str(adapter) if adapter else None, "manifest": str(manifest) if manifest else None,
        "limit": limit, "synthetic": synthetic, "backends": backends, "dtypes": _csv(dtype), "attn": _csv(attn),
        "encoder_inputs": _csv(encoder_input), "peers": _csv(peers) or [], "batch_sizes": _ints(batch_sizes, "--batch-sizes"), "repeats": repeats,
        "warmup": warmup, "max_new_tokens": max_new_tokens, "threads": threads, "device": device,
        "language": language, "out": str(out_dir)})
    bar, task = _progress_bar(total=None)
    with bar:
        def progress(ev: dict) -> None:
            bar.update(task, description=f"{ev['event']}: {ev.get('label', '')} b{ev.get('batch_size', '')}")
            if ev["event"] == "round":
                bar.advance(task)

        result = run(cfg, progress=progress, command=_command())
    for r in sorted(result.rows, key=lambda r: (r.batch_size, -r.rtfx["median"])):
        ratios = "  ".join(f"{name} {v:.2f}x" for name, v in (("vs fw", r.vs_faster_whisper), ("vs HF", r.vs_hf_generate))
                           if v is not None)
        out.print(f"b{r.batch_size:<3} {r.label:<34} RTFx {r.rtfx['median']:8.2f}  TTFT {r.ttft_ms['median']:8.1f} ms  "
                  f"TPOT {r.tpot_ms['median'] or 0:7.2f} ms  {ratios}", highlight=False)
    for e in result.errors:
        console.print(f"[yellow]not measured[/] {e['label']} ({e['stage']}): {e['error']}", highlight=False)
    console.print(f"wrote {Path(cfg.out) / 'bench.json'} and bench.md ({result.wall_s:.0f} s)", highlight=False)


@bench_app.command("train")
def train(
    model: str = typer.Option("bundled:whisper-base", "--model", "-m", help="Model spec; random:ARCH for any architecture."),
    methods: str = typer.Option("full,lora,qlora8,qlora4", help="Methods, comma-separated: presets of soritune.train.methods (full, lora, dora, qlora8, qlora4)."),
    batch_size: int = typer.Option(4, "--batch-size", "-b", min=1, help="Utterances per step."),
    seconds: float = typer.Option(30.0, min=0.1, help="Timed window per method (ignored with --steps)."),
    steps: int | None = typer.Option(None, min=1, help="Timed steps per method (overrides --seconds)."),
    warmup_steps: int = typer.Option(1, min=0, help="Untimed steps first."),
    manifest: Path | None = typer.Option(None, help="Training clips (default: synthetic)."),
    synthetic: int | None = typer.Option(None, min=1, help="N synthetic clips (default 4 x batch size)."),
    recipe: bool = typer.Option(True, help="Add the HF Trainer + PEFT int8 LoRA recipe as a peer row."),
    device: str = typer.Option("auto", help="auto | cpu | cuda."),
    mixed_precision: str = typer.Option("auto", help="auto | no | bf16 | fp16 (as in soritune train)."),
    gradient_checkpointing: bool = typer.Option(False, help="Soritune rows recompute activations."),
    threads: int | None = typer.Option(None, min=1, help="torch CPU threads (default: all cores)."),
    out_dir: Path = typer.Option(Path("bench"), "--out", "-o", help="Output directory (bench.json, bench.md, PNG)."),
) -> None:
    """Measure peak memory and samples/s per training method with soritune's training loop, each
    method in a fresh process, next to the standard HF + PEFT int8 LoRA recipe.

    Example: soritune bench train --model random:large-v3 --methods full,lora,qlora8,qlora4 --batch-size 4 --seconds 30 --out bench/gpu
    """
    from soritune.bench.train_bench import TrainBenchConfig, run
    from soritune.config import validate

    cfg = validate(TrainBenchConfig, {
        "model": model, "methods": _csv(methods), "batch_size": batch_size, "seconds": seconds, "steps": steps,
        "warmup_steps": warmup_steps, "manifest": str(manifest) if manifest else None, "synthetic": synthetic,
        "recipe": recipe, "device": device, "mixed_precision": mixed_precision,
        "gradient_checkpointing": gradient_checkpointing, "threads": threads, "out": str(out_dir)})
    bar, task = _progress_bar(total=len(cfg.methods) + int(cfg.recipe))
    with bar:
        def progress(ev: dict) -> None:
            bar.update(task, description=f"{ev['method']} ({ev['runner']})")
            bar.advance(task)

        result = run(cfg, progress=progress, command=_command())
    for r in result.rows:
        extra = "" if r.vs_recipe_samples_per_s is None else (
            f"  vs recipe: {r.vs_recipe_samples_per_s:.2f}x samples/s, {r.vs_recipe_memory or 0:.2f}x memory")
        out.print(f"{r.method:<20} {r.runner:<15} {r.samples_per_s or 0:8.3f} samples/s  peak {r.peak_mem_mb or 0:9.0f} MB "
                  f"({r.memory_kind}){extra}", highlight=False)
    for e in result.errors:
        console.print(f"[yellow]not measured[/] {e['method']}: {e['error']}", highlight=False)
    console.print(f"wrote {Path(cfg.out) / 'bench.json'} and bench.md ({result.wall_s:.0f} s)", highlight=False)
