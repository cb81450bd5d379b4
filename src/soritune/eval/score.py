"""Score hypotheses against references: `score_texts` is the one function both `soritune score`
and `soritune eval` call, so their numbers are identical for the same hypotheses by construction.

Every metric is micro-averaged with explicit numerators and denominators (`per_metric`); empty
references are counted (`n_empty_refs`) and scored (their insertions are errors), never dropped.
A report of zero utterances has `null` rates (not 0.0, which a CI gate would read as perfect); the
stages then write it with the reason and fail (`NothingScoredError`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from soritune.errors import IdMismatchError
from soritune.eval import metrics as M
from soritune.eval.bootstrap import DEFAULT_N_BOOT, DEFAULT_SEED, bootstrap_ci
from soritune.eval.normalize import NORMALIZATION, no_spaces, normalize_text, words
from soritune.eval.reading import match_readings

METRICS = ("cer", "cer_spaced", "wer", "swer", "cer_reading")


@dataclass
class UtteranceScore:
    """One utterance: raw texts, per-metric edit counts, hallucination flags."""

    id: str
    ref: str
    hyp: str
    n_ref_chars: int
    n_ref_words: int
    counts: dict[str, M.EditCounts]
    loop: bool
    empty_hyp: bool
    hit_max_tokens: bool | None = None
    n_tokens: int | None = None
    has_pron: bool = False  # the reference carried a pronunciation transcript (text_pron)
    used_pron: bool = False  # reading-aware CER matched against it

    @property
    def cer(self) -> float | None:
        return self.counts["cer"].rate()

    def denominator(self, metric: str) -> int:
        """cer_reading shares the CER denominator (spelling side, spaces removed)."""
        return self.n_ref_chars if metric == "cer_reading" else self.counts[metric].n_ref


def score_utterance(uid: str, ref: str, hyp: str, pron: str | None = None,
                    meta: Mapping[str, Any] | None = None) -> UtteranceScore:
    """All metrics for one (reference, hypothesis) pair, after scoring normalisation."""
    rn, hn = normalize_text(ref), normalize_text(hyp)
    pn = normalize_text(pron) if pron else None
    reading = match_readings(rn, hn, pn)
    counts = {
        "cer": M.char_counts(rn, hn),
        "cer_spaced": M.char_counts_spaced(rn, hn),
        "wer": M.word_counts(rn, hn),
        "swer": M.sword_counts(rn, hn),
        "cer_reading": reading.counts,
    }
    meta = meta or {}
    hit = meta.get("hit_max_tokens")
    n_tok = meta.get("n_tokens")
    return UtteranceScore(uid, ref, hyp, len(no_spaces(rn)), len(words(rn)), counts,
                          loop=M.has_ngram_loop(hn), empty_hyp=not hn,
                          hit_max_tokens=None if hit is None else bool(hit),
                          n_tokens=None if n_tok is None else int(n_tok), has_pron=pn is not None,
                          used_pron=reading.used_pron)


def _rate(errors: int, n: int) -> float | None:
    if n == 0:
        return 0.0 if errors == 0 else None
    return errors / n


@dataclass
class ScoreReport:
    """Set-level metrics plus the per-utterance scores they were summed from."""

    utterances: list[UtteranceScore]
    n_boot: int = DEFAULT_N_BOOT
    seed: int = DEFAULT_SEED
    extra: dict[str, Any] = field(default_factory=dict)  # eval adds model, decoding, timing, slices

    def total(self, metric: str) -> M.EditCounts:
        out = M.EditCounts()
        for u in self.utterances:
            out = out + u.counts[metric]
        return out

    def denominator(self, metric: str) -> int:
        return sum(u.denominator(metric) for u in self.utterances)

    def rate(self, metric: str) -> float | None:
        if not self.utterances:
            return None  # nothing was scored: no rate, not a perfect one
        return _rate(self.total(metric).errors, self.denominator(metric))

    def per_metric(self) -> dict[str, dict]:
        out = {}
        for m in METRICS:
            t = self.total(m)
            d = {**t.as_dict(), "n_ref": self.denominator(m), "rate": self.rate(m)}
            if m == "cer_reading":
                d["n_ref_reading"] = t.n_ref  # chars of the chosen reference readings (hits+sub+del)
                d["n_with_pron"] = sum(u.has_pron for u in self.utterances)  # references with text_pron
                d["n_used_pron"] = sum(u.used_pron for u in self.utterances)  # matched on that side
            out[m] = d
        return out

    def ci95(self) -> dict[str, list[float] | None]:
        out = {}
        for m in ("cer", "wer"):
            errs = [u.counts[m].errors for u in self.utterances]
            dens = [u.denominator(m) for u in self.utterances]
            out[m] = bootstrap_ci(errs, dens, n_boot=self.n_boot, seed=self.seed)
        return out

    def hallucination(self) -> dict[str, Any]:
        n = len(self.utterances)
        cer_t = self.total("cer")
        n_loops = sum(u.loop for u in self.utterances)
        n_empty = sum(u.empty_hyp for u in self.utterances)
        known = [u.hit_max_tokens for u in self.utterances if u.hit_max_tokens is not None]
        n_hit = sum(known) if known else None
        return {
            "insertion_rate": _rate(cer_t.ins, self.denominator("cer")) if n else None,
            "n_insertions": cer_t.ins,
            "loop_rate": n_loops / n if n else None,
            "n_loops": n_loops,
            "empty_output_rate": n_empty / n if n else None,
            "n_empty_outputs": n_empty,
            "max_tokens_rate": (n_hit / len(known)) if known else None,
            "n_hit_max_tokens": n_hit,
            "n_max_tokens_known": len(known),
            "loop_definition": M.LOOP_DEFINITION,
        }

    def to_json(self) -> dict[str, Any]:
        """report.json: the required top-level keys first, then extras."""
        cer_t = self.total("cer")
        report = {
            "cer": self.rate("cer"),
            "cer_spaced": self.rate("cer_spaced"),
            "wer": self.rate("wer"),
            "swer": self.rate("swer"),
            "cer_reading": self.rate("cer_reading"),
            "n_utts": len(self.utterances),
            "n_ref_chars": self.denominator("cer"),
            "n_ref_words": self.denominator("wer"),
            "sub": cer_t.sub,
            "del": cer_t.dele,
            "ins": cer_t.ins,
            "ci95": self.ci95(),
            "hallucination": self.hallucination(),
            "normalization": dict(NORMALIZATION),
            "hits": cer_t.hits,
            "n_empty_refs": sum(u.n_ref_chars == 0 for u in self.utterances),
            "per_metric": self.per_metric(),
            "bootstrap": {"n_boot": self.n_boot, "seed": self.seed, "level": 0.95,
                          "unit": "utterance", "method": "percentile"},
        }
        report.update(self.extra)
        return report


def score_texts(refs: Iterable[Mapping[str, Any]], hyps: Mapping[str, str], *,
                hyp_meta: Mapping[str, Mapping[str, Any]] | None = None,
                n_boot: int = DEFAULT_N_BOOT, seed: int = DEFAULT_SEED) -> ScoreReport:
    """Score `hyps` (id -> text) against `refs` (dicts with id, text, optional text_pron).

    hyp_meta (id -> {n_tokens, hit_max_tokens}) feeds the max-token hallucination indicator.
    Ids must match exactly (see `check_ids`); order follows `refs`."""
    refs = list(refs)
    check_ids([r["id"] for r in refs], list(hyps))
    hyp_meta = hyp_meta or {}
    utts = [score_utterance(r["id"], r.get("text") or "", hyps[r["id"]] or "", r.get("text_pron") or None,
                            hyp_meta.get(r["id"])) for r in refs]
    return ScoreReport(utts, n_boot=n_boot, seed=seed)


def check_ids(ref_ids: list[str], hyp_ids: list[str], show: int = 5) -> None:
    """Raise with the first few ids missing on either side, or duplicated."""
    from collections import Counter

    problems = []
    for name, ids in (("reference", ref_ids), ("hypothesis", hyp_ids)):
        dups = [i for i, c in Counter(ids).items() if c > 1]
        if dups:
            problems.append(f"{len(dups)} duplicate {name} ids (first: {', '.join(dups[:show])})")
    rset, hset = set(ref_ids), set(hyp_ids)
    missing = [i for i in ref_ids if i not in hset]
    extra = [i for i in hyp_ids if i not in rset]
    if missing:
        problems.append(f"{len(missing)} reference ids have no hypothesis (first: {', '.join(missing[:show])})")
    if extra:
        problems.append(f"{len(extra)} hypothesis ids are not in the references (first: {', '.join(extra[:show])})")
    if problems:
        raise IdMismatchError("ids of references and hypotheses do not match: " + "; ".join(problems))


def duration_bucket(duration_s: float | None) -> str:
    """Bucket name for slicing by duration: 0-5s, 5-10s, 10-20s, 20-30s, 30s+."""
    if duration_s is None:
        return "unknown"
    for lo, hi in ((0, 5), (5, 10), (10, 20), (20, 30)):
        if duration_s < hi:
            return f"{lo}-{hi}s"
    return "30s+"


def slice_metrics(report: ScoreReport, refs: Iterable[Mapping[str, Any]], fields: list[str]) -> dict[str, dict]:
    """Per-slice metrics for each field (a manifest key, or `duration_bucket`), same definitions."""
    by_id = {r["id"]: r for r in refs}
    out: dict[str, dict] = {}
    for f in fields:
        groups: dict[str, list[UtteranceScore]] = {}
        for u in report.utterances:
            row = by_id.get(u.id, {})
            value = duration_bucket(row.get("duration")) if f == "duration_bucket" else row.get(f)
            groups.setdefault("<missing>" if value is None else str(value), []).append(u)
        out[f] = {}
        for value, utts in sorted(groups.items()):
            sub = ScoreReport(utts, n_boot=report.n_boot, seed=report.seed)
            out[f][value] = {"n_utts": len(utts), "n_ref_chars": sub.denominator("cer"),
                             **{m: sub.rate(m) for m in METRICS}, "ci95": sub.ci95()}
    return out
