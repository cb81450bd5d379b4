"""The speech-LLM JSONL schema, the ASR-manifest and ms-swift converters, and the CLI verbs."""

import json

import pytest

from soritune.audio import write_wav
from soritune.data.manifest import ManifestError
from soritune.speechllm.config import DEFAULT_PROMPTS
from soritune.speechllm.data import (
    convert_asr_manifest,
    from_swift_messages,
    read_examples,
    references_of,
    validate_example,
)

from .conftest import tone


def _write(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_asr_manifest_converts_to_transcription_examples(tmp_path):
    wav = write_wav(tmp_path / "a.wav", tone(1.0))
    src = _write(tmp_path / "asr.jsonl", [
        {"id": "u1", "audio": "a.wav", "duration": 1.0, "text": "미분 방정식", "speaker": "s1"},
        {"id": "u2", "audio": "a.wav", "duration": 1.0, "text": "  "}])
    counts = convert_asr_manifest(src, tmp_path / "sllm.jsonl")
    assert counts == {"rows": 2, "written": 1, "skipped_empty_text": 1}
    rows = read_examples(tmp_path / "sllm.jsonl")
    assert rows[0]["task"] == "transcribe" and rows[0]["response"] == "미분 방정식"
    assert rows[0]["speaker"] == "s1" and rows[0]["audio"] == str(wav.resolve())
    assert rows[0]["prompt"] == DEFAULT_PROMPTS["transcribe"]


def test_caption_rows_keep_several_references(tmp_path):
    write_wav(tmp_path / "a.wav", tone(1.0))
    path = _write(tmp_path / "cap.jsonl", [{"id": "c", "audio": "a.wav", "duration": 1.0, "text": "",
                                            "task": "caption", "response": "a dog barks",
                                            "references": ["a dog barks", "barking dog"]}])
    row = read_examples(path)[0]
    assert references_of(row) == ["a dog barks", "barking dog"]
    assert references_of({**row, "references": None}) == ["a dog barks"]


@pytest.mark.parametrize("bad,field", [({"task": "sing"}, "task"), ({"response": ""}, "response"),
                                       ({"references": []}, "references"), ({"prompt": 3}, "prompt")])
def test_bad_rows_name_the_field(bad, field):
    row = {"id": "x", "audio": "a.wav", "duration": 1.0, "text": "", "task": "caption", "response": "ok", **bad}
    with pytest.raises(ManifestError, match=f"'{field}'"):
        validate_example(row, "f.jsonl: row 1")


def test_swift_messages_record():
    rec = {"messages": [{"role": "user", "content": "<audio>What animal is this?"},
                        {"role": "assistant", "content": "A dog."}], "audios": ["/d/a.wav"]}
    row = from_swift_messages(rec, "s1", 2.0)
    assert row["prompt"] == "What animal is this?" and row["response"] == "A dog." and row["audio"] == "/d/a.wav"
    with pytest.raises(ManifestError, match="one user turn"):
        from_swift_messages({"messages": [], "audios": []}, "s2", 1.0)


def test_cli_convert_and_cider(tmp_path):
    from typer.testing import CliRunner

    from soritune.cli import app

    write_wav(tmp_path / "a.wav", tone(1.0))
    _write(tmp_path / "asr.jsonl", [{"id": "u1", "audio": "a.wav", "duration": 1.0, "text": "안녕"}])
    runner = CliRunner()
    res = runner.invoke(app, ["speechllm", "convert", str(tmp_path / "asr.jsonl"), "--out", str(tmp_path / "o.jsonl")])
    assert res.exit_code == 0, res.output
    assert "wrote 1 of 1" in res.output
    refs = [{"id": f"c{i}", "audio": "a.wav", "duration": 1.0, "text": "", "task": "caption", "response": r[0],
             "references": r} for i, r in enumerate([["a dog barks", "dog barking"], ["rain on a roof", "rain falls"]])]
    _write(tmp_path / "refs.jsonl", refs)
    _write(tmp_path / "hyps.jsonl", [{"id": "c0", "hypothesis": "a dog barks"}, {"id": "c1", "hypothesis": "rain"}])
    res = runner.invoke(app, ["speechllm", "cider", str(tmp_path / "hyps.jsonl"), str(tmp_path / "refs.jsonl")])
    assert res.exit_code == 0, res.output
    assert "CIDEr-D" in res.output and "on 2 clips" in res.output


def test_cli_help_has_an_example_per_verb():
    from typer.testing import CliRunner

    from soritune.cli import app

    for verb in ("bench", "train", "ask", "eval", "convert", "cider"):
        res = CliRunner().invoke(app, ["speechllm", verb, "--help"])
        assert res.exit_code == 0 and "Example: soritune speechllm" in res.output


def test_demo_help_shows_the_demo_budget_not_a_plain_recipes_defaults():
    from typer.testing import CliRunner

    from soritune.cli import app
    from soritune.speechllm.demo import DEMO_BUDGET

    res = CliRunner().invoke(app, ["speechllm", "demo", "--help"], env={"COLUMNS": "240"})
    assert res.exit_code == 0
    for flag, key in (("--stage1-steps", "stage1_steps"), ("--stage2-steps", "stage2_steps")):
        line = next(ln for ln in res.output.splitlines() if flag in ln)
        assert f"[default: {DEMO_BUDGET[key]}]" in line, line


def test_swift_file_converts_with_durations(tmp_path):
    from soritune.speechllm.data import convert_swift_jsonl

    write_wav(tmp_path / "a.wav", tone(1.25))
    rec = {"messages": [{"role": "user", "content": "<audio>Describe it."}, {"role": "assistant", "content": "A tone."}],
           "audios": ["a.wav"]}
    _write(tmp_path / "swift.jsonl", [rec, {**rec, "id": "named"}])
    counts = convert_swift_jsonl(tmp_path / "swift.jsonl", tmp_path / "o.jsonl", task="caption")
    rows = read_examples(tmp_path / "o.jsonl")
    assert counts["written"] == 2 and [r["id"] for r in rows] == ["swift-1", "named"]
    assert rows[0]["duration"] == pytest.approx(1.25) and rows[0]["task"] == "caption"
    assert rows[0]["prompt"] == "Describe it." and rows[0]["audio"] == str((tmp_path / "a.wav").resolve())
