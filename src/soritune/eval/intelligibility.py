"""Is every synthesised voice intelligible to a recogniser soritune did not train?

    from soritune.eval.intelligibility import check_voices
    check = check_voices("data/synth/train.jsonl", "eval/voices", per_voice=10)
    check.failed            # voices whose CER is above max_cer
    check.voices[0].cer     # per voice: utterances, CER, reading-aware CER, 95% interval

It transcribes (up to `per_voice` utterances of) each voice with the judge (default: Vosk's Korean
Kaldi model, `vosk:ko`) through `soritune eval`, so the output directory is an ordinary eval report
(report.json/md, hypotheses.jsonl, slices by voice) plus voices.json with the verdicts. The
verdict uses the reading-aware CER (`cer_reading`: a reference's `text_pron`, the reading that was
actually spoken, counts when it matches better; Vosk spells numbers as Hangul). From the CLI the same
numbers come from `soritune eval --backend vosk --model vosk:ko --manifest M --out D --slice-by speaker`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from soritune.errors import ConfigError

DEFAULT_MAX_CER = 0.6  # vosk:ko measured 0.44 on Kokoro speech, 0.88 on espeak-ng (issue 15)


@dataclass
class VoiceScore:
    voice: str
    n_utts: int
    cer: float | None
    cer_reading: float | None
    cer_ci95: list[float] | None
    intelligible: bool


@dataclass
class VoiceCheck:
    """Per-voice CER of a manifest under an independent judge; saved as OUT/voices.json."""

    manifest: str
    judge: dict
    by: str
    metric: str
    max_cer: float
    voices: list[VoiceScore] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    n_utts: int = 0
    cer: float | None = None
    wall_s: float = 0.0
    report_dir: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def pick_rows(rows: list[dict], by: str, per_voice: int | None) -> list[dict]:
    """The first `per_voice` rows of each voice, in manifest order (all rows when None)."""
    if not rows or not any(by in r for r in rows):
        raise ConfigError(f"by: no row of the manifest has the field {by!r} (e.g. speaker)")
    taken: dict[str, int] = {}
    out = []
    for r in rows:
        v = str(r.get(by, "<missing>"))
        if per_voice is None or taken.get(v, 0) < per_voice:
            taken[v] = taken.get(v, 0) + 1
            out.append(r)
    return out


def check_voices(manifest: str | Path, out: str | Path, *, model: str = "vosk:ko", backend: str = "vosk",
                 by: str = "speaker", per_voice: int | None = None, max_cer: float = DEFAULT_MAX_CER,
                 metric: str = "cer_reading", threads: int | None = None, progress=None) -> VoiceCheck:
    """Transcribe each voice's utterances with the judge and flag voices above `max_cer` (`metric`).

    progress(done, total) as in run_eval. Any soritune model spec and backend can judge, e.g.
    model="bundled:whisper-base", backend="ct2"."""
    from soritune.data.manifest import read_manifest, write_manifest
    from soritune.eval.evaluate import EvalConfig, run_eval
    from soritune.jsonio import write_json

    if metric not in ("cer", "cer_reading"):
        raise ConfigError(f"metric: {metric!r}; allowed: cer, cer_reading")
    out = Path(out)
    rows = pick_rows(read_manifest(manifest), by, per_voice)
    out.mkdir(parents=True, exist_ok=True)
    subset = write_manifest(out / "judged.jsonl", rows)
    cfg = EvalConfig(model=model, backend=backend, manifest=subset, out=out, slice_by=[by], threads=threads)
    report = run_eval(cfg, progress=progress)
    slices = report.extra["slices"][by]
    voices = []
    for voice, s in slices.items():
        value = s[metric]
        voices.append(VoiceScore(voice=voice, n_utts=s["n_utts"], cer=s["cer"], cer_reading=s["cer_reading"],
                                 cer_ci95=s["ci95"].get("cer"), intelligible=value is not None and value <= max_cer))
    check = VoiceCheck(manifest=str(manifest), judge=report.extra["model"], by=by, metric=metric, max_cer=max_cer,
                       voices=voices, failed=[v.voice for v in voices if not v.intelligible], n_utts=len(rows),
                       cer=report.rate("cer"), wall_s=report.extra["timing"]["wall_s"],
                       report_dir=str(out))
    write_json(out / "voices.json", check.to_dict())
    return check
