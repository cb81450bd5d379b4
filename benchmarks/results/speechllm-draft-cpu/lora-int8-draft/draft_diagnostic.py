"""The drafts' own CER and how far the model followed them, for a `--draft ct2:DIR` run.

    python draft_diagnostic.py DEMO_OUT ct2:DEMO/runs/ct2-int8   # writes draft_diagnostic.json
"""
import json
import sys

from soritune.eval.metrics import cer
from soritune.speechllm.data import load_clip, read_examples
from soritune.speechllm.draft import Drafter

if __name__ == "__main__":
    out = sys.argv[1]
    rows = [r for r in read_examples(f"{out}/sllm/test.jsonl") if r["task"] == "transcribe"]
    hyps = {json.loads(line)["id"]: json.loads(line)["hypothesis"] for line in open(f"{out}/run/eval/hyps.jsonl")}
    d = Drafter(sys.argv[2])
    drafts = d([load_clip(r) for r in rows])
    refs, h = [r["response"] for r in rows], [hyps[r["id"]] for r in rows]
    res = {"n": len(rows), "draft_cer": cer(refs, drafts), "model_cer": cer(refs, h), "model_vs_draft_cer": cer(drafts, h),
           "equal_to_draft": sum(a.strip() == b.strip() for a, b in zip(h, drafts)), "loops_cut": d.loops_cut,
           "differing": [{"ref": r, "draft": a, "model": b} for r, a, b in zip(refs, drafts, h) if a.strip() != b.strip()][:12]}
    train = [r for r in read_examples(f"{out}/sllm/train.jsonl") if r["task"] == "transcribe"][:48]
    cut = d.loops_cut
    res["train48_draft_cer"] = cer([r["response"] for r in train], d([load_clip(r) for r in train]))
    res["train48_loops_cut"] = d.loops_cut - cut
    json.dump(res, open("draft_diagnostic.json", "w"), ensure_ascii=False, indent=1)
    print({k: v for k, v in res.items() if k != "differing"})
