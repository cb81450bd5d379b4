"""One run-dir contract for every stage: OUT/config.yaml (the resolved config) + OUT/summary.json.

    write_run(out, config, result, stage="export")   # every stage ends with this
    run = read_run(out)                               # report/collect.py, the demo, users: run.stage, run.summary

summary.json is the stage's result object as JSON with a `stage` key (train, eval, score, export,
prune, lottery, distill, prepare, synth, sweep, bench, curate), so a reader never guesses the format from which
file exists. The names stages used before (export_report.json, prune_report.json, report.json, ...)
stay as relative symlinks to summary.json for readers outside soritune's code (the README and the
benchmark scripts cite them, users' scripts may read them); `legacy=` names them per stage.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from soritune.config import read_yaml, save_config
from soritune.jsonio import read_json, to_jsonable, write_json

CONFIG_FILE = "config.yaml"
SUMMARY_FILE = "summary.json"
STAGES = ("train", "eval", "score", "export", "prune", "lottery", "distill", "prepare", "synth", "sweep", "bench", "curate")


@dataclass
class Run:
    """What a stage left in its run dir."""

    path: Path
    stage: str | None  # None: a summary.json written before the contract (a train run of an older soritune)
    config: dict
    summary: dict


def write_run(out: str | Path, config: BaseModel | dict | None, summary: Any, *, stage: str,
              legacy: tuple[str, ...] = ()) -> Path:
    """Write OUT/config.yaml and OUT/summary.json ({"stage": stage, **result}); link `legacy` names to it."""
    if stage not in STAGES:
        raise ValueError(f"stage {stage!r}: not one of {', '.join(STAGES)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if config is not None:
        if isinstance(config, BaseModel):
            save_config(config, out / CONFIG_FILE)
        else:
            import yaml

            from soritune.jsonio import atomic_write_text

            atomic_write_text(out / CONFIG_FILE, yaml.safe_dump(to_jsonable(config), sort_keys=False,
                                                                allow_unicode=True))
    body = to_jsonable(summary)
    if not isinstance(body, dict):
        raise TypeError(f"summary of stage {stage}: expected an object, got {type(body).__name__}")
    path = write_json(out / SUMMARY_FILE, {"stage": stage, **body})
    for name in legacy:
        link(out / name, SUMMARY_FILE)
    return path


def link(path: Path, target: str) -> None:
    """`path` -> `target` (relative to path's folder) as a symlink, or a copy where symlinks fail."""
    if path.is_symlink() or path.exists():
        path.unlink()
    try:
        os.symlink(target, path)
    except OSError:  # a file system without symlinks: a copy
        path.write_bytes((path.parent / target).read_bytes())


def read_run(path: str | Path) -> Run | None:
    """The run in `path` (None when it holds no summary.json)."""
    path = Path(path)
    if not (path / SUMMARY_FILE).is_file():
        return None
    summary = read_json(path / SUMMARY_FILE)
    config = read_yaml(path / CONFIG_FILE) if (path / CONFIG_FILE).is_file() else {}
    stage = summary.get("stage") if isinstance(summary, dict) else None
    if stage is None and isinstance(summary, dict) and "steps" in summary and "run_dir" in summary:
        stage = "train"  # written by soritune train before summaries named their stage
    return Run(path, stage, config, summary if isinstance(summary, dict) else {})
