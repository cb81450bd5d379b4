"""`soritune bench infer|train` from the command line (in-process)."""

from __future__ import annotations

import json

import pytest

from soritune.cli import main


@pytest.fixture(autouse=True)
def restore_threads():
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_bench_infer_cli_on_tiny(tmp_path, capsys):
    out = tmp_path / "b"
    with pytest.raises(SystemExit) as e:
        main(["bench", "infer", "--model", "tiny:", "--backend", "ct2", "--dtype", "float32", "--peers", "faster-whisper",
              "--synthetic", "1", "--batch-sizes", "1", "--repeats", "1", "--warmup", "0", "--max-new-tokens", "4",
              "--threads", "1", "--out", str(out)])
    assert e.value.code == 0
    doc = json.loads((out / "bench.json").read_text())
    rows = doc["infer"]["rows"]
    assert [r["label"] for r in rows] == ["soritune ct2 float32", "faster-whisper float32"]
    assert doc["infer"]["command"].startswith("soritune ")
    printed = capsys.readouterr()
    assert "soritune ct2 float32" in printed.out and "vs fw" in printed.out
    assert "bench.json" in printed.err


@pytest.mark.parametrize(("args", "message"), [
    (["--batch-sizes", "1,x"], "--batch-sizes expects comma-separated integers"),
    (["--dtype", "float8"], "dtypes"),
    (["--backend", "onnx"], "backends"),
    (["--device", "tpu"], "device"),
])
def test_bench_infer_cli_rejects_bad_options(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as e:
        main(["bench", "infer", "--model", "tiny:", "--out", str(tmp_path / "b"), *args])
    assert e.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_bench_train_cli_rejects_bad_method(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["bench", "train", "--model", "tiny:", "--methods", "lora,sparse", "--out", str(tmp_path / "b")])
    assert e.value.code == 2
    assert "methods" in capsys.readouterr().err


def test_bench_help_lists_both_verbs(capsys):
    with pytest.raises(SystemExit) as e:
        main(["bench", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "infer" in text and "train" in text


def test_bench_dir_follows_the_run_dir_contract(tmp_path):
    from soritune.bench.report import write_section
    from soritune.rundir import read_run

    write_section("infer", {"rows": [], "errors": []}, tmp_path, plots=False, config={"model": "m1"})
    write_section("train", {"rows": [], "errors": []}, tmp_path, plots=False, config={"model": "m2"})
    run = read_run(tmp_path)
    assert run.stage == "bench" and set(run.summary) >= {"infer", "train", "schema_version"}
    assert run.config == {"infer": {"model": "m1"}, "train": {"model": "m2"}}
    assert (tmp_path / "bench.json").is_symlink() and json.loads((tmp_path / "bench.json").read_text())["stage"] == "bench"
