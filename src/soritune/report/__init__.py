"""Reports: `build_report(paths_or_systems, out)` writes report.json, report.md, report.html and plots/."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from soritune.report.collect import System, collect


@dataclass
class ReportResult:
    out: Path
    files: dict[str, str]
    n_systems: int


def build_report(inputs: list[str | Path] | list[System], out: str | Path, *, title: str = "soritune report",
                 notes: list[str] | None = None, extra: dict | None = None,
                 tables: dict[str, tuple[list[str], list[list[str]]]] | None = None) -> ReportResult:
    """report.{json,md,html} and plots for `inputs` (run/eval dirs or System rows); `tables`: further titled
    tables (header, rows) shown after the notes, e.g. the demo's hallucination suite."""
    from soritune.environment import environment
    from soritune.jsonio import atomic_write_text, write_json
    from soritune.report import plots as P
    from soritune.report.render import html_page, markdown, systems_json

    systems = inputs if inputs and isinstance(inputs[0], System) else collect(inputs)  # type: ignore[arg-type]
    out = Path(out)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    import torch

    env = environment("cuda" if torch.cuda.is_available() else "cpu", threads=torch.get_num_threads())
    made = {"cer": P.cer_bars(systems, out / "plots" / "cer.png"),
            "pareto": P.pareto(systems, out / "plots" / "pareto.png")}
    plots = {k: v for k, v in made.items() if v is not None}
    notes = list(notes or [])
    files = {
        "report.json": write_json(out / "report.json", {"title": title, "systems": systems_json(systems),
                                                        "notes": notes, "environment": env, **(extra or {})}),
        "report.md": atomic_write_text(out / "report.md", markdown(systems, env, plots, title, notes, tables)),
        "report.html": atomic_write_text(out / "report.html", html_page(systems, env, plots, title, notes, tables)),
    }
    files.update({f"plots/{p.name}": p for p in plots.values()})
    return ReportResult(out=out, files={k: str(v) for k, v in files.items()}, n_systems=len(systems))
