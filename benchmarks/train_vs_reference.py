"""Benchmark `soritune train` against the standard Whisper LoRA recipe (issue "Training").

    .venv/bin/python benchmarks/train_vs_reference.py --steps 20 --threads 2
    .venv/bin/python benchmarks/train_vs_reference.py --sides soritune soritune-padded --steps 60

Same machine, model (bundled whisper-base), data (the synthetic Korean lecture corpus), LoRA r=32
alpha=64 dropout 0.05 on q_proj,v_proj (encoder and decoder), batch size, steps, AdamW, lr 1e-3
with the same warm-up and linear decay, fp32, the same torch thread count:

- `reference`: written the way the Hugging Face PEFT Whisper example does it
  (peft examples/int8_training, without the int8 base since this is a CPU): features computed with
  `datasets.map` up front (30-s padded log-mel), `DataCollatorSpeechSeq2SeqWithPadding`,
  `Seq2SeqTrainer` + `get_peft_model`.
- `soritune`: `soritune.train.run` with its defaults (dynamic encoder length, length-grouped
  batches, features computed on the fly inside the timed loop).
- `soritune-padded`: soritune with `dynamic_length=false` (30-s inputs): isolates what the dynamic
  encoder length does to speed and to dev CER.

Each side runs in its own child process, so peak RSS (ru_maxrss) is per side. samples/s is the
batch size over the median step time after `--warmup-steps` steps (steady state), and also over
the whole run. Every side's adapter is then scored on the dev set by one and the same decoder
(`soritune.infer` torch backend: 30-s padded input, greedy, language forced, 128 new tokens) with
`soritune.eval.metrics.cer`, next to the zero-shot base model.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

LORA = dict(r=32, alpha=64, dropout=0.05, targets=["q_proj", "v_proj"])


# ---- children -------------------------------------------------------------------------------

def child_soritune(args: dict) -> dict:
    import torch

    from soritune.train import TrainConfig, run

    torch.set_num_threads(args["threads"])
    times: list[float] = []

    def progress(ev):
        if ev["event"] in ("start", "step"):
            times.append(time.perf_counter())

    cfg = TrainConfig(
        model="bundled:whisper-base", train=args["train"], out=args["out"], method="lora", lora_r=LORA["r"],
        lora_alpha=LORA["alpha"], lora_dropout=LORA["dropout"], target="qv", target_side="both",
        batch_size=args["batch_size"], max_steps=args["steps"], lr=1e-3, warmup_steps=args["warmup"],
        schedule="linear", seed=0, threads=args["threads"], dynamic_length=args["dynamic_length"],
        overwrite=True, eval_at_start=False, export="last")
    res = run(cfg, progress=progress)
    steps = [b - a for a, b in zip(times, times[1:])]
    return {"adapter": str(Path(args["out"]) / "adapter"), "step_s": steps, "samples": res.samples,
            "train_wall_s": res.train_wall_s, "final_loss": res.final_loss}


def child_reference(args: dict) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import (Seq2SeqTrainer, Seq2SeqTrainingArguments, TrainerCallback,
                              WhisperForConditionalGeneration, WhisperProcessor)

    from soritune.audio import load_audio
    from soritune.data.manifest import read_manifest
    from soritune.models import bundled

    torch.set_num_threads(args["threads"])
    model_dir = str(bundled.hf_dir())
    processor = WhisperProcessor.from_pretrained(model_dir)
    processor.tokenizer.set_prefix_tokens(language="ko", task="transcribe")
    if processor.tokenizer.pad_token is None:  # the hub's whisper tokenizers pad with <|endoftext|>
        processor.tokenizer.pad_token = processor.tokenizer.eos_token
    rows = read_manifest(args["train"])
    ds = Dataset.from_dict({"audio": [r["audio"] for r in rows], "sentence": [r["text"] for r in rows]})

    def prepare_dataset(batch):  # as in the example: 30-s log-mel features and label ids, up front
        audio = load_audio(batch["audio"])
        batch["input_features"] = processor.feature_extractor(audio, sampling_rate=16000).input_features[0]
        batch["labels"] = processor.tokenizer(batch["sentence"]).input_ids
        return batch

    t_map = time.perf_counter()
    ds = ds.map(prepare_dataset, remove_columns=ds.column_names, desc=None)
    map_s = time.perf_counter() - t_map

    class DataCollatorSpeechSeq2SeqWithPadding:  # verbatim logic of the example's collator
        def __init__(self, processor):
            self.processor = processor

        def __call__(self, features):
            input_features = [{"input_features": f["input_features"]} for f in features]
            batch = self.processor.feature_extractor.pad(input_features, return_tensors="pt")
            label_features = [{"input_ids": f["labels"]} for f in features]
            labels_batch = self.processor.tokenizer.pad(label_features, return_tensors="pt")
            labels = labels_batch["input_ids"].masked_fill(labels_batch.attention_mask.ne(1), -100)
            if (labels[:, 0] == self.processor.tokenizer.convert_tokens_to_ids("<|startoftranscript|>")).all().cpu().item():
                labels = labels[:, 1:]
            batch["labels"] = labels
            return batch

    model = WhisperForConditionalGeneration.from_pretrained(model_dir)
    model.config.forced_decoder_ids = None
    model.config.suppress_tokens = []
    model = get_peft_model(model, LoraConfig(r=LORA["r"], lora_alpha=LORA["alpha"], target_modules=LORA["targets"],
                                             lora_dropout=LORA["dropout"], bias="none"))
    times: list[float] = []

    class Clock(TrainerCallback):
        def on_step_begin(self, a, state, control, **kw):
            if not times:
                times.append(time.perf_counter())

        def on_step_end(self, a, state, control, **kw):
            times.append(time.perf_counter())

    targs = Seq2SeqTrainingArguments(
        output_dir=args["out"], per_device_train_batch_size=args["batch_size"], gradient_accumulation_steps=1,
        learning_rate=1e-3, warmup_steps=args["warmup"], max_steps=args["steps"], lr_scheduler_type="linear",
        optim="adamw_torch", use_cpu=True, fp16=False, logging_steps=5, save_strategy="no", eval_strategy="no",
        remove_unused_columns=False, label_names=["labels"], report_to=[], seed=0, dataloader_num_workers=0,
        disable_tqdm=True)
    trainer = Seq2SeqTrainer(model=model, args=targs, train_dataset=ds,
                             data_collator=DataCollatorSpeechSeq2SeqWithPadding(processor), callbacks=[Clock()])
    out = trainer.train()
    model.save_pretrained(str(Path(args["out"]) / "adapter"))
    steps = [b - a for a, b in zip(times, times[1:])]
    return {"adapter": str(Path(args["out"]) / "adapter"), "step_s": steps, "samples": args["steps"] * args["batch_size"],
            "train_wall_s": out.metrics["train_runtime"], "final_loss": out.metrics.get("train_loss"),
            "map_s": map_s, "trainer_samples_per_s": out.metrics["train_samples_per_second"]}


def child_eval(args: dict) -> dict:
    import torch

    from soritune.audio import load_audio
    from soritune.data.manifest import read_manifest
    from soritune.eval.metrics import cer
    from soritune.infer import load_backend

    torch.set_num_threads(args["threads"])
    rows = read_manifest(args["dev"])
    audios = [load_audio(r["audio"]) for r in rows]
    refs = [r["text"] for r in rows]
    out = {}
    for name, adapter in args["adapters"].items():
        backend = load_backend("bundled:whisper-base", adapter=adapter)
        hyps = [t.text for t in backend.transcribe(audios, language="ko", batch_size=8, max_new_tokens=128)]
        out[name] = cer(refs, hyps)
    return out


def child_ce_memory(args: dict) -> dict:
    """Peak RSS growth of one loss forward+backward over `tokens` x vocab, plain vs chunked CE."""
    import resource

    import torch

    from soritune.train.efficiency import ce_sum

    torch.manual_seed(0)
    proj = torch.nn.Linear(args["d_model"], args["vocab"], bias=False)
    hidden = torch.randn(1, args["tokens"], args["d_model"], requires_grad=True)
    labels = torch.randint(0, args["vocab"], (1, args["tokens"]))
    ce_sum(proj, hidden[:, :8], labels[:, :8], 0).backward()  # warm-up: allocator, kernels
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    ce_sum(proj, hidden, labels, args["chunk"]).backward()
    wall = time.perf_counter() - t0
    return {"chunk": args["chunk"], "peak_growth_gb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024 ** 2,
            "logits_gb": args["tokens"] * args["vocab"] * 4 / 1024 ** 3, "wall_s": wall}


def child_main(which: str, payload: str) -> None:
    import resource

    args = json.loads(payload)
    fn = {"soritune": child_soritune, "reference": child_reference, "eval": child_eval,
          "ce_memory": child_ce_memory}[which]
    result = fn(args)
    result["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
    print("RESULT " + json.dumps(result))


# ---- parent ---------------------------------------------------------------------------------

def run_child(which: str, args: dict) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(args.get("threads", 1)), "TOKENIZERS_PARALLELISM": "false",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, __file__, "--child", which, json.dumps(args)], capture_output=True,
                          text=True, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{which} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def ensure_corpus(data: Path, n: int) -> tuple[Path, Path]:
    try:
        from soritune.data.synth_corpus import SynthCorpusConfig, build_synth_corpus
    except ImportError:  # older checkouts: a small corpus of our own
        from soritune.audio import write_wav
        from soritune.data.manifest import write_manifest
        from soritune.data.synth import VOICES, speak

        texts = ["오늘은 미분에 대해 배워 보겠습니다", "행렬의 곱셈은 교환 법칙이 성립하지 않습니다",
                 "확률 분포의 평균을 구해 봅시다", "이 식의 양변을 x로 미분합니다", "다음 시간에는 적분을 다룹니다"]
        rows = []
        for i in range(n + 40):
            audio = speak(texts[i % len(texts)], voice=list(VOICES)[i % 10], rate=140 + (i * 7) % 60)
            path = write_wav(data / "audio" / f"u{i}.wav", audio)
            rows.append({"id": f"u{i}", "audio": str(path), "duration": len(audio) / 16000, "text": texts[i % len(texts)]})
        write_manifest(data / "train.jsonl", rows[:n])
        write_manifest(data / "dev.jsonl", rows[n:])
        return data / "train.jsonl", data / "dev.jsonl"
    build_synth_corpus(SynthCorpusConfig(out=data, n=n, seed=0))
    return data / "train.jsonl", data / "dev.jsonl"


def summarise(side: str, r: dict, batch: int, warmup: int) -> dict:
    steady = r["step_s"][warmup:] or r["step_s"]
    med = statistics.median(steady)
    return {"side": side, "samples_per_s": batch / med, "samples_per_s_run": r["samples"] / r["train_wall_s"],
            "median_step_s": med, "min_step_s": min(steady), "peak_rss_gb": r["peak_rss_gb"],
            "final_loss": r["final_loss"], "train_wall_s": r["train_wall_s"],
            **({"feature_map_s": r["map_s"]} if "map_s" in r else {})}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("/tmp/soritune-bench-train/synth"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/soritune-bench-train/runs"))
    ap.add_argument("--n-train", type=int, default=400)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2, help="LR warm-up steps (both sides)")
    ap.add_argument("--warmup-steps", type=int, default=2, help="steps left out of the steady-state timing")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sides", nargs="+", default=["soritune", "reference"],
                    choices=["soritune", "reference", "soritune-padded"])
    ap.add_argument("--dev-limit", type=int, default=None, help="score only the first N dev utterances")
    ap.add_argument("--reuse", action="store_true", help="reuse a side's result from an earlier run in --work")
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/train_vs_reference.json"))
    ap.add_argument("--ce-memory", action="store_true",
                    help="only measure chunked vs plain cross-entropy peak memory (large-v3 width, 4096 tokens)")
    a = ap.parse_args()
    if a.ce_memory:
        rows = [run_child("ce_memory", {"tokens": 4096, "d_model": 1280, "vocab": 51866, "chunk": c, "threads": a.threads})
                for c in (0, 1024, 256)]
        print(json.dumps(rows, indent=2))
        return

    train, dev = ensure_corpus(a.data, a.n_train)
    if a.dev_limit:
        from soritune.data.manifest import read_manifest, write_manifest

        limited = a.work / "dev_limited.jsonl"
        write_manifest(limited, read_manifest(dev)[:a.dev_limit])
        dev = limited
    results, adapters = [], {"zero-shot": None}
    for side in a.sides:
        common = {"train": str(train), "out": str(a.work / side), "batch_size": a.batch_size, "steps": a.steps,
                  "warmup": a.warmup, "threads": a.threads}
        saved = a.work / f"{side}.result.json"
        if a.reuse and saved.exists() and json.loads(saved.read_text()).get("args") == common:
            r = json.loads(saved.read_text())
        else:
            if side.startswith("soritune"):
                r = run_child("soritune", {**common, "dynamic_length": side == "soritune"})
            else:
                r = run_child("reference", common)
            saved.parent.mkdir(parents=True, exist_ok=True)
            saved.write_text(json.dumps({**r, "args": common}))
        results.append(summarise(side, r, a.batch_size, a.warmup_steps))
        adapters[side] = r["adapter"]
        print(json.dumps(results[-1]), flush=True)
    cers = run_child("eval", {"dev": str(dev), "adapters": adapters, "threads": a.threads})
    for r in results:
        r["dev_cer"] = cers[r["side"]]
    by = {r["side"]: r for r in results}
    report = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {a.threads} threads",
              "model": "bundled:whisper-base", "lora": LORA, "batch_size": a.batch_size, "steps": a.steps,
              "n_train": a.n_train, "dev": str(dev), "zero_shot_dev_cer": cers["zero-shot"], "sides": results}
    if "soritune" in by and "reference" in by:
        s, ref = by["soritune"], by["reference"]
        report["ratio"] = {"samples_per_s": s["samples_per_s"] / ref["samples_per_s"],
                           "samples_per_s_run": s["samples_per_s_run"] / ref["samples_per_s_run"],
                           "peak_rss": s["peak_rss_gb"] / ref["peak_rss_gb"],
                           "dev_cer_delta": s["dev_cer"] - ref["dev_cer"]}
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2], sys.argv[3])
    else:
        main()
