"""Benchmark `soritune prepare kspon` on a synthetic KsponSpeech-layout tree.

    .venv/bin/python benchmarks/prepare_kspon.py --n 50000
    .venv/bin/python benchmarks/prepare_kspon.py --n 50000 --source txt --workers 1 2 --repeats 3

Writes N utterances in the KsponSpeech layout (CP949 `.txt` with ETRI marks beside headerless
16 kHz PCM, plus `KsponSpeech_scripts/*.trn`; about 2% carry defects to be quarantined), then
runs the real CLI (`soritune prepare kspon ROOT --out DIR`) in a child process, timing it from
launch to exit (interpreter start, listing, workers, merge, report: everything) and sampling the
resident memory of the whole process tree (parent + workers, summed) every 20 ms.

`--source trn` reads the transcripts from the scripts (one file), `txt` hides the scripts so
every utterance's `.txt` is opened and decoded (620k small files on the real corpus), `both`
runs both. Each configuration: one warm-up run, then `--repeats` timed runs; median and min
reported. The file cache is warm (the tree was just written), as it is on a re-run; a cold first
pass over a real disk is bounded by the disk instead. Target (issue #data-8): >= 1,000
utterances/s and peak RSS < 2 GB at N = 50,000 on the 2-core CI machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def tree_rss_bytes(pid: int) -> int:
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc] + proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def run_prepare(root: Path, out: Path, workers: int) -> dict:
    """One timed CLI run; returns wall seconds, peak tree RSS, and the report."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-c", "import sys; from soritune.cli import main; main(sys.argv[1:])",
           "prepare", "kspon", str(root), "--out", str(out), "--workers", str(workers)]
    peak = 0
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss_bytes(proc.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate()
    wall_s = time.perf_counter() - t0
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"prepare failed ({proc.returncode}):\n{stderr[-3000:]}")
    report = json.loads((out / "prepare_report.json").read_text(encoding="utf-8"))
    return {"wall_s": wall_s, "peak_rss_gb": peak / 1e9, "report": report, "stdout": stdout.strip().splitlines()[-1:]}


def bench(root: Path, out: Path, n: int, workers: int, repeats: int, label: str) -> dict:
    run_prepare(root, out, workers)  # warm-up
    runs = [run_prepare(root, out, workers) for _ in range(repeats)]
    walls = [r["wall_s"] for r in runs]
    report = runs[-1]["report"]
    assert report["inputs"] == n and report["accounted"], report
    result = {
        "source": label, "workers": workers, "n": n, "repeats": repeats,
        "wall_s_median": statistics.median(walls), "wall_s_min": min(walls),
        "utterances_per_s_median": n / statistics.median(walls), "utterances_per_s_best": n / min(walls),
        "peak_rss_gb_max": max(r["peak_rss_gb"] for r in runs),
        "in_process_utterances_per_s": report["utterances_per_s"],
        "kept": report["kept"], "quarantined": report["reasons"],
    }
    print(f"[{label}, {workers} worker(s)] {n:,} utt: median {result['wall_s_median']:.2f} s "
          f"({result['utterances_per_s_median']:,.0f} utt/s; best {result['utterances_per_s_best']:,.0f}), "
          f"peak RSS (all processes) {result['peak_rss_gb_max']:.2f} GB; quarantined {report['reasons']}", flush=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=50000, help="utterances in the synthetic tree")
    ap.add_argument("--workers", type=int, nargs="+", default=[2], help="worker counts to run (e.g. 1 2)")
    ap.add_argument("--source", choices=("trn", "txt", "both"), default="both", help="transcripts from scripts or .txt")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs after one warm-up")
    ap.add_argument("--dir", type=Path, default=None, help="work folder (default: a temporary one, removed)")
    ap.add_argument("--sparse", action="store_true", help="sparse PCM files (same timings: prepare only stats them)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()

    from soritune.data.corpora.kspon_fake import write_kspon_tree

    work = args.dir or Path(tempfile.mkdtemp(prefix="soritune-bench-kspon-"))
    root = work / "KsponSpeech"
    try:
        t0 = time.perf_counter()
        if not (root / "KsponSpeech_scripts").exists():
            shutil.rmtree(root, ignore_errors=True)
            tree = write_kspon_tree(root, args.n, sparse=args.sparse, script_encoding="utf-8")
            print(f"wrote {args.n:,} utterances ({tree.counts}) in {time.perf_counter() - t0:.1f} s under {root}", flush=True)
        results = []
        sources = ("trn", "txt") if args.source == "both" else (args.source,)
        for source in sources:
            scripts, hidden = root / "KsponSpeech_scripts", work / "scripts_hidden"
            if source == "txt" and scripts.exists():
                scripts.rename(hidden)
            try:
                for w in args.workers:
                    results.append(bench(root, work / "out", args.n, w, args.repeats, source))
            finally:
                if hidden.exists():
                    hidden.rename(scripts)
        summary = {"benchmark": "prepare_kspon", "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                                             "python": platform.python_version()},
                   "sparse_audio": args.sparse, "results": results}
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
