"""The synthetic lecture corpus verb. `prepare_synth` is registered as `soritune prepare synth` by the
`prepare` group (cli/data.py) and, here, as the top-level alias `soritune synth-corpus`."""

from __future__ import annotations

from pathlib import Path

import typer

from soritune.cli.app import app, out
from soritune.cli.options import config_options, merge_config
from soritune.cli.progress import progress_bar
from soritune.data.synth_corpus import SynthCorpusConfig


@config_options(SynthCorpusConfig, short={"out": "-o", "workers": "-w"})
def prepare_synth(
    fields: dict,
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
    from soritune.data.synth_corpus import build_synth_corpus

    config = merge_config(SynthCorpusConfig, config_path, overrides, fields)
    with progress_bar("synthesise", unit="utt", remaining=True, transient=False) as bar:
        result = build_synth_corpus(config, progress=bar.count)
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
