"""The hallucination gate: suite metrics against thresholds; warn or refuse (see soritune.eval.hallucination).

Kept apart from the suite so the configs of `export` and `serve` can name the thresholds without
importing the suite.

How the default thresholds were set: the suite (3 clips per kind, 24 clips, eval's greedy decoding,
as the gate runs it) on stock whisper-base and on the demo's LoRA of it, both CTranslate2 int8
(`benchmarks/results/longform/suite_calibration.json`; value [95% interval]):

| metric | stock whisper-base | demo LoRA | threshold |
|---|---|---|---|
| nonspeech_chars_per_min | 181 [65-292] | 1.2 [0.6-1.8] | 20 |
| pause_chars_per_min | 4.7 [1.7-8.0] | 0.6 [0-1.7] | 15 |
| nonspeech_output_rate | 0.67 [0.44-0.89] | 0.50 [0.28-0.72] | 0.75 |
| loop_rate | 0.25 [0.08-0.42] | 0.0 | 0.1 |
| speech_missed | 0.023 [0-0.041] | 0.26 [0.02-0.48] | 0.2 |

- nonspeech_chars_per_min 20: what models write on non-speech is of two sorts. Fillers: one syllable
  ("아") on a clip, 1-2 characters per minute over the suite even when most clips get one. Loops: stock
  whisper-base writes "이곳은 이곳은 ..." to the token limit on room tone and mains hum, ~540 characters
  per minute of such a clip, so ONE looping clip among the 18 non-speech ones puts the suite at ~30.
  20 lies between: fillers pass, a single non-speech loop fails.
- loop_rate 0.1: stock whisper-base loops on 6 of 24 clips (fails), the LoRA on none; 0.1 tolerates two
  looping clips (24 clips give the rate in steps of 0.042, and two is inside stock's lower interval).
- nonspeech_output_rate 0.75: this rate counts any output, so the harmless one-syllable fillers drive it
  (both models: 0.5-0.67, mostly "아"); the guessed 0.34 refused both for a syllable. 0.75 refuses a model
  that writes on more than three non-speech clips in four; chars/min and loops judge how much.
- pause_chars_per_min 15: characters inserted in speech clips with long pauses, per minute of pause;
  both models insert few (4.7 stock, 0.6 LoRA, mostly misreadings); 15 is about twice stock's upper
  bound: clearly more than the base model, as a loop or a phrase written into a pause would be.
- speech_missed 0.2: stock whisper-base deletes 2% of the speech; the demo's LoRA deletes 26%: trained on
  one-sentence clips, it ends the transcript after the first sentence or two of a 30-s chunk with long
  pauses (`speech_pauses`: "창문을 조금 열어 주세요 오늘 회의는 3cs 작합니다", the third sentence
  dropped). That is a real regression of raw 30-s decoding (with `--long-form` VAD cuts chunks at the
  pauses, which hides it), so 0.2 flags it; 0.5 (the guess) let it pass.
The thresholds compare point estimates; the intervals are reported beside them. Re-run the calibration
when the suite's clips change (SUITE_VERSION).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from soritune.errors import SoritunError

GateMode = Literal["off", "warn", "refuse"]
GATE_HELP = "hallucination gate: off | warn | refuse a model above the suite's thresholds (soritune eval --suite hallucination)"


class GateThresholds(BaseModel):
    """Largest acceptable value of each suite metric (None: not checked)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # calibrated on stock whisper-base and the demo's LoRA (module doc)
    nonspeech_chars_per_min: float | None = Field(20.0, ge=0, description="characters per minute of non-speech clips")
    pause_chars_per_min: float | None = Field(15.0, ge=0, description="inserted characters per minute of pauses in speech")
    nonspeech_output_rate: float | None = Field(0.75, ge=0, le=1, description="share of non-speech clips with any output")
    loop_rate: float | None = Field(0.1, ge=0, le=1, description="share of clips whose output loops")
    speech_missed: float | None = Field(0.2, ge=0, le=1, description="share of reference characters deleted")


class HallucinationGateError(SoritunError):
    """A model above the hallucination thresholds, with gate=refuse."""


@dataclass
class GateResult:
    passed: bool
    checks: list[dict]  # {metric, value, threshold, ok}

    def failures(self) -> list[str]:
        return [f"{c['metric']} {c['value']:.3g} > {c['threshold']:.3g}" for c in self.checks if not c["ok"]]


def check_gate(metrics: dict[str, dict], thresholds: GateThresholds) -> GateResult:
    checks = []
    for name, limit in thresholds.model_dump().items():
        if limit is None:
            continue
        value = metrics[name]["value"]
        checks.append({"metric": name, "value": value, "threshold": limit, "ok": value <= limit})
    return GateResult(all(c["ok"] for c in checks), checks)


def enforce(gate: GateResult, mode: GateMode, what: str) -> str | None:
    """None when it passed (or mode is off); the warning text with mode=warn; raises with mode=refuse."""
    if mode == "off" or gate.passed:
        return None
    text = f"{what} is above the hallucination thresholds: {'; '.join(gate.failures())}"
    if mode == "refuse":
        raise HallucinationGateError(text + " (gate=refuse; pass --gate warn to go on anyway, or change the thresholds)")
    return text
