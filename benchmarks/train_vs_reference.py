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
the whole run. Every side's adapter is then scored by one and the same decoder (`soritune.infer`
torch backend, greedy, language forced, 128 new tokens) on the corpus's dev split (same templates
as train) and test split (held-out templates and terms), each decoded with the encoder input it was
trained on (soritune: trimmed; the padded sides: 30 s; soritune is scored padded too, for the
record), next to the zero-shot base model. Per split: CER and the number of looping outputs; pooled:
a paired bootstrap of soritune against the reference. Hypotheses go to `--work`/eval.json.
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
    from transformers import (
        Seq2SeqTrainer,
        Seq2SeqTrainingArguments,
        TrainerCallback,
        WhisperForConditionalGeneration,
        WhisperProcessor,
    )

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
    """Score every adapter on every held-out split, decoded with each requested encoder input.

    Per-utterance error counts come back too, so the parent can run a paired bootstrap."""
    import torch

    from soritune.audio import load_audio
    from soritune.data.manifest import read_manifest
    from soritune.eval.metrics import char_counts, has_ngram_loop
    from soritune.eval.normalize import normalize_text
    from soritune.infer import load_backend

    torch.set_num_threads(args["threads"])
    splits = {name: read_manifest(path) for name, path in args["splits"].items()}
    rows = [r for split in splits.values() for r in split]
    audios = [load_audio(r["audio"]) for r in rows]
    refs = [normalize_text(r["text"]) for r in rows]
    out: dict = {"splits": {name: len(split) for name, split in splits.items()}, "systems": {}}
    for name, (adapter, encoder_input) in args["systems"].items():
        backend = load_backend("bundled:whisper-base", adapter=adapter, encoder_input=encoder_input)
        t0 = time.perf_counter()
        hyps = [normalize_text(t.text) for t in backend.transcribe(audios, language="ko", batch_size=8,
                                                                   max_new_tokens=128)]
        counts = [char_counts(r, h) for r, h in zip(refs, hyps)]
        out["systems"][name] = {"errors": [c.errors for c in counts], "n_ref": [c.n_ref for c in counts],
                                "loops": [has_ngram_loop(h) for h in hyps], "hyps": hyps,
                                "decode_s": time.perf_counter() - t0}
    out["refs"] = refs
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


def ensure_corpus(data: Path, n: int) -> Path:
    """The synthetic lecture corpus (train/dev/test manifests) under `data`, built once."""
    from soritune.data.synth_corpus import SynthCorpusConfig, build_synth_corpus

    if not (data / "train.jsonl").exists():
        build_synth_corpus(SynthCorpusConfig(out=data, n=n, seed=0))
    return data


def systems_args(systems: dict) -> list:
    return sorted([name, *map(str, v)] for name, v in systems.items())


def score(ev: dict, system: str, split: str) -> dict:
    """CER and loop count of one system on one split (or "pooled") from child_eval's counts."""
    sizes = ev["splits"]
    lo, hi = 0, sum(sizes.values())
    if split != "pooled":
        names = list(sizes)
        lo = sum(sizes[n] for n in names[:names.index(split)])
        hi = lo + sizes[split]
    r = ev["systems"][system]
    return {"cer": sum(r["errors"][lo:hi]) / max(1, sum(r["n_ref"][lo:hi])), "loops": sum(r["loops"][lo:hi]),
            "n": hi - lo}


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
    ap.add_argument("--splits", nargs="+", default=["dev", "test"],
                    help="held-out splits of the corpus to score (dev: its vocabulary overlaps train; test: held-out "
                         "terms)")
    ap.add_argument("--reuse", action="store_true", help="reuse sides' results (and the scoring, if the same systems) from an earlier run in --work")
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/train_vs_reference.json"))
    ap.add_argument("--ce-memory", action="store_true",
                    help="only measure chunked vs plain cross-entropy peak memory (large-v3 width, 4096 tokens)")
    a = ap.parse_args()
    if a.ce_memory:
        rows = [run_child("ce_memory", {"tokens": 4096, "d_model": 1280, "vocab": 51866, "chunk": c, "threads": a.threads})
                for c in (0, 1024, 256)]
        print(json.dumps(rows, indent=2))
        return

    corpus = ensure_corpus(a.data, a.n_train)
    train = corpus / "train.jsonl"
    results, systems = [], {"zero-shot": (None, "padded")}
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
        # each side is decoded with the encoder input it was trained on; soritune also padded, for the record
        systems[side] = (r["adapter"], "trimmed" if side == "soritune" else "padded")
        if side == "soritune":
            systems["soritune@padded"] = (r["adapter"], "padded")
        print(json.dumps(results[-1]), flush=True)
    saved_eval = a.work / "eval.json"
    if a.reuse and saved_eval.exists() and json.loads(saved_eval.read_text()).get("systems_args") == systems_args(systems):
        ev = json.loads(saved_eval.read_text())
    else:
        ev = run_child("eval", {"splits": {s: str(corpus / f"{s}.jsonl") for s in a.splits}, "systems": systems,
                                "threads": a.threads})
        ev["systems_args"] = systems_args(systems)
        saved_eval.write_text(json.dumps(ev, ensure_ascii=False))
    held_out = {name: {split: score(ev, name, split) for split in [*a.splits, "pooled"]} for name in systems}
    # one looping output adds up to 128 tokens of insertions and can swamp a small set's CER: also
    # score every system on the utterances where no trained side loops
    trained = [n for n in systems if n != "zero-shot"]
    calm = [i for i in range(len(ev["refs"])) if not any(ev["systems"][n]["loops"][i] for n in trained)]
    for name in systems:
        r = ev["systems"][name]
        held_out[name]["pooled_without_loops"] = {
            "cer": sum(r["errors"][i] for i in calm) / max(1, sum(r["n_ref"][i] for i in calm)), "n": len(calm)}
    for r in results:
        r["held_out"] = held_out[r["side"]]
        r["decoded_with"] = systems[r["side"]][1]
    by = {r["side"]: r for r in results}
    report = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {a.threads} threads",
              "model": "bundled:whisper-base", "lora": LORA, "batch_size": a.batch_size, "steps": a.steps,
              "n_train": a.n_train, "splits": ev["splits"], "held_out": held_out, "sides": results}
    if "soritune" in by and "reference" in by:
        from soritune.eval.bootstrap import paired_bootstrap

        s, ref = by["soritune"], by["reference"]
        pair = paired_bootstrap(ev["systems"]["reference"]["errors"], ev["systems"]["soritune"]["errors"],
                                ev["systems"]["reference"]["n_ref"])
        report["ratio"] = {"samples_per_s": s["samples_per_s"] / ref["samples_per_s"],
                           "samples_per_s_run": s["samples_per_s_run"] / ref["samples_per_s_run"],
                           "peak_rss": s["peak_rss_gb"] / ref["peak_rss_gb"],
                           **{f"{split}_cer_delta": s["held_out"][split]["cer"] - ref["held_out"][split]["cer"]
                              for split in [*a.splits, "pooled", "pooled_without_loops"]},
                           "pooled_cer_delta_ci95": pair.ci95, "p_soritune_better": pair.p_b_better}
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2], sys.argv[3])
    else:
        main()
