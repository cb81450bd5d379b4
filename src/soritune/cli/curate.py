"""Curation and export verbs: `soritune curate`, `soritune export-data`."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from soritune.cli.app import app, out
from soritune.cli.options import ConfigOpt, SetOpt, config_options, merge_config
from soritune.cli.progress import progress_bar
from soritune.data.curate import CurateConfig
from soritune.data.export import ExportConfig


@app.command("curate")
@config_options(CurateConfig, exclude=("manifest",), short={"out": "-o"},
                rename={"min_duration_s": ("--min-duration", "--min-duration-s"),
                        "max_duration_s": ("--max-duration", "--max-duration-s")})
def curate_cmd(
    fields: dict,
    manifest: Path = typer.Argument(..., help="Input manifest (JSONL)."),
    config_path: Path | None = ConfigOpt,
    overrides: list[str] | None = SetOpt,
) -> None:
    """Filter, dedupe, trim, sample and split a manifest; every input row is counted in the report.

    A dropped row is counted under the first rule that drops it: duplicate id, duration, regex, field, dedupe, percentile trim, sampling (the counts add up to the input). Kept rows can then be split by speaker.

    Relative audio paths stay valid from the output's folder. Same seed, same output.

    Example (formula-speech subset, 20k utterances, speaker-disjoint 8:1:1, 10% replay of general speech):

      soritune curate train.jsonl --out formula.jsonl --require '[0-9A-Za-z]' --dedupe --sample 20000 --speaker-split 8:1:1 --replay general.jsonl --replay-fraction 0.1
    """
    from soritune.data.curate import curate

    config = merge_config(CurateConfig, config_path, overrides, {"manifest": manifest, **fields})
    t0 = time.perf_counter()
    with progress_bar("curate: reading", unit="rows") as bar:
        result = curate(config, progress=lambda phase, done: (bar.update(f"curate: {phase}"), bar.count(done)))
    _curate_summary(result, time.perf_counter() - t0)


def _curate_summary(result, elapsed_s: float) -> None:
    from rich.table import Table

    table = Table(title=f"{result.input_rows:,} rows -> {result.output}", show_edge=False)
    table.add_column("rule")
    table.add_column("rows", justify="right")
    for key, n in result.counts.items():
        if n or key == "kept":
            table.add_row(key, f"{n:,}")
    out.print(table)
    if result.replay:
        r = result.replay
        short = f" (only {r['pool']:,} eligible)" if r["added"] < r["requested"] else ""
        out.print(f"replay: added {r['added']:,} of {r['requested']:,} rows from {r['path']}{short}", highlight=False)
    for name, info in result.splits.items():
        out.print(f"{name}: {info['rows']:,} rows, {info['speakers']:,} speakers, "
                  f"{info['duration_s'] / 3600:.2f} h -> {info['path']}", highlight=False, soft_wrap=True)
    extra = f"; dropped rows {result.dropped}" if result.dropped else ""
    out.print(f"kept {result.counts['kept']:,} rows ({result.kept_duration_s / 3600:.2f} h) in {elapsed_s:.1f} s; "
              f"report {result.report}{extra}", highlight=False, soft_wrap=True)


@app.command("export-data")
@config_options(ExportConfig, exclude=("manifest",), short={"out": "-o"})
def export_data_cmd(
    fields: dict,
    manifest: Path = typer.Argument(..., help="Input manifest (JSONL)."),
    config_path: Path | None = ConfigOpt,
    overrides: list[str] | None = SetOpt,
) -> None:
    """Export a manifest to a Hugging Face datasets folder or Parquet shards, streamed (bounded memory).

    Without --with-audio the `audio` column holds absolute paths; with it, datasets' Audio feature (16 kHz WAV, segments cut) or the raw file bytes (--audio-format bytes).

    Rows whose audio cannot be read are listed with a reason in OUT.export_errors.jsonl; OUT.export_report.json counts them.

    Examples:

      soritune export-data formula_train.jsonl --to parquet --out exports/formula --with-audio --shard-size 5000

      soritune export-data formula_train.jsonl --to hf --out exports/formula_hf   (then datasets.load_from_disk)
    """
    from soritune.data.export import export

    config = merge_config(ExportConfig, config_path, overrides, {"manifest": manifest, **fields})
    t0 = time.perf_counter()
    with progress_bar("export", unit="rows") as bar:
        result = export(config, progress=bar.count)
    elapsed = time.perf_counter() - t0
    out.print(f"exported {result.exported_rows:,} of {result.input_rows:,} rows to {result.out} "
              f"({len(result.shards)} {result.to} shards) in {elapsed:.1f} s", highlight=False, soft_wrap=True)
    if result.errors:
        reasons = ", ".join(f"{r} {n:,}" for r, n in result.errors.items())
        out.print(f"not exported: {reasons} -> {result.errors_file}", highlight=False, soft_wrap=True)
    out.print(f"report {result.report}", highlight=False)
