"""The sweep's table (Markdown) and curve (PNG): CER and latency against sparsity, knee marked."""

from __future__ import annotations

from pathlib import Path


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def _num(x, fmt: str = "{:.3f}") -> str:
    return "-" if x is None else fmt.format(x)


def write_markdown(result, path: Path) -> Path:
    from soritune.jsonio import atomic_write_text

    lines = [f"# Sparsity sweep ({result.method})", "",
             (f"Evaluation: {result.details.get('n_eval')} utterances from {result.details.get('eval_set')}. "
              f"Knee (largest sparsity within +{result.tolerance_points:g} CER points of dense, all smaller ones "
              f"too): **{_num(result.knee_sparsity, '{:.0%}')}**; published LoRA + lottery-ticket knee: "
              f"{result.published_knee:.0%}."), "",
             "| sparsity | CER % | delta (points) | file MB (dense) | CSR MB | decode median s | RTFx | CSR/dense matmul speed-up (decode, encoder) |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for p in result.points:
        bench = p.csr_matmul_speedup or {}
        sp = f"{_num(bench.get('decode_8'), '{:.2f}')}x, {_num(bench.get('encoder_1500'), '{:.2f}')}x" if bench else "-"
        lines.append(f"| {p.sparsity:.0%} | {_pct(p.cer)} | {_num(p.cer_delta_points, '{:+.2f}')} | {p.file_mb:.1f} | "
                     f"{_num(p.csr_mb, '{:.1f}')} | {_num(p.latency_median_s)} | {_num(p.rtfx, '{:.2f}')} | {sp} |")
    lines += ["", f"Note: {result.note}.", ""]
    return atomic_write_text(path, "\n".join(lines))


def write_png(result, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = sorted(result.points, key=lambda p: p.sparsity)
    xs = [100 * p.sparsity for p in pts]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(xs, [100 * p.cer if p.cer is not None else float("nan") for p in pts], "o-", label="CER")
    base = pts[0].cer if pts and pts[0].sparsity == 0 and pts[0].cer is not None else None
    if base is not None:
        ax1.axhline(100 * base + result.tolerance_points, color="grey", ls=":", label=f"dense +{result.tolerance_points:g} pt")
    if result.knee_sparsity is not None:
        ax1.axvline(100 * result.knee_sparsity, color="tab:green", ls="--", label=f"our knee {result.knee_sparsity:.0%}")
    ax1.axvline(100 * result.published_knee, color="tab:red", ls=":", alpha=0.6, label="published knee 50%")
    ax1.set_xlabel("sparsity of prunable weights (%)")
    ax1.set_ylabel("CER (%)")
    ax1.set_title(f"CER vs sparsity ({result.method})")
    ax1.legend(fontsize=8)
    ax2.plot(xs, [p.latency_median_s for p in pts], "s-", color="tab:orange", label="decode median s (dense kernels)")
    ax2.set_xlabel("sparsity of prunable weights (%)")
    ax2.set_ylabel("seconds")
    ax3 = ax2.twinx()
    ax3.plot(xs, [p.csr_mb if p.csr_mb is not None else p.file_mb for p in pts], "^--", color="tab:purple",
             label="CSR MB (dense file MB at 0%)")
    ax3.set_ylabel("MB")
    ax2.set_title("latency and sparse-storage size")
    h1, l1 = ax2.get_legend_handles_labels()
    h2, l2 = ax3.get_legend_handles_labels()
    ax2.legend(h1 + h2, l1 + l2, fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
