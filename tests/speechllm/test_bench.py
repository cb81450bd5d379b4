"""`soritune speechllm bench` on tiny random models: the contract's rows and fields."""

import json

from .conftest import TINY_OPTIONS


def test_bench_cli_writes_rows_per_protocol_and_attention(tmp_path):
    from typer.testing import CliRunner

    from soritune.cli import app

    out = tmp_path / "b"
    res = CliRunner().invoke(app, ["speechllm", "bench", "--encoder", "tiny:", "--llm", "random:tiny", "--audio-s", "3",
                                   "--repeats", "1", "--warmup", "0", "--decode-steps", "2", "--max-new-tokens", "3",
                                   "--threads", "1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "bench.json").read_text())
    rows = {(r["protocol"], r["attn"]): r for r in doc["rows"]}
    assert set(rows) == {(p, a) for p in ("study", "generate") for a in ("eager", "sdpa")}
    for r in rows.values():
        assert r["ttft_ms"] > 0 and r["tpot_ms"] > 0 and r["peak_mem_gb"] > 0 and r["peak_mem_definition"]
    assert rows[("generate", "sdpa")]["new_tokens"] == 3 and rows[("generate", "sdpa")]["total_ms"] > 0
    assert doc["audio"] == {"audio_s": 3.0, "n_chunks": 1, "n_audio_tokens": 88, "truncated_s": 0.0}
    md = (out / "bench.md").read_text()
    assert "| study | eager |" in md and "TTFT ms" in md


def test_bench_long_audio_counts_chunks(tmp_path):
    from soritune.speechllm import SpeechLLM, SpeechLLMConfig
    from soritune.speechllm.bench import SpeechLLMBenchConfig, run_bench

    model = SpeechLLM(SpeechLLMConfig(encoder="tiny:", llm="random:tiny", projector="slam",
                                      projector_options=TINY_OPTIONS["slam"]))
    doc = run_bench(SpeechLLMBenchConfig(out=str(tmp_path), audio_s=45.0, attn=["sdpa"], protocols=["study"],
                                         repeats=1, warmup=0, decode_steps=1), model=model)
    assert doc["audio"]["n_chunks"] == 2 and doc["audio"]["truncated_s"] == 0.0
    assert doc["audio"]["n_audio_tokens"] == 2 * 300
