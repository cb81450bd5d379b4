"""Does the speech LLM listen? An overfit diagnostic of the speech-LLM demo's model (issue #14).

Trains the demo's composition (bundled whisper-base, trimmed input + a projector + Gemma-3-270M) on the first
N transcription rows of a `soritune demo` data folder (no captions), projector only (`lora=0`, stage 1) or
projector + LoRA from the first step (`lora=1`), and every `eval_every` steps reports on the same clips:

- the teacher-forced response loss with each clip's own audio and with its batch neighbour's audio (`gap` =
  shuffled - matched: how many nats per token the audio is worth to the model),
- greedy transcripts: CER, and how many distinct transcripts the N clips get (1: the audio is ignored),
- the RMS of the projector's audio tokens next to the LLM's text-token embeddings (about 1.03 for Gemma-3).

    PYTHONPATH=src python benchmarks/speechllm_audio_dependence.py data=/tmp/dmain/data n=16 steps=100
    (key=value: n, steps, lr, lora, lora_lr, proj, popts (JSON), bs, eval_every, mnt, threads)
"""

import json
import random
import sys
import time

import numpy as np
import torch

from soritune.data.manifest import iter_manifest
from soritune.eval.metrics import cer
from soritune.speechllm import SpeechLLM, SpeechLLMConfig
from soritune.speechllm.config import DEFAULT_PROMPTS
from soritune.speechllm.data import load_clip
from soritune.speechllm.model import response_loss

ARGS = dict(data="demo/data", n=16, steps=100, lr=1e-3, bs=4, proj="salmonn", popts="{}", lora=0, lora_lr=3e-4,
            eval_every=50, mnt=40, seed=0, threads=2)
PROMPT = DEFAULT_PROMPTS["transcribe"]


def parse(argv: list[str], defaults: dict = ARGS) -> dict:
    """key=value arguments over `defaults`, each converted to its default's type (the speech-LLM probes share it)."""
    a = dict(defaults)
    for kv in argv:
        k, v = kv.split("=", 1)
        a[k] = type(defaults[k])(v)
    return a


def main(a: dict) -> None:
    torch.set_num_threads(a["threads"])
    rows = list(iter_manifest(f"{a['data']}/train.jsonl", resolve_audio=True))[: a["n"]]
    m = SpeechLLM(SpeechLLMConfig(encoder="bundled:whisper-base", llm="offline:gemma3-270m", projector=a["proj"],
                                  projector_options=json.loads(a["popts"]), encoder_input="trimmed",
                                  lora_targets=["q_proj", "v_proj", "gate_proj"]))
    if a["lora"]:
        m.enable_lora()
    for name, p in m.llm.named_parameters():
        p.requires_grad_(bool(a["lora"]) and "lora_" in name)
    clips = {r["id"]: load_clip(r) for r in rows}
    with torch.no_grad():
        enc = dict(zip(clips, m.encode_clips(list(clips.values()))))
    groups = [{"params": list(m.projector.parameters()), "lr": a["lr"]}]
    if a["lora"]:
        groups.append({"params": [p for p in m.llm.parameters() if p.requires_grad], "lr": a["lora_lr"]})
    params = [p for g in groups for p in g["params"]]
    opt = torch.optim.AdamW(groups, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 5))
    text_rms = m._embed(m.tokenizer(" ".join(r["text"] for r in rows), add_special_tokens=False).input_ids)
    print(f"text-token embedding RMS {text_rms.pow(2).mean(-1).sqrt().mean():.3f}", flush=True)

    def tf_loss(batch: list[dict], shuffle: bool = False):
        ids = [r["id"] for r in batch]
        audio = ids[1:] + ids[:1] if shuffle else ids
        inputs = m.build_inputs([clips[i] for i in audio], [PROMPT] * len(batch), [r["text"] for r in batch],
                                [enc[i] for i in audio])
        return response_loss(*m.response_logits(inputs))

    def report(step: int) -> None:
        m.train(False)
        with torch.no_grad():
            matched = np.mean([tf_loss(rows[i: i + 4]).item() for i in range(0, len(rows), 4)])
            shuffled = np.mean([tf_loss(rows[i: i + 4], True).item() for i in range(0, len(rows), 4)])
            hyps = []
            for i in range(0, len(rows), 8):
                group = rows[i: i + 8]
                hyps += m.generate_batch([clips[r["id"]] for r in group], [PROMPT] * len(group),
                                         max_new_tokens=a["mnt"])[0]
        refs = [r["text"] for r in rows]
        print(f"[step {step}] loss matched {matched:.3f} shuffled {shuffled:.3f} gap {shuffled - matched:.3f} "
              f"CER {100 * cer(refs, hyps):.1f}% distinct transcripts {len(set(hyps))}/{len(hyps)}", flush=True)
        for ref, hyp in list(zip(refs, hyps))[:5]:
            print(f"   REF {ref}\n   HYP {hyp}", flush=True)
        m.train(True)

    rng, order, t0 = random.Random(a["seed"]), [], time.time()
    m.train(True)
    for step in range(1, a["steps"] + 1):
        if len(order) < a["bs"]:
            order += rng.sample(range(len(rows)), len(rows))
        batch = [rows[order.pop()] for _ in range(a["bs"])]
        loss = tf_loss(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        if step % 10 == 0:
            with torch.no_grad():
                emb = m.audio_embeddings([clips[batch[0]["id"]]], [enc[batch[0]["id"]]])[0][0]
            print(f"step {step} loss {loss.item():.3f} audio-token RMS {emb.pow(2).mean(-1).sqrt().mean():.3f} "
                  f"{time.time() - t0:.0f} s", flush=True)
        if step % a["eval_every"] == 0 or step == a["steps"]:
            report(step)


if __name__ == "__main__":
    main(parse(sys.argv[1:]))
