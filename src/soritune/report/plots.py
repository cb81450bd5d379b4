"""Report plots (matplotlib, Agg): CER with 95% intervals, and the CER / memory / speed Pareto view."""

from __future__ import annotations

from pathlib import Path

from soritune.report.collect import System


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def cer_bars(systems: list[System], path: Path) -> Path | None:
    rows = [s for s in systems if s.cer is not None]
    if not rows:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 0.55 * len(rows) + 1.4), dpi=120)
    names = [s.name for s in rows][::-1]
    cers = [100 * s.cer for s in rows][::-1]
    lo = [100 * (s.cer - s.cer_ci95[0]) if s.cer_ci95 else 0 for s in rows][::-1]
    hi = [100 * (s.cer_ci95[1] - s.cer) if s.cer_ci95 else 0 for s in rows][::-1]
    ax.barh(names, cers, xerr=[lo, hi], color="#4c72b0", capsize=3)
    everyday = [(s.name, 100 * s.cer_everyday) for s in rows if s.cer_everyday is not None]
    if everyday:
        ax.scatter([v for _, v in everyday], [n for n, _ in everyday], color="#dd8452", zorder=3,
                   label="everyday sentences CER")
        ax.legend(loc="lower right", fontsize=8)
    for y, (v, h) in enumerate(zip(cers, hi)):  # right of the interval's upper end, clear of the error bar
        ax.text(v + h, y, f"  {v:.1f}", va="center", fontsize=8)
    ax.set_xlim(0, max(v + h for v, h in zip(cers, hi)) * 1.12 + 1)
    ax.set_xlabel("CER % on the held-out test split (95% bootstrap interval)")
    ax.set_title("Character error rate by system")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def pareto(systems: list[System], path: Path) -> Path | None:
    """CER vs peak training memory; marker area grows with decoding speed (RTFx)."""
    rows = [s for s in systems if s.cer is not None]
    if not rows:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    max_rtfx = max((s.rtfx or 0) for s in rows) or 1.0
    for s in rows:
        x = s.peak_mem_gb if s.peak_mem_gb is not None else 0.0
        size = 40 + 400 * ((s.rtfx or 0) / max_rtfx)
        ax.scatter([x], [100 * s.cer], s=size, alpha=0.7)
        label = s.name + (f"  ({s.rtfx:.1f}x RT)" if s.rtfx else "")
        ax.annotate(label, (x, 100 * s.cer), textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.set_xlabel("peak memory while training, GB (0 = not trained)")
    ax.set_ylabel("CER %")
    ax.set_title("Accuracy vs memory; marker size = decoding speed (RTFx)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
