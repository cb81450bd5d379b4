"""`soritune bench infer` and `soritune bench train`: speed and memory against named peers."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer

from soritune.bench.infer_bench import InferBenchConfig
from soritune.bench.train_bench import TrainBenchConfig
from soritune.cli.app import app, console, out
from soritune.cli.options import ConfigOpt, SetOpt, config_options, merge_config
from soritune.cli.progress import progress_bar

bench_app = typer.Typer(help="Benchmarks: transcription speed (vs faster-whisper, HF generate) and training "
                             "memory / throughput (vs the HF + PEFT int8 recipe). Writes OUT/summary.json (bench.json "
                             "links to it), config.yaml, bench.md, plots.",
                        no_args_is_help=True)
app.add_typer(bench_app, name="bench")


def _command() -> str:
    return "soritune " + " ".join(shlex.quote(a) for a in sys.argv[1:])


@bench_app.command("infer")
@config_options(InferBenchConfig, short={"model": "-m", "out": "-o"},
                rename={"backends": "--backend", "dtypes": "--dtype", "encoder_inputs": "--encoder-input"},
                csv=("backends", "dtypes", "attn", "encoder_inputs", "peers", "hf_dtypes", "batch_sizes"))
def infer(fields: dict, config: Path | None = ConfigOpt, set_: list[str] | None = SetOpt) -> None:
    """Time transcription: latency, TTFT, TPOT, tokens/s, RTFx and peak memory of soritune's backends
    next to faster-whisper (same CTranslate2 weights, greedy, no temperature fallback, no VAD, same
    token cap and threads) and Hugging Face generate (same weights), with ratio columns.

    Example: soritune bench infer --model bundled:whisper-base --synthetic 8 --backend all --batch-sizes 1 --out bench/cpu
    """
    import logging

    from soritune.bench.infer_bench import run

    # bitsandbytes logs one line per 8-bit matmul call on CPU ("inputs will be cast to float16")
    logging.getLogger("bitsandbytes.autograd._functions").setLevel(logging.ERROR)
    cfg = merge_config(InferBenchConfig, config, set_, fields)
    with progress_bar("benchmarking") as bar:
        def progress(ev: dict) -> None:
            bar.update(f"{ev['event']}: {ev.get('label', '')} b{ev.get('batch_size', '')}")
            if ev["event"] == "round":
                bar.advance()

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
@config_options(TrainBenchConfig, short={"model": "-m", "out": "-o", "batch_size": "-b"}, csv=("methods",))
def train(fields: dict, config: Path | None = ConfigOpt, set_: list[str] | None = SetOpt) -> None:
    """Measure peak memory and samples/s per training method with soritune's training loop, each
    method in a fresh process, next to the standard HF + PEFT int8 LoRA recipe.

    Example: soritune bench train --model random:large-v3 --methods full,lora,qlora8,qlora4 --batch-size 4 --seconds 30 --out bench/gpu
    """
    from soritune.bench.train_bench import run

    cfg = merge_config(TrainBenchConfig, config, set_, fields)
    with progress_bar("benchmarking") as bar:
        bar.update(total=len(cfg.methods) + int(cfg.recipe))

        def progress(ev: dict) -> None:
            bar.update(f"{ev['method']} ({ev['runner']})")
            bar.advance()

        result = run(cfg, progress=progress, command=_command())
    for r in result.rows:
        extra = "" if r.vs_recipe_samples_per_s is None else (
            f"  vs recipe: {r.vs_recipe_samples_per_s:.2f}x samples/s, {r.vs_recipe_memory or 0:.2f}x memory")
        out.print(f"{r.method:<20} {r.runner:<15} {r.samples_per_s or 0:8.3f} samples/s  peak {r.peak_mem_mb or 0:9.0f} MB "
                  f"({r.memory_kind}){extra}", highlight=False)
    for e in result.errors:
        console.print(f"[yellow]not measured[/] {e['method']}: {e['error']}", highlight=False)
    console.print(f"wrote {Path(cfg.out) / 'bench.json'} and bench.md ({result.wall_s:.0f} s)", highlight=False)
