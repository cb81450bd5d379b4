"""How good the Whisper drafts were, and how far the trained model followed them.

    python draft_diagnostic.py DEMO_OUT   # DEMO_OUT: a `soritune speechllm demo --draft ...` output folder

Redrafts the ASR test clips and the first 48 ASR training clips with the model's drafter (bundled whisper-base,
CTranslate2 int8, greedy; this commit's drafter, so loops are cut) and reports the drafts' CER, the model's
CER, the model's CER against its drafts, and how many answers equal their draft. Writes draft_diagnostic.json.
"""
import json
import sys
from pathlib import Path

from soritune.eval.metrics import cer
from soritune.speechllm.data import load_clip, read_examples
from soritune.speechllm.draft import Drafter

out = Path(sys.argv[1])
rows = [r for r in read_examples(out / "sllm" / "test.jsonl") if r["task"] == "transcribe"]
train = [r for r in read_examples(out / "sllm" / "train.jsonl") if r["task"] == "transcribe"][:48]
hyps = {json.loads(line)["id"]: json.loads(line)["hypothesis"] for line in open(out / "run" / "eval" / "hyps.jsonl")}
d = Drafter("bundled:whisper-base")
res = {}
for name, rs in (("test", rows), ("train48", train)):
    drafts = d([load_clip(r) for r in rs])
    refs = [r["response"] for r in rs]
    res[name] = {"n": len(rs), "draft_cer": cer(refs, drafts)}
    if name == "test":
        h = [hyps[r["id"]] for r in rs]
        res[name].update(model_cer=cer(refs, h), model_vs_draft_cer=cer(drafts, h),
                         equal_to_draft=sum(a.strip() == b.strip() for a, b in zip(h, drafts)))
    print(name, res[name], flush=True)
res["drafts_cut_before_a_loop"] = d.loops_cut
json.dump(res, open("draft_diagnostic.json", "w"), indent=1)
