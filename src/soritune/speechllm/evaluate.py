"""Evaluate a speech LLM on a speech-LLM JSONL: ASR rows through soritune's scorer (CER/WER with 95% CIs,
loops, empty outputs, token-cap hits, rows the loop guard stopped), caption rows through CIDEr-D (COCO words, and soritune's Korean
character score), plus the failures users meet with LLM transcribers: refusals, loops, empty outputs and
truncated audio (always 0 here: long clips are chunked).

    from soritune.speechllm.evaluate import evaluate
    report = evaluate(model, "test.jsonl", out_dir="eval_sllm")
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from soritune.eval.captions import cider_d, cider_d_ko, unavailable_metrics
from soritune.eval.metrics import has_ngram_loop
from soritune.eval.normalize import normalize_text
from soritune.eval.score import score_texts
from soritune.jsonio import write_json, write_jsonl
from soritune.speechllm.data import load_clip, read_examples, references_of

# Phrases an instruction LLM answers with instead of doing the task (English and Korean).
REFUSAL_RE = re.compile(r"\b(i('m| am) (sorry|unable|not able)|i can(no|')t|as an ai|cannot (help|transcribe))\b"
                        r"|죄송|할 수 없|못 합니다|어렵습니다", re.IGNORECASE)
HANGUL_RE = re.compile(r"[\uac00-\ud7a3]")


def failure_flags(text: str) -> dict:
    norm = normalize_text(text)
    return {"empty": not norm.strip(), "refusal": bool(REFUSAL_RE.search(text)), "loop": has_ngram_loop(norm)}


def evaluate(model, data: str | Path, *, out_dir: str | Path | None = None, max_new_tokens: int = 128,
             limit: int | None = None, batch_size: int = 8, dtype: str = "float32", progress=None) -> dict:
    """Generate for every row (greedy, `batch_size` rows per left-padded batch, the LLM in its decoding form:
    `dtype`, see SpeechLLM.decoding) and score by task; writes OUT/report.json and OUT/hyps.jsonl when out_dir
    is set."""
    rows = read_examples(data, limit=limit)
    hyps, meta, per_row = {}, {}, []
    t0 = time.perf_counter()
    with model.decoding(dtype):
        decode_dtype = model.llm_dtype
        for start in range(0, len(rows), batch_size):
            group = rows[start: start + batch_size]
            texts, gens = model.generate_batch([load_clip(r) for r in group], [r["prompt"] for r in group],
                                               max_new_tokens=max_new_tokens)
            for row, text, gen in zip(group, texts, gens):
                hyps[row["id"]] = text
                meta[row["id"]] = {"n_tokens": gen["new_tokens"], "hit_max_tokens": gen["hit_max_tokens"]}
                per_row.append({"id": row["id"], "task": row["task"], "hypothesis": text, **failure_flags(text),
                                "hit_max_tokens": gen["hit_max_tokens"], "loop_stopped": gen["loop_stopped"],
                                "audio_s": gen["audio"].audio_s, "n_chunks": gen["audio"].n_chunks,
                                "truncated_s": gen["audio"].truncated_s})
            if progress:
                progress(len(per_row), len(rows))
    report: dict = {"n": len(rows), "generate_s": round(time.perf_counter() - t0, 2), "decode_dtype": decode_dtype,
                    "model": model.describe(),
                    "failures": {k: sum(r[k] for r in per_row)
                                 for k in ("empty", "refusal", "loop", "loop_stopped", "hit_max_tokens")},
                    "truncated_audio_s": sum(r["truncated_s"] for r in per_row),
                    "audio_s": round(sum(r["audio_s"] for r in per_row), 2)}
    asr = [r for r in rows if r["task"] == "transcribe"]
    if asr:
        refs = [{"id": r["id"], "text": r["response"], "text_pron": r.get("text_pron")} for r in asr]
        score = score_texts(refs, {r["id"]: hyps[r["id"]] for r in asr},
                            hyp_meta={r["id"]: meta[r["id"]] for r in asr})
        report["asr"] = {"n": len(asr), "cer": score.rate("cer"), "wer": score.rate("wer"), "ci95": score.ci95(),
                         "hallucination": score.hallucination()}
    caps = [r for r in rows if r["task"] == "caption"]
    if caps:
        refs = {r["id"]: references_of(r) for r in caps}
        cands = {r["id"]: hyps[r["id"]] for r in caps}
        korean = sum(bool(HANGUL_RE.search(" ".join(v))) for v in refs.values()) > len(refs) / 2
        report["captions"] = {"n": len(caps), "cider_d": cider_d(cands, refs),
                              "cider_d_ko_chars_soritune": cider_d_ko(cands, refs) if korean else None,
                              "unavailable": unavailable_metrics()}
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        write_jsonl(out / "hyps.jsonl", per_row)
        write_json(out / "report.json", report)
    return report
