"""The synthetic lecture corpus verb. `prepare_synth` is registered as `soritune prepare synth` by the
`prepare` group (cli/data.py) and, here, as the top-level alias `soritune synth-corpus`."""

from __future__ import annotations

from pathlib import Path

import typer

from soritune.cli.app import app, console, out


def prepare_synth(
    out_dir: Path = typer.Option(..., "--out", "-o", help="Output folder: {train,dev,test,everyday}.jsonl, audio/, synth_report.json."),
    n: int | None = typer.Option(None, "--n", help="Train utterances (default 400); dev/test/everyday default to 15%/25%/10% of it."),
    seed: int | None = typer.Option(None, "--seed", help="Seed for sentences and voices (default 0); same seed, same corpus."),
    n_dev: int | None = typer.Option(None, "--n-dev", help="Dev utterances (default 15% of --n)."),
    n_test: int | None = typer.Option(None, "--n-test", help="Test utterances, held-out templates and vocabulary (default 25% of --n)."),
    n_everyday: int | None = typer.Option(None, "--n-everyday", help="Everyday check-set utterances (default 10% of --n)."),
    backend: str | None = typer.Option(None, "--backend", help="Synthesis backend of the default voices: espeak "
                                       "(default; robotic, fast) or kokoro (natural, ~1x real time per core)."),
    workers: int | None = typer.Option(None, "--workers", "-w", help="Synthesis processes (default 1; the output does not depend on it)."),
    config_path: Path | None = typer.Option(None, "--config", "-c", help="YAML file of SynthCorpusConfig fields (flags override it)."),
    overrides: list[str] | None = typer.Option(None, "--set", help="Override a config field: --set rate_wpm=[150,190] (repeatable)."),
) -> None:
    """Build the synthetic Korean lecture-speech corpus (offline, deterministic for a seed).

    Engineering and maths lecture sentences (numbers, units, formulas, English terms) plus everyday speech.
    text: the written form (digits, symbols, Latin), e.g. f(x) = x^2 + 2x
    A share (prose_share, default 0.3) is real Korean technical prose from the LibreOffice help.
    text_pron: how it is read (Hangul), e.g. 에프 엑스 이퀄 엑스 제곱 더하기 이 엑스; this is what is spoken.
    Each utterance gets a seeded voice and delivery (espeak: rate, pitch; kokoro: style blend, speed).
    test uses templates, prose sentences and vocabulary never seen in train/dev; --set test_voices=[...]
    gives it held-out speakers.
    everyday.jsonl checks that fine-tuning does not forget ordinary Korean.
    synth_report.json has hours per split and the vocabulary overlap of test with train.
    Re-running the same command resumes (finished audio is reused), or returns at once when complete.

    Example: soritune prepare synth --out data/synth --n 400 --seed 0
    Example: soritune prepare synth --out data/kokoro --backend kokoro --workers 2 --set 'test_voices=["kokoro:jf_tebukuro"]' --set 'voices=["kokoro:jf_alpha","kokoro:jf_alpha+jm_kumo"]'
    """
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from soritune.config import load_config
    from soritune.data.synth_corpus import SynthCorpusConfig, build_synth_corpus

    config = load_config(
        SynthCorpusConfig, config_path, overrides, out=str(out_dir), n=n, seed=seed, n_dev=n_dev,
        n_test=n_test, n_everyday=n_everyday, workers=workers, backend=backend,
    )
    t0 = time.perf_counter()
    columns = (TextColumn("[bold]synthesise"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]:>6.1f} utt/s"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("synth", total=None, rate=0.0)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, rate=done / max(time.perf_counter() - t0, 1e-9))

        result = build_synth_corpus(config, progress=progress)
    _summary(result)


def _summary(result) -> None:
    from rich.table import Table

    table = Table(title=f"synthetic corpus -> {result.out_dir}", show_edge=False)
    for name, justify in (("split", "left"), ("utterances", "right"), ("hours", "right"),
                          ("word types in train", "right"), ("templates in train", "right")):
        table.add_column(name, justify=justify)
    for split, n in result.utterances.items():
        ov = result.vocab_overlap.get(split)
        share = f"{ov['text_type_share_in_train']:.0%}" if ov else "-"
        templates = f"{ov['templates_shared_with_train']}/{ov['templates']}" if ov else "-"
        table.add_row(split, f"{n:,}", f"{result.hours[split]:.3f}", share, templates)
    out.print(table)
    if result.skipped:
        how = "already complete (same config hash), nothing to do"
    else:
        how = f"{result.synthesized:,} synthesised, {result.reused:,} reused in {result.wall_s:.1f} s"
    out.print(f"{how}; report {result.report}", highlight=False, soft_wrap=True)


app.command("synth-corpus")(prepare_synth)
