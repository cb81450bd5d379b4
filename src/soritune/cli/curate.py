"""Curation and export verbs: `soritune curate`, `soritune export-data`."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from soritune.cli.app import app, console, out

ConfigOpt = typer.Option(None, "--config", "-c", help="YAML file of config fields (flags override it).")
SetOpt = typer.Option(None, "--set", help="Override a config field: --set seed=3 (repeatable).")


def _progress_bar(label: str):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn(f"[bold]{label}" + " {task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]:>8.0f} rows/s"), TimeElapsedColumn())
    return Progress(*columns, console=console, transient=True)


@app.command("curate")
def curate_cmd(
    manifest: Path = typer.Argument(..., help="Input manifest (JSONL)."),
    out_file: Path = typer.Option(..., "--out", "-o", help="Output manifest; <stem>.curate_report.json goes beside it."),
    min_duration: float | None = typer.Option(None, "--min-duration", "--min-duration-s", help="Drop rows shorter than this (s)."),
    max_duration: float | None = typer.Option(None, "--max-duration", "--max-duration-s", help="Drop rows longer than this (s)."),
    require: list[str] | None = typer.Option(None, "--require", help="Regex the text must contain (repeatable: all must match)."),
    exclude: list[str] | None = typer.Option(None, "--exclude", help="Regex that drops a text containing it (repeatable)."),
    where: list[str] | None = typer.Option(None, "--where", help="field=value or field!=value (repeatable: all must hold; a.b reaches nested keys; numbers and true/false compare as JSON)."),
    trim_percentile: float | None = typer.Option(None, "--trim-percentile", help="Drop this % shortest and this % longest rows."),
    sample: int | None = typer.Option(None, "--sample", help="Keep at most N rows (see --stratify)."),
    stratify: str | None = typer.Option(None, "--stratify", help="text-length (default: proportional from text-length deciles) or none."),
    dedupe: bool = typer.Option(False, "--dedupe", help="Drop exact text+audio duplicates and same-audio duplicates (first kept)."),
    dedupe_content: bool = typer.Option(False, "--dedupe-content", help="With --dedupe: also files with identical bytes under other names (reads the files)."),
    speaker_split: str | None = typer.Option(None, "--speaker-split", help="Ratios like 8:1:1 (or 9:1): write <stem>_train/_dev/_test, no speaker in two."),
    replay: Path | None = typer.Option(None, "--replay", help="Another manifest to mix in (rows marked replay: true)."),
    replay_fraction: float | None = typer.Option(None, "--replay-fraction", help="Add round(fraction * kept) replay rows (default 0.1)."),
    seed: int | None = typer.Option(None, "--seed", help="Seed for sampling, splits and replay (default 0)."),
    dropped: Path | None = typer.Option(None, "--dropped", help="Also write the dropped rows, each with a `reason`."),
    config_path: Path | None = ConfigOpt,
    overrides: list[str] | None = SetOpt,
) -> None:
    """Filter, dedupe, trim, sample and split a manifest; every input row is counted in the report.

    A dropped row is counted under the first rule that drops it: duplicate id, duration, regex, field, dedupe, percentile trim, sampling (the counts add up to the input). Kept rows can then be split by speaker.

    Relative audio paths stay valid from the output's folder. Same seed, same output.

    Example (formula-speech subset, 20k utterances, speaker-disjoint 8:1:1, 10% replay of general speech):

      soritune curate train.jsonl --out formula.jsonl --require '[0-9A-Za-z]' --dedupe --sample 20000 --speaker-split 8:1:1 --replay general.jsonl --replay-fraction 0.1
    """
    from soritune.config import load_config
    from soritune.data.curate import CurateConfig, curate

    config = load_config(
        CurateConfig, config_path, overrides, manifest=str(manifest), out=str(out_file),
        min_duration_s=min_duration, max_duration_s=max_duration, require=require or None, exclude=exclude or None,
        where=where or None, trim_percentile=trim_percentile, sample=sample, stratify=stratify,
        dedupe=dedupe or None, dedupe_content=dedupe_content or None, speaker_split=speaker_split, replay=str(replay) if replay else None,
        replay_fraction=replay_fraction, seed=seed, dropped=str(dropped) if dropped else None,
    )
    t0 = time.perf_counter()
    with _progress_bar("curate") as bar:
        task = bar.add_task("reading", total=None, rate=0.0)

        def progress(phase: str, done: int) -> None:
            bar.update(task, description=phase, completed=done, rate=done / max(time.perf_counter() - t0, 1e-9))

        result = curate(config, progress=progress)
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
def export_data_cmd(
    manifest: Path = typer.Argument(..., help="Input manifest (JSONL)."),
    to: str = typer.Option(..., "--to", help="hf (datasets save_to_disk folder) or parquet (Parquet shards)."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Output folder; OUT.export_report.json goes beside it."),
    shard_size: int | None = typer.Option(None, "--shard-size", help="Rows per shard (default 10000)."),
    with_audio: bool = typer.Option(False, "--with-audio", help="Embed the audio instead of its path."),
    audio_format: str | None = typer.Option(None, "--audio-format", help="feature (default: 16 kHz WAV as datasets Audio) or bytes (raw file)."),
    batch_rows: int | None = typer.Option(None, "--batch-rows", help="Rows held in memory between writes (default 256)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier export in --out."),
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
    from soritune.config import load_config
    from soritune.data.export import ExportConfig, export

    config = load_config(
        ExportConfig, config_path, overrides, manifest=str(manifest), out=str(out_dir), to=to,
        shard_size=shard_size, with_audio=with_audio or None, audio_format=audio_format,
        batch_rows=batch_rows, overwrite=overwrite or None,
    )
    t0 = time.perf_counter()
    with _progress_bar("export") as bar:
        task = bar.add_task("rows", total=None, rate=0.0)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, rate=done / max(time.perf_counter() - t0, 1e-9))

        result = export(config, progress=progress)
    elapsed = time.perf_counter() - t0
    out.print(f"exported {result.exported_rows:,} of {result.input_rows:,} rows to {result.out} "
              f"({len(result.shards)} {result.to} shards) in {elapsed:.1f} s", highlight=False, soft_wrap=True)
    if result.errors:
        reasons = ", ".join(f"{r} {n:,}" for r, n in result.errors.items())
        out.print(f"not exported: {reasons} -> {result.errors_file}", highlight=False, soft_wrap=True)
    out.print(f"report {result.report}", highlight=False)
