"""`soritune score` and `soritune compare` from the command line (in-process)."""

import json

import pytest

from soritune.cli import main


def _files(tmp_path, hyp_ids=("a", "b")):
    refs = tmp_path / "refs.tsv"
    refs.write_text("a\t사과 세 개 주세요\nb\t나는 학교에 간다\n", encoding="utf-8")
    hyps = tmp_path / "hyps.jsonl"
    texts = {"a": "사과 3개 주세요", "b": "나는학교에 갔다", "c": "x", "d": "y"}
    hyps.write_text("".join(json.dumps({"id": i, "text": texts[i]}, ensure_ascii=False) + "\n" for i in hyp_ids),
                    encoding="utf-8")
    return refs, hyps


def test_score_cli(tmp_path, capsys):
    refs, hyps = _files(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(["score", str(refs), str(hyps), "--out", str(tmp_path / "o"), "--n-boot", "50"])
    assert e.value.code == 0
    js = json.loads((tmp_path / "o" / "report.json").read_text(encoding="utf-8"))
    assert js["n_utts"] == 2 and js["cer_reading"] < js["cer"]
    assert "cer" in capsys.readouterr().out


def test_score_cli_rejects_mismatched_ids(tmp_path, capsys):
    refs, hyps = _files(tmp_path, hyp_ids=("a", "c", "d"))
    with pytest.raises(SystemExit) as e:
        main(["score", str(refs), str(hyps), "--out", str(tmp_path / "o")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "do not match" in err and "first: b" in err and "first: c, d" in err
    assert not (tmp_path / "o" / "report.json").exists()


def test_compare_cli(tmp_path, capsys):
    refs, hyps = _files(tmp_path)
    for name in ("x", "y"):
        with pytest.raises(SystemExit):
            main(["score", str(refs), str(hyps), "--out", str(tmp_path / name), "--n-boot", "20"])
    with pytest.raises(SystemExit) as e:
        main(["compare", str(tmp_path / "x"), str(tmp_path / "y"), "--out", str(tmp_path / "c"), "--n-boot", "20"])
    assert e.value.code == 0
    assert json.loads((tmp_path / "c" / "compare.json").read_text())["metrics"]["cer"]["diff"] == 0.0
