"""Validate `soritune plan`: predicted vs measured on this CPU, the published VRAM tables, and the
"will it fit?" table for the README.

    python benchmarks/plan_validate.py cpu    --out benchmarks/results/plan   # planner vs real steps here
    python benchmarks/plan_validate.py papers --out benchmarks/results/plan   # published GB vs prediction
    python benchmarks/plan_validate.py table  --out benchmarks/results/plan   # will-it-fit (docs/plan.md)
    python benchmarks/plan_validate.py report --out benchmarks/results/plan --docs docs/plan.md

cpu: for each row the plan (fake tensors) and, in a fresh process, the same two training steps on real
tensors (real bitsandbytes on quantised bases) under the same ledger, plus the process's RSS growth
over model building and the steps. The ratio predicted / measured is the planner's error here.
papers: the open assumptions of each published setup (batch size, gradient checkpointing) as ranges:
the leanest (batch 1, checkpointing) and the hungriest (batch 16, none) combination are traced.
table: batches 1 and 16 are traced; batch 8 is interpolated phase by phase (each phase's peak is
linear in the batch), and one cell is also traced directly to check the interpolation.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

GB = 1024 ** 3
# ordered so that a partial run already covers every model and method
CPU_ROWS = [("tiny:", "full", 1), ("tiny:", "lora", 8), ("random:base", "qlora4", 1), ("random:small", "full", 8),
            ("random:base", "qlora8", 8), ("random:small", "qlora4", 8), ("random:base", "full", 1),
            ("random:small", "lora", 1), ("tiny:", "qlora8", 8), ("random:base", "lora", 8),
            ("random:small", "qlora8", 1), ("random:base", "qlora4", 8), ("random:small", "full", 1),
            ("random:base", "full", 8), ("random:small", "lora", 8), ("random:small", "qlora4", 1)]
CPU_SHAPE = {"precision": "fp32", "audio_s": 4.0, "label_tokens": 32, "chunked_ce": 0, "gpu_foreach": False,
                 "cuda_context_gb": 0.0, "cublas_workspace_gb": 0.0, "allocator_overhead": 0.0}


def _cfg(**kw):
    from soritune.plan.config import PlanConfig

    return PlanConfig(**kw)


def measure_one(spec: dict) -> dict:
    """In this (fresh) process: the real steps under the ledger, and RSS growth over them."""
    import torch

    from soritune.bench.memory import MemoryMeter
    from soritune.plan.trace import trace_step

    torch.set_num_threads(1)
    meter = MemoryMeter("cpu", interval_s=0.002).start()
    t = trace_step(_cfg(**spec), fake=False)
    reading = meter.stop()
    return {"measured_gb": t.ledger.peak_bytes / GB, "rss_growth_gb": reading.rss_delta_mb / 1024,
            "measured_at": t.ledger.peak_phase, "measured_wall_s": t.wall_s}


def run_cpu(out: Path) -> list[dict]:
    from soritune.plan.trace import trace_step

    rows = _read(out, "cpu")
    done = {(r["model"], r["method"], r["batch_size"]) for r in rows}
    for model, method, batch in CPU_ROWS:
        if (model, method, batch) in done:
            continue
        spec = dict(CPU_SHAPE, model=model, method=method, batch_size=batch)
        pred = trace_step(_cfg(**spec), fake=True)
        proc = subprocess.run([sys.executable, __file__, "measure", json.dumps(spec)], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            real = {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"rc {proc.returncode}"}
        else:
            real = json.loads(proc.stdout.strip().splitlines()[-1])
        row = {"model": model, "method": method, "batch_size": batch, "predicted_gb": pred.ledger.peak_bytes / GB,
               "predicted_at": pred.ledger.peak_phase, "plan_wall_s": pred.wall_s, **real}
        if "measured_gb" in row:
            row["ratio"] = row["predicted_gb"] / row["measured_gb"]
            row["ratio_rss"] = row["predicted_gb"] / row["rss_growth_gb"] if row["rss_growth_gb"] > 0 else None
        rows.append(row)
        print(json.dumps(row), flush=True)
        _write(out, "cpu", rows, CPU_SHAPE)
    return rows


# published setups: (name, published GB, card, plan fields, open assumptions as (lean, hungry))
PAPERS = [
    ("on-device paper: large-v3 full FT", 32.0, "A6000", {"model": "random:large-v3", "method": "full"}),
    ("on-device paper: large-v3 LoRA", 11.0, "A6000", {"model": "random:large-v3", "method": "lora"}),
    ("on-device paper: large-v3 LoRA + 8-bit base", 6.9, "A6000", {"model": "random:large-v3", "method": "qlora8"}),
    ("on-device paper: large-v3 LoRA + 4-bit base", 5.7, "A6000", {"model": "random:large-v3", "method": "qlora4"}),
    ("lecture paper: large-v2 8-bit base, LoRA r=32 q,v, batch 16 x 4 acc.", 6.25, "RTX 3090",
     {"model": "random:large-v2", "method": "qlora8", "lora_r": 32, "grad_accum": 4}),
    ("lecture paper: small full FT", 24.35, "RTX 3090", {"model": "random:small", "method": "full"}),
    ("lecture paper: small full FT, eager attention (transformers' Whisper default before SDPA)", 24.35, "RTX 3090",
     {"model": "random:small", "method": "full", "attn_implementation": "eager"}),
]
PAPER_SHAPE = {"precision": "fp16-mixed", "audio_s": 30.0, "label_tokens": 128, "chunked_ce": 0, "target": "qv"}


def run_papers(out: Path, batches=(1, 16), only: str | None = None) -> list[dict]:
    from soritune.plan.planner import plan

    rows = _read(out, "papers")
    for name, published, card, fields in PAPERS:
        if any(r["setup"] == name for r in rows) or (only and only not in name):
            continue
        fixed = fields.get("grad_accum") == 4  # the lecture paper states batch 16 x 4
        lo_b, hi_b = (16, 16) if fixed else batches
        base = dict(PAPER_SHAPE, **fields)
        lean = plan(_cfg(**base, batch_size=lo_b, gradient_checkpointing=True))
        hungry = plan(_cfg(**base, batch_size=hi_b, gradient_checkpointing=False))
        row = {"setup": name, "card": card, "published_gb": published, "batch_range": [lo_b, hi_b],
               "predicted_range_gb": [lean.peak_gb, hungry.peak_gb],
               "within_range": lean.peak_gb <= published <= hungry.peak_gb,
               "lean": {"batch_size": lo_b, "gradient_checkpointing": True, "breakdown": lean.breakdown,
                        "peak_at": lean.peak_at},
               "hungry": {"batch_size": hi_b, "gradient_checkpointing": False, "breakdown": hungry.breakdown,
                          "peak_at": hungry.peak_at},
               "trace_wall_s": lean.trace_wall_s + hungry.trace_wall_s}
        rows.append(row)
        print(json.dumps(row), flush=True)
        _write(out, "papers", rows, PAPER_SHAPE)
    return rows


TABLE_MODELS = ("small", "medium", "large-v3", "large-v3-turbo")
TABLE_METHODS = ("full", "lora", "qlora8", "qlora4")
CARDS = (8, 12, 16, 24, 48)
TABLE_SHAPE = {"precision": "bf16-mixed", "audio_s": 30.0, "label_tokens": 128, "target": "qv", "lora_r": 32}


def interpolate(p1, p16, b: int) -> float:
    """peak_gb at batch b from traces at 1 and 16: each phase's traced peak is linear in the batch."""
    ph = max(a + (p16.phase_peaks_gb.get(k, a) - a) * (b - 1) / 15 for k, a in p1.phase_peaks_gb.items())
    cfg = p1.config
    return ph * (1 + cfg["allocator_overhead"]) + cfg["cuda_context_gb"] + cfg["cublas_workspace_gb"]


def run_table(out: Path, only: str | None = None) -> list[dict]:
    from soritune.plan.planner import plan

    rows = _read(out, "table")
    done = {(r["model"], r["method"]) for r in rows}
    for arch in TABLE_MODELS:
        if only and arch != only:
            continue
        for method in TABLE_METHODS:
            if (f"random:{arch}", method) in done:
                continue
            p1, p16 = (plan(_cfg(**TABLE_SHAPE, model=f"random:{arch}", method=method, batch_size=b)) for b in (1, 16))
            peaks = {1: p1.peak_gb, 8: round(interpolate(p1, p16, 8), 4), 16: p16.peak_gb}
            rows.append({"model": p1.model, "method": method, "peak_gb": peaks,
                         "smallest_card_gb": {b: next((c for c in CARDS if v <= c), None) for b, v in peaks.items()},
                         "peak_at": {1: p1.peak_at, 16: p16.peak_at}, "trace_wall_s": p1.trace_wall_s + p16.trace_wall_s})
            print(json.dumps(rows[-1]), flush=True)
            _write(out, "table", rows, TABLE_SHAPE)
    if only and only != "small":
        return rows
    check = plan(_cfg(**TABLE_SHAPE, model="random:small", method="lora", batch_size=8)).peak_gb
    got = next(r for r in rows if r["model"] == "random:small" and r["method"] == "lora")["peak_gb"]
    _write(out, "table", rows, dict(TABLE_SHAPE, interpolation_check={"cell": "small lora batch 8", "traced_gb": check,
                                                                       "interpolated_gb": got.get(8, got.get("8"))}))
    return rows


def _gather(out: Path, name: str) -> tuple[list[dict], dict]:
    """Rows of `name` from out/name.json and every out/parts/*/name.json (parallel runs)."""
    rows, meta = [], {}
    for path in [out / f"{name}.json", *sorted((out / "parts").glob(f"*/{name}.json"))]:
        if path.exists():
            data = json.loads(path.read_text())
            rows += data["rows"]
            meta = {**data, **meta}
    return rows, meta


def _fmt(x, nd=2):
    return "-" if x is None else f"{x:.{nd}f}"


def report(out: Path, docs: Path | None) -> None:
    """Markdown: out/cpu.md, out/papers.md, out/table.md (and docs/plan.md's table when asked)."""
    cpu, _cmeta = _gather(out, "cpu")
    lines = [("| model | method | batch | predicted GB | measured GB (ledger) | ratio | RSS growth GB | "
             "predicted / RSS | peak at |"), "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in cpu:
        lines.append(f"| {r['model']} | {r['method']} | {r['batch_size']} | {_fmt(r['predicted_gb'], 4)} | "
                     f"{_fmt(r.get('measured_gb'), 4)} | {_fmt(r.get('ratio'), 3)} | {_fmt(r.get('rss_growth_gb'), 3)} | "
                     f"{_fmt(r.get('ratio_rss'), 2)} | {r['predicted_at']} |" if "error" not in r else
                     f"| {r['model']} | {r['method']} | {r['batch_size']} | {_fmt(r['predicted_gb'], 4)} | error: {r['error']} | | | | |")
    (out / "cpu.md").write_text("\n".join(lines) + "\n")
    papers, _ = _gather(out, "papers")
    lines = [("| setup | card | published GB | soritune, batch range | predicted GB (batch lo + checkpointing .. "
             "batch hi, none) | published inside? |"), "|---|---|---:|---|---:|---|"]
    for r in papers:
        lo, hi = r["predicted_range_gb"]
        lines.append(f"| {r['setup']} | {r['card']} | {r['published_gb']:g} | {r['batch_range'][0]}..{r['batch_range'][1]} | "
                     f"{lo:.1f} .. {hi:.1f} | {'yes' if r['within_range'] else 'no'} |")
    (out / "papers.md").write_text("\n".join(lines) + "\n")
    table, _ = _gather(out, "table")
    order = {(f"random:{a}", m): (i, j) for i, a in enumerate(TABLE_MODELS) for j, m in enumerate(TABLE_METHODS)}
    table.sort(key=lambda r: order.get((r["model"], r["method"]), (99, 99)))
    names = {"full": "full", "lora": "LoRA", "qlora8": "QLoRA-8", "qlora4": "QLoRA-4"}
    lines = ["| model | method | batch 1: GB (smallest card) | batch 8 | batch 16 |", "|---|---|---|---|---|"]
    for r in table:
        cells = []
        for b in ("1", "8", "16"):
            gb = r["peak_gb"].get(b, r["peak_gb"].get(int(b)))
            card = r["smallest_card_gb"].get(b, r["smallest_card_gb"].get(int(b)))
            approx = "~" if b == "8" else ""  # interpolated
            cells.append(f"{approx}{gb:.1f} ({card} GB card)" if card else f"{approx}{gb:.1f} (over 48 GB)")
        lines.append(f"| {r['model'].split(':')[1]} | {names[r['method']]} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    (out / "table.md").write_text(text)
    if docs is not None:
        doc = docs.read_text()
        start, end = "<!-- plan-table -->", "<!-- /plan-table -->"
        if start in doc:
            doc = doc[:doc.index(start) + len(start)] + "\n" + text + doc[doc.index(end):]
            docs.write_text(doc)


def _read(out: Path, name: str) -> list[dict]:
    path = out / f"{name}.json"
    return json.loads(path.read_text())["rows"] if path.exists() else []


def _write(out: Path, name: str, rows: list[dict], shape: dict) -> None:
    import platform

    import torch

    from soritune.jsonio import write_json

    out.mkdir(parents=True, exist_ok=True)
    write_json(out / f"{name}.json", {"rows": rows, "shape": shape, "torch": torch.__version__,
                                      "machine": platform.machine(), "threads": torch.get_num_threads(),
                                      "written": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["cpu", "papers", "table", "measure", "report"])
    ap.add_argument("--docs", type=Path, help="report: also put the table into this markdown file")
    ap.add_argument("spec", nargs="?", help="measure: the plan fields as JSON (internal)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/plan"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", help="table: one architecture; papers: setups whose name contains this")
    args = ap.parse_args()
    import warnings

    import torch

    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    if args.what == "report":
        report(args.out, args.docs)
    elif args.what == "measure":
        print(json.dumps(measure_one(json.loads(args.spec))))
    else:
        if args.what == "cpu":
            run_cpu(args.out)
        else:
            {"papers": run_papers, "table": run_table}[args.what](args.out, only=args.only)


if __name__ == "__main__":
    main()
