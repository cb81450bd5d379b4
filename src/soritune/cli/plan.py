"""`soritune plan`: predict the peak GPU memory of a training setup on a CPU; fit it to a card; sweep."""

from __future__ import annotations

from pathlib import Path

import typer

from soritune.cli.app import app, console, out
from soritune.cli.options import ConfigOpt, SetOpt, config_options, merge_config
from soritune.plan.config import PlanConfig


def _csv(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


@app.command()
@config_options(PlanConfig, short={"model": "-m", "batch_size": "-b"})
def plan(
    fields: dict,
    gpu: str | None = typer.Option(None, help="Find the largest batch that fits this card (instead of --batch-size): "
                                   "8GB, 12GB, 24GB, rtx3090, a6000, h100, ..."),
    max_batch: int = typer.Option(256, help="Largest batch size --gpu considers."),
    sweep: bool = typer.Option(False, "--sweep", help="Plan every --methods x --batch-sizes; table + plot in --out."),
    methods: str = typer.Option("full,lora,qlora8,qlora4", help="Methods for --sweep (comma-separated)."),
    batch_sizes: str = typer.Option("1,2,4,8,16", help="Batch sizes for --sweep (comma-separated)."),
    out_dir: Path | None = typer.Option(None, "--out", "-o", help="Directory for plan.json (and sweep.png)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
    threads: int = typer.Option(2, help="Torch CPU threads for the trace."),
    config: Path | None = ConfigOpt,
    set_: list[str] | None = SetOpt,
) -> None:
    """Predict the peak GPU memory of a `soritune train` setup without a GPU: two real training steps
    of soritune's train code run on fake tensors (no memory), live tensors counted by category
    (weights, gradients, optimizer, activations, temporaries), plus stated CUDA overheads.

    Example: soritune plan -m random:large-v3 --method qlora4 --batch-size 8

    Example: soritune plan -m random:large-v3 --method lora --gpu 24GB --json

    Example: soritune plan -m random:small --sweep --batch-sizes 1,8,16 --out runs/plan-small
    """
    import torch

    from soritune.jsonio import to_jsonable, write_json
    from soritune.plan.fit import fit_batch, plot_sweep
    from soritune.plan.fit import sweep as run_sweep
    from soritune.plan.planner import plan as run_plan

    torch.set_num_threads(threads)
    if gpu and "batch_size" in fields:
        from soritune.cli.app import fail

        fail("give --gpu (search the batch size) or --batch-size, not both")
    cfg = merge_config(PlanConfig, config, set_, fields)
    say = (lambda msg: console.print(f"tracing {msg} ...", highlight=False)) if not json_out else None
    if sweep:
        rows = run_sweep(cfg, [int(b) for b in _csv(batch_sizes)], _csv(methods), progress=say)
        payload = {"rows": [r.to_dict() for r in rows]}
        if out_dir:
            out_dir.mkdir(parents=True, exist_ok=True)
            write_json(out_dir / "sweep.json", payload)
            plot_sweep(rows, out_dir / "sweep.png")
        if json_out:
            out.print_json(data=to_jsonable(payload))
        else:
            _sweep_table(rows)
        return
    if gpu:
        fit = fit_batch(cfg, gpu, max_batch=max_batch, progress=say)
        payload = _fit_payload(fit)
    else:
        payload = run_plan(cfg).to_dict()
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_json(out_dir / "plan.json", payload)
    if json_out:
        import json

        print(json.dumps(to_jsonable(payload)))
    else:
        _table(payload)


def _fit_payload(fit) -> dict:
    base = fit.plan.to_dict() if fit.plan else {"peak_gb": None, "breakdown": {}, "assumptions": []}
    base.update(batch_size=fit.batch_size, gpu=fit.gpu, gpu_gb=fit.gpu_gb, fits=fit.fits,
                gradient_checkpointing=fit.gradient_checkpointing,
                gradient_checkpointing_needed=fit.gradient_checkpointing_needed,
                next_batch_peak_gb=fit.next_peak_gb, traced_batches=fit.traced)
    return base


def _table(p: dict) -> None:
    from rich.table import Table

    title = f"{p.get('model')} {p.get('method')} {p.get('precision')} batch {p.get('batch_size')}"
    if "gpu" in p:
        title += (f" (largest that fits {p['gpu']} = {p['gpu_gb']:g} GB"
                  f"{', with gradient checkpointing' if p['gradient_checkpointing'] else ''})" if p["fits"]
                  else f": nothing fits {p['gpu']} ({p['gpu_gb']:g} GB), even batch 1 with gradient checkpointing")
    t = Table(title=title)
    t.add_column("")
    t.add_column("GB", justify="right")
    for k, v in p["breakdown"].items():
        t.add_row(k, f"{v:.3f}")
    if p.get("peak_gb") is not None:
        t.add_row("[bold]peak[/]", f"[bold]{p['peak_gb']:.2f}[/]")
        at = p["peak_at"]
        t.add_row("peak at", f"{at['phase']}: {at['op']} {at['module']}".strip())
        t.add_row("trace time", f"{p['trace_wall_s']:.1f} s")
    out.print(t)
    for a in p["assumptions"]:
        console.print(f"- {a}", highlight=False)


def _sweep_table(rows) -> None:
    from rich.table import Table

    batches = sorted({r.batch_size for r in rows})
    t = Table(title=f"{rows[0].model} {rows[0].precision}: predicted peak GB")
    t.add_column("method")
    for b in batches:
        t.add_column(f"batch {b}", justify="right")
    for method in dict.fromkeys(r.method for r in rows):
        got = {r.batch_size: r.peak_gb for r in rows if r.method == method}
        t.add_row(method, *[f"{got[b]:.2f}" if b in got else "-" for b in batches])
    out.print(t)
