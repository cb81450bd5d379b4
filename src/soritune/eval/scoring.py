"""The `score` stage: score any system's output against references, no model needed.

    from soritune.eval import ScoreConfig, run_score
    report = run_score(ScoreConfig(refs="test.jsonl", hyps="hyps.jsonl", out="scores/"))
    report.rate("cer")

Writes out/report.json, out/report.md, out/utterances.tsv and out/config.yaml.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from pydantic import Field

from soritune.config import StageConfig
from soritune.errors import NothingScoredError
from soritune.eval.bootstrap import DEFAULT_N_BOOT, DEFAULT_SEED
from soritune.eval.score import ScoreReport, score_texts, slice_metrics


class ScoreConfig(StageConfig):
    """Inputs and options of `soritune score`."""

    refs: Path = Field(description="references: a manifest (JSONL) or a TSV id<TAB>text")
    hyps: Path = Field(description="hypotheses: JSONL {id, text}, TSV id<TAB>text, or an eval output dir")
    out: Path = Field(description="output directory for report.json, report.md, utterances.tsv")
    slice_by: list[str] = Field(default_factory=list,
                                description="reference fields to slice metrics by (e.g. source, duration_bucket)")
    n_boot: int = Field(DEFAULT_N_BOOT, ge=10, description="bootstrap resamples for the 95% intervals")
    seed: int = Field(DEFAULT_SEED, description="bootstrap seed (fixed: reports are reproducible)")


def check_slice_fields(refs: list[Mapping[str, Any]], fields: list[str]) -> None:
    """A slice field must exist in at least one reference row (duration_bucket needs duration)."""
    from soritune.errors import ConfigError

    for f in fields:
        key = "duration" if f == "duration_bucket" else f
        if not any(key in r for r in refs):
            known = sorted({k for r in refs[:100] for k in r} | {"duration_bucket"})
            raise ConfigError(f"slice_by: no reference has the field {key!r} (fields seen: {', '.join(known)})")


def finish_report(report: ScoreReport, refs: list[Mapping[str, Any]], out: Path, config: StageConfig,
                  slice_by: list[str], title: str, failure: str | None = None) -> ScoreReport:
    """Add slices, write the report directory and the resolved config. Shared by score and eval.

    With no utterance scored, or a `failure` (e.g. too much unreadable audio), the report is written
    with that reason under "error" and NothingScoredError / ScoreFailedError is raised after it."""
    from soritune.eval.io import write_report_dir

    if not report.utterances and failure is None:
        failure = "no utterance was scored: the references are empty"
    if failure:
        report.extra["error"] = failure
    if slice_by:
        report.extra["slices"] = slice_metrics(report, refs, slice_by)
    out.mkdir(parents=True, exist_ok=True)
    write_report_dir(out, report, title=title, config=config, stage="score" if isinstance(config, ScoreConfig) else "eval")
    if failure:
        raise NothingScoredError(f"{failure} (report: {out / 'report.json'})")
    return report


def run_score(config: ScoreConfig) -> ScoreReport:
    """Read references and hypotheses, score them (score_texts) and write the report directory."""
    from soritune.eval.io import read_hyps, read_refs

    refs = read_refs(config.refs)
    check_slice_fields(refs, config.slice_by)
    hyps, meta = read_hyps(config.hyps)
    report = score_texts(refs, hyps, hyp_meta=meta, n_boot=config.n_boot, seed=config.seed)
    report.extra["inputs"] = {"refs": str(config.refs), "hyps": str(config.hyps)}
    return finish_report(report, refs, Path(config.out), config, config.slice_by, title="soritune score")
