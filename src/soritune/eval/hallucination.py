"""`soritune eval --suite hallucination`: what a model writes where nobody speaks, and a release gate.

    from soritune.eval.hallucination import HallucinationConfig, run_suite
    report = run_suite(HallucinationConfig(model="bundled:whisper-base", out="suite/base"))

The clips (soritune.eval.hallucination_clips) are decoded exactly as `soritune eval` decodes a
manifest (`transcribe_rows`: same backend, chunking at pauses, batching) and scored with eval's
scorer. Metrics, each with a 95% percentile bootstrap interval over clips (soritune.eval.bootstrap):

- nonspeech_chars_per_min: characters written on the non-speech clips per minute of them (after
  scoring normalisation, spaces removed, as CER counts characters);
- pause_chars_per_min: characters inserted (CER insertions) in the speech clips per minute of
  their pauses and trailing silence;
- nonspeech_output_rate: share of non-speech clips with any output at all;
- loop_rate: share of all clips whose output loops (soritune.eval.metrics.LOOP_DEFINITION);
- speech_missed: reference characters deleted (CER deletions) / reference characters, speech clips.

The gate compares the point estimates with `GateThresholds` (each one can be switched off with
None): `warn` reports the failures, `refuse` raises `HallucinationGateError`. `soritune export
--gate` runs it on the exported model, `soritune serve --gate` on the loaded one before serving.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from soritune.errors import SoritunError
from soritune.eval.bootstrap import bootstrap_ci
from soritune.eval.evaluate import EvalConfig
from soritune.eval.hallucination_clips import (
    KINDS,
    NONSPEECH_KINDS,
    SUITE_VERSION,
    make_clips,
    speech_tts,
    write_clips,
)
from soritune.eval.hallucination_gate import (
    GateMode,
    GateResult,
    GateThresholds,
    check_gate,
    enforce,
)
from soritune.eval.metrics import LOOP_DEFINITION
from soritune.eval.normalize import no_spaces, normalize_text

SUITES = ("hallucination",)
REPORT_FILE = "suite_report.json"


class HallucinationConfig(EvalConfig):
    """`soritune eval --suite hallucination`: EvalConfig's decoding fields, on generated clips
    (EvalConfig's `limit` and `slice_by` do not apply: the suite is fixed)."""

    manifest: Path | None = Field(None, description="set by the suite: its generated clips (OUT/clips/manifest.jsonl)")
    suite: Literal["hallucination"] = Field("hallucination", description="which suite")
    clips_per_kind: int = Field(3, ge=1, le=20, description="variants of each of the 8 clip kinds")
    speech_tts: Literal["auto", "kokoro", "espeak"] = Field(
        "auto", description="who speaks the speech clips (auto: Kokoro when installed, else espeak-ng)")
    thresholds: GateThresholds = Field(default_factory=GateThresholds, description="gate thresholds")


@dataclass
class SuiteReport:
    """suite_report.json: metrics with intervals, per-kind figures, every clip's output, the gate."""

    metrics: dict[str, dict]
    per_kind: dict[str, dict]
    clips: list[dict]
    gate: dict
    model: dict = field(default_factory=dict)
    suite: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


# ---- metrics ---------------------------------------------------------------------------------------

def _metric(num: list[float], den: list[float], n_boot: int, seed: int) -> dict:
    total = float(np.sum(den))
    value = float(np.sum(num)) / total if total > 0 else 0.0
    ci = bootstrap_ci(num, den, n_boot=n_boot, seed=seed) if num else None
    return {"value": value, "ci95": ci, "numerator": float(np.sum(num)), "denominator": total, "n_clips": len(num)}


def clip_scores(rows: list[dict], texts: dict[str, str], meta: dict[str, dict] | None = None) -> list[dict]:
    """Per clip: output, characters written, CER counts on speech clips, loop flag."""
    from soritune.eval.score import score_utterance

    out = []
    for r in rows:
        u = score_utterance(r["id"], r["text"], texts.get(r["id"], ""), meta=(meta or {}).get(r["id"]))
        counts = u.counts["cer"]
        out.append({"id": r["id"], "kind": r["kind"], "output": u.hyp, "speech": r["kind"] not in NONSPEECH_KINDS,
                    "chars": len(no_spaces(normalize_text(u.hyp))), "ref_chars": u.n_ref_chars,
                    "inserted": counts.ins, "deleted": counts.dele, "cer_errors": counts.errors,
                    "loop": u.loop, "hit_max_tokens": u.hit_max_tokens, "nonspeech_s": float(r["nonspeech_s"]),
                    "duration_s": float(r["duration"])})
    return out


def suite_metrics(clips: list[dict], n_boot: int = 1000, seed: int = 0) -> dict[str, dict]:
    """The five suite metrics (module docstring) with 95% bootstrap intervals over clips."""
    non = [c for c in clips if not c["speech"]]
    sp = [c for c in clips if c["speech"]]
    m = {
        "nonspeech_chars_per_min": _metric([c["chars"] for c in non], [c["nonspeech_s"] / 60 for c in non], n_boot, seed),
        "pause_chars_per_min": _metric([c["inserted"] for c in sp], [c["nonspeech_s"] / 60 for c in sp], n_boot, seed),
        "nonspeech_output_rate": _metric([float(c["chars"] > 0) for c in non], [1.0] * len(non), n_boot, seed),
        "loop_rate": _metric([float(c["loop"]) for c in clips], [1.0] * len(clips), n_boot, seed),
        "speech_missed": _metric([c["deleted"] for c in sp], [c["ref_chars"] for c in sp], n_boot, seed),
        "speech_cer": _metric([c["cer_errors"] for c in sp], [c["ref_chars"] for c in sp], n_boot, seed),
    }
    m["loop_rate"]["definition"] = LOOP_DEFINITION
    return m


def per_kind(clips: list[dict]) -> dict[str, dict]:
    out = {}
    for kind in KINDS:
        cs = [c for c in clips if c["kind"] == kind]
        if not cs:
            continue
        minutes = sum(c["nonspeech_s"] for c in cs) / 60
        written = sum(c["inserted"] if c["speech"] else c["chars"] for c in cs)
        out[kind] = {"n_clips": len(cs), "chars_per_min": written / minutes if minutes else 0.0,
                     "n_with_output": sum(c["chars"] > 0 for c in cs), "n_loops": sum(c["loop"] for c in cs),
                     "example": next((c["output"] for c in cs if c["output"]), "")}
    return out


# ---- run ---------------------------------------------------------------------------------------------

def run_suite(config: HallucinationConfig | dict, backend=None,
              progress: Callable[[int, int], None] | None = None) -> SuiteReport:
    """Generate the clips, decode them with `backend` (default: load config.model as eval does),
    score, write OUT/suite_report.json and OUT/suite_report.md, return the report."""
    from soritune.config import save_config, validate
    from soritune.eval.evaluate import transcribe_rows
    from soritune.jsonio import write_json, write_jsonl

    cfg = config if isinstance(config, HallucinationConfig) else validate(HallucinationConfig, dict(config))
    out = Path(cfg.out)
    tts = speech_tts() if cfg.speech_tts == "auto" else cfg.speech_tts
    rows = write_clips(make_clips(cfg.clips_per_kind, tts), out / "clips")
    cfg = cfg.model_copy(update={"manifest": out / "clips" / "manifest.jsonl"})
    if backend is None:
        from soritune.infer import load_backend

        backend = load_backend(cfg.model, backend=cfg.backend, adapter=str(cfg.adapter) if cfg.adapter else None,
                               device=cfg.device, compute_type=cfg.compute_type, encoder_input=cfg.encoder_input,
                               threads=cfg.threads)
    done = [0]

    def step(n: int) -> None:
        done[0] += n
        if progress:
            progress(done[0], len(rows))

    hyps = transcribe_rows(rows, backend, cfg, progress=step)
    if hyps.audio_errors:  # the suite wrote these files itself: an unreadable one is a bug, not bad input
        raise SoritunError(f"hallucination suite: could not read its own clips: {hyps.audio_errors[:3]}")
    clips = clip_scores(rows, hyps.texts, hyps.meta)
    metrics = suite_metrics(clips, n_boot=cfg.n_boot, seed=cfg.seed)
    gate = check_gate(metrics, cfg.thresholds)
    report = SuiteReport(metrics=metrics, per_kind=per_kind(clips), clips=clips, gate=asdict(gate),
                         model=_describe(backend),
                         suite={"name": cfg.suite, "version": SUITE_VERSION, "speech_tts": tts, "clips_per_kind": cfg.clips_per_kind,
                                "n_clips": len(rows), "audio_s": round(hyps.audio_s, 3),
                                "model_wall_s": round(hyps.model_wall_s, 3), "n_boot": cfg.n_boot, "seed": cfg.seed,
                                "language": cfg.language, "max_new_tokens": cfg.max_new_tokens})
    write_jsonl(out / "hypotheses.jsonl", [{"id": c["id"], "text": c["output"]} for c in clips])
    write_json(out / REPORT_FILE, report.to_json())
    (out / "suite_report.md").write_text(markdown(report.to_json(), title=f"hallucination suite: {cfg.model}"),
                                         encoding="utf-8")
    save_config(cfg, out / "config.yaml")
    return report


def _describe(backend) -> dict:
    try:
        return dict(backend.describe())
    except Exception:  # noqa: BLE001 - reporting only
        return {}


def gate_backend(backend, mode: GateMode, thresholds: GateThresholds | None = None, *, what: str, out: Path | None = None,
                 **decoding: Any) -> tuple[SuiteReport, str | None]:
    """Run the suite on a loaded backend and apply the gate: (report, warning or None); raises on refuse.
    decoding: HallucinationConfig fields (language, max_new_tokens, batch_size, ...)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="soritune-suite-") as tmp:
        cfg = HallucinationConfig(model=what, out=out or Path(tmp), thresholds=thresholds or GateThresholds(), **decoding)
        report = run_suite(cfg, backend=backend)
    return report, enforce(GateResult(**report.gate), mode, what)


# ---- tables (CLI, report.md, the demo report) ----------------------------------------------------------

TABLE_HEADER = ["system", "non-speech chars/min", "pause chars/min", "non-speech with output", "loops",
                "speech missed", "gate"]


def _fmt(m: dict, pct: bool) -> str:
    scale, unit = (100.0, "%") if pct else (1.0, "")
    ci = m.get("ci95")
    band = f" ({scale * ci[0]:.1f}-{scale * ci[1]:.1f})" if ci else ""
    return f"{scale * m['value']:.1f}{unit}{band}"


def table_rows(reports: dict[str, dict]) -> list[list[str]]:
    """One row per system (name -> suite_report.json dict), columns TABLE_HEADER, 95% CIs in brackets."""
    rows = []
    for name, r in reports.items():
        m = r["metrics"]
        rows.append([name, _fmt(m["nonspeech_chars_per_min"], False), _fmt(m["pause_chars_per_min"], False),
                     _fmt(m["nonspeech_output_rate"], True), _fmt(m["loop_rate"], True), _fmt(m["speech_missed"], True),
                     "pass" if r["gate"]["passed"] else "fail"])
    return rows


def markdown_table(reports: dict[str, dict]) -> str:
    lines = ["| " + " | ".join(TABLE_HEADER) + " |", "|" + "---|" * len(TABLE_HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(reports)]
    return "\n".join(lines)


def markdown(report: dict, title: str) -> str:
    s = report["suite"]
    lines = [f"# {title}", "", (f"{s['n_clips']} clips (suite v{s['version']}, {s['clips_per_kind']} per kind, "
                                f"{s['audio_s'] / 60:.1f} min of audio); 95% bootstrap intervals over clips in brackets."), "",
             markdown_table({report.get("model", {}).get("spec") or "model": report}), "",
             "| kind | clips | chars/min | with output | loops | example output |", "|---|---|---|---|---|---|"]
    for kind, k in report["per_kind"].items():
        lines.append(f"| {kind} | {k['n_clips']} | {k['chars_per_min']:.1f} | {k['n_with_output']} | {k['n_loops']} | "
                     f"{k['example'][:60].replace('|', '/')} |")
    lines += ["", "Gate: " + ("passed" if report["gate"]["passed"] else "FAILED")]
    lines += [f"- {c['metric']}: {c['value']:.3g} (max {c['threshold']:.3g}) {'ok' if c['ok'] else 'above'}"
              for c in report["gate"]["checks"]]
    return "\n".join(lines) + "\n"


def run_systems(systems: dict[str, dict], out_dir: Path, **common: Any) -> dict[str, dict]:
    """For the demo report: the suite for every system. systems: name -> HallucinationConfig fields
    (model, adapter, backend, compute_type, encoder_input, decode, ...); `common`: fields for all (threads,
    clips_per_kind, ...); each writes out_dir/NAME/. Returns name -> report dict (its "metrics": each
    metric's value and ci95; "gate": passed and checks), ready for `markdown_table` / `table_rows`:

        reports = run_systems({"zero-shot": {"model": "bundled:whisper-base", "backend": "ct2"},
                               "lora": {"model": "bundled:whisper-base", "adapter": "runs/lora/adapter",
                                        "backend": "ct2"}}, Path("out/suite"), threads=2)
        print(markdown_table(reports))

    Cost: the decoding of 24 clips (9.6 min of audio) per system; a model that loops writes to the
    token limit, which is what costs (measured at load 9-16 on 2 cores: 1001 s stock whisper-base, six
    loops; 327 s the demo's LoRA, none). clips_per_kind=2 decodes a third less; keep max_new_tokens
    at its default, the gate's thresholds assume it (hallucination_gate)."""
    return {name: run_suite(HallucinationConfig(out=Path(out_dir) / name, **{**common, **fields})).to_json()
            for name, fields in systems.items()}
