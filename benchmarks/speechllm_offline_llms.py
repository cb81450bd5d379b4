"""Which offline LLM should a soritune speech LLM default to? Measures each installed candidate:
load time (first load converts the GGUF and caches it; the second loads the cache), parameters, peak RSS,
tokens per character of Korean lecture text (shorter = cheaper decoding and training), chat template, licence.

    PYTHONPATH=src python benchmarks/speechllm_offline_llms.py --out benchmarks/results/speechllm_offline_llms.json

Each candidate runs in its own process so peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

KOREAN = ["오늘 강의에서는 미분 방정식의 해를 구하는 방법과 라플라스 변환을 배웁니다.",
          "질문이 있으면 손을 들어 주세요. 다음 시간에는 푸리에 급수를 다룹니다.",
          "이 식에서 x의 제곱에 3을 곱하면 답은 27이 됩니다."]
CHILD = r"""
import json, resource, sys, time
import torch
torch.set_num_threads(int(sys.argv[2]))
from soritune.speechllm.llm import OFFLINE_LLMS, load_llm
spec = sys.argv[1]
t = time.perf_counter(); first = load_llm(spec); first_s = time.perf_counter() - t
t = time.perf_counter(); again = load_llm(spec); cached_s = time.perf_counter() - t
texts = json.loads(sys.argv[3])
chars = sum(len(s.replace(" ", "")) for s in texts)
tokens = sum(len(again.tokenizer(s, add_special_tokens=False).input_ids) for s in texts)
name = spec.split(":", 1)[1]
print(json.dumps({"spec": spec, "first_load_s": round(first_s, 1), "cached_load_s": round(cached_s, 1),
                  "params_m": round(again.info["params"] / 1e6, 1), "architecture": again.info["architecture"],
                  "korean_tokens_per_char": round(tokens / chars, 3), "korean_chars": chars,
                  "chat_template": "chat_template" not in again.info, "licence": OFFLINE_LLMS[name][1],
                  "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2, 2)}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--specs", default="offline:gemma3-270m,offline:smollm2-135m")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/speechllm_offline_llms.json"))
    args = ap.parse_args()
    rows = []
    for spec in args.specs.split(","):
        res = subprocess.run([sys.executable, "-c", CHILD, spec, str(args.threads), json.dumps(KOREAN)],
                             capture_output=True, text=True)
        if res.returncode:
            rows.append({"spec": spec, "error": (res.stderr.strip().splitlines() or ["?"])[-1]})
        else:
            rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
    from soritune.environment import environment

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows, "environment": environment("cpu", args.threads)}, indent=1,
                                   ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
