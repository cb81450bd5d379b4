"""`soritune report`: one comparison report for any set of runs and evals."""

from __future__ import annotations

from pathlib import Path

import typer

from soritune.cli.app import app, out


@app.command("report")
def report_cmd(
    inputs: list[Path] = typer.Argument(..., help="Run dirs (summary.json [+ eval/]), eval dirs (report.json) or demo dirs."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Where report.json, report.md, report.html and plots/ go."),
    title: str = typer.Option("soritune report", help="Report title."),
) -> None:
    """Compare systems: a table (CER with 95% CI, WER, reading-aware CER, training time and memory,
    RTFx, size), a CER-vs-memory-vs-speed Pareto plot, the worst utterances of each system aligned
    against the reference, and the environment. The HTML page is self-contained and phone-friendly.

    Example: soritune report runs/lora runs/qlora4 evals/zero-shot --out report/
    """
    from soritune.report import build_report

    res = build_report([str(p) for p in inputs], out_dir, title=title)
    out.print(f"{res.n_systems} systems -> {res.out}/report.html", highlight=False)
