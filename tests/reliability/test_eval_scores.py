"""Defects 5 and 8 (eval/score): nothing scored is null and a failure, never CER 0.0; unreadable audio
has a threshold; undecodable score inputs name the file and line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from soritune.audio import write_wav
from soritune.cli import main
from soritune.errors import NothingScoredError
from soritune.eval.io import ScoreInputError, read_hyps


def test_score_on_empty_files_fails_with_null_metrics(tmp_path, capsys):
    (tmp_path / "refs.tsv").write_text("", encoding="utf-8")
    (tmp_path / "hyps.tsv").write_text("", encoding="utf-8")
    with pytest.raises(SystemExit) as e:
        main(["score", str(tmp_path / "refs.tsv"), str(tmp_path / "hyps.tsv"), "--out", str(tmp_path / "o")])
    assert e.value.code != 0
    err = capsys.readouterr().err
    assert "no utterance was scored" in err and len(err.strip().splitlines()) == 1
    js = json.loads((tmp_path / "o" / "report.json").read_text())
    assert js["cer"] is None and js["wer"] is None and js["n_utts"] == 0 and "no utterance" in js["error"]


def _manifest(tmp_path, n_good: int, n_missing: int):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n_good):
        write_wav(tmp_path / f"g{i}.wav", (0.1 * rng.standard_normal(16000)).astype(np.float32))
        rows.append({"id": f"g{i}", "audio": f"g{i}.wav", "duration": 1.0, "text": "안녕"})
    rows += [{"id": f"m{i}", "audio": f"missing{i}.wav", "duration": 1.0, "text": "안녕"} for i in range(n_missing)]
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _eval(tmp_path, manifest, **kw):
    from soritune.eval import EvalConfig, run_eval

    return run_eval(EvalConfig(model="tiny:", manifest=manifest, out=tmp_path / "o", max_new_tokens=3, n_boot=10, **kw))


def test_eval_where_no_audio_reads_is_null_and_fails(tmp_path):
    with pytest.raises(NothingScoredError) as e:
        _eval(tmp_path, _manifest(tmp_path, 0, 2))
    assert "all 2 rows could not be read" in str(e.value)
    js = json.loads((tmp_path / "o" / "report.json").read_text())
    assert js["cer"] is None and js["n_utts"] == 0 and js["hallucination"]["loop_rate"] is None


def test_eval_unreadable_audio_threshold(tmp_path):
    manifest = _manifest(tmp_path, 2, 1)
    with pytest.raises(NothingScoredError) as e:
        _eval(tmp_path, manifest)  # default: no unreadable audio tolerated
    assert "1 of 3 rows have unreadable audio" in str(e.value)
    js = json.loads((tmp_path / "o" / "report.json").read_text())
    assert js["n_utts"] == 2 and js["cer"] is not None and "unreadable" in js["error"]
    report = _eval(tmp_path, manifest, max_audio_error_fraction=0.5)
    assert len(report.utterances) == 2


def test_non_utf8_score_input_names_file_and_line(tmp_path, capsys):
    hyps = tmp_path / "hyps.jsonl"
    hyps.write_bytes(b'{"id": "a", "text": "x"}\n{"id": "b", "text": "y"}\n{"id": "c", "text": "\xb0\xa1"}\n')
    with pytest.raises(ScoreInputError) as e:
        read_hyps(hyps)
    assert f"{hyps}:3: not UTF-8" in str(e.value)
    (tmp_path / "refs.tsv").write_bytes(b"a\tx\nb\ty\nc\t\xb0\xa1\n")
    with pytest.raises(SystemExit) as e:
        main(["score", str(tmp_path / "refs.tsv"), str(hyps), "--out", str(tmp_path / "o")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "refs.tsv:3: not UTF-8" in err and "Traceback" not in err
