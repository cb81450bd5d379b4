"""The hallucination gate: suite metrics against thresholds; warn or refuse (see soritune.eval.hallucination).

Kept apart from the suite so the configs of `export` and `serve` can name the thresholds without
importing the suite."""

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

    nonspeech_chars_per_min: float | None = Field(20.0, ge=0, description="characters per minute of non-speech clips")
    pause_chars_per_min: float | None = Field(30.0, ge=0, description="inserted characters per minute of pauses in speech")
    nonspeech_output_rate: float | None = Field(0.34, ge=0, le=1, description="share of non-speech clips with any output")
    loop_rate: float | None = Field(0.1, ge=0, le=1, description="share of clips whose output loops")
    speech_missed: float | None = Field(0.5, ge=0, le=1, description="share of reference characters deleted")


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
