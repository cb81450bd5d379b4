"""CLI verbs of the eval stage: `score`, `eval`, `compare` (registered on soritune.cli.app.app)."""

from __future__ import annotations

from pathlib import Path

import typer

from soritune.cli.app import app, console, out
from soritune.cli.options import ConfigOpt, SetOpt, config_options, merge_config
from soritune.cli.progress import progress_bar
from soritune.eval.evaluate import EvalConfig
from soritune.eval.scoring import ScoreConfig


def _print_summary(summary: dict, out_dir: Path) -> None:
    from rich.table import Table

    from soritune.eval.report_md import pct

    t = Table(title=f"{summary['n_utts']} utterances, {summary['n_ref_chars']} reference chars "
                    f"({summary['normalization']['name']} v{summary['normalization']['version']})")
    for col in ("metric", "%", "errors / denominator", "95% CI"):
        t.add_column(col, justify="right" if col != "metric" else "left")
    for m in ("cer", "cer_spaced", "wer", "swer", "cer_reading"):
        pm = summary["per_metric"][m]
        ci = summary["ci95"].get(m)
        t.add_row(m, pct(summary[m]), f"{pm['errors']} / {pm['n_ref']}",
                  f"[{pct(ci[0])}, {pct(ci[1])}]" if ci else "")
    out.print(t)
    h = summary["hallucination"]
    console.print(f"insertions {pct(h['insertion_rate'])}%, loops {h['n_loops']}, empty outputs "
                  f"{h['n_empty_outputs']}, max-token hits {h['n_hit_max_tokens']}; "
                  f"empty references {summary['n_empty_refs']}. Report: {out_dir}/report.md", highlight=False)


@app.command()
@config_options(ScoreConfig, exclude=("refs", "hyps"), short={"out": "-o"})
def score(
    fields: dict,
    refs: Path = typer.Argument(..., help="References: a manifest (JSONL: id, text, optional text_pron) or TSV id<TAB>text."),
    hyps: Path = typer.Argument(..., help="Hypotheses: JSONL {id, text}, TSV id<TAB>text, or an eval output dir."),
    config: Path | None = ConfigOpt,
    set_: list[str] | None = SetOpt,
) -> None:
    """Score any system's output against references, no model needed: CER (primary, spaces
    removed), CER with spaces, WER, sWER, reading-aware CER, S/D/I, 95% bootstrap intervals and
    hallucination indicators, under the versioned scoring normalisation. Ids must match exactly.

    Example: soritune score data/test.jsonl other_system.tsv --out scores/other
    """
    from soritune.eval.scoring import run_score
    from soritune.jsonio import read_json

    cfg = merge_config(ScoreConfig, config, set_, {"refs": refs, "hyps": hyps, **fields})
    with console.status("scoring"):
        run_score(cfg)
    _print_summary(read_json(cfg.out / "report.json"), cfg.out)


@app.command("eval")
@config_options(EvalConfig, short={"model": "-m", "out": "-o"})
def eval_(
    fields: dict,
    config: Path | None = typer.Option(None, "--config", help="YAML with EvalConfig fields; flags given override it."),
    set_: list[str] | None = typer.Option(None, "--set", help="key=value overrides of EvalConfig fields (applied last), "
                                          "nested ones too: --set decode.beam_size=5."),
    suite: str | None = typer.Option(None, "--suite", help="hallucination: instead of a manifest, run the fixed "
                                     "hallucination suite (silence, noise, hum, music, beeps, hold music, pauses)."),
) -> None:
    """Transcribe a manifest with a model (batched greedy decoding, language and task forced),
    then score it exactly as `soritune score` would, adding model identity, decoding settings and
    RTFx (audio seconds / model seconds). hypotheses.jsonl in the output re-scores with `score`.

    With --suite hallucination no manifest is needed: soritune generates fixed clips of non-speech and
    of Korean speech with long pauses, and reports characters written per minute of non-speech, loop
    rate, outputs on pure non-speech and speech missed, with 95% intervals, against the gate thresholds
    (change them with --set thresholds.loop_rate=0.2, or null to skip one).

    Example: soritune eval --model bundled:whisper-base --manifest data/test.jsonl --out eval/base --slice-by source

    Peer row from a recogniser soritune did not train (Vosk's Korean Kaldi model, `soritune[judge]`):
    soritune eval --backend vosk --model vosk:ko --manifest data/test.jsonl --out eval/vosk --slice-by speaker
    Example: soritune eval --suite hallucination --model bundled:whisper-base --backend ct2 --out eval/base-suite
    """
    from soritune.config import apply_overrides, read_yaml, validate
    from soritune.eval.evaluate import run_eval
    from soritune.jsonio import read_json

    data = read_yaml(config) if config else {}
    data.update(fields)
    if suite is not None:
        return _eval_suite(suite, apply_overrides(data, set_))
    cfg = validate(EvalConfig, apply_overrides(data, set_))
    with progress_bar(f"eval {cfg.model}") as bar:
        run_eval(cfg, progress=bar.count)
    summary = read_json(cfg.out / "report.json")
    _print_summary(summary, cfg.out)
    timing = summary["timing"]
    rtfx = timing["rtfx"]
    console.print(f"{timing['audio_s']:.1f} s of audio in {timing['model_wall_s']:.1f} s of model time "
                  f"(RTFx {rtfx:.1f})" if rtfx else "no audio transcribed", highlight=False)
    n_err = summary["inputs"]["n_audio_errors"]
    if n_err:
        console.print(f"[yellow]{n_err} utterances with unreadable audio left out; see {cfg.out}/errors.jsonl[/]",
                      highlight=False)


def _eval_suite(suite: str, data: dict) -> None:
    from rich.table import Table

    from soritune.cli.app import fail
    from soritune.config import validate
    from soritune.eval.hallucination import (
        SUITES,
        TABLE_HEADER,
        GateResult,
        HallucinationConfig,
        run_suite,
        table_rows,
    )

    if suite not in SUITES:
        fail(f"--suite must be one of {', '.join(SUITES)}, got {suite!r}")
    if data.get("manifest") is not None:
        fail("--manifest is not used with --suite: the suite generates its own clips")
    cfg = validate(HallucinationConfig, data)
    with progress_bar(f"{suite} suite: {cfg.model}") as bar:
        report = run_suite(cfg, progress=bar.count).to_json()
    table = Table(title=f"{suite} suite, {report['suite']['n_clips']} clips (95% intervals in brackets)")
    for col in TABLE_HEADER:
        table.add_column(col)
    for row in table_rows({cfg.model: report}):
        table.add_row(*row)
    out.print(table)
    failures = GateResult(**report["gate"]).failures()
    console.print(("[red]above the gate thresholds:[/] " + "; ".join(failures)) if failures else
                  "[green]within the gate thresholds[/]", highlight=False)
    console.print(f"Report: {cfg.out}/suite_report.md", highlight=False)


@app.command()
@config_options(ScoreConfig, include=("n_boot", "seed"))
def compare(
    fields: dict,
    report_a: Path = typer.Argument(..., help="Report A: an eval/score output dir or its report.json."),
    report_b: Path = typer.Argument(..., help="Report B: an eval/score output dir or its report.json."),
    out_dir: Path | None = typer.Option(None, "--out", "-o", help="Also write compare.json and compare.md here."),
    top: int = typer.Option(15, min=0, help="Utterances that changed most to list."),
) -> None:
    """Compare two systems on their shared utterances with a paired bootstrap: B - A for CER and
    WER with a 95% interval, the probability that B is better, and the utterances that changed most.

    Example: soritune compare eval/base eval/lora --out eval/base-vs-lora
    """
    from rich.table import Table

    from soritune.config import validate
    from soritune.eval.compare import run_compare, write_compare
    from soritune.eval.report_md import pct

    boot = validate(ScoreConfig, {"refs": report_a, "hyps": report_b, "out": ".", **fields})  # its bootstrap fields
    result = run_compare(report_a, report_b, n_boot=boot.n_boot, seed=boot.seed, top=max(top, 1))
    t = Table(title=f"B vs A on {result.n_shared} shared utterances "
                    f"({result.n_only_a} only in A, {result.n_only_b} only in B)")
    for col in ("metric", "A %", "B %", "B - A (pt)", "95% CI (pt)", "P(B better)"):
        t.add_column(col, justify="left" if col == "metric" else "right")
    for m, p in result.metrics.items():
        ci = f"[{100 * p['ci95'][0]:+.2f}, {100 * p['ci95'][1]:+.2f}]" if p["ci95"] else "n/a"
        t.add_row(m.upper(), pct(p["a"]), pct(p["b"]), f"{100 * p['diff']:+.2f}", ci, f"{p['p_b_better']:.3f}")
    out.print(t)
    if top and result.changed:
        c = Table(title="utterances that changed most (CER errors)")
        for col in ("id", "A", "B", "change", "reference", "hyp A", "hyp B"):
            c.add_column(col, overflow="fold")
        for row in result.changed[:top]:
            c.add_row(row["id"], str(row["a_errors"]), str(row["b_errors"]), f"{row['delta']:+d}",
                      row["ref"], row["hyp_a"], row["hyp_b"])
        out.print(c)
    if out_dir:
        write_compare(result, out_dir)
        console.print(f"wrote {out_dir}/compare.json and compare.md", highlight=False)
