"""The hallucination gate: suite metrics against thresholds; warn or refuse (see soritune.eval.hallucination).

Kept apart from the suite so the configs of `export` and `serve` can name the thresholds without
importing the suite.

How the default thresholds were set: the suite (version 2: Kokoro speech clips; 3 clips per kind, 24
clips, eval's greedy decoding, as the gate runs it) on stock whisper-base and on the demo's LoRA of it
(trained with timestamp and previous-text targets and non-speech clips labelled with the no-speech token),
both CTranslate2 float32
(`python benchmarks/suite_calibration.py --adapter /tmp/dmain2/runs/lora/adapter`, written to
`benchmarks/results/longform/suite_calibration.json`; value [95% interval]; suite v1's in brackets where
a threshold moved):

| metric | stock whisper-base | demo LoRA | threshold |
|---|---|---|---|
| nonspeech_chars_per_min | 181 [65-292] | 0.0 | 20 |
| pause_chars_per_min | 1.8 [0.6-2.9] (v1 4.7 [1.7-8.0]) | 0.0 | 6 (v1 15) |
| nonspeech_output_rate | 0.67 [0.44-0.89] | 0.0 | 0.75 |
| loop_rate | 0.25 [0.08-0.42] | 0.0 | 0.1 |
| speech_missed | 0.0 (v1 0.023) | 0.015 [0-0.041] (v1 LoRA 0.26) | 0.1 (v1 0.2) |

- nonspeech_chars_per_min 20: what models write on non-speech is of two sorts. Fillers: one syllable
  ("이", "아") on a clip, 1-2 characters per minute over the suite even when most clips get one. Loops:
  stock whisper-base writes "이곳은 이곳은 ..." to the token limit on room tone and mains hum, ~540
  characters per minute of such a clip, so ONE looping clip among the 18 non-speech ones puts the suite
  at ~30. 20 lies between: fillers pass, a single non-speech loop fails.
- loop_rate 0.1: stock whisper-base loops on 6 of 24 clips (fails), the LoRA on none; 0.1 tolerates two
  looping clips (24 clips give the rate in steps of 0.042, and two is inside stock's lower interval).
- nonspeech_output_rate 0.75: this rate counts any output, one-syllable fillers included: stock writes
  on 12 of the 18 non-speech clips (0.67). A LoRA trained with empty targets on non-speech but the
  language token after <|startoftranscript|> left one syllable ("이") on 15 of 18 (0.83, 2 characters per
  minute): its no_speech_prob had fallen to ~0.001, so the decoder's no-speech rule never fired. Trained
  with Whisper's no-speech token there (soritune.data.dataset), the same LoRA writes on none. 0.75
  refuses a model that writes on more than three non-speech clips in four; chars/min and loops judge how
  much is written.
- pause_chars_per_min 6: characters inserted in speech clips with long pauses, per minute of pause;
  with Kokoro's clearer speech both models insert few (stock 1.8: one misread word; LoRA none); 6 is
  about twice stock's upper bound, so one phrase written into a pause (an 11-character
  "시청해 주셔서 감사합니다" over the suite's 1.7 min of pause is 6.5) fails.
- speech_missed 0.1: neither model deletes much of the Kokoro speech (stock 0, LoRA 2.3%, upper bound
  4.6%); 0.1 is about twice the LoRA's upper bound. On suite v1 the earlier demo LoRA, trained on
  one-sentence clips without timestamp targets, deleted 26%: it ended the transcript after the first
  sentence or two of a 30-s chunk with long pauses; that regression of raw 30-s decoding (with
  `--long-form` VAD cuts chunks at the pauses, which hides it) fails by a wide margin.
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

    # calibrated on suite v2, stock whisper-base and the demo's LoRA (module doc)
    nonspeech_chars_per_min: float | None = Field(20.0, ge=0, description="characters per minute of non-speech clips")
    pause_chars_per_min: float | None = Field(6.0, ge=0, description="inserted characters per minute of pauses in speech")
    nonspeech_output_rate: float | None = Field(0.75, ge=0, le=1, description="share of non-speech clips with any output")
    loop_rate: float | None = Field(0.1, ge=0, le=1, description="share of clips whose output loops")
    speech_missed: float | None = Field(0.1, ge=0, le=1, description="share of reference characters deleted")


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
