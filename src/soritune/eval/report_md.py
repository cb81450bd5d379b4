"""Markdown renderings of a score/eval report and of a comparison (report.md, compare.md)."""

from __future__ import annotations

from typing import Any

_LABELS = {
    "cer": "CER (primary, spaces removed)",
    "cer_spaced": "CER with spaces",
    "wer": "WER",
    "swer": "sWER (hypothesis re-spaced like the reference)",
    "cer_reading": "Reading-aware CER",
}


def pct(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{100 * x:.{digits}f}"


def _ci(ci: list[float] | None) -> str:
    return "n/a" if not ci else f"[{pct(ci[0])}, {pct(ci[1])}]"


def _cell(text: str, width: int = 60) -> str:
    text = text.replace("|", "\\|")
    return text if len(text) <= width else text[: width - 1] + "…"


def render_markdown(summary: dict[str, Any], report: Any = None, title: str = "soritune score",
                    worst: int = 10) -> str:
    """report.md: metrics table with numerators and denominators, CIs, hallucination indicators,
    slices, model and decoding settings when present, and the worst utterances."""
    pm = summary["per_metric"]
    norm = summary["normalization"]
    lines = [f"# {title}", "",
             f"{summary['n_utts']} utterances, {summary['n_ref_chars']} reference characters, "
             f"{summary['n_ref_words']} reference words, {summary['n_empty_refs']} empty references. "
             f"Normalisation `{norm['name']}` v{norm['version']}.", "",
             "| metric | % | errors | S | D | I | denominator | 95% CI |", "|---|---|---|---|---|---|---|---|"]
    for m, label in _LABELS.items():
        d = pm[m]
        ci = _ci(summary["ci95"].get(m)) if m in summary["ci95"] else ""
        lines.append(f"| {label} | {pct(summary[m])} | {d['errors']} | {d['sub']} | {d['del']} | {d['ins']} "
                     f"| {d['n_ref']} | {ci} |")
    h = summary["hallucination"]
    hit = "unknown" if h["max_tokens_rate"] is None else f"{pct(h['max_tokens_rate'])}% ({h['n_hit_max_tokens']})"
    lines += ["", "## Hallucination indicators", "",
              f"- insertion rate: {pct(h['insertion_rate'])}% ({h['n_insertions']} inserted characters)",
              f"- outputs with a repeated 4-gram loop: {pct(h['loop_rate'])}% ({h['n_loops']})",
              f"- empty outputs: {pct(h['empty_output_rate'])}% ({h['n_empty_outputs']})",
              f"- outputs that hit the max-token limit: {hit}"]
    if "model" in summary or "decoding" in summary:
        lines += ["", "## Model and decoding", ""]
        for key in ("model", "decoding", "timing"):
            for k, v in (summary.get(key) or {}).items():
                lines.append(f"- {key}.{k}: {v}")
    for field, groups in (summary.get("slices") or {}).items():
        lines += ["", f"## By {field}", "", "| value | utts | CER % | 95% CI | WER % | sWER % | reading CER % |",
                  "|---|---|---|---|---|---|---|"]
        for value, s in groups.items():
            lines.append(f"| {_cell(value, 30)} | {s['n_utts']} | {pct(s['cer'])} | {_ci(s['ci95']['cer'])} "
                         f"| {pct(s['wer'])} | {pct(s['swer'])} | {pct(s['cer_reading'])} |")
    if report is not None and worst:
        ranked = sorted(report.utterances, key=lambda u: u.counts["cer"].errors, reverse=True)[:worst]
        ranked = [u for u in ranked if u.counts["cer"].errors]
        if ranked:
            lines += ["", f"## Most errors (top {len(ranked)} by CER errors)", "",
                      "| id | errors / chars | reference | hypothesis |", "|---|---|---|---|"]
            for u in ranked:
                lines.append(f"| {_cell(u.id, 30)} | {u.counts['cer'].errors} / {u.n_ref_chars} "
                             f"| {_cell(u.ref)} | {_cell(u.hyp)} |")
    return "\n".join(lines) + "\n"


def render_compare(result: Any, rows: int = 15) -> str:
    """compare.md: paired differences with intervals, then the utterances that changed most."""
    lines = ["# soritune compare", "", f"A: `{result.report_a}`", f"B: `{result.report_b}`", "",
             f"{result.n_shared} shared utterances ({result.n_only_a} only in A, {result.n_only_b} only in B); "
             f"paired bootstrap, {result.n_boot} resamples, seed {result.seed}.", "",
             "| metric | A % | B % | B - A (pt) | 95% CI (pt) | P(B better) |", "|---|---|---|---|---|---|"]
    for m, p in result.metrics.items():
        ci = "n/a" if not p["ci95"] else f"[{100 * p['ci95'][0]:+.2f}, {100 * p['ci95'][1]:+.2f}]"
        lines.append(f"| {m.upper()} | {pct(p['a'])} | {pct(p['b'])} | {100 * p['diff']:+.2f} | {ci} "
                     f"| {p['p_b_better']:.3f} |")
    if result.changed:
        lines += ["", "## Utterances that changed most (CER errors, B - A)", "",
                  "| id | A err | B err | change | reference | A | B |", "|---|---|---|---|---|---|---|"]
        for c in result.changed[:rows]:
            lines.append(f"| {_cell(c['id'], 30)} | {c['a_errors']} | {c['b_errors']} | {c['delta']:+d} "
                         f"| {_cell(c['ref'], 40)} | {_cell(c['hyp_a'], 40)} | {_cell(c['hyp_b'], 40)} |")
    return "\n".join(lines) + "\n"
