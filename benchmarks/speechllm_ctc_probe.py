"""Can the demo's data teach a frozen Whisper encoder's features to spell? A CTC probe (issue #14).

The speech-LLM demo's model does not learn to transcribe without a Whisper draft (README, speech LLM). This
probe asks whether any projector could, on the same data: it trains the most direct mapping there is, a
frame-stacking MLP (the SLAM projector's shape) whose outputs live in the LLM's embedding space and are scored
by CTC against the transcript's LLM tokens through the LLM's own (scaled) input embeddings (a learned blank
vector beside them; the vocabulary is the training transcripts' tokens), and reports greedy CTC CER on the
demo's held-out Kokoro slice (`lecture-kokoro`) every `eval_every` steps. The encoder runs once per clip
(frozen, trimmed input, as the demo's speech LLM runs it); the probe trains on the cached features.

    PYTHONPATH=src python benchmarks/speechllm_ctc_probe.py data=DEMO/data steps=1500 stack=4
    (key=value: data, steps, stack, lr, bs, eval_every, test_set, seed, threads, out)
"""

import json
import math
import sys
import time

import torch
import torch.nn.functional as F
from speechllm_audio_dependence import parse  # benchmarks/ is on the path when a script runs from it

from soritune.data.manifest import iter_manifest
from soritune.eval.metrics import cer
from soritune.speechllm import SpeechLLM, SpeechLLMConfig
from soritune.speechllm.data import load_clip

ARGS = dict(data="demo/data", steps=1500, stack=4, lr=1e-3, bs=8, eval_every=250, test_set="lecture-kokoro",
            seed=0, threads=2, out="")


def features(m: SpeechLLM, rows: list[dict]) -> list[torch.Tensor]:
    with torch.no_grad():
        return [torch.cat([c.features for c in m.encode_clips([load_clip(r)])[0]]).float() for r in rows]


class CTCProbe(torch.nn.Module):
    """Stack `stack` frames, a 2-layer MLP into the LLM's embedding space, logits = similarity to the vocabulary's
    input embeddings (and a learned blank), with a learned scale."""

    def __init__(self, d_enc: int, emb: torch.Tensor, stack: int):
        super().__init__()
        self.stack = stack
        self.register_buffer("emb", emb)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(stack * d_enc, 2048), torch.nn.ReLU(),
                                       torch.nn.Linear(2048, emb.shape[1]))
        self.blank = torch.nn.Parameter(torch.zeros(emb.shape[1]))
        self.log_scale = torch.nn.Parameter(torch.tensor(0.0))
        self.blank_bias = torch.nn.Parameter(torch.tensor(0.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = math.ceil(x.shape[0] / self.stack)
        h = self.mlp(F.pad(x, (0, 0, 0, n * self.stack - x.shape[0])).reshape(n, -1))
        logits = h @ torch.cat([self.blank[None], self.emb]).T / math.sqrt(h.shape[1]) * self.log_scale.exp()
        return torch.cat([logits[:, :1] + self.blank_bias, logits[:, 1:]], dim=1)


def main(a: dict) -> dict:
    torch.manual_seed(a["seed"])
    torch.set_num_threads(a["threads"])
    train = [r for r in iter_manifest(f"{a['data']}/train.jsonl", resolve_audio=True) if r["text"].strip()]
    test = [r for r in iter_manifest(f"{a['data']}/eval.jsonl", resolve_audio=True)
            if r["text"].strip() and r.get("test_set") == a["test_set"]]
    t0 = time.perf_counter()
    m = SpeechLLM(SpeechLLMConfig(encoder="bundled:whisper-base", llm="offline:gemma3-270m", projector="slam",
                                  encoder_input="trimmed"))
    f_train, f_test = features(m, train), features(m, test)
    encode_s = time.perf_counter() - t0
    tok = m.tokenizer
    y_train = [tok(r["text"], add_special_tokens=False).input_ids for r in train]
    y_test = [tok(r["text"], add_special_tokens=False).input_ids for r in test]
    vocab = sorted({t for y in y_train for t in y})
    index = {t: i + 1 for i, t in enumerate(vocab)}  # 0: blank
    emb = m.llm.get_input_embeddings()
    scaled = emb(torch.tensor(vocab)).detach().float()  # what the LLM sees for these tokens (Gemma: x sqrt(d))
    probe = CTCProbe(f_train[0].shape[1], scaled, a["stack"])
    opt = torch.optim.AdamW(probe.parameters(), lr=a["lr"], weight_decay=0.01)
    targets = [torch.tensor([index[t] for t in y]) for y in y_train]

    def transcribe(f: torch.Tensor) -> str:
        best, out, prev = probe(f).argmax(-1).tolist(), [], 0
        for q in best:
            if q != prev and q:
                out.append(vocab[q - 1])
            prev = q
        return tok.decode(out)

    curve, t1 = [], time.perf_counter()
    for step in range(1, a["steps"] + 1):
        pick = torch.randint(len(train), (a["bs"],)).tolist()
        lps = [F.log_softmax(probe(f_train[i]), -1) for i in pick]
        width = max(lp.shape[0] for lp in lps)
        loss = F.ctc_loss(torch.stack([F.pad(lp, (0, 0, 0, width - lp.shape[0])) for lp in lps], 1),
                          torch.cat([targets[i] for i in pick]), torch.tensor([lp.shape[0] for lp in lps]),
                          torch.tensor([len(targets[i]) for i in pick]), zero_infinity=True)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % a["eval_every"] == 0 or step == a["steps"]:
            with torch.no_grad():
                hyps = [transcribe(f) for f in f_test]
                train_hyps = [transcribe(f_train[i]) for i in range(min(48, len(train)))]
            row = {"step": step, "loss": round(loss.item(), 4), "test_cer": round(cer([r["text"] for r in test], hyps), 4),
                   "train_cer_first48": round(cer([r["text"] for r in train[:48]], train_hyps), 4),
                   "train_s": round(time.perf_counter() - t1, 1)}
            curve.append(row)
            print(json.dumps(row), flush=True)
    oov = sum(t not in index for y in y_test for t in y)
    result = {"args": a, "train_utts": len(train), "train_audio_h": round(sum(r["duration"] for r in train) / 3600, 3),
              "test_utts": len(test), "vocab": len(vocab), "test_tokens": sum(map(len, y_test)), "test_tokens_oov": oov,
              "frames_per_token": round(sum(f.shape[0] / a["stack"] for f in f_train) / sum(map(len, y_train)), 2),
              "encode_s": round(encode_s, 1), "curve": curve,
              "examples": [{"ref": r["text"], "hyp": h} for r, h in list(zip(test, hyps))[:6]]}
    if a["out"]:
        with open(a["out"], "w") as fh:
            json.dump(result, fh, ensure_ascii=False, indent=1)
    return result


if __name__ == "__main__":
    main(parse(sys.argv[1:], ARGS))
