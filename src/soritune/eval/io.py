"""Reading references and hypotheses (JSONL or TSV), writing and reading a report directory.

A report directory holds `report.json`, `report.md` and `utterances.tsv` (one row per
utterance: texts, per-utterance CER and the edit counts `compare` needs).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from soritune.errors import ScoreInputError
from soritune.eval.score import METRICS, ScoreReport, UtteranceScore

HYPOTHESES_FILE = "hypotheses.jsonl"
_PREFIX = {"cer": "", "cer_spaced": "spaced_", "wer": "wer_", "swer": "swer_", "cer_reading": "reading_"}
UTT_COLUMNS = ["id", "ref", "hyp", "cer", "n_ref_chars", "sub", "del", "ins", "hits", "n_ref_words"] + [
    f"{_PREFIX[m]}{k}" for m in METRICS if m != "cer" for k in ("sub", "del", "ins", "hits")
] + ["loop", "empty_hyp", "hit_max_tokens", "n_tokens"]


def _lines(path: Path, bom: bool = False):
    """(line number, text) of a UTF-8 file; a line that is not UTF-8 is an error naming file and line."""
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, 1):
            if bom and lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                yield lineno, raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ScoreInputError(f"{path}:{lineno}: not UTF-8 ({e.reason} at byte {e.start} of the line); "
                                      "re-save the file as UTF-8") from None


def _is_jsonl(path: Path) -> bool:
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        return True
    if path.suffix.lower() in (".tsv", ".txt", ".trn"):
        return False
    for _, line in _lines(path, bom=True):
        if line.strip():
            return line.lstrip().startswith("{")
    return False


def _read_jsonl(path: Path, what: str) -> list[dict]:
    rows = []
    for lineno, line in _lines(path):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ScoreInputError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("id"), str) or not row["id"]:
            raise ScoreInputError(f"{path}:{lineno}: each {what} line needs a non-empty string 'id'")
        text = row.get("text")
        if text is None:
            text = ""
        if not isinstance(text, str):
            raise ScoreInputError(f"{path}:{lineno}: field 'text' must be a string")
        row["text"] = text
        rows.append(row)
    return rows


def _read_tsv(path: Path) -> list[dict]:
    """`id<TAB>text` a line; a line with no tab is an id with an empty text; header `id\\ttext` skipped."""
    rows = []
    for lineno, line in _lines(path, bom=True):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        uid, _, text = line.partition("\t")
        if lineno == 1 and uid.strip().lower() == "id" and text.strip().lower() in ("text", "ref", "hyp"):
            continue
        if not uid.strip():
            raise ScoreInputError(f"{path}:{lineno}: empty id")
        rows.append({"id": uid.strip(), "text": text})
    return rows


def _read_rows(path: str | Path, what: str) -> list[dict]:
    path = Path(path)
    if path.is_dir():
        if (path / HYPOTHESES_FILE).exists():
            path = path / HYPOTHESES_FILE
        else:
            raise ScoreInputError(f"{path}: a directory without {HYPOTHESES_FILE}; give a JSONL or TSV file")
    if not path.exists():
        raise ScoreInputError(f"{what} file not found: {path}")
    return _read_jsonl(path, what) if _is_jsonl(path) else _read_tsv(path)


def read_refs(path: str | Path) -> list[dict]:
    """References: a manifest (JSONL with id, text, optional text_pron and any other fields) or a
    TSV `id<TAB>text`. Duplicate ids are an error."""
    rows = _read_rows(path, "reference")
    seen: set[str] = set()
    for r in rows:
        if r["id"] in seen:
            raise ScoreInputError(f"{path}: duplicate reference id {r['id']!r}")
        seen.add(r["id"])
    return rows


def read_hyps(path: str | Path) -> tuple[dict[str, str], dict[str, dict]]:
    """Hypotheses: JSONL `{id, text}` (optional n_tokens, hit_max_tokens), TSV `id<TAB>text`, or an
    eval output directory. Returns (id -> text, id -> meta)."""
    rows = _read_rows(path, "hypothesis")
    texts: dict[str, str] = {}
    meta: dict[str, dict] = {}
    for r in rows:
        if r["id"] in texts:
            raise ScoreInputError(f"{path}: duplicate hypothesis id {r['id']!r}")
        texts[r["id"]] = r["text"]
        m = {k: r[k] for k in ("n_tokens", "hit_max_tokens") if r.get(k) is not None}
        if m:
            meta[r["id"]] = m
    return texts, meta


def _clean(text: str) -> str:
    return " ".join(text.split("\t")).replace("\r", " ").replace("\n", " ")


def _fmt_bool(v: bool | None) -> str:
    return "" if v is None else str(int(v))


def utterance_row(u: UtteranceScore) -> dict[str, Any]:
    c = u.counts["cer"]
    rate = u.cer
    row: dict[str, Any] = {"id": u.id, "ref": _clean(u.ref), "hyp": _clean(u.hyp),
                           "cer": "" if rate is None else f"{rate:.6f}", "n_ref_chars": u.n_ref_chars,
                           "sub": c.sub, "del": c.dele, "ins": c.ins, "hits": c.hits, "n_ref_words": u.n_ref_words}
    for m in METRICS:
        if m != "cer":
            e = u.counts[m]
            row.update({f"{_PREFIX[m]}sub": e.sub, f"{_PREFIX[m]}del": e.dele,
                        f"{_PREFIX[m]}ins": e.ins, f"{_PREFIX[m]}hits": e.hits})
    row.update(loop=_fmt_bool(u.loop), empty_hyp=_fmt_bool(u.empty_hyp),
               hit_max_tokens=_fmt_bool(u.hit_max_tokens), n_tokens="" if u.n_tokens is None else u.n_tokens)
    return row


def write_utterances(path: str | Path, report: ScoreReport) -> Path:
    from soritune.jsonio import atomic_write_text

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=UTT_COLUMNS, delimiter="\t", quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    w.writeheader()
    for u in report.utterances:
        w.writerow(utterance_row(u))
    return atomic_write_text(path, buf.getvalue())


_TEXT_COLUMNS = ("id", "ref", "hyp", "cer", "loop", "empty_hyp", "hit_max_tokens", "n_tokens")


def read_utterances(path: str | Path) -> list[dict[str, Any]]:
    """Rows of utterances.tsv, counts as ints, plus `cer_errors` and `wer_errors` per row."""
    path = Path(path)
    if not path.exists():
        raise ScoreInputError(f"{path} not found (compare needs utterances.tsv beside report.json)")
    out = []
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t")
        need = {"id", "n_ref_chars", "n_ref_words", "sub", "del", "ins", "wer_sub", "wer_del", "wer_ins"}
        missing = need - set(reader.fieldnames or [])
        if missing:
            raise ScoreInputError(f"{path}: missing columns {', '.join(sorted(missing))}")
        for lineno, row in enumerate(reader, 2):
            parsed: dict[str, Any] = dict(row)
            try:
                for k, v in row.items():
                    if k not in _TEXT_COLUMNS:
                        parsed[k] = int(v)
            except (TypeError, ValueError):
                raise ScoreInputError(f"{path}:{lineno}: column {k!r} is not an integer") from None
            parsed["cer_errors"] = parsed["sub"] + parsed["del"] + parsed["ins"]
            parsed["wer_errors"] = parsed["wer_sub"] + parsed["wer_del"] + parsed["wer_ins"]
            out.append(parsed)
    return out


def write_report_dir(out_dir: str | Path, report: ScoreReport, title: str = "soritune score", config=None,
                     stage: str = "score") -> dict[str, Path]:
    """Write config.yaml + summary.json (the run-dir contract; report.json links to it), report.md and
    utterances.tsv into out_dir; return their paths."""
    from soritune.eval.report_md import render_markdown
    from soritune.jsonio import atomic_write_text
    from soritune.rundir import write_run

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = report.to_json()
    paths = {
        "report_json": write_run(out_dir, config, summary, stage=stage, legacy=("report.json",)),
        "report_md": atomic_write_text(out_dir / "report.md", render_markdown(summary, report, title=title)),
        "utterances_tsv": write_utterances(out_dir / "utterances.tsv", report),
    }
    return paths


def resolve_report(path: str | Path) -> tuple[Path, Path]:
    """(report.json, utterances.tsv) for a report directory or a report.json path."""
    path = Path(path)
    report = path / "report.json" if path.is_dir() else path
    if not report.exists():
        raise ScoreInputError(f"no report found at {path} (expected a report dir or its report.json)")
    return report, report.parent / "utterances.tsv"
