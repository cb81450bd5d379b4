"""The `soritune prepare ...` verbs: summary with utterances/s, one-line errors."""

from __future__ import annotations

import json

import pytest

from soritune.cli import main


def test_prepare_kspon_cli(tmp_path, capsys):
    from soritune.data.corpora.kspon_fake import write_kspon_tree

    write_kspon_tree(tmp_path / "root", 120, seed=5, sparse=True)
    with pytest.raises(SystemExit) as e:
        main(["prepare", "kspon", str(tmp_path / "root"), "--out", str(tmp_path / "out"), "--workers", "2",
              "--shard-size", "30", "--split", "random", "--ratios", "8:1:1", "--seed", "3"])
    assert e.value.code == 0
    captured = capsys.readouterr()
    assert "utterances/s" in captured.out and "120 utterances" in captured.out
    report = json.loads((tmp_path / "out" / "prepare_report.json").read_text(encoding="utf-8"))
    assert report["inputs"] == 120 and report["config"]["ratios"] == [8.0, 1.0, 1.0] and report["workers"] == 2
    assert set(report["splits"]) == {"train", "dev", "test"}


def test_prepare_cli_errors_are_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["prepare", "kspon", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "nowhere" in err and "not a directory" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as e:
        main(["prepare", "manifest", str(tmp_path), "--out", str(tmp_path / "o"), "--convert", "mp3"])
    assert e.value.code == 2
    assert "convert" in capsys.readouterr().err


def test_prepare_help_lists_the_corpora(capsys):
    with pytest.raises(SystemExit):
        main(["prepare", "--help"])
    out = capsys.readouterr().out
    assert "kspon" in out and "aihub-lecture" in out and "manifest" in out
