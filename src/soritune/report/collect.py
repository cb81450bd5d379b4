"""Gather systems for a report from run dirs, eval dirs or a demo dir.

Every stage writes config.yaml + summary.json (soritune.rundir); the summary's `stage` says what it is:
- eval / score: the scores (+ utterances.tsv for error examples);
- train, lottery, distill, prune, export: training and size figures (+ eval/ and eval_everyday/
  inside, if present);
- a report dir (`soritune report`, the demo): report.json with `systems`, taken as they are;
- bench, curate, prepare, synth: not systems; refused with a line saying what the directory holds.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soritune.errors import SoritunError
from soritune.jsonio import read_json
from soritune.rundir import read_run

# Stages whose run describes data or a benchmark, not one system to compare (read the one way, by
# summary.json's stage, and refused with a line saying what the directory is).
NOT_SYSTEMS = {"bench": "bench.md holds its tables", "curate": "a curated manifest's counts",
               "prepare": "a corpus's manifests and counts", "synth": "a synthetic corpus"}
KEYS = ("cer", "cer_ci95", "wer", "cer_reading", "train_wall_s", "peak_mem_gb", "rtfx", "size_mb", "trainable_params")


@dataclass
class System:
    """One row of the comparison: the keys of report.json per system, plus where it came from."""

    name: str
    cer: float | None = None
    cer_ci95: list[float] | None = None
    wer: float | None = None
    cer_reading: float | None = None
    train_wall_s: float | None = None
    peak_mem_gb: float | None = None
    rtfx: float | None = None
    size_mb: float | None = None
    trainable_params: int | None = None
    cer_everyday: float | None = None
    n_utts: int | None = None
    sources: dict[str, str] = field(default_factory=dict)
    examples: list[dict] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def worst_utterances(utterances_tsv: Path, k: int = 3) -> list[dict]:
    """The k utterances with the most character errors (ties: longer reference first)."""
    if not utterances_tsv.exists():
        return []
    with utterances_tsv.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))

    def errors(r: dict) -> int:
        return sum(int(r.get(c) or 0) for c in ("sub", "del", "ins"))

    rows.sort(key=lambda r: (-errors(r), -int(r.get("n_ref_chars") or 0), r["id"]))
    return [{"id": r["id"], "ref": r["ref"], "hyp": r["hyp"], "cer": float(r["cer"]) if r.get("cer") else None,
             "errors": errors(r)} for r in rows[:k]]


def _eval_summary(path: Path) -> dict | None:
    """The scores of an eval/score dir, or None. report.json is normally a link to summary.json; a
    report.json that is a file of its own (an older soritune, or rewritten by hand) is what the user sees."""
    legacy = path / "report.json"
    if legacy.is_file() and not legacy.is_symlink():
        return read_json(legacy)
    run = read_run(path)
    return run.summary if run is not None and run.stage in ("eval", "score") else None


def from_eval_dir(path: Path, name: str | None = None) -> System:
    rep = _eval_summary(path) or {}
    model = rep.get("model") or {}
    timing = rep.get("timing") or {}
    sysm = System(
        name=name or path.name, cer=rep.get("cer"), cer_ci95=(rep.get("ci95") or {}).get("cer"), wer=rep.get("wer"),
        cer_reading=rep.get("cer_reading"), rtfx=timing.get("rtfx"), n_utts=rep.get("n_utts"),
        sources={"eval": str(path)}, examples=worst_utterances(path / "utterances.tsv"),
    )
    if model.get("params"):
        sysm.extra["params"] = model["params"]
    return sysm


def merge_run(sysm: System, run_dir: Path) -> System:
    """Fill training figures from RUN/summary.json (train, lottery, distill, ...)."""
    run = read_run(run_dir)
    summ = run.summary if run else {}
    sysm.train_wall_s = summ.get("train_wall_s")
    sysm.peak_mem_gb = summ.get("peak_mem_gb")
    sysm.trainable_params = summ.get("trainable_params", summ.get("student_params"))  # distill trains the student
    if run and run.stage:
        sysm.extra["stage"] = run.stage
    sysm.sources["run"] = str(run_dir)
    if sysm.size_mb is None:
        sysm.size_mb = artifact_size_mb(run_dir)
    return sysm


def artifact_size_mb(run_dir: Path) -> float | None:
    """Size of what a user ships from the run: adapter/, model/, student/ (distillation), merged/ or the
    directory itself (CTranslate2 export). MB = 10^6 bytes, as every `*_mb` figure in soritune."""
    for sub in ("adapter", "model", "student", "merged", "."):
        d = run_dir / sub
        files = [p for p in d.rglob("*") if p.is_file() and "checkpoint" not in p.parts] if d.is_dir() else []
        weights = [p for p in files if p.suffix in (".safetensors", ".bin", ".pt")]
        if weights:
            return round(sum(p.stat().st_size for p in weights) / 1e6, 3)
    return None


def collect(paths: list[str | Path]) -> list[System]:
    systems: list[System] = []
    for p in map(Path, paths):
        if not p.is_dir():
            raise SoritunError(f"report input {p}: not a directory (expected a run dir, an eval dir or a demo dir)")
        rep = read_json(p / "report.json") if (p / "report.json").is_file() else None
        run = read_run(p)
        if rep and isinstance(rep.get("systems"), dict):
            for name, values in rep["systems"].items():
                known = {k: values.get(k) for k in System.__dataclass_fields__ if k in values and k != "name"}
                systems.append(System(name=name, **known))
        elif run is not None and run.stage in NOT_SYSTEMS:
            raise SoritunError(f"report input {p}: a {run.stage} run ({NOT_SYSTEMS[run.stage]}), not a system to "
                               "compare; give train, eval, prune, distill or export run dirs")
        elif _eval_summary(p) is not None and "cer" in _eval_summary(p):
            systems.append(from_eval_dir(p))
        elif run is not None:
            ev = p / "eval"
            sysm = from_eval_dir(ev, name=p.name) if _eval_summary(ev) is not None else System(name=p.name)
            if _eval_summary(p / "eval_everyday") is not None:
                sysm.cer_everyday = _eval_summary(p / "eval_everyday").get("cer")
            systems.append(merge_run(sysm, p))
        else:
            raise SoritunError(f"report input {p}: no summary.json (a stage's run dir) or report.json (a report) there")
    return systems
