"""Benchmark reports: DIR/summary.json through soritune.rundir (stage "bench"; bench.json links to it;
sections "infer" and "train", each written by its verb and kept when the other runs; config.yaml
holds each section's config), DIR/bench.md (tables, regenerated from bench.json), PNG plots
(latency_vs_batch.png, train_peak_memory.png).

Everything here works on the plain JSON form, so `render_markdown(read_json("bench.json"))`
rebuilds the tables of any saved run.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from soritune.jsonio import atomic_write_text, read_json, to_jsonable
from soritune.rundir import Run, read_run, write_run

SCHEMA_VERSION = 1
INFER_PLOT = "latency_vs_batch.png"
TRAIN_PLOT = "train_peak_memory.png"


def write_section(section: str, result, out: str | Path, plots: bool = True, config: BaseModel | None = None) -> dict:
    """Write one verb's section ("infer" or "train") into OUT's run (soritune.rundir: summary.json with
    stage "bench", bench.json linking to it; config.yaml holds each section's config), keeping the
    other verb's section; then bench.md and the section's plot. Returns the whole document."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = to_jsonable(result)
    if plots:
        name, plot = {"infer": (INFER_PLOT, plot_latency), "train": (TRAIN_PLOT, plot_train_memory)}[section]
        data["plots"] = [str(p.name) for p in [plot(data, out / name)] if p]
    run = read_run(out)
    before = run if run is not None and run.stage == "bench" else None
    if before is None and (out / "bench.json").is_file():  # written before the run-dir contract
        before = Run(out, "bench", {}, read_json(out / "bench.json"))
    doc = {k: v for k, v in (before.summary if before else {}).items() if k != "stage"}
    if doc.get("schema_version") != SCHEMA_VERSION:
        doc = {}
    doc.update(schema_version=SCHEMA_VERSION, **{section: data})
    configs = {k: v for k, v in (before.config if before else {}).items() if k in ("infer", "train") and k in doc}
    configs[section] = to_jsonable(config) if config is not None else None
    write_run(out, configs, doc, stage="bench", legacy=("bench.json",))
    atomic_write_text(out / "bench.md", render_markdown(doc))
    return doc


# ---- markdown ----------------------------------------------------------------------------------
def _f(x, nd: int = 1) -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, (int, float)):
        return f"{x:,.{nd}f}"
    return str(x)


def _mm(d: dict | None, nd: int = 1) -> str:
    """'median (min)' of a summary dict."""
    if not d or d.get("median") is None:
        return "-"
    return f"{_f(d['median'], nd)} ({_f(d['min'], nd)})"


def _ratio(x) -> str:
    return "-" if x is None else f"{x:.2f}x"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def _env_lines(env: dict) -> list[str]:
    v = env.get("versions", {})
    dev = (f"GPU {env['gpu_name']} ({env.get('gpu_memory_gb')} GB), driver {env.get('driver') or '?'}, "
           f"CUDA {env.get('cuda') or '?'}") if env.get("gpu_name") else "no GPU"
    return [f"- device: `{env.get('device')}`; {dev}",
            f"- CPU: {env.get('cpu_model')} ({env.get('cpu_count')} logical CPUs), threads used: {env.get('threads')}, "
            f"load average at the end (1/5/15 min): {env.get('load_average_1_5_15')}",
            "- versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val)]


def _memory_cell(m: dict) -> str:
    if m.get("gpu_peak_allocated_mb") is not None:
        return f"{_f(m['gpu_peak_allocated_mb'], 0)} / {_f(m.get('gpu_peak_reserved_mb'), 0)} / {_f(m.get('gpu_peak_device_used_mb'), 0)}"
    cell = f"{_f(m.get('load_rss_mb'), 0)} + {_f(m.get('run_rss_delta_mb'), 0)}"
    return cell + (f" (weights {_f(m['weights_mb'], 0)})" if m.get("weights_mb") is not None else "")


def infer_markdown(d: dict) -> list[str]:
    rows = d.get("rows", [])
    gpu = any(r["memory"].get("gpu_peak_allocated_mb") is not None for r in rows)
    mem_h = "GPU MB alloc / reserved / device" if gpu else "RSS MB load + run"
    lines = ["## Inference", ""]
    if d.get("command"):
        lines += [f"Command: `{d['command']}`", ""]
    w = d.get("workload", {})
    cfg = d.get("config", {})
    lines += [f"Model `{cfg.get('model')}`, {w.get('n_clips')} clips ({_f(w.get('audio_s'), 1)} s of audio, "
              f"{_f(w.get('clip_s_min'), 1)}-{_f(w.get('clip_s_max'), 1)} s each) from {w.get('source')}; "
              f"greedy, language `{cfg.get('language')}`, at most {cfg.get('max_new_tokens')} new tokens, "
              f"{cfg.get('repeats')} rounds after {cfg.get('warmup')} warm-up. Cells: median (min) over rounds; "
              f"RTFx and tokens/s: median (min). Ratios: median RTFx / peer's median RTFx, same batch size. "
              f"Memory ({'GPU' if gpu else 'CPU'}): " + ("torch peak allocated / reserved after a reset, and device "
              "memory in use (which also sees CTranslate2)" if gpu else "RSS growth while loading + growth during "
              "the system's rounds (approximate: all systems share one process; memory-mapped weights count once "
              "read); weights = parameter bytes of torch models") + ".", ""]
    header = ["system", "batch", "latency ms", "TTFT ms", "TPOT ms", "tokens/s", "RTFx", mem_h,
              "x faster-whisper", "x HF fp32 eager", "tokens", "TTFT+(n-1)TPOT err"]
    body = []
    for r in sorted(rows, key=lambda r: (r["batch_size"], r["system"] != "soritune", -r["rtfx"]["median"])):
        body.append([r["label"], str(r["batch_size"]), _mm(r["latency_ms"]), _mm(r["ttft_ms"]), _mm(r["tpot_ms"], 2),
                     _mm(r["tokens_per_s"]), _mm(r["rtfx"], 2), _memory_cell(r["memory"]),
                     _ratio(r.get("vs_faster_whisper")), _ratio(r.get("vs_hf_generate")),
                     str(r["new_tokens"]) + ("" if r.get("tokens_match", True) else " (!)"),
                     "-" if r.get("consistency_err") is None else f"{100 * r['consistency_err']:.1f}%"])
    lines += _table(header, body)
    chk = d.get("checks", {})
    if chk:
        lines += ["", f"Targets at batch {chk.get('batch_size')}: fastest soritune row **{chk.get('fastest_soritune')}** "
                  f"(RTFx {_f(chk.get('fastest_soritune_rtfx'), 2)}); vs the fastest faster-whisper row "
                  f"({chk.get('fastest_faster_whisper', '-')}): {_ratio(chk.get('vs_fastest_faster_whisper'))} "
                  f"(target >= 1.0x: {_f(chk.get('target_faster_whisper_1x'))}); vs faster-whisper at the same "
                  f"compute type: {_ratio(chk.get('vs_faster_whisper_same_dtype'))}; vs HF generate fp32 eager: "
                  f"{_ratio(chk.get('vs_hf_generate_fp32_eager'))} (target >= 3x: {_f(chk.get('target_hf_generate_3x'))}); "
                  f"TTFT + (n-1) TPOT within 10% of latency on every row: {_f(chk.get('consistency_within_10pct'))} "
                  f"(largest error {_f(100 * chk['max_consistency_err'] if chk.get('max_consistency_err') is not None else None)}%)."]
    if chk.get("fastest_soritune_padded"):
        lines += ["", f"Like for like (30-s input on both sides): fastest padded soritune row "
                  f"**{chk['fastest_soritune_padded']}**: {_ratio(chk.get('vs_fastest_faster_whisper_padded'))} the "
                  f"fastest faster-whisper row. Trimmed rows run the encoder on each batch's own length, which is "
                  f"how soritune trains (dynamic length); a model fine-tuned otherwise should be timed padded."]
    diff = [r for r in rows if r.get("tokens_vs_faster_whisper") and abs(r["tokens_vs_faster_whisper"] - 1) > 0.1]
    if diff:
        lines += ["", "Note: these rows produced >10% more or fewer tokens than their faster-whisper peer (different "
                  "feature extraction can change greedy outputs), which shifts RTFx: "
                  + ", ".join(f"{r['label']} b{r['batch_size']} ({r['tokens_vs_faster_whisper']:.2f})" for r in diff) + "."]
    lines += ["", "How TTFT/TPOT were measured:"]
    for method in sorted({r["ttft_method"] for r in rows}):
        who = sorted({r["label"].rsplit(" ", 2)[0] if r["system"] != "soritune" else f"soritune {r['backend']}"
                      for r in rows if r["ttft_method"] == method})
        lines.append(f"- {', '.join(who)}: {method}.")
    fw = next((r for r in rows if r["system"] == "faster-whisper"), None)
    if fw:
        s = {k: v for k, v in fw["settings"].items() if k not in ("ct2_dir",)}
        lines += ["", f"faster-whisper settings: `{s}`"]
    for e in d.get("errors", []):
        lines.append(f"- not measured: {e['label']} ({e['stage']}): {e['error']}")
    if d.get("plots"):
        lines += [""] + [f"![{p}]({p})" for p in d["plots"]]
    lines += ["", "Environment:"] + _env_lines(d.get("environment", {}))
    return lines


def train_markdown(d: dict) -> list[str]:
    lines = ["## Training", ""]
    if d.get("command"):
        lines += [f"Command: `{d['command']}`", ""]
    cfg = d.get("config", {})
    lines += [f"Model `{cfg.get('model')}`, batch size {cfg.get('batch_size')}, "
              f"{d.get('data', {}).get('n_clips')} clips from {d.get('data', {}).get('source')}; samples/s over the "
              f"steps after {cfg.get('warmup_steps')} warm-up step(s); each method in a fresh process.", ""]
    header = ["method", "runner", "steps timed", "samples/s", "peak memory MB", "memory kind", "trainable params",
              "encoder frames", "x recipe samples/s", "x recipe memory"]
    body = []
    for r in d.get("rows", []):
        body.append([r["method"], r["runner"], str(r.get("steps_timed")), _f(r.get("samples_per_s"), 3),
                     _f(r.get("peak_mem_mb"), 0), r.get("memory_kind", "-"), _f(r.get("trainable_params"), 0),
                     r.get("encoder_frames", "-"), _ratio(r.get("vs_recipe_samples_per_s")),
                     _ratio(r.get("vs_recipe_memory"))])
    lines += _table(header, body)
    for e in d.get("errors", []):
        lines.append(f"- not measured: {e['method']}: {e['error']}")
    if d.get("notes"):
        lines += [""] + [f"- {n}" for n in d["notes"]]
    if d.get("plots"):
        lines += [""] + [f"![{p}]({p})" for p in d["plots"]]
    lines += ["", "Environment:"] + _env_lines(d.get("environment", {}))
    return lines


def render_markdown(doc: dict) -> str:
    lines = ["# soritune benchmarks", ""]
    if doc.get("infer"):
        lines += infer_markdown(doc["infer"]) + [""]
    if doc.get("train"):
        lines += train_markdown(doc["train"]) + [""]
    return "\n".join(lines)


# ---- plots -------------------------------------------------------------------------------------
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_latency(d: dict, path: Path) -> Path | None:
    """Median latency per batch (min-max as error bars) against batch size, one line per system."""
    rows = d.get("rows", [])
    if not rows:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label in sorted({r["label"] for r in rows}):
        rs = sorted((r for r in rows if r["label"] == label), key=lambda r: r["batch_size"])
        x = [r["batch_size"] for r in rs]
        y = [r["latency_ms"]["median"] for r in rs]
        err = [[yy - r["latency_ms"]["min"] for yy, r in zip(y, rs)], [r["latency_ms"]["max"] - yy for yy, r in zip(y, rs)]]
        ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=label,
                    linestyle="-" if rs[0]["system"] == "soritune" else "--")
    ax.set_xlabel("batch size (clips decoded together)")
    ax.set_ylabel("latency per batch, ms (median; bars: min-max)")
    ax.set_xscale("log", base=2)
    sizes = sorted({r["batch_size"] for r in rows})
    ax.set_xticks(sizes, [str(b) for b in sizes])
    ax.minorticks_off()
    ax.set_yscale("log")
    ax.set_title(f"{d.get('config', {}).get('model')} on {d.get('environment', {}).get('device')}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_train_memory(d: dict, path: Path) -> Path | None:
    rows = [r for r in d.get("rows", []) if r.get("peak_mem_mb") is not None]
    if not rows:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    labels = [f"{r['method']}\n({r['runner']})" for r in rows]
    bars = ax.bar(labels, [r["peak_mem_mb"] for r in rows],
                  color=["tab:gray" if r["runner"] != "soritune" else "tab:blue" for r in rows])
    for b, r in zip(bars, rows):
        ax.annotate(f"{r['peak_mem_mb']:.0f}", (b.get_x() + b.get_width() / 2, b.get_height()), ha="center",
                    va="bottom", fontsize=8)
    ax.set_ylabel(f"peak memory, MB ({rows[0].get('memory_kind', '')})")
    ax.set_title(f"training {d.get('config', {}).get('model')}, batch {d.get('config', {}).get('batch_size')}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
