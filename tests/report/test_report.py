"""`soritune report`: systems from eval dirs and run dirs, table, plots, self-contained HTML."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from soritune.cli import app
from soritune.eval.io import write_report_dir
from soritune.eval.score import score_texts
from soritune.jsonio import write_json
from soritune.report import build_report
from soritune.report.collect import collect
from soritune.report.render import aligned_html

REFS = [{"id": f"u{i}", "text": t} for i, t in enumerate(["사과 3개를 샀어요", "행렬의 고윳값을 구합니다", "오늘 날씨가 좋네요"])]


def _eval_dir(path, hyps: list[str]):
    rep = score_texts(REFS, {r["id"]: h for r, h in zip(REFS, hyps)})
    write_report_dir(path, rep)
    data = json.loads((path / "report.json").read_text())
    data["timing"] = {"rtfx": 12.5}
    write_json(path / "report.json", data)
    return path


@pytest.fixture()
def dirs(tmp_path):
    zs = _eval_dir(tmp_path / "zero-shot", ["사과 세개", "행렬 고유", "오늘 날씨"])
    run = tmp_path / "lora"
    _eval_dir(run / "eval", ["사과 3개를 샀어요", "행렬의 고윳값을 구합니다", "오늘 날씨가 좋아요"])
    write_json(run / "summary.json", {"train_wall_s": 42.0, "peak_mem_gb": 1.5, "trainable_params": 589824})
    (run / "adapter").mkdir()
    (run / "adapter" / "adapter_model.safetensors").write_bytes(b"x" * 2_000_000)
    return zs, run


def test_collect_reads_eval_and_run_dirs(dirs):
    zs, run = dirs
    systems = collect([zs, run])
    assert [s.name for s in systems] == ["zero-shot", "lora"]
    assert systems[0].cer > systems[1].cer > 0
    assert systems[1].train_wall_s == 42.0 and systems[1].size_mb == pytest.approx(2.0)
    assert systems[1].examples[0]["id"] == "u2"  # the only utterance with errors comes first
    assert systems[0].rtfx == 12.5 and len(systems[0].cer_ci95) == 2


def test_report_files_and_keys(dirs, tmp_path):
    res = build_report(list(dirs), tmp_path / "rep")
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    for key in ("cer", "cer_ci95", "wer", "cer_reading", "train_wall_s", "peak_mem_gb", "rtfx", "size_mb",
                "trainable_params"):
        assert key in rep["systems"]["lora"]
    assert "versions" in rep["environment"]
    html = (tmp_path / "rep" / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 2 and 'name="viewport"' in html
    assert "plots/pareto.png" in res.files and (tmp_path / "rep" / "plots" / "cer.png").stat().st_size > 1000
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "| lora |" in md and "## Worst utterances" in md
    # a report dir is itself an input: systems carry over
    again = collect([tmp_path / "rep"])
    assert [s.name for s in again] == ["zero-shot", "lora"] and again[1].cer == rep["systems"]["lora"]["cer"]


def test_alignment_marks_each_edit():
    ref, hyp = aligned_html("사과 3개", "사과 세개요")
    assert '<span class="sub">3</span>' in ref and '<span class="sub">세</span>' in hyp
    assert '<span class="ins">요</span>' in hyp


def test_cli_report_and_bad_input(dirs, tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["report", *map(str, dirs), "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "r" / "report.html").exists()
    bad = runner.invoke(app, ["report", str(tmp_path / "nothing-here"), "--out", str(tmp_path / "r2")])
    assert bad.exit_code != 0


def test_data_and_bench_runs_are_read_by_stage_and_refused_as_systems(tmp_path):
    import pytest

    from soritune.errors import SoritunError
    from soritune.report.collect import NOT_SYSTEMS, collect
    from soritune.rundir import write_run

    for stage in NOT_SYSTEMS:
        write_run(tmp_path / stage, {"x": 1}, {"n": 1}, stage=stage)
        with pytest.raises(SoritunError, match=f"a {stage} run"):
            collect([tmp_path / stage])
