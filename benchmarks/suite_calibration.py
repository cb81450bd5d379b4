"""Calibrate the hallucination gate: the suite on stock whisper-base and on the demo's LoRA of it.

    python benchmarks/suite_calibration.py --adapter /tmp/dmain/runs/lora/adapter

Runs `soritune.eval.hallucination.run_systems` (eval's greedy decoding, as the gate runs it; CTranslate2)
and writes `benchmarks/results/longform/suite_calibration.json`: each system's metrics with 95%
intervals, per-kind outputs, the suite version, wall time and machine load. The thresholds in
`soritune.eval.hallucination_gate.GateThresholds` are set from it (reasoning in that module's doc);
re-run when the suite's clips change (`SUITE_VERSION`).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="bundled:whisper-base")
    ap.add_argument("--adapter", required=True, help="the demo's LoRA adapter (merged into --model)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/longform/suite_calibration.json")
    args = ap.parse_args()

    from soritune.eval.hallucination import run_systems
    from soritune.eval.hallucination_clips import SUITE_VERSION

    systems = {"zero-shot": {"model": args.model, "backend": "ct2"},
               "lora": {"model": args.model, "adapter": args.adapter, "backend": "ct2"}}
    reports, wall_s, load = {}, {}, [round(os.getloadavg()[0], 2)]
    with tempfile.TemporaryDirectory(prefix="soritune-suite-") as tmp:
        for name, fields in systems.items():
            t0 = time.perf_counter()
            reports.update(run_systems({name: fields}, Path(tmp), threads=args.threads))
            wall_s[name] = round(time.perf_counter() - t0, 1)
            load.append(round(os.getloadavg()[0], 2))
            print(name, json.dumps(reports[name]["metrics"]), flush=True)
    result = {"command": f"python benchmarks/suite_calibration.py --adapter {args.adapter} --threads {args.threads}",
              "suite_version": SUITE_VERSION,
              "decoding": "eval defaults: greedy, language ko, max_new_tokens 225 (capped at 224), 30-s chunks at "
                          "pauses, no VAD",
              "load_avg_1min": load, "wall_s": wall_s, "systems": reports}
    Path(args.out).write_text(json.dumps(result, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
