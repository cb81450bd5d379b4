"""The run-dir contract: every stage writes config.yaml + summary.json through soritune.rundir.write_run."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from pydantic import Field

from soritune.config import StageConfig
from soritune.rundir import STAGES, read_run, write_run

SRC = Path(__file__).resolve().parents[1] / "src" / "soritune"


class _Cfg(StageConfig):
    model: str = Field("tiny:", description="x")
    n: int = Field(3, description="y")


def test_write_run_writes_config_summary_and_legacy_links(tmp_path):
    write_run(tmp_path, _Cfg(n=5), {"cer": 0.25, "path": Path("/a")}, stage="export", legacy=("export_report.json",))
    run = read_run(tmp_path)
    assert run.stage == "export" and run.config == {"model": "tiny:", "n": 5}
    assert run.summary == {"stage": "export", "cer": 0.25, "path": "/a"}
    assert json.loads((tmp_path / "export_report.json").read_text()) == run.summary
    write_run(tmp_path, None, {"cer": 0.5}, stage="export", legacy=("export_report.json",))  # rewritten in place
    assert json.loads((tmp_path / "export_report.json").read_text())["cer"] == 0.5
    assert read_run(tmp_path).config["n"] == 5  # config=None keeps the config.yaml written earlier


def test_unknown_stage_and_non_object_summary_are_refused(tmp_path):
    with pytest.raises(ValueError, match="stage 'nope'"):
        write_run(tmp_path, None, {}, stage="nope")
    with pytest.raises(TypeError):
        write_run(tmp_path, None, [1, 2], stage="eval")
    assert read_run(tmp_path / "missing") is None


def test_an_older_train_summary_is_recognised(tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps({"run_dir": str(tmp_path), "steps": 3}))
    assert read_run(tmp_path).stage == "train"


def _stages_written() -> set[str]:
    found = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) in ("write_run", "write_report_dir"):
                for kw in node.keywords:
                    if kw.arg == "stage" and isinstance(kw.value, ast.Constant):
                        found.add(kw.value.value)
                    elif kw.arg == "stage":  # an expression: the stages it can name
                        found |= {c.value for c in ast.walk(kw.value) if isinstance(c, ast.Constant)}
    return found


def test_every_stage_writes_through_write_run():
    assert set(STAGES) <= _stages_written()


def test_no_stage_writes_a_report_file_of_its_own():
    """`*_report.json` / report.json come only as legacy links of write_run (the data exporter and curate,
    whose output is a dataset folder or a manifest file, keep their reports beside it)."""
    allowed = {"data/export.py", "data/curate.py", "report/__init__.py"}
    offenders = []
    for path in SRC.rglob("*.py"):
        rel = str(path.relative_to(SRC))
        if rel in allowed or rel.startswith(("speechllm/", "eval/hallucination")):  # other work owns these
            continue
        text = path.read_text(encoding="utf-8")
        for line in text.splitlines():
            if "write_json(" in line and ("report.json" in line or "_report" in line):
                offenders.append(f"{rel}: {line.strip()}")
    assert not offenders, offenders


def test_score_stage_dir_follows_the_contract(tmp_path):
    from soritune.eval.scoring import ScoreConfig, run_score

    refs = tmp_path / "refs.tsv"
    refs.write_text("a\t사과 세 개\n", encoding="utf-8")
    hyps = tmp_path / "hyps.tsv"
    hyps.write_text("a\t사과 세 게\n", encoding="utf-8")
    run_score(ScoreConfig(refs=refs, hyps=hyps, out=tmp_path / "o", n_boot=20))
    run = read_run(tmp_path / "o")
    assert run.stage == "score" and run.config["refs"] == str(refs) and run.summary["cer"] > 0
    assert json.loads((tmp_path / "o" / "report.json").read_text())["cer"] == run.summary["cer"]
