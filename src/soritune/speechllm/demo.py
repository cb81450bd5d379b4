"""`soritune speechllm demo`: the offline speech-LLM demo on a CPU.

The bundled whisper-base encoder + the offline LLM (Gemma-3-270M by default) + a SALMONN window Q-Former,
trained in two stages on the synthetic Korean lecture speech and a small captioning set made offline
(soritune.speechllm.sounds), then scored: ASR CER on the lecture test split (the held-out Kokoro voice
slice `lecture-kokoro` when the data is a `soritune demo` corpus, the slice the main demo's LoRA row is
read on), CIDEr-D on the captioning test clips, and TTFT/TPOT/peak memory in the study's protocol.

Data: `data=DIR` is a `soritune demo` data folder (train.jsonl, test.jsonl, eval.jsonl with `test_set`);
`soritune demo --full` passes its own, so the test split is the main demo's. Without it an espeak corpus
is synthesised (soritune.data.synth_corpus; minutes, cached). Writes OUT/report.{json,md}.

    from soritune.speechllm.demo import SpeechLLMDemoConfig, run_demo
    result = run_demo(SpeechLLMDemoConfig(out="sllm_demo", data="demo/data"))
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from pydantic import Field

from soritune.config import StageConfig
from soritune.data.manifest import iter_manifest
from soritune.jsonio import atomic_write_text, read_json, write_json, write_jsonl
from soritune.speechllm.config import SpeechLLMConfig
from soritune.speechllm.data import from_asr_manifest
from soritune.speechllm.recipe import RecipeConfig, run_recipe
from soritune.speechllm.sounds import build_caption_set

DEMO_TEST_SET = "lecture-kokoro"  # the main demo's headline slice (held-out Kokoro voice, lecture sentences)
Event = Callable[[str, int, int], None]
# Sized for 20 minutes on 2 idle cores (README, speech-LLM demo: where the time goes): every training step
# runs the whole 270M LLM forward and backward on 4 examples, evaluation decodes 8 clips per batch.
# 150 + 100 steps: 9 min 42 s on an idle 2-core CPU with AMX, 13 min 35 s on an AVX2-only one (captioning learned,
# CIDEr-D 0.661 and 0.460; transcription not); 30 + 20 (3.5 min) learned nothing
DEMO_BUDGET = {"stage1_steps": 150, "stage2_steps": 100, "batch_size": 4, "max_new_tokens": 48, "eval_batch_size": 8}


class SpeechLLMDemoConfig(StageConfig):
    out: str = Field("sllm_demo", description="Output directory.")
    data: str | None = Field(None, description="A `soritune demo` data folder (its test split is used); "
                             "None: synthesise an espeak corpus under OUT/data.")
    test_set: str | None = Field(DEMO_TEST_SET, description="Slice of DATA/eval.jsonl scored for ASR (rows' "
                                 "test_set); None or no eval.jsonl: all of test.jsonl.")
    asr_test_limit: int | None = Field(None, ge=1, description="First N ASR test rows only.")
    n_train_speech: int | None = Field(None, ge=1, description="First N training utterances (None: all).")
    trim_percentile: float = Field(0.0, ge=0, lt=50, description="Drop this % shortest and longest training "
                                   "utterances (the study: 5), through `soritune curate`.")
    sample: int | None = Field(None, ge=1, description="Keep this many training utterances, drawn from each "
                               "text-length decile in proportion (the study's sampling), through `soritune curate`.")
    n_synth: int = Field(120, ge=4, description="Utterances synthesised when `data` is None.")
    n_captions_train: int = Field(96, ge=1, description="Captioning training clips.")
    n_captions_test: int = Field(24, ge=1, description="Captioning test clips.")
    recipe: RecipeConfig = Field(default_factory=lambda: RecipeConfig(model=SpeechLLMConfig(
        encoder="bundled:whisper-base", llm="offline:gemma3-270m", projector="salmonn", encoder_input="trimmed",
        lora_targets=["q_proj", "v_proj", "gate_proj"]), **DEMO_BUDGET), description="Model, training and "
        "measurement budget (the demo's default is sized for 20 minutes on 2 cores: DEMO_BUDGET).")
    seed: int = Field(0, description="Seed of the captioning set and the synthesised corpus.")


def _speech_data(cfg: SpeechLLMDemoConfig, out: Path) -> Path:
    if cfg.data:
        data = Path(cfg.data)
        if not (data / "train.jsonl").is_file() or not (data / "test.jsonl").is_file():
            from soritune.errors import ConfigError

            raise ConfigError(f"data: {data} has no train.jsonl and test.jsonl (a `soritune demo` data folder)")
        return data
    from soritune.data.synth_corpus import SynthCorpusConfig, build_synth_corpus

    data = out / "data"
    build_synth_corpus(SynthCorpusConfig(out=data, n=cfg.n_synth, n_dev=1, n_test=max(4, cfg.n_synth // 5),
                                         n_everyday=1, seed=cfg.seed, backend="espeak"))
    return data


def prepare(cfg: SpeechLLMDemoConfig, out: Path) -> dict:
    """OUT/sllm/train.jsonl (ASR + captions, shuffled) and OUT/sllm/test.jsonl (ASR test slice + captions)."""
    import numpy as np

    data = _speech_data(cfg, out)
    train_manifest, curated = data / "train.jsonl", None
    if cfg.trim_percentile or cfg.sample:
        from soritune.data.curate import CurateConfig, curate

        train_manifest = out / "sllm" / "asr_train_curated.jsonl"
        res = curate(CurateConfig(manifest=data / "train.jsonl", out=train_manifest, seed=cfg.seed,
                                  trim_percentile=cfg.trim_percentile, sample=cfg.sample, stratify="text-length"))
        curated = {"input_rows": res.input_rows, "counts": res.counts}
    train_asr = [r for r in iter_manifest(train_manifest, resolve_audio=True) if r["text"].strip()]
    train_asr = train_asr[: cfg.n_train_speech] if cfg.n_train_speech else train_asr
    sliced = cfg.test_set is not None and (data / "eval.jsonl").is_file()
    test_rows = (iter_manifest(data / "eval.jsonl", resolve_audio=True) if sliced
                 else iter_manifest(data / "test.jsonl", resolve_audio=True))
    test_asr = [r for r in test_rows if r["text"].strip() and (not sliced or r.get("test_set") == cfg.test_set)]
    test_asr = test_asr[: cfg.asr_test_limit] if cfg.asr_test_limit else test_asr
    counts = build_caption_set(out / "captions", n_train=cfg.n_captions_train, n_test=cfg.n_captions_test,
                               speech={"train": [r["audio"] for r in train_asr], "test": [r["audio"] for r in test_asr]},
                               seed=cfg.seed)
    captions = {s: list(iter_manifest(out / "captions" / f"{s}.jsonl")) for s in ("train", "test")}
    train = list(from_asr_manifest(train_asr)) + captions["train"]
    order = np.random.default_rng(cfg.seed).permutation(len(train))
    write_jsonl(out / "sllm" / "train.jsonl", [train[i] for i in order])
    write_jsonl(out / "sllm" / "test.jsonl", list(from_asr_manifest(test_asr)) + captions["test"])
    return {"data": str(data), "asr_train": len(train_asr), "asr_test": len(test_asr),
            "asr_test_set": cfg.test_set if sliced else "test.jsonl (all)", "captions": counts, "curated": curated,
            "train_audio_h": round(sum(r["duration"] for r in train_asr) / 3600, 3)}


def whisper_rows(data: Path, test_set: str | None) -> list[dict]:
    """The main demo's Whisper-base rows on the same slice, when its evaluations sit next to `data`."""
    root = data.parent
    rows = []
    for name, report in (("whisper-base zero-shot", root / "evals" / "zero-shot" / "report.json"),
                         ("whisper-base LoRA", root / "runs" / "lora" / "eval" / "report.json")):
        if not report.is_file():
            continue
        rep = read_json(report)
        piece = rep.get("slices", {}).get("test_set", {}).get(test_set) if test_set else rep
        if piece:
            rows.append({"name": name, "asr_cer": piece.get("cer"), "asr_n": piece.get("n_utts"),
                         "source": str(report)})
    return rows


def run_demo(cfg: SpeechLLMDemoConfig, on_event: Event | None = None) -> dict:
    """Prepare the data, run the recipe, write OUT/report.json and OUT/report.md; returns the report."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    tell = on_event or (lambda *_: None)
    t0, cpu0 = time.perf_counter(), time.process_time()
    tell("data", 0, 1)
    data = prepare(cfg, out)
    data_s = time.perf_counter() - t0
    model = cfg.recipe.model
    name = f"{model.projector} + {model.llm}" + (" + Whisper draft" if model.draft else "")
    row = run_recipe(cfg.recipe, train=out / "sllm" / "train.jsonl", test=out / "sllm" / "test.jsonl",
                     out=out / "run", name=name, progress=tell)
    report = {"data": data, "data_s": round(data_s, 1), "speech_llm": row,
              "whisper": whisper_rows(Path(data["data"]), cfg.test_set if "all" not in data["asr_test_set"] else None),
              "wall_s": round(time.perf_counter() - t0, 1), "cpu_s": round(time.process_time() - cpu0, 1),
              "config": cfg.model_dump()}
    write_json(out / "report.json", report)
    atomic_write_text(out / "report.md", render(report))
    return report


def run_demo_step(out: str | Path, data: str | Path, on_event: Event | None = None, draft: str | None = None) -> dict:
    """`soritune demo --full`'s speech-LLM step on its own data folder: the demo's summary row, or
    {"skipped": reason} when the offline LLM package is not installed (`soritune[speechllm]`). `draft`: the
    Whisper spec whose transcripts go into the prompt (the main demo passes its fine-tuned int8 export)."""
    from importlib.util import find_spec

    from soritune.speechllm.llm import OFFLINE_LLMS

    cfg = SpeechLLMDemoConfig(out=str(out), data=str(data))
    cfg.recipe.model.draft = draft
    kind, _, name = cfg.recipe.model.llm.partition(":")
    if kind == "offline" and name in OFFLINE_LLMS and find_spec(OFFLINE_LLMS[name][0]) is None:
        return {"skipped": f"{cfg.recipe.model.llm} is not installed ({OFFLINE_LLMS[name][2]})"}
    report = run_demo(cfg, on_event)
    row = report["speech_llm"]
    return {"report": str(Path(out) / "report.md"), "wall_s": report["wall_s"],
            **{k: row.get(k) for k in ("name", "draft", "asr_cer", "asr_n", "cider_d", "caption_n", "ttft_ms",
                                       "tpot_ms", "peak_mem_gb")}}


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _num(x, nd: int = 1) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def render(report: dict) -> str:
    r, d = report["speech_llm"], report["data"]
    draft = f" + Whisper draft in the prompt ({r['draft']})" if r.get("draft") else ""
    lines = [f"# soritune speech-LLM demo: {r['encoder']} + {r['projector']} + {r['llm']}{draft}", "",
             f"- data: {d['asr_train']} lecture utterances ({d['train_audio_h']} h) + "
             f"{d['captions']['train']['clips']} captioning clips to train; ASR test: {d['asr_test']} utterances "
             f"({d['asr_test_set']}); captioning test: {d['captions']['test']['clips']} clips",
             "- stages: " + "; ".join(f"{s['stage']}: {s['steps']} steps, loss {s['first_loss']:.2f} -> "
                                      f"{s['last_loss']:.2f}" for s in r["stages"]),
             f"- wall {report['wall_s']:.0f} s (data {report['data_s']:.0f}, load {r['load_s']:.0f}, train "
             f"{r['train_s']:.0f}, eval {r['eval_s']:.0f}); process CPU {report['cpu_s']:.0f} s; load average at "
             f"the end {r['load_average_1_5_15']}", "",
             "| system | ASR CER | n | CIDEr-D | n | TTFT ms | TPOT ms | peak mem GB |", "|---|---|---|---|---|---|---|---|",
             f"| {r['name']} | {_pct(r['asr_cer'])} | {r['asr_n']} | {_num(r['cider_d'], 3)} | {r['caption_n']} | "
             f"{_num(r['ttft_ms'])} | {_num(r['tpot_ms'])} | {_num(r['peak_mem_gb'], 2)} |"]
    lines += [f"| {w['name']} (main demo) | {_pct(w['asr_cer'])} | {w['asr_n']} | - | - | - | - | - |"
              for w in report["whisper"]]
    lines += ["", f"Failures: {r['failures']}; truncated audio {r['truncated_audio_s']} s. Decoding: greedy, LLM in "
              f"{r.get('decode_dtype', 'float32')}, at most {report['config']['recipe']['max_new_tokens']} new tokens, "
              f"rows stopped at the end of turn or by the loop guard. TTFT = encode "
              f"{report['config']['recipe']['bench_audio_s']:g} s of audio + wrap the prompt + one prefill forward; "
              f"TPOT = one KV-cached decode step; peak memory: {r['peak_mem_definition']}.", ""]
    return "\n".join(lines)
