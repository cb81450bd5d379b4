"""Report rendering: report.json, a Markdown table, and a self-contained HTML page (images inlined)."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from soritune.report.collect import KEYS, System

COLUMNS = [("system", "system"), ("cer", "CER %"), ("cer_ci95", "95% CI"), ("wer", "WER %"),
           ("cer_reading", "reading CER %"), ("cer_everyday", "everyday CER %"), ("train_wall_s", "train s"),
           ("peak_mem_gb", "peak mem GB"), ("rtfx", "RTFx"), ("size_mb", "size MB"), ("trainable_params", "trainable")]


def _fmt(key: str, value) -> str:
    if value is None:
        return "–"
    if key in ("cer", "wer", "cer_reading", "cer_everyday"):
        return f"{100 * value:.2f}"
    if key == "cer_ci95":
        return f"{100 * value[0]:.1f}–{100 * value[1]:.1f}"
    if key == "trainable_params":
        return f"{value / 1e6:.2f}M" if value >= 1e5 else str(value)
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def systems_json(systems: list[System]) -> dict:
    out = {}
    for s in systems:
        out[s.name] = {k: getattr(s, k) for k in KEYS}
        out[s.name].update({"cer_everyday": s.cer_everyday, "n_utts": s.n_utts, "sources": s.sources,
                            "examples": s.examples, **s.extra})
    return out


def markdown_table(systems: list[System]) -> str:
    head = "| " + " | ".join(t for _, t in COLUMNS) + " |"
    sep = "|" + "|".join("---" for _ in COLUMNS) + "|"
    rows = ["| " + " | ".join(s.name if k == "system" else _fmt(k, getattr(s, k)) for k, _ in COLUMNS) + " |"
            for s in systems]
    return "\n".join([head, sep, *rows])


Tables = dict[str, tuple[list[str], list[list[str]]]]  # title -> (header, rows): tables beside the systems'


def markdown(systems: list[System], env: dict, plots: dict[str, Path], title: str, notes: list[str],
             tables: Tables | None = None) -> str:
    parts = [f"# {title}", "", markdown_table(systems), ""]
    parts += [f"- {n}" for n in notes] + ([""] if notes else [])
    for name, (header, rows) in (tables or {}).items():
        parts += [f"## {name}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        parts += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows] + [""]
    for name, p in plots.items():
        parts.append(f"![{name}](plots/{p.name})")
    parts += ["", "## Worst utterances", ""]
    for s in systems:
        if s.examples:
            parts.append(f"### {s.name}")
            for ex in s.examples:
                parts += [f"- `{ex['id']}` ({ex['errors']} errors)", f"  - ref: {ex['ref']}", f"  - hyp: {ex['hyp']}"]
            parts.append("")
    parts += ["## Environment", "", "```", *[f"{k}: {v}" for k, v in env.items()], "```", ""]
    return "\n".join(parts)


def aligned_html(ref: str, hyp: str) -> tuple[str, str]:
    """Character alignment (rapidfuzz opcodes): substitutions, deletions and insertions highlighted."""
    from rapidfuzz.distance import Levenshtein

    r_out, h_out = [], []
    for tag, i1, i2, j1, j2 in Levenshtein.opcodes(ref, hyp):
        r, h = html.escape(ref[i1:i2]), html.escape(hyp[j1:j2])
        if tag == "equal":
            r_out.append(r)
            h_out.append(h)
        elif tag == "replace":
            r_out.append(f'<span class="sub">{r}</span>')
            h_out.append(f'<span class="sub">{h}</span>')
        elif tag == "delete":
            r_out.append(f'<span class="del">{r}</span>')
        else:
            h_out.append(f'<span class="ins">{h}</span>')
    return "".join(r_out), "".join(h_out)


CSS = """
body{font-family:system-ui,-apple-system,"Noto Sans KR",sans-serif;margin:0 auto;max-width:980px;padding:12px;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}.wrap{overflow-x:auto}
table{border-collapse:collapse;font-size:.9em;min-width:100%}th,td{border-bottom:1px solid #ddd;padding:6px 8px;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}tr:hover{background:#f6f8fa}img{max-width:100%;height:auto}
.ex{font-size:.9em;margin:.4em 0 .8em;word-break:break-all}.ex div{margin:2px 0}.sub{background:#ffe08a}
.del{background:#ffb3b3;text-decoration:line-through}.ins{background:#b3e6b3}.note{color:#555;font-size:.9em}
pre{background:#f6f8fa;padding:8px;overflow-x:auto;font-size:.8em}
"""


def html_page(systems: list[System], env: dict, plots: dict[str, Path], title: str, notes: list[str],
              tables: Tables | None = None) -> str:
    head = "".join(f"<th>{html.escape(t)}</th>" for _, t in COLUMNS)
    body = "".join("<tr>" + "".join(
        f"<td>{html.escape(s.name if k == 'system' else _fmt(k, getattr(s, k)))}</td>" for k, _ in COLUMNS) + "</tr>"
        for s in systems)
    imgs = "".join(
        f'<img alt="{html.escape(n)}" src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}">'
        for n, p in plots.items() if p.exists())
    examples = []
    for s in systems:
        if not s.examples:
            continue
        examples.append(f"<h3>{html.escape(s.name)}</h3>")
        for ex in s.examples:
            r, h = aligned_html(ex["ref"], ex["hyp"])
            examples.append(f'<div class="ex"><b>{html.escape(ex["id"])}</b> ({ex["errors"]} errors)'
                            f"<div>ref: {r}</div><div>hyp: {h}</div></div>")
    note_html = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    tables_html = ""
    for name, (header, rows) in (tables or {}).items():
        cells = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
        heads = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        tables_html += (f'<h2>{html.escape(name)}</h2><div class="wrap"><table><thead><tr>{heads}</tr></thead>'
                        f"<tbody>{cells}</tbody></table></div>")
    env_text = html.escape("\n".join(f"{k}: {v}" for k, v in env.items()))
    return (f'<!doctype html><html lang="ko"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{html.escape(title)}</title>'
            f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"
            f'<div class="wrap"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
            f'<ul class="note">{note_html}</ul>{tables_html}{imgs}<h2>Worst utterances</h2>'
            f'<p class="note"><span class="sub">substitution</span> <span class="del">deletion</span> '
            f'<span class="ins">insertion</span></p>{"".join(examples)}'
            f"<h2>Environment</h2><pre>{env_text}</pre></body></html>")
