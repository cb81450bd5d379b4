"""Synthesis throughput of each backend (utterances/s on 2 worker processes), through the corpus builder.

    PYTHONPATH=src .venv/bin/python benchmarks/synth_throughput.py --n 40

Builds the same N train sentences (templates and prose, seed 0) once per backend with `workers=2`
and an empty Kokoro cache, timing the build (wall) and counting CPU seconds of the process and its
workers. On a shared machine the wall time is inflated by other load; CPU seconds per utterance are
not, and `2 / cpu_s_per_utt` estimates the rate on two idle cores. Writes
benchmarks/results/synth_throughput.json with the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from soritune.data.synth_corpus import SynthCorpusConfig, build_synth_corpus

RESULT = Path(__file__).resolve().parent / "results" / "synth_throughput.json"


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def measure(backend: str, n: int, workers: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SORITUNE_CACHE"] = str(Path(tmp) / "cache")  # no cached Kokoro clips
        config = SynthCorpusConfig(out=Path(tmp) / "corpus", n=n, n_dev=0, n_test=0, n_everyday=0, seed=0,
                                   backend=backend, workers=workers)
        load = os.getloadavg()[0]
        t, cpu = time.perf_counter(), _cpu()
        res = build_synth_corpus(config)
        wall, cpu_s = time.perf_counter() - t, _cpu() - cpu
    audio_s = res.details["duration_s"]["train"]
    return {"backend": backend, "utterances": n, "workers": workers, "wall_s": round(wall, 2),
            "utterances_per_s": round(n / wall, 3), "audio_s": round(audio_s, 1),
            "realtime_factor": round(audio_s / wall, 2), "cpu_s": round(cpu_s, 1),
            "cpu_s_per_utterance": round(cpu_s / n, 3),
            "idle_estimate_utterances_per_s": round(workers * n / cpu_s, 3) if cpu_s else None,
            "load_avg_1min_before": round(load, 2), "load_avg_1min_after": round(os.getloadavg()[0], 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--backends", nargs="+", default=["espeak", "kokoro"])
    args = ap.parse_args()
    rows = [measure(b, args.n, args.workers) for b in args.backends]
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps({"machine_cores": os.cpu_count(), "rows": rows}, indent=2) + "\n")
    for r in rows:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
