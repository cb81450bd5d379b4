"""The `compare` stage: is system B better than system A on the same utterances?

Reads two report directories (score or eval outputs; per-utterance edit counts come from the
utterances.tsv beside each report.json), keeps the shared utterance ids, and runs a paired
bootstrap for CER and WER: B - A with a 95% interval and the probability that B is better.
Both reports must use the same scoring normalisation and the same reference lengths.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soritune.errors import CompareError
from soritune.eval.bootstrap import DEFAULT_N_BOOT, DEFAULT_SEED, paired_bootstrap


@dataclass
class CompareResult:
    report_a: str
    report_b: str
    n_shared: int
    n_only_a: int
    n_only_b: int
    n_boot: int
    seed: int
    normalization: dict
    metrics: dict[str, dict[str, Any]]  # cer/wer -> a, b, diff, ci95, p_b_better, errors, n_ref
    changed: list[dict[str, Any]] = field(default_factory=list)  # utterances, largest |B - A| first


def _load(path: str | Path) -> tuple[Path, dict, dict[str, dict]]:
    from soritune.eval.io import read_utterances, resolve_report
    from soritune.jsonio import read_json

    report_path, utt_path = resolve_report(path)
    try:
        summary = read_json(report_path)
    except ValueError as e:
        raise CompareError(f"{report_path}: not valid JSON ({e})") from None
    rows = read_utterances(utt_path)
    return report_path, summary, {r["id"]: r for r in rows}


def run_compare(a: str | Path, b: str | Path, *, n_boot: int = DEFAULT_N_BOOT, seed: int = DEFAULT_SEED,
                top: int = 20) -> CompareResult:
    """Paired bootstrap of B against A over their shared utterances."""
    path_a, sum_a, utt_a = _load(a)
    path_b, sum_b, utt_b = _load(b)
    norm_a, norm_b = sum_a.get("normalization"), sum_b.get("normalization")
    if norm_a != norm_b:
        raise CompareError(f"the reports use different scoring normalisations ({norm_a} vs {norm_b}); re-score one")
    shared = [i for i in utt_a if i in utt_b]
    if not shared:
        raise CompareError(f"{path_a} and {path_b} share no utterance ids")
    for key in ("n_ref_chars", "n_ref_words"):
        diff = [i for i in shared if utt_a[i][key] != utt_b[i][key]]
        if diff:
            raise CompareError(f"{len(diff)} shared utterances have different reference lengths ({key}; first: "
                               f"{', '.join(diff[:5])}): the two reports were scored against different references")
    metrics = {}
    for m, den in (("cer", "n_ref_chars"), ("wer", "n_ref_words")):
        ea = [utt_a[i][f"{m}_errors"] for i in shared]
        eb = [utt_b[i][f"{m}_errors"] for i in shared]
        n = [utt_a[i][den] for i in shared]
        if sum(n) == 0:
            raise CompareError(f"all shared references are empty; no {m.upper()} to compare")
        p = paired_bootstrap(ea, eb, n, n_boot=n_boot, seed=seed)
        metrics[m] = {"a": p.rate_a, "b": p.rate_b, "diff": p.diff, "ci95": p.ci95, "p_b_better": p.p_b_better,
                      "errors_a": sum(ea), "errors_b": sum(eb), "n_ref": sum(n)}
    changed = []
    for i in shared:
        delta = utt_b[i]["cer_errors"] - utt_a[i]["cer_errors"]
        if delta:
            changed.append({"id": i, "a_errors": utt_a[i]["cer_errors"], "b_errors": utt_b[i]["cer_errors"],
                            "delta": delta, "n_ref_chars": utt_a[i]["n_ref_chars"], "ref": utt_a[i].get("ref", ""),
                            "hyp_a": utt_a[i].get("hyp", ""), "hyp_b": utt_b[i].get("hyp", "")})
    changed.sort(key=lambda c: (-abs(c["delta"]), c["id"]))
    return CompareResult(str(path_a), str(path_b), len(shared), len(utt_a) - len(shared), len(utt_b) - len(shared),
                         n_boot, seed, norm_a or {}, metrics, changed[:top])


def write_compare(result: CompareResult, out_dir: str | Path) -> dict[str, Path]:
    """Write compare.json and compare.md into out_dir."""
    from soritune.eval.report_md import render_compare
    from soritune.jsonio import atomic_write_text, write_json

    out_dir = Path(out_dir)
    return {"compare_json": write_json(out_dir / "compare.json", result),
            "compare_md": atomic_write_text(out_dir / "compare.md", render_compare(result))}
