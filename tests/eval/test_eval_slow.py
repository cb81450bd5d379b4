"""`soritune eval --model bundled:whisper-base` on a synthetic test split, through the CLI."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def synth_test_split(tmp_path_factory):
    from soritune.data.synth_corpus import SynthCorpusConfig, build_synth_corpus

    out = tmp_path_factory.mktemp("synth")
    build_synth_corpus(SynthCorpusConfig(out=out, n=4, n_dev=1, n_test=6, n_everyday=1, seed=0))
    return out / "test.jsonl"


def _cli(*args):
    return subprocess.run([sys.executable, "-c", "from soritune.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=900)


@pytest.mark.parametrize("backend", ["torch", "ct2"])
def test_eval_bundled_whisper_base(synth_test_split, tmp_path, backend):
    out = tmp_path / backend
    r = _cli("eval", "--model", "bundled:whisper-base", "--backend", backend, "--manifest", str(synth_test_split),
             "--out", str(out), "--batch-size", "4", "--limit", "4", "--max-new-tokens", "48",
             "--slice-by", "duration_bucket")
    assert r.returncode == 0, r.stderr
    js = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert js["n_utts"] == 4 and js["inputs"]["n_audio_errors"] == 0
    # whisper-base loops on some of this synthetic lecture speech; the report must still hold a CER
    assert isinstance(js["cer"], float) and js["cer"] >= 0
    pm = js["per_metric"]["cer"]
    assert js["cer"] == pm["errors"] / pm["n_ref"] and pm["n_ref"] == js["n_ref_chars"] > 0
    assert js["hallucination"]["n_max_tokens_known"] == 4 and js["decoding"]["max_new_tokens"] == 48
    assert js["model"]["backend"] == backend and js["timing"]["rtfx"] > 0
    assert "RTFx" in r.stderr and "cer" in r.stdout
    # the same hypotheses through `score` give the same numbers
    refs = tmp_path / "refs.jsonl"
    refs.write_text("".join(synth_test_split.read_text(encoding="utf-8").splitlines(keepends=True)[:4]),
                    encoding="utf-8")
    r2 = _cli("score", str(refs), str(out), "--out", str(tmp_path / "rescore"), "--slice-by", "duration_bucket")
    assert r2.returncode == 0, r2.stderr
    js2 = json.loads((tmp_path / "rescore" / "report.json").read_text(encoding="utf-8"))
    assert {k: v for k, v in js2.items() if k != "inputs"} == {k: js[k] for k in js2 if k != "inputs"}
