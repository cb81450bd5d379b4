"""`soritune demo`: the whole toolkit end to end, offline, on a CPU."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from soritune.cli.app import app, console, out
from soritune.cli.options import ConfigOpt, SetOpt, config_options, merge_config
from soritune.demo import DemoConfig

# Rough seconds per step on 2 idle CPU cores (measured runs), for the time estimates shown live.
ESTIMATE_S = {
    "quick": {"data": 40, "zero-shot": 15, "lora": 25, "qlora4": 40, "ct2-int8": 10, "report": 5},
    "default": {"data": 300, "zero-shot": 90, "lora": 240, "qlora4": 260, "ct2-int8": 15, "report": 8,
                "lottery-50": 330, "distill-2l": 400},
}
EVAL_S = {"quick": 10, "default": 45}


def _estimate(profile: str, name: str) -> float:
    table = ESTIMATE_S["quick" if profile == "quick" else "default"]
    return table.get(name, EVAL_S["quick" if profile == "quick" else "default"])


STEPS = ["data", "zero-shot", "lora", "eval-lora", "qlora4", "eval-qlora4", "ct2-int8", "eval-ct2-int8", "report"]
FULL_STEPS = ["lottery-50", "eval-lottery-50", "distill-2l", "eval-distill-2l"]


@app.command("demo")
@config_options(DemoConfig, short={"out": "-o"})
def demo_cmd(
    fields: dict,
    quick: bool = typer.Option(False, "--quick", help="Smoke run: a tiny corpus and a few steps (= --profile quick)."),
    full: bool = typer.Option(False, "--full", help="Also the Vosk judge, lottery-ticket pruning at 50%, a 2-decoder-layer "
                              "student and the speech-LLM demo, drafted by the int8 export (= --profile full)."),
    fresh: bool = typer.Option(False, "--fresh", help="Delete OUT first instead of resuming it."),
    config: Path | None = ConfigOpt,
    set_: list[str] | None = SetOpt,
) -> None:
    """Run soritune end to end on a CPU, offline: synthesise a Korean lecture-speech corpus (Kokoro and
    espeak-ng voices; templates and real technical prose), evaluate the bundled whisper-base zero-shot,
    fine-tune it with LoRA and QLoRA-4bit, export the best to CTranslate2 int8, and evaluate each on a
    held-out Kokoro voice and a held-out espeak voice (lecture and everyday sentences, 95% intervals);
    write DIR/report.html.

    Finished steps are skipped when you re-run (delete DIR or pass --fresh to start over).

    Example: soritune demo --out demo_out && open demo_out/report.html
    """
    import shutil

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from soritune.cli.app import fail
    from soritune.demo import run

    if quick and full:
        fail("--quick and --full exclude each other")
    if quick or full:
        if fields.get("profile") not in (None, "quick" if quick else "full"):
            fail(f"--{'quick' if quick else 'full'} contradicts --profile {fields['profile']}")
        fields["profile"] = "quick" if quick else "full"
    cfg = merge_config(DemoConfig, config, set_, fields)
    profile, out_dir, full = cfg.profile, cfg.out, cfg.profile == "full"
    if fresh and out_dir.exists():
        shutil.rmtree(out_dir)
    steps = STEPS[:-1] + (FULL_STEPS if full else []) + STEPS[-1:]
    remaining = {s: _estimate(profile, s) for s in steps}
    t_start = time.perf_counter()
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[eta]}"), console=console) as bar:
        overall = bar.add_task("soritune demo", total=len(steps), eta="")
        current: dict = {}

        def on_event(name: str, event: str, info: dict) -> None:
            if event in ("start", "skip"):
                eta = sum(remaining.values())
                bar.update(overall, eta=f"~{eta / 60:.0f} min left" if eta >= 60 else f"~{eta:.0f} s left")
            if event == "start":
                current[name] = bar.add_task(f"  {name}", total=None, eta=f"est. {_estimate(profile, name):.0f} s")
            elif event == "progress" and name in current:
                bar.update(current[name], completed=info["done"], total=info["total"])
            elif event in ("done", "skip"):
                remaining.pop(name, None)
                if name in current:
                    bar.update(current[name], eta=f"{info.get('wall_s', 0):.0f} s")
                    bar.stop_task(current[name])
                else:
                    bar.add_task(f"  {name} (done before)", total=1, completed=1, eta="skipped")
                bar.advance(overall)

        result = run(cfg, on_event=on_event)
    from rich.table import Table

    rep = __import__("soritune.jsonio", fromlist=["read_json"]).read_json(out_dir / "report.json")
    table = Table(title="soritune demo", title_justify="left")
    for col in ("system · test voice", "CER %", "95% CI", "everyday CER %", "RTFx", "train s", "peak GB"):
        table.add_column(col, justify="left" if col.startswith("system") else "right")
    for name, s in rep["systems"].items():
        ci = s.get("cer_ci95")
        table.add_row(name, _pct(s.get("cer")), f"{100 * ci[0]:.1f}-{100 * ci[1]:.1f}" if ci else "-",
                      _pct(s.get("cer_everyday")), _num(s.get("rtfx")), _num(s.get("train_wall_s"), 0),
                      _num(s.get("peak_mem_gb")))
    out.print(table)
    out.print(f"report: {out_dir / 'report.html'}  ({time.perf_counter() - t_start:.0f} s)", highlight=False)
    del result


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def _num(v, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"
